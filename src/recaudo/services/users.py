"""Back-office users: accounts, roles per company, passwords, sign-in and web sessions.

A user is a person with an e-mail and an argon2 password hash; a membership gives them a
role in one company. Passwords follow the strictest policy among the user's companies
(8 characters, letters and digits by default). A new user, or one whose password an
administrator reset, gets a provisional password that must be changed at the next
sign-in. Repeated failures throttle sign-in per e-mail and per address, with the same
answer whether the e-mail exists or not. A session is a random cookie token of which
only the SHA-256 is kept; it carries the company chosen at sign-in and a CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from recaudo.adapters.db.tables import (
    Company,
    CompanyMembership,
    PasswordPolicy,
    SignInAttempt,
    User,
    WebSession,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from recaudo.services import audit
from recaudo.services.context import Actor, Clock, Role

logger = logging.getLogger("recaudo.users")

_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so that both answers take as long.
_DUMMY_HASH = _HASHER.hash("recaudo-no-such-user")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Sign-in attempts older than this are deleted (they no longer count for throttling).
ATTEMPTS_KEPT = timedelta(days=1)
# A session's last_seen_at is written at most this often (not on every page).
TOUCH_EVERY = timedelta(seconds=60)
PROVISIONAL_LENGTH = 14
SESSION_USER_LABEL = "user:{email}"

SIGN_IN_FAILED = "Correo o contraseña incorrectos."
SIGN_IN_THROTTLED = (
    "Demasiados intentos fallidos de inicio de sesión. "
    "Espere {minutes} minutos e inténtelo de nuevo."
)

ROLE_NAMES_ES = {
    Role.ADMIN: "Administrador",
    Role.OPERATOR: "Operador",
    Role.CASHIER: "Cajero",
    Role.AUDITOR: "Auditor",
}


class SignInFailed(Unauthenticated):
    """Wrong e-mail or password, inactive user: one message for all (no enumeration)."""

    code = "sign_in_failed"


class SignInThrottled(Unauthenticated):
    """Too many recent failures for this e-mail or from this address."""

    code = "sign_in_throttled"


@dataclass(frozen=True, slots=True)
class Policy:
    min_length: int = 8
    require_letters: bool = True
    require_digits: bool = True

    def problems(self, password: str) -> list[str]:
        """What the password lacks, in Spanish (empty: it complies)."""
        found: list[str] = []
        if len(password) < self.min_length:
            found.append(f"La contraseña debe tener al menos {self.min_length} caracteres.")
        if self.require_letters and not any(c.isalpha() for c in password):
            found.append("La contraseña debe contener al menos una letra.")
        if self.require_digits and not any(c.isdigit() for c in password):
            found.append("La contraseña debe contener al menos un dígito.")
        return found

    def stricter(self, other: Policy) -> Policy:
        return Policy(
            max(self.min_length, other.min_length),
            self.require_letters or other.require_letters,
            self.require_digits or other.require_digits,
        )


DEFAULT_POLICY = Policy()
MIN_POLICY_LENGTH = 8
MAX_POLICY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Limits:
    """Session lifetimes and sign-in throttling thresholds (from the settings)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    max_failures_per_email: int = 5
    max_failures_per_ip: int = 20
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
            max_failures_per_email=settings.sign_in_max_failures_per_email,
            max_failures_per_ip=settings.sign_in_max_failures_per_ip,
            window=timedelta(minutes=settings.sign_in_throttle_minutes),
        )


@dataclass(frozen=True, slots=True)
class MembershipView:
    company_id: int
    company_slug: str
    company_name: str
    role: Role
    active: bool

    @property
    def role_name(self) -> str:
        return ROLE_NAMES_ES[self.role]


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as one company's administrators see them (role and state in that company)."""

    id: int
    email: str
    name: str
    role: Role
    active: bool  # the user and their membership in this company
    must_change_password: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @property
    def role_name(self) -> str:
        return ROLE_NAMES_ES[self.role]


@dataclass(frozen=True, slots=True)
class SessionView:
    """A signed-in browser: who, in which company (None until chosen), with which role."""

    id: int
    user_id: int
    email: str
    name: str
    must_change_password: bool
    csrf_token: str
    memberships: tuple[MembershipView, ...]
    company_id: int | None
    company_slug: str | None
    company_name: str | None
    currency: str | None
    timezone: str | None
    role: Role | None
    expires_at: datetime
    has_flashes: bool = False

    @property
    def actor(self) -> Actor:
        """The audited actor for this session's company (PermissionDenied if none chosen)."""
        if self.company_id is None or self.role is None:
            raise PermissionDenied("no company chosen for this session")
        return Actor(SESSION_USER_LABEL.format(email=self.email), self.role, self.company_id)


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str  # the cookie value; only its hash is stored
    session: SessionView


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    name: str
    company_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class CreatedUser:
    user_id: int
    email: str
    # Shown once; None when the e-mail already had an account (now also in this company).
    provisional_password: str | None


# --- helpers ----------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _valid_email(email: str) -> str:
    email = normalize_email(email)
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationFailed(f"El correo {email!r} no es válido.", field="email")
    return email


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def provisional_password(policy: Policy = DEFAULT_POLICY) -> str:
    """A random password, always with letters and digits, long enough for the policy.

    Letters and digits whatever the policy says: the user may belong to another company
    whose policy asks for them.
    """
    length = max(PROVISIONAL_LENGTH, policy.min_length)
    alphabet = string.ascii_letters + string.digits
    rules = DEFAULT_POLICY.stricter(policy)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not rules.problems(candidate):
            return candidate


def _require_admin_of(actor: Actor, company_id: int) -> None:
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")


def _company(uow: UnitOfWork, company_id: int) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}")
    return company


def _membership(uow: UnitOfWork, company_id: int, user_id: int) -> CompanyMembership:
    membership = uow.session.scalar(
        select(CompanyMembership).where(
            CompanyMembership.company_id == company_id, CompanyMembership.user_id == user_id
        )
    )
    if membership is None:
        raise NotFound(f"no user {user_id}")
    return membership


def _user_view(user: User, membership: CompanyMembership) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(membership.role),
        active=user.active and membership.active,
        must_change_password=user.must_change_password,
        created_at=user.created_at,
        last_sign_in_at=user.last_sign_in_at,
    )


def _memberships(uow: UnitOfWork, user_id: int) -> tuple[MembershipView, ...]:
    rows = uow.session.execute(
        select(CompanyMembership, Company)
        .join(Company, Company.id == CompanyMembership.company_id)
        .where(CompanyMembership.user_id == user_id)
        .order_by(Company.legal_name, Company.id)
    ).all()
    return tuple(
        MembershipView(c.id, c.slug, c.legal_name, Role(m.role), m.active) for m, c in rows
    )


def _policy_row(uow: UnitOfWork, company_id: int) -> Policy:
    row = uow.session.get(PasswordPolicy, company_id)
    if row is None:
        return DEFAULT_POLICY
    return Policy(row.min_length, row.require_letters, row.require_digits)


def _policy_for_user(uow: UnitOfWork, user_id: int, extra_company: int | None = None) -> Policy:
    """The strictest policy among the user's companies (and `extra_company`)."""
    company_ids = set(
        uow.session.scalars(
            select(CompanyMembership.company_id).where(CompanyMembership.user_id == user_id)
        )
    )
    if extra_company is not None:
        company_ids.add(extra_company)
    policy = DEFAULT_POLICY
    for company_id in sorted(company_ids):
        policy = policy.stricter(_policy_row(uow, company_id))
    return policy


def _active_admins(uow: UnitOfWork, company_id: int) -> int:
    return int(
        uow.session.scalar(
            select(func.count())
            .select_from(CompanyMembership)
            .join(User, User.id == CompanyMembership.user_id)
            .where(
                CompanyMembership.company_id == company_id,
                CompanyMembership.role == Role.ADMIN.value,
                CompanyMembership.active.is_(True),
                User.active.is_(True),
            )
        )
        or 0
    )


def _revoke_sessions(
    uow: UnitOfWork,
    user_id: int,
    now: datetime,
    *,
    company_id: int | None = None,
    keep: int | None = None,
) -> None:
    statement = update(WebSession).where(
        WebSession.user_id == user_id, WebSession.revoked_at.is_(None)
    )
    if company_id is not None:
        statement = statement.where(WebSession.company_id == company_id)
    if keep is not None:
        statement = statement.where(WebSession.id != keep)
    uow.session.execute(statement.values(revoked_at=now))


# --- administration ---------------------------------------------------------------------


def create_user(uow: UnitOfWork, new: NewUser, *, actor: Actor, clock: Clock) -> CreatedUser:
    """A user with a provisional password and a role in the company.

    When the e-mail already has an account (in another company), it gets the role in
    this company too and keeps its password: `provisional_password` is then None.
    """
    _require_admin_of(actor, new.company_id)
    email = _valid_email(new.email)
    name = new.name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("El nombre debe tener entre 1 y 200 caracteres.", field="name")
    with uow:
        company = _company(uow, new.company_id)
        now = clock()
        user = uow.session.scalar(select(User).where(User.email == email))
        password: str | None = None
        if user is None:
            password = provisional_password(_policy_row(uow, company.id))
            user = User(
                email=email,
                name=name,
                password_hash=hash_password(password),
                must_change_password=True,
                active=True,
                created_at=now,
                password_changed_at=now,
            )
            uow.session.add(user)
            uow.session.flush()
        elif uow.session.scalar(
            select(CompanyMembership.id).where(
                CompanyMembership.user_id == user.id, CompanyMembership.company_id == company.id
            )
        ):
            raise Conflict(f"El usuario {email} ya pertenece a esta empresa.")
        uow.session.add(
            CompanyMembership(
                user_id=user.id,
                company_id=company.id,
                role=new.role.value,
                active=True,
                created_at=now,
            )
        )
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="user.created" if password is not None else "user.added",
            entity_type="user",
            entity_id=user.id,
            after={"email": email, "role": new.role.value},
        )
        uow.commit()
    return CreatedUser(user.id, email, password)


def list_users(uow: UnitOfWork, company_id: int, *, actor: Actor) -> list[UserView]:
    _require_admin_of(actor, company_id)
    with uow:
        _company(uow, company_id)
        rows = uow.session.execute(
            select(User, CompanyMembership)
            .join(CompanyMembership, CompanyMembership.user_id == User.id)
            .where(CompanyMembership.company_id == company_id)
            .order_by(User.name, User.id)
        ).all()
        return [_user_view(user, membership) for user, membership in rows]


def get_user(uow: UnitOfWork, company_id: int, user_id: int, *, actor: Actor) -> UserView:
    _require_admin_of(actor, company_id)
    with uow:
        membership = _membership(uow, company_id, user_id)
        user = uow.session.get(User, user_id)
        assert user is not None
        return _user_view(user, membership)


def user_id_by_email(uow: UnitOfWork, email: str) -> int:
    with uow:
        user_id = uow.session.scalar(select(User.id).where(User.email == normalize_email(email)))
    if user_id is None:
        raise NotFound(f"no user {normalize_email(email)!r}")
    return int(user_id)


def change_role(
    uow: UnitOfWork, company_id: int, user_id: int, role: Role, *, actor: Actor, clock: Clock
) -> UserView:
    """A user's role in the company; the company always keeps an active administrator."""
    _require_admin_of(actor, company_id)
    with uow:
        membership = _membership(uow, company_id, user_id)
        user = uow.session.get(User, user_id)
        assert user is not None
        before = membership.role
        if before == role.value:
            return _user_view(user, membership)
        membership.role = role.value
        uow.session.flush()
        if before == Role.ADMIN.value and _active_admins(uow, company_id) == 0:
            raise Conflict("La empresa debe conservar al menos un administrador activo.")
        # Pages open with the old role must not keep it: sign in again.
        _revoke_sessions(uow, user_id, clock(), company_id=company_id)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="user.role_changed",
            entity_type="user",
            entity_id=user_id,
            before={"role": before},
            after={"role": role.value},
        )
        uow.commit()
        return _user_view(user, membership)


def set_active(
    uow: UnitOfWork, company_id: int, user_id: int, active: bool, *, actor: Actor, clock: Clock
) -> UserView:
    """Deactivate (or reactivate) a user in the company; deactivation signs them out there."""
    _require_admin_of(actor, company_id)
    with uow:
        membership = _membership(uow, company_id, user_id)
        user = uow.session.get(User, user_id)
        assert user is not None
        if membership.active == active:
            return _user_view(user, membership)
        if not active and SESSION_USER_LABEL.format(email=user.email) == actor.label:
            raise Conflict("No puede desactivar su propio usuario.")
        membership.active = active
        uow.session.flush()
        if not active and _active_admins(uow, company_id) == 0:
            raise Conflict("La empresa debe conservar al menos un administrador activo.")
        if not active:
            _revoke_sessions(uow, user_id, clock(), company_id=company_id)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="user.activated" if active else "user.deactivated",
            entity_type="user",
            entity_id=user_id,
            before={"active": not active},
            after={"active": active},
        )
        uow.commit()
        return _user_view(user, membership)


def deactivate_account(uow: UnitOfWork, email: str, *, actor: Actor, clock: Clock) -> None:
    """Close an account in every company (the CLI's unbound administrator only)."""
    actor.require(Role.ADMIN)
    if actor.company_id is not None:
        raise PermissionDenied("only an administrator of the installation may do this")
    with uow:
        user = uow.session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound(f"no user {normalize_email(email)!r}")
        if user.active:
            user.active = False
            _revoke_sessions(uow, user.id, clock())
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=None,
                action="user.deactivated",
                entity_type="user",
                entity_id=user.id,
                before={"active": True},
                after={"active": False},
            )
        uow.commit()


def reset_password(
    uow: UnitOfWork, user_id: int, *, actor: Actor, clock: Clock, company_id: int | None = None
) -> str:
    """A new provisional password (shown once); the user's sessions end.

    A company's administrator names their company (the user must belong to it); the
    CLI's unbound administrator may reset anyone.
    """
    actor.require(Role.ADMIN)
    scope = company_id if company_id is not None else actor.company_id
    if scope is not None and not actor.can_see(scope):
        raise NotFound(f"no company {scope}")
    with uow:
        if scope is not None:
            _membership(uow, scope, user_id)
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        password = provisional_password(_policy_for_user(uow, user.id))
        now = clock()
        user.password_hash = hash_password(password)
        user.must_change_password = True
        user.password_changed_at = now
        _revoke_sessions(uow, user.id, now)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=scope,
            action="user.password_reset",
            entity_type="user",
            entity_id=user.id,
        )
        uow.commit()
    return password


def password_policy(uow: UnitOfWork, company_id: int) -> Policy:
    with uow:
        return _policy_row(uow, company_id)


def set_password_policy(
    uow: UnitOfWork, company_id: int, policy: Policy, *, actor: Actor, clock: Clock
) -> Policy:
    """The company's rules for new passwords (existing ones stay until changed)."""
    _require_admin_of(actor, company_id)
    if not MIN_POLICY_LENGTH <= policy.min_length <= MAX_POLICY_LENGTH:
        raise ValidationFailed(
            f"La longitud mínima debe estar entre {MIN_POLICY_LENGTH} y {MAX_POLICY_LENGTH}.",
            field="min_length",
        )
    with uow:
        _company(uow, company_id)
        row = uow.session.get(PasswordPolicy, company_id)
        before = _policy_row(uow, company_id)
        if row is None:
            row = PasswordPolicy(company_id=company_id)
            uow.session.add(row)
        row.min_length = policy.min_length
        row.require_letters = policy.require_letters
        row.require_digits = policy.require_digits
        row.updated_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="password_policy.changed",
            entity_type="password_policy",
            entity_id=company_id,
            before={
                "min_length": before.min_length,
                "require_letters": before.require_letters,
                "require_digits": before.require_digits,
            },
            after={
                "min_length": policy.min_length,
                "require_letters": policy.require_letters,
                "require_digits": policy.require_digits,
            },
        )
        uow.commit()
    return policy


# --- sign-in and sessions ---------------------------------------------------------------


def _failures_since(uow: UnitOfWork, by_ip: bool, value: str, since: datetime) -> int:
    column = SignInAttempt.ip if by_ip else SignInAttempt.email
    return int(
        uow.session.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(column == value, SignInAttempt.at > since, SignInAttempt.succeeded.is_(False))
        )
        or 0
    )


def _throttled(uow: UnitOfWork, email: str, ip: str, now: datetime, limits: Limits) -> bool:
    since = now - limits.window
    last_success = uow.session.scalar(
        select(func.max(SignInAttempt.at)).where(
            SignInAttempt.email == email, SignInAttempt.succeeded.is_(True)
        )
    )
    email_since = max(since, last_success) if last_success is not None else since
    return (
        _failures_since(uow, False, email, email_since) >= limits.max_failures_per_email
        or _failures_since(uow, True, ip, since) >= limits.max_failures_per_ip
    )


def sign_in(
    uow: UnitOfWork, email: str, password: str, ip: str, *, limits: Limits, clock: Clock
) -> SignedIn:
    """A new session, or `SignInThrottled` / `SignInFailed` (the same for unknown e-mails).

    With one active company the session starts in it; with several the user chooses.
    """
    email = normalize_email(email)[:254]
    ip = ip[:45]
    with uow:
        now = clock()
        uow.session.execute(delete(SignInAttempt).where(SignInAttempt.at < now - ATTEMPTS_KEPT))
        if _throttled(uow, email, ip, now, limits):
            uow.commit()
            logger.warning("sign-in throttled")
            minutes = int(limits.window.total_seconds() // 60)
            raise SignInThrottled(SIGN_IN_THROTTLED.format(minutes=minutes))
        user = uow.session.scalar(select(User).where(User.email == email))
        memberships = _memberships(uow, user.id) if user is not None else ()
        active = [m for m in memberships if m.active]
        if user is None or not user.active or not active:
            _verify(_DUMMY_HASH, password)
            ok = False
        else:
            ok = _verify(user.password_hash, password)
        uow.session.add(SignInAttempt(email=email, ip=ip, at=now, succeeded=ok))
        if not ok or user is None:
            uow.commit()
            logger.info("sign-in failed")
            raise SignInFailed(SIGN_IN_FAILED)
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_sign_in_at = now
        token = secrets.token_urlsafe(32)
        session = WebSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            company_id=active[0].company_id if len(active) == 1 else None,
            csrf_token=secrets.token_urlsafe(32),
            flashes=None,
            ip=ip,
            created_at=now,
            last_seen_at=now,
            expires_at=now + limits.absolute,
        )
        uow.session.add(session)
        uow.session.flush()
        view = _session_view(uow, session, user, memberships)
        uow.commit()
    logger.info("user %s signed in (session %s)", user.id, session.id)
    return SignedIn(token, view)


def _session_view(
    uow: UnitOfWork,
    session: WebSession,
    user: User,
    memberships: tuple[MembershipView, ...],
) -> SessionView:
    chosen = next((m for m in memberships if m.company_id == session.company_id and m.active), None)
    company = uow.session.get(Company, chosen.company_id) if chosen is not None else None
    return SessionView(
        id=session.id,
        user_id=user.id,
        email=user.email,
        name=user.name,
        must_change_password=user.must_change_password,
        csrf_token=session.csrf_token,
        memberships=tuple(m for m in memberships if m.active),
        company_id=company.id if company is not None else None,
        company_slug=company.slug if company is not None else None,
        company_name=company.legal_name if company is not None else None,
        currency=company.currency if company is not None else None,
        timezone=company.timezone if company is not None else None,
        role=chosen.role if chosen is not None else None,
        expires_at=session.expires_at,
        has_flashes=bool(session.flashes),
    )


def session_for(uow: UnitOfWork, token: str, *, limits: Limits, clock: Clock) -> SessionView | None:
    """The live session behind a cookie token, or None (unknown, revoked, expired, idle).

    Only reads under `uow` (a read-only one will do: on SQLite a page must not wait for
    the write lock a long import holds); the visit is recorded at most once a minute, in
    a short write of its own.
    """
    if not token or len(token) > 200:
        return None
    with uow:
        now = clock()
        session = uow.session.scalar(
            select(WebSession).where(WebSession.token_hash == _token_hash(token))
        )
        if (
            session is None
            or session.revoked_at is not None
            or session.expires_at <= now
            or session.last_seen_at + limits.idle <= now
        ):
            return None
        user = uow.session.get(User, session.user_id)
        if user is None or not user.active:
            return None
        memberships = _memberships(uow, user.id)
        if not any(m.active for m in memberships):
            return None
        view = _session_view(uow, session, user, memberships)
        stale = now - session.last_seen_at >= TOUCH_EVERY
    if stale:
        toucher = UnitOfWork(uow.engine)
        with toucher:
            toucher.session.execute(
                update(WebSession)
                .where(WebSession.id == view.id, WebSession.last_seen_at < now)
                .values(last_seen_at=now)
            )
            toucher.commit()
    return view


def choose_company(
    uow: UnitOfWork, session_id: int, company_id: int, *, clock: Clock
) -> SessionView:
    """Work in another of the user's companies (NotFound for a company not theirs)."""
    with uow:
        session = uow.session.get(WebSession, session_id)
        if session is None or session.revoked_at is not None:
            raise Unauthenticated("the session has ended")
        user = uow.session.get(User, session.user_id)
        assert user is not None
        memberships = _memberships(uow, user.id)
        if not any(m.company_id == company_id and m.active for m in memberships):
            raise NotFound(f"no company {company_id}")
        session.company_id = company_id
        session.last_seen_at = clock()
        view = _session_view(uow, session, user, memberships)
        uow.commit()
        return view


def change_password(
    uow: UnitOfWork, session_id: int, current: str, new: str, *, clock: Clock
) -> None:
    """Check the current password and the policy, store the new one; other sessions end.

    Raises ValidationFailed with Spanish messages (the back office shows them as they are).
    """
    with uow:
        session = uow.session.get(WebSession, session_id)
        if session is None or session.revoked_at is not None:
            raise Unauthenticated("the session has ended")
        user = uow.session.get(User, session.user_id)
        assert user is not None
        if not _verify(user.password_hash, current):
            raise ValidationFailed("La contraseña actual no es correcta.", field="current")
        problems = _policy_for_user(uow, user.id).problems(new)
        if not problems and hmac.compare_digest(current.encode(), new.encode()):
            problems = ["La nueva contraseña debe ser distinta de la actual."]
        if problems:
            raise ValidationFailed(" ".join(problems), field="new", problems=problems)
        now = clock()
        user.password_hash = hash_password(new)
        user.must_change_password = False
        user.password_changed_at = now
        _revoke_sessions(uow, user.id, now, keep=session.id)
        audit.record(
            uow,
            actor=Actor(SESSION_USER_LABEL.format(email=user.email)),
            clock=clock,
            company_id=session.company_id,
            action="user.password_changed",
            entity_type="user",
            entity_id=user.id,
        )
        uow.commit()


def sign_out(uow: UnitOfWork, session_id: int, *, clock: Clock) -> None:
    with uow:
        session = uow.session.get(WebSession, session_id)
        if session is not None and session.revoked_at is None:
            session.revoked_at = clock()
        uow.commit()


def push_flash(uow: UnitOfWork, session_id: int, text: str, kind: str = "ok") -> None:
    """A message for the next page this session shows ("Pago registrado.")."""
    with uow:
        session = uow.session.get(WebSession, session_id)
        if session is not None:
            session.flashes = [*(session.flashes or []), {"kind": kind, "text": text}]
        uow.commit()


def pop_flashes(uow: UnitOfWork, session_id: int) -> list[dict[str, str]]:
    with uow:
        session = uow.session.get(WebSession, session_id)
        if session is None or not session.flashes:
            return []
        flashes = list(session.flashes)
        session.flashes = None
        uow.commit()
        return flashes
