"""Commitments on both backends: creation with its mandate and payments, edits that touch
only future open payments, ending, payment transitions with audit rows, creditor accounts
and settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    CommitmentPayment,
    Company,
    Mandate,
    OutboxEvent,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.commitments import InvalidPaymentTransition
from recaudo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recaudo.services import commitments as svc
from recaudo.services import creditor_accounts as accounts
from recaudo.services.commitments import (
    CommitmentChanges,
    CommitmentFilter,
    NewCommitment,
    PaymentFilter,
)
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role
from recaudo.services.customers import CustomerData, register_customer
from tests.conftest import FrozenClock

IBAN = "ES9121000418450200051332"
IBAN2 = "ES7921000813610123456789"
CREDITOR_ID = "ES38ZZZX1234567B"


def customer(uow: UnitOfWork, company: Company, nif: str, name: str, clock: FrozenClock) -> int:
    with uow:
        row = register_customer(
            uow,
            company,
            CustomerData(nif, name),
            actor=Actor("test:admin", Role.ADMIN),
            clock=clock,
        )
        uow.commit()
        return row.id


@pytest.fixture
def payer(uow: UnitOfWork, company_es: Company, clock: FrozenClock) -> int:
    return customer(uow, company_es, "12345678Z", "Ana García", clock)


def monthly_dd(payer: int, **overrides: object) -> NewCommitment:
    values: dict[str, object] = {
        "payer_customer_id": payer,
        "kind": "fee",
        "method": "direct_debit",
        "periodicity": "monthly",
        "amount": "10.00",
        "first_payment_on": date(2026, 1, 31),
        "concept": "Cuota socio",
        "iban": IBAN,
    }
    values.update(overrides)
    return NewCommitment(**values)  # type: ignore[arg-type]


def payments(uow: UnitOfWork, company_id: int, commitment_id: int) -> list[svc.PaymentView]:
    with uow:
        page = svc.list_payments(uow, company_id, PaymentFilter(commitment_id=commitment_id))
    return page.items


def test_create_direct_debit_makes_mandate_and_past_payments(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    assert view.amount == Decimal("10.00")
    assert view.currency == "EUR"
    assert view.active is True
    assert view.payments_created == 3  # January, February, March (the current month)
    assert view.mandate is not None
    assert view.mandate.reference == f"ONG-{view.id:08d}-01"
    assert view.mandate.signed_on == date(2026, 3, 2)  # the company's today
    assert view.mandate.status == "active"
    assert view.mandate.scheme == "CORE"
    assert view.mandate.first_collection_done is False
    rows = payments(uow, company_es.id, view.id)
    assert [(p.period_start, p.due_on, p.status, p.amount) for p in rows] == [
        (date(2026, 1, 1), date(2026, 1, 31), "not_remitted", Decimal("10.00")),
        (date(2026, 2, 1), date(2026, 2, 28), "not_remitted", Decimal("10.00")),
        (date(2026, 3, 1), date(2026, 3, 31), "not_remitted", Decimal("10.00")),
    ]
    assert {p.iban for p in rows} == {IBAN}
    assert {p.mandate_id for p in rows} == {view.mandate.id}
    assert {p.customer_id for p in rows} == {payer}
    assert rows[0].end_to_end_id == f"RCD{view.id:010d}20260101"
    assert all(p.sequence_type is None and p.remittance_id is None for p in rows)
    with uow:
        actions = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.company_id == company_es.id)
        ).all()
    assert "commitment.created" in actions and "mandate.created" in actions


def test_first_payment_in_the_future_is_created_alone(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    data = monthly_dd(payer, method="cash", iban=None, first_payment_on=date(2026, 6, 15))
    view = svc.create_commitment(uow, company_es.id, data, actor=admin, clock=clock)
    assert view.mandate is None
    rows = payments(uow, company_es.id, view.id)
    assert [(p.due_on, p.status, p.iban, p.mandate_id) for p in rows] == [
        (date(2026, 6, 15), "pending", None, None)
    ]


def test_generate_for_next_month_creates_next_months_payment_too(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    accounts.update_settings(
        uow, company_es.id, accounts.SettingsChanges(generate_for="next"), actor=admin, clock=clock
    )
    view = svc.create_commitment(
        uow,
        company_es.id,
        monthly_dd(payer, periodicity="quarterly", first_payment_on=date(2025, 10, 31)),
        actor=admin,
        clock=clock,
    )
    assert [p.due_on for p in payments(uow, company_es.id, view.id)] == [
        date(2025, 10, 31),
        date(2026, 1, 31),
        date(2026, 4, 30),  # next month is April: its quarter falls due
    ]


def test_validation_errors(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    other = create_company(uow, NewCompany("otra", "Otra", "ES"), actor=admin, clock=clock)
    stranger = customer(uow, other, "00000000T", "Luis Pérez", clock)
    cases: list[tuple[NewCommitment, str, str]] = [
        (monthly_dd(stranger), "payer_customer_id", f"no customer {stranger} in this company"),
        (monthly_dd(payer, iban="ES9121000418450200051333"), "iban", "is not valid"),
        (monthly_dd(payer, iban=None), "iban", "a direct debit needs the payer's IBAN"),
        (monthly_dd(payer, amount="0"), "amount", "amount must be more than zero"),
        (monthly_dd(payer, amount="10.001"), "amount", "more than 2 decimals"),
        (monthly_dd(payer, periodicity="weekly"), "periodicity", "periodicity must be one of"),
        (monthly_dd(payer, concept="  "), "concept", "concept is empty"),
        (monthly_dd(payer, direction="expense"), "direction", "a direct debit collects"),
        (monthly_dd(payer, ends_on=date(2026, 1, 1)), "ends_on", "before first_payment_on"),
        (monthly_dd(payer, method="card", iban=None), "card_token", "card token"),
        (monthly_dd(payer, bic="NOTABIC"), "bic", "NOTABIC"),
        (monthly_dd(payer, mandate_scheme="XX"), "mandate_scheme", "CORE, B2B"),
    ]
    for data, field, message in cases:
        with pytest.raises(ValidationFailed) as caught:
            svc.create_commitment(uow, company_es.id, data, actor=admin, clock=clock)
        assert caught.value.details.get("field") == field, (field, caught.value.message)
        assert message in caught.value.message
    with uow:
        assert uow.session.scalar(select(func.count(CommitmentPayment.id))) == 0
        assert uow.session.scalar(select(func.count(Mandate.id))) == 0


def test_auditor_cannot_create_and_other_company_is_not_found(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    auditor = Actor("key:9", Role.AUDITOR, company_es.id)
    with pytest.raises(PermissionDenied):
        svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=auditor, clock=clock)
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    outsider = Actor("key:10", Role.ADMIN, company_es.id + 1000)
    with pytest.raises(NotFound):
        svc.end_commitment(uow, company_es.id, view.id, reason="x", actor=outsider, clock=clock)
    with uow, pytest.raises(NotFound):
        svc.get_commitment(uow, company_es.id + 1000, view.id)


def test_edit_changes_only_future_open_payments(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    jan, feb, mar = payments(uow, company_es.id, view.id)
    with uow:
        svc.transition_payment(uow, company_es.id, jan.id, "remitted", actor=admin, clock=clock)
        svc.transition_payment(uow, company_es.id, jan.id, "paid", actor=admin, clock=clock)
        uow.commit()
    edited = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(amount="12.50", iban=IBAN2),
        actor=admin,
        clock=clock,
    )
    assert edited.amount == Decimal("12.50")
    assert edited.mandate is not None and edited.mandate.reference == f"ONG-{view.id:08d}-02"
    assert view.mandate is not None
    with uow:
        old = uow.session.get(Mandate, view.mandate.id)
        assert old is not None and old.status == "replaced"
        mandates = svc.list_mandates(uow, company_es.id, view.id)
    assert [(m.reference[-2:], m.status, m.iban) for m in mandates] == [
        ("01", "replaced", IBAN),
        ("02", "active", IBAN2),
    ]
    after = {p.id: p for p in payments(uow, company_es.id, view.id)}
    # January was paid: history never changes.
    assert (after[jan.id].amount, after[jan.id].iban, after[jan.id].status) == (
        Decimal("10.00"),
        IBAN,
        "paid",
    )
    # February is still open but already due (28 Feb < 2 Mar): it keeps the old terms.
    assert (after[feb.id].amount, after[feb.id].iban, after[feb.id].mandate_id) == (
        Decimal("10.00"),
        IBAN,
        view.mandate.id,
    )
    # March is due on the 31st: it follows the commitment.
    assert (after[mar.id].amount, after[mar.id].iban, after[mar.id].mandate_id) == (
        Decimal("12.50"),
        IBAN2,
        edited.mandate.id,
    )
    with uow:
        event = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "commitment.updated")
        ).one()
        before, after_ = event.before, event.after
    assert before == {"amount_minor": 1000, "iban": IBAN, "mandate_id": view.mandate.id}
    assert after_ == {
        "amount_minor": 1250,
        "iban": IBAN2,
        "mandate_id": edited.mandate.id,
        "payments_rewritten": 1,
        "payments_cancelled": 0,
        "payments_created": 0,
    }


def test_edit_method_to_cash_makes_future_payments_pending(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    svc.edit_commitment(
        uow, company_es.id, view.id, CommitmentChanges(method="cash"), actor=admin, clock=clock
    )
    rows = payments(uow, company_es.id, view.id)
    assert [(p.method, p.status, p.iban is None, p.mandate_id is None) for p in rows] == [
        ("direct_debit", "not_remitted", False, False),
        ("direct_debit", "not_remitted", False, False),
        ("cash", "pending", True, True),
    ]


def test_edit_with_nothing_new_writes_nothing(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    same = svc.edit_commitment(
        uow, company_es.id, view.id, CommitmentChanges(amount="10"), actor=admin, clock=clock
    )
    assert same.updated_at == view.updated_at
    with uow:
        assert (
            uow.session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.action == "commitment.updated")
            )
            == 0
        )


def test_end_cancels_open_payments_after_the_end_and_flags_inactive(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    ended = svc.end_commitment(
        uow,
        company_es.id,
        view.id,
        reason="baja voluntaria",
        ends_on=date(2026, 2, 28),
        actor=admin,
        clock=clock,
    )
    assert (ended.ends_on, ended.active, ended.ended_reason) == (
        date(2026, 2, 28),
        False,
        "baja voluntaria",
    )
    assert [p.status for p in payments(uow, company_es.id, view.id)] == [
        "not_remitted",
        "not_remitted",
        "cancelled",
    ]
    # Ending today keeps it active until the day is over (the end date is inclusive).
    other = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    today = svc.end_commitment(uow, company_es.id, other.id, reason="x", actor=admin, clock=clock)
    assert (today.ends_on, today.active) == (date(2026, 3, 2), True)
    # Removing the end date brings the commitment back and generates what is now due.
    back = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(clear=frozenset({"ends_on"})),
        actor=admin,
        clock=clock,
    )
    assert (back.active, back.ends_on, back.ended_reason) == (True, None, None)


def test_transitions_write_audit_and_outbox_and_refuse_invalid_ones(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    jan = payments(uow, company_es.id, view.id)[0]
    with uow, pytest.raises(InvalidPaymentTransition) as caught:
        svc.transition_payment(uow, company_es.id, jan.id, "paid", actor=admin, clock=clock)
    assert isinstance(caught.value, Conflict)
    assert caught.value.message == (
        "a direct_debit payment cannot go from not_remitted to paid "
        "(from not_remitted it may go to: cancelled, duplicate, remitted)"
    )
    with uow:
        svc.transition_payment(
            uow, company_es.id, jan.id, "remitted", actor=admin, clock=clock, sequence_type="FRST"
        )
        svc.transition_payment(uow, company_es.id, jan.id, "paid", actor=admin, clock=clock)
        returned = svc.transition_payment(
            uow,
            company_es.id,
            jan.id,
            "unpaid",
            actor=admin,
            clock=clock,
            reason="devolución",
            return_reason_code="AM04",
            return_reason="Fondos insuficientes",
        )
        uow.commit()
    assert returned.status == "unpaid"
    got = payments(uow, company_es.id, view.id)[0]
    assert (got.status, got.sequence_type, got.return_reason_code) == ("unpaid", "FRST", "AM04")
    assert got.paid_at is not None
    with uow:
        audits = [
            (a.action, a.before, a.after)
            for a in uow.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "commitment_payment")
                .order_by(AuditEvent.id)
            )
        ]
        events = uow.session.scalars(select(OutboxEvent.event_type).order_by(OutboxEvent.id))
        assert list(events) == ["commitment_payment.paid", "commitment_payment.returned"]
    assert audits[0] == (
        "commitment_payment.remitted",
        {"status": "not_remitted", "sequence_type": None},
        {"status": "remitted", "sequence_type": "FRST"},
    )
    assert audits[2][2] == {
        "status": "unpaid",
        "return_reason_code": "AM04",
        "return_reason": "Fondos insuficientes",
        "reason": "devolución",
    }
    with uow, pytest.raises(ValidationFailed, match="cannot set amount_minor"):
        svc.transition_payment(
            uow, company_es.id, jan.id, "to_recover", actor=admin, clock=clock, amount_minor=1
        )
    # The API's path: own transaction, a clear conflict, nothing changed.
    with pytest.raises(InvalidPaymentTransition):
        svc.change_payment_status(uow, company_es.id, jan.id, "remitted", actor=admin, clock=clock)
    done = svc.change_payment_status(
        uow, company_es.id, jan.id, "to_recover", actor=admin, clock=clock
    )
    assert done.status == "to_recover"
    with pytest.raises(NotFound):
        svc.change_payment_status(uow, company_es.id, 10**9, "paid", actor=admin, clock=clock)


def test_list_filters(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    other = customer(uow, company_es, "11111111H", "Berta Ruiz", clock)
    dd = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    cash = svc.create_commitment(
        uow,
        company_es.id,
        monthly_dd(other, method="cash", iban=None, periodicity="annual", kind="donation"),
        actor=admin,
        clock=clock,
    )
    with uow:
        assert svc.list_payments(uow, company_es.id).total == 4
        feb = svc.list_payments(uow, company_es.id, PaymentFilter(due_month=date(2026, 2, 17)))
        assert [p.due_on for p in feb.items] == [date(2026, 2, 28)]
        pending = svc.list_payments(uow, company_es.id, PaymentFilter(status="pending"))
        assert [p.commitment_id for p in pending.items] == [cash.id]
        by_customer = svc.list_payments(uow, company_es.id, PaymentFilter(customer_id=payer))
        assert {p.commitment_id for p in by_customer.items} == {dd.id}
        mine = svc.list_commitments(uow, company_es.id, CommitmentFilter(customer_id=other))
        assert [c.id for c in mine.items] == [cash.id]
        donations = svc.list_commitments(uow, company_es.id, CommitmentFilter(kind="donation"))
        assert donations.total == 1
        with pytest.raises(ValidationFailed, match="status must be one of"):
            svc.list_payments(uow, company_es.id, PaymentFilter(status="lost"))


# --------------------------------------------------------------------------- creditor accounts


def test_creditor_accounts(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock
) -> None:
    data = accounts.CreditorAccountData(
        name="Principal",
        iban="es91 2100 0418 4502 0005 1332",
        bic="caixesbbxxx",
        creditor_identifier="ES38ZZZX1234567B",
        creditor_name="Fundación Ejemplo",
        town="Madrid",
        country="es",
    )
    view = accounts.register_account(uow, company_es.id, data, actor=admin, clock=clock)
    assert (view.iban, view.bic, view.creditor_identifier, view.country) == (
        IBAN,
        "CAIXESBBXXX",
        CREDITOR_ID,
        "ES",
    )
    assert (view.pain008_version, view.pain001_version, view.lead_days, view.include_bic) == (
        "pain.008.001.08",
        "pain.001.001.09",
        1,
        False,
    )
    with pytest.raises(Conflict, match="already creditor account"):
        accounts.register_account(uow, company_es.id, data, actor=admin, clock=clock)
    with pytest.raises(ValidationFailed, match="wrong check digit") as bad:
        accounts.register_account(
            uow,
            company_es.id,
            accounts.CreditorAccountData(
                name="B", iban=IBAN2, creditor_identifier="ES39ZZZX1234567B", creditor_name="F"
            ),
            actor=admin,
            clock=clock,
        )
    assert bad.value.details["field"] == "creditor_identifier"
    operator = Actor("key:2", Role.OPERATOR, company_es.id)
    with pytest.raises(PermissionDenied):
        accounts.update_account(
            uow,
            company_es.id,
            view.id,
            accounts.CreditorAccountData(lead_days=2),
            actor=operator,
            clock=clock,
        )
    updated = accounts.update_account(
        uow,
        company_es.id,
        view.id,
        accounts.CreditorAccountData(lead_days=2, pain008_version="pain.008.001.02", bic=""),
        actor=admin,
        clock=clock,
    )
    assert (updated.lead_days, updated.pain008_version, updated.bic) == (
        2,
        "pain.008.001.02",
        None,
    )
    with pytest.raises(ValidationFailed, match="pain008_version must be one of"):
        accounts.update_account(
            uow,
            company_es.id,
            view.id,
            accounts.CreditorAccountData(pain008_version="pain.008.001.99"),
            actor=admin,
            clock=clock,
        )
    with uow:
        assert [a.id for a in accounts.list_accounts(uow, company_es.id)] == [view.id]
        assert accounts.list_accounts(uow, company_es.id, active=False) == []


def test_settings_defaults_and_update(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock
) -> None:
    with uow:
        assert accounts.get_settings(uow, company_es.id) == accounts.SettingsView(
            "current", 1, time(0, 30), None, None, None
        )
    view = accounts.update_settings(
        uow,
        company_es.id,
        accounts.SettingsChanges(run_day=5, run_time=time(6, 0), notify_email="a@ong.es"),
        actor=admin,
        clock=clock,
    )
    assert (view.generate_for, view.run_day, view.run_time, view.notify_email) == (
        "current",
        5,
        time(6, 0),
        "a@ong.es",
    )
    assert view.updated_at is not None and view.updated_at > datetime(2026, 1, 1, tzinfo=UTC)
    for changes, field in (
        (accounts.SettingsChanges(run_day=29), "run_day"),
        (accounts.SettingsChanges(generate_for="later"), "generate_for"),
        (accounts.SettingsChanges(notify_email="nope"), "notify_email"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            accounts.update_settings(uow, company_es.id, changes, actor=admin, clock=clock)
        assert caught.value.details["field"] == field


# --------------------------------------------------------------------------- the command line


def test_cli_commitments_and_creditor_accounts(db_url: str) -> None:
    from zoneinfo import ZoneInfo

    from typer.testing import CliRunner

    from recaudo.adapters.db.engine import make_engine
    from recaudo.cli import app
    from recaudo.domain.months import add_months

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env={"RECAUDO_DATABASE_URL": db_url})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    assert (
        run("company", "create", "--slug", "ong", "--name", "Fundación", "--country", "ES")[0] == 0
    )
    engine = make_engine(db_url)
    try:
        uow = UnitOfWork(engine)
        with uow:
            company = uow.session.scalars(select(Company)).one()
            register_customer(
                uow,
                company,
                CustomerData("12345678Z", "Ana García"),
                actor=Actor("test:admin", Role.ADMIN),
                clock=FrozenClock(),
            )
            uow.commit()
    finally:
        engine.dispose()
    # Two months back, on the 15th: three payments up to this month (the real clock).
    this_month = datetime.now(ZoneInfo("Europe/Madrid")).date().replace(day=1)
    first = add_months(this_month, -2).replace(day=15)
    code, out, err = run(
        "commitments", "create", "--company", "ong", "--payer", "12345678Z", "--kind", "fee",
        "--method", "direct_debit", "--periodicity", "monthly", "--amount", "10.00",
        "--first-payment", first.isoformat(), "--concept", "Cuota", "--iban", IBAN,
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "Commitment 1 created; 3 payment(s) generated.",
        "Mandate ONG-00000001-01",
    ]
    code, out, _ = run("commitments", "generate", "--company", "ong")
    assert (code, out.strip()) == (
        0,
        f"Up to {this_month:%Y-%m}: 0 payment(s) created (1 commitment(s) looked at).",
    )
    code, out, _ = run("commitments", "show", "--company", "ong", "1")
    assert code == 0 and "ONG-00000001-01" in out and out.count("not_remitted") == 3
    code, _, err = run("commitments", "transition", "--company", "ong", "1", "--to", "paid")
    assert code == 1
    assert err.strip().startswith(
        "Error: a direct_debit payment cannot go from not_remitted to paid"
    )
    code, out, _ = run("commitments", "transition", "--company", "ong", "1", "--to", "cancelled")
    assert (code, out.strip()) == (0, "Payment 1 is now cancelled.")
    code, _, err = run(
        "commitments", "create", "--company", "ong", "--payer", "12345678Z", "--kind", "fee",
        "--method", "direct_debit", "--periodicity", "weekly", "--amount", "10",
        "--first-payment", first.isoformat(), "--concept", "Cuota", "--iban", IBAN,
    )  # fmt: skip
    assert code == 2 and "periodicity must be one of" in err
    code, out, _ = run("commitments", "edit", "--company", "ong", "1", "--amount", "12.00")
    assert code == 0 and "12.00 EUR" in out
    code, out, _ = run("commitments", "end", "--company", "ong", "1", "--reason", "baja")
    assert code == 0 and out.startswith("Commitment 1 ends on ")
    code, out, _ = run("commitments", "list", "--company", "ong", "--active")
    assert code == 0 and "direct_debit" in out
    code, out, _ = run("commitments", "payments", "--company", "ong", "--status", "cancelled")
    assert code == 0 and "RCD0000000001" in out
    code, out, _ = run(
        "commitments", "settings", "--company", "ong", "--generate-for", "next", "--run-day", "3"
    )
    assert code == 0 and "generate for:   next" in out and "run day:        3" in out

    code, out, err = run(
        "creditor-account", "add", "--company", "ong", "--name", "Principal", "--iban", IBAN,
        "--creditor-id", "ES38ZZZX1234567B", "--creditor-name", "Fundacion Ejemplo",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"Creditor account 1 registered: {IBAN} (ES38ZZZX1234567B)."
    code, _, err = run(
        "creditor-account", "add", "--company", "ong", "--name", "Otra", "--iban", IBAN2,
        "--creditor-id", "ES39ZZZX1234567B", "--creditor-name", "F",
    )  # fmt: skip
    assert code == 2 and "wrong check digit" in err
    code, out, _ = run("creditor-account", "list", "--company", "ong")
    assert code == 0 and IBAN in out and "pain.008.001.08" in out


def test_switching_to_direct_debit_creates_a_mandate_and_shortening_cancels(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    cash = monthly_dd(payer, method="cash", iban=None, first_payment_on=date(2026, 3, 10))
    view = svc.create_commitment(uow, company_es.id, cash, actor=admin, clock=clock)
    svc.generate_payments(uow, company_es.id, month=date(2026, 6, 1), clock=clock)
    assert view.mandate is None
    with pytest.raises(ValidationFailed, match="a direct debit needs the payer's IBAN"):
        svc.edit_commitment(
            uow,
            company_es.id,
            view.id,
            CommitmentChanges(method="direct_debit"),
            actor=admin,
            clock=clock,
        )
    switched = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(method="direct_debit", iban=IBAN, mandate_signed_on=date(2026, 3, 1)),
        actor=admin,
        clock=clock,
    )
    assert switched.mandate is not None
    assert (switched.mandate.reference, switched.mandate.signed_on) == (
        f"ONG-{view.id:08d}-01",
        date(2026, 3, 1),
    )
    rows = payments(uow, company_es.id, view.id)
    assert [(p.due_on, p.method, p.status, p.mandate_id) for p in rows] == [
        (d, "direct_debit", "not_remitted", switched.mandate.id)
        for d in (date(2026, 3, 10), date(2026, 4, 10), date(2026, 5, 10), date(2026, 6, 10))
    ]
    # An earlier end date cancels the open payments after it; the flag stays right.
    shortened = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(ends_on=date(2026, 4, 30)),
        actor=admin,
        clock=clock,
    )
    assert shortened.active is True
    assert [p.status for p in payments(uow, company_es.id, view.id)] == [
        "not_remitted",
        "not_remitted",
        "cancelled",
        "cancelled",
    ]


def test_issued_transfer_payments_carry_the_payees_account(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    data = monthly_dd(
        payer,
        method="transfer_issued",
        direction="expense",
        kind="services",
        periodicity="quarterly",
        iban=IBAN2,
        bic="CAIXESBBXXX",
    )
    view = svc.create_commitment(uow, company_es.id, data, actor=admin, clock=clock)
    assert view.mandate is None
    rows = payments(uow, company_es.id, view.id)
    assert [(p.due_on, p.status, p.iban, p.bic, p.mandate_id) for p in rows] == [
        (date(2026, 1, 31), "pending", IBAN2, "CAIXESBBXXX", None)
    ]
    with uow:
        svc.transition_payment(uow, company_es.id, rows[0].id, "remitted", actor=admin, clock=clock)
        svc.transition_payment(uow, company_es.id, rows[0].id, "paid", actor=admin, clock=clock)
        uow.commit()
    with pytest.raises(ValidationFailed, match="an issued transfer pays out"):
        svc.create_commitment(
            uow, company_es.id, replace(data, direction="income"), actor=admin, clock=clock
        )


def test_invalid_mandate_is_renewed_only_with_a_new_signature(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    view = svc.create_commitment(uow, company_es.id, monthly_dd(payer), actor=admin, clock=clock)
    assert view.mandate is not None
    with uow:  # what a return with MD01 does
        mandate = uow.session.get(Mandate, view.mandate.id)
        assert mandate is not None
        mandate.status, mandate.invalid_reason = "invalid", "MD01"
        uow.commit()
    same = svc.edit_commitment(
        uow, company_es.id, view.id, CommitmentChanges(amount="11"), actor=admin, clock=clock
    )
    assert same.mandate is not None
    assert (same.mandate.id, same.mandate.status) == (view.mandate.id, "invalid")
    renewed = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(mandate_signed_on=date(2026, 3, 2)),
        actor=admin,
        clock=clock,
    )
    assert renewed.mandate is not None
    assert (renewed.mandate.reference[-2:], renewed.mandate.status) == ("02", "active")
    b2b = svc.edit_commitment(
        uow,
        company_es.id,
        view.id,
        CommitmentChanges(mandate_scheme="B2B"),
        actor=admin,
        clock=clock,
    )
    assert b2b.mandate is not None
    assert (b2b.mandate.reference[-2:], b2b.mandate.scheme) == ("03", "B2B")
    with uow:
        statuses = [m.status for m in svc.list_mandates(uow, company_es.id, view.id)]
    assert statuses == ["invalid", "replaced", "active"]
