"""Back-office users on both backends: accounts, roles, policies, sign-in, sessions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    Company,
    CompanyMembership,
    SignInAttempt,
    User,
    WebSession,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from recaudo.domain.payments import PaymentMethod
from recaudo.services import users
from recaudo.services.companies import NewCompany, create_company, issue_api_key
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, apply_payment
from recaudo.services.users import Limits, NewUser, Policy, SignInFailed, SignInThrottled
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

LIMITS = Limits()
IP = "203.0.113.7"


def new_user(
    uow: UnitOfWork,
    clock: FrozenClock,
    admin: Actor,
    company: Company,
    email: str = "ana@acme.cl",
    role: Role = Role.ADMIN,
) -> users.CreatedUser:
    return users.create_user(
        uow, NewUser(email, "Ana Rojas", company.id, role), actor=admin, clock=clock
    )


def activate(uow: UnitOfWork, user_id: int, password: str = "Clave-final-1") -> str:
    with uow:
        user = uow.session.get(User, user_id)
        assert user is not None
        user.password_hash = users.hash_password(password)
        user.must_change_password = False
        uow.commit()
    return password


def test_create_user_stores_an_argon2_hash_of_a_provisional_password(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company, email="  Ana@ACME.cl ")
    assert created.email == "ana@acme.cl"
    password = created.provisional_password
    assert password is not None and len(password) == 14
    assert not Policy().problems(password)
    with uow:
        user = uow.session.scalars(select(User)).one()
        assert user.email == "ana@acme.cl"
        assert user.must_change_password is True
        assert user.active is True
        assert user.password_hash.startswith("$argon2id$")
        assert password not in user.password_hash
        assert PasswordHasher().verify(user.password_hash, password)
        membership = uow.session.scalars(select(CompanyMembership)).one()
        assert (membership.company_id, membership.role, membership.active) == (
            company.id,
            "admin",
            True,
        )
        event = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.created")
        ).one()
        assert event.actor == "test:admin"
        assert event.after == {"email": "ana@acme.cl", "role": "admin"}


def test_same_email_twice_in_a_company_is_a_conflict_and_another_company_adds_a_role(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    first = new_user(uow, clock, admin, company)
    with pytest.raises(Conflict, match="ya pertenece a esta empresa"):
        new_user(uow, clock, admin, company, email="ANA@acme.cl")
    beta = create_company(uow, NewCompany("beta", "Beta Ltda", "CL"), actor=admin, clock=clock)
    again = new_user(uow, clock, admin, beta, role=Role.AUDITOR)
    assert again.user_id == first.user_id
    assert again.provisional_password is None  # keeps the password they have
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("email", "name", "message"),
    [
        ("not-an-email", "Ana", "El correo 'not-an-email' no es válido."),
        ("a@b", "Ana", "El correo 'a@b' no es válido."),
        ("ana@acme.cl", "  ", "El nombre debe tener entre 1 y 200 caracteres."),
    ],
)
def test_create_user_validates_email_and_name(
    uow: UnitOfWork,
    clock: FrozenClock,
    admin: Actor,
    company: Company,
    email: str,
    name: str,
    message: str,
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        users.create_user(
            uow, NewUser(email, name, company.id, Role.OPERATOR), actor=admin, clock=clock
        )
    assert raised.value.message == message


def test_only_the_companys_admins_manage_its_users(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    beta = create_company(uow, NewCompany("beta", "Beta Ltda", "CL"), actor=admin, clock=clock)
    operator = Actor("user:olga@acme.cl", Role.OPERATOR, company.id)
    with pytest.raises(PermissionDenied):
        users.list_users(uow, company.id, actor=operator)
    beta_admin = Actor("user:b@beta.cl", Role.ADMIN, beta.id)
    with pytest.raises(NotFound):
        users.list_users(uow, company.id, actor=beta_admin)
    with pytest.raises(NotFound):
        new_user(uow, clock, beta_admin, company)
    created = new_user(uow, clock, admin, company)
    with pytest.raises(NotFound):
        users.get_user(uow, beta.id, created.user_id, actor=beta_admin)


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    ana = new_user(uow, clock, admin, company)
    with pytest.raises(Conflict, match="al menos un administrador activo"):
        users.change_role(uow, company.id, ana.user_id, Role.OPERATOR, actor=admin, clock=clock)
    with pytest.raises(Conflict, match="al menos un administrador activo"):
        users.set_active(uow, company.id, ana.user_id, False, actor=admin, clock=clock)
    bruno = new_user(uow, clock, admin, company, email="bruno@acme.cl")
    view = users.change_role(uow, company.id, ana.user_id, Role.CASHIER, actor=admin, clock=clock)
    assert view.role is Role.CASHIER
    assert view.role_name == "Cajero"
    # An admin cannot deactivate themselves.
    as_bruno = Actor("user:bruno@acme.cl", Role.ADMIN, company.id)
    with pytest.raises(Conflict, match=r"No puede desactivar su propio usuario\."):
        users.set_active(uow, company.id, bruno.user_id, False, actor=as_bruno, clock=clock)
    rows = users.list_users(uow, company.id, actor=admin)
    assert [(u.email, u.role, u.active) for u in rows] == [
        ("ana@acme.cl", Role.CASHIER, True),
        ("bruno@acme.cl", Role.ADMIN, True),
    ]


def test_password_policy_per_company_and_strictest_for_several(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    assert users.password_policy(uow, company.id) == Policy(8, True, True)
    with pytest.raises(ValidationFailed, match="entre 8 y 128"):
        users.set_password_policy(uow, company.id, Policy(6, True, True), actor=admin, clock=clock)
    users.set_password_policy(uow, company.id, Policy(12, True, False), actor=admin, clock=clock)
    assert users.password_policy(uow, company.id) == Policy(12, True, False)
    created = new_user(uow, clock, admin, company)
    assert created.provisional_password is not None
    assert len(created.provisional_password) == 14
    # Letters and digits even where the policy does not ask for digits (another may).
    assert any(c.isdigit() for c in created.provisional_password)
    assert any(c.isalpha() for c in created.provisional_password)
    beta = create_company(uow, NewCompany("beta", "Beta Ltda", "CL"), actor=admin, clock=clock)
    users.set_password_policy(uow, beta.id, Policy(10, False, True), actor=admin, clock=clock)
    new_user(uow, clock, admin, beta)
    signed = users.sign_in(
        uow, "ana@acme.cl", created.provisional_password, IP, limits=LIMITS, clock=clock
    )
    current = created.provisional_password
    # 12 long (acme), letters (acme) and digits (beta): the strictest of both.
    with pytest.raises(ValidationFailed) as raised:
        users.change_password(uow, signed.session.id, current, "abcdefghij1", clock=clock)
    assert raised.value.details["problems"] == ["La contraseña debe tener al menos 12 caracteres."]
    with pytest.raises(ValidationFailed) as raised:
        users.change_password(uow, signed.session.id, current, "abcdefghijklm", clock=clock)
    assert raised.value.details["problems"] == ["La contraseña debe contener al menos un dígito."]
    with pytest.raises(ValidationFailed, match="distinta de la actual"):
        users.change_password(uow, signed.session.id, current, current, clock=clock)
    users.change_password(uow, signed.session.id, current, "abcdefghijk12", clock=clock)
    with uow:
        user = uow.session.scalars(select(User)).one()
        assert user.must_change_password is False


def test_sign_in_creates_a_session_whose_token_is_stored_hashed(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    signed = users.sign_in(uow, " ANA@acme.cl", password, IP, limits=LIMITS, clock=clock)
    session = signed.session
    assert (session.email, session.company_id, session.role) == (
        "ana@acme.cl",
        company.id,
        Role.ADMIN,
    )
    assert session.actor == Actor("user:ana@acme.cl", Role.ADMIN, company.id)
    assert session.company_name == "Acme Telecomunicaciones SpA"
    assert session.currency == "CLP"
    with uow:
        row = uow.session.scalars(select(WebSession)).one()
        assert row.token_hash != signed.token and len(row.token_hash) == 64
        assert row.expires_at == row.created_at + timedelta(hours=12)
        assert row.ip == IP
        attempt = uow.session.scalars(select(SignInAttempt)).one()
        assert (attempt.email, attempt.ip, attempt.succeeded) == ("ana@acme.cl", IP, True)
    found = users.session_for(uow, signed.token, limits=LIMITS, clock=clock)
    assert found is not None and found.id == session.id
    assert users.session_for(uow, signed.token + "x", limits=LIMITS, clock=clock) is None
    users.sign_out(uow, session.id, clock=clock)
    assert users.session_for(uow, signed.token, limits=LIMITS, clock=clock) is None


def test_failures_are_identical_for_unknown_inactive_and_wrong_password(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    new_user(uow, clock, admin, company, email="bruno@acme.cl")
    bruno = users.user_id_by_email(uow, "bruno@acme.cl")
    activate(uow, bruno, "Clave-de-bruno-1")
    users.set_active(uow, company.id, bruno, False, actor=admin, clock=clock)
    messages = []
    for email, attempt in (
        ("ana@acme.cl", "wrong-1"),
        ("nobody@acme.cl", password),
        ("bruno@acme.cl", "Clave-de-bruno-1"),
    ):
        with pytest.raises(SignInFailed) as raised:
            users.sign_in(uow, email, attempt, IP, limits=LIMITS, clock=clock)
        messages.append(raised.value.message)
    assert messages == ["Correo o contraseña incorrectos."] * 3


def test_throttling_per_email_counts_failures_since_the_last_success(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    for _ in range(4):
        with pytest.raises(SignInFailed):
            users.sign_in(uow, "ana@acme.cl", "wrong-1", IP, limits=LIMITS, clock=clock)
    users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock)  # resets
    for _ in range(5):
        with pytest.raises(SignInFailed):
            users.sign_in(uow, "ana@acme.cl", "wrong-1", "198.51.100.1", limits=LIMITS, clock=clock)
    with pytest.raises(SignInThrottled) as raised:
        users.sign_in(uow, "ana@acme.cl", password, "198.51.100.2", limits=LIMITS, clock=clock)
    assert raised.value.message == (
        "Demasiados intentos fallidos de inicio de sesión. Espere 15 minutos e inténtelo de nuevo."
    )
    clock.advance(minutes=14)
    with pytest.raises(SignInThrottled):
        users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock)
    clock.advance(minutes=1)
    users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock)


def test_old_attempts_are_deleted_after_a_day(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    for _ in range(3):
        with pytest.raises(SignInFailed):
            users.sign_in(uow, "x@acme.cl", "wrong-1", IP, limits=LIMITS, clock=clock)
    clock.advance(days=1, seconds=1)
    with pytest.raises(SignInFailed):
        users.sign_in(uow, "x@acme.cl", "wrong-1", IP, limits=LIMITS, clock=clock)
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(SignInAttempt)) == 1


def test_sessions_end_when_idle_too_long_or_too_old(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    token = users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock).token
    clock.advance(minutes=29, seconds=59)
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is not None
    clock.advance(minutes=30)  # 30 min since the last page (which touched the session)
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is None
    token = users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock).token
    for _ in range(24):
        clock.advance(minutes=29, seconds=59)
        assert users.session_for(uow, token, limits=LIMITS, clock=clock) is not None
    clock.advance(minutes=1)  # 12 h after sign-in, however active
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is None


def test_reset_deactivate_and_role_change_end_sessions(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    new_user(uow, clock, admin, company)
    bruno = new_user(uow, clock, admin, company, email="bruno@acme.cl", role=Role.OPERATOR)
    password = activate(uow, bruno.user_id)

    def sign() -> str:
        return users.sign_in(uow, "bruno@acme.cl", password, IP, limits=LIMITS, clock=clock).token

    token = sign()
    users.change_role(uow, company.id, bruno.user_id, Role.AUDITOR, actor=admin, clock=clock)
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is None
    token = sign()
    users.set_active(uow, company.id, bruno.user_id, False, actor=admin, clock=clock)
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is None
    with pytest.raises(SignInFailed):
        sign()
    users.set_active(uow, company.id, bruno.user_id, True, actor=admin, clock=clock)
    token = sign()
    provisional = users.reset_password(uow, bruno.user_id, actor=admin, clock=clock)
    assert users.session_for(uow, token, limits=LIMITS, clock=clock) is None
    signed = users.sign_in(uow, "bruno@acme.cl", provisional, IP, limits=LIMITS, clock=clock)
    assert signed.session.must_change_password is True
    with pytest.raises(SignInFailed):
        sign()  # the old password is gone


def test_deactivate_account_is_for_the_installation_admin(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    with pytest.raises(PermissionDenied):
        users.deactivate_account(
            uow, "ana@acme.cl", actor=Actor("user:x", Role.ADMIN, company.id), clock=clock
        )
    users.deactivate_account(uow, "ana@acme.cl", actor=admin, clock=clock)
    with pytest.raises(SignInFailed):
        users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock)
    with pytest.raises(NotFound):
        users.deactivate_account(uow, "nobody@acme.cl", actor=admin, clock=clock)


def test_several_companies_choose_one_and_not_anothers(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    beta = create_company(uow, NewCompany("beta", "Beta Ltda", "CL"), actor=admin, clock=clock)
    gamma = create_company(uow, NewCompany("gamma", "Gamma SA", "CL"), actor=admin, clock=clock)
    created = new_user(uow, clock, admin, company)
    new_user(uow, clock, admin, beta, role=Role.CASHIER)
    password = activate(uow, created.user_id)
    signed = users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock)
    assert signed.session.company_id is None and signed.session.role is None
    assert [m.company_slug for m in signed.session.memberships] == ["acme", "beta"]
    with pytest.raises(PermissionDenied):
        _ = signed.session.actor
    with pytest.raises(NotFound):
        users.choose_company(uow, signed.session.id, gamma.id, clock=clock)
    chosen = users.choose_company(uow, signed.session.id, beta.id, clock=clock)
    assert (chosen.company_slug, chosen.role) == ("beta", Role.CASHIER)


def test_flashes_are_shown_once(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    created = new_user(uow, clock, admin, company)
    password = activate(uow, created.user_id)
    session = users.sign_in(uow, "ana@acme.cl", password, IP, limits=LIMITS, clock=clock).session
    users.push_flash(uow, session.id, "Pago registrado.")
    users.push_flash(uow, session.id, "Revise la excepción.", "error")
    assert users.pop_flashes(uow, session.id) == [
        {"kind": "ok", "text": "Pago registrado."},
        {"kind": "error", "text": "Revise la excepción."},
    ]
    assert users.pop_flashes(uow, session.id) == []


def test_a_cashier_registers_office_cash_and_cheque_payments_only(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    customer = add_customer(uow, company, "12.345.678-5", "Juan Pérez", clock)
    add_debt(uow, company, customer, "F-1", "50000", clock.now.date(), clock)
    cashier = Actor("user:caja@acme.cl", Role.CASHIER, company.id)

    def pay(method: PaymentMethod, key: str, channel: str = "office") -> ApplyPayment:
        return ApplyPayment(company.id, customer.id, Decimal("1000"), method, key, channel=channel)

    cash = apply_payment(uow, pay(PaymentMethod.CASH, "k-1"), actor=cashier, clock=clock)
    cheque = apply_payment(uow, pay(PaymentMethod.CHEQUE, "k-2"), actor=cashier, clock=clock)
    assert (cash.payment.amount, cheque.payment.amount) == (Decimal("1000"), Decimal("1000"))
    assert cash.payment.recorded_by == "user:caja@acme.cl"
    for cmd in (pay(PaymentMethod.TRANSFER, "k-3"), pay(PaymentMethod.CASH, "k-4", "bancoestado")):
        with pytest.raises(PermissionDenied):
            apply_payment(uow, cmd, actor=cashier, clock=clock)
    auditor = Actor("user:a@acme.cl", Role.AUDITOR, company.id)
    with pytest.raises(PermissionDenied):
        apply_payment(uow, pay(PaymentMethod.CASH, "k-5"), actor=auditor, clock=clock)


def test_no_api_key_for_a_cashier(
    uow: UnitOfWork, clock: FrozenClock, admin: Actor, company: Company
) -> None:
    with pytest.raises(ValidationFailed, match="an API key cannot have the role cashier"):
        issue_api_key(uow, company.slug, Role.CASHIER, actor=admin, clock=clock)
