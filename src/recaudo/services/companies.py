"""Companies and the API keys bound to them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import ApiKey, Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import API_KEY_ROLES, Actor, Clock, Role

COUNTRY_DEFAULTS: dict[str, tuple[str, str]] = {
    "CL": ("CLP", "America/Santiago"),
    "CO": ("COP", "America/Bogota"),
    "ES": ("EUR", "Europe/Madrid"),
}
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
KEY_PREFIX = "rk_"


@dataclass(frozen=True, slots=True)
class NewCompany:
    slug: str
    legal_name: str
    country: str
    tax_id: str | None = None
    currency: str | None = None
    timezone: str | None = None


def company_snapshot(company: Company) -> dict[str, object]:
    return {
        "slug": company.slug,
        "legal_name": company.legal_name,
        "tax_id": company.tax_id,
        "country": company.country,
        "currency": company.currency,
        "timezone": company.timezone,
    }


def create_company(uow: UnitOfWork, cmd: NewCompany, *, actor: Actor, clock: Clock) -> Company:
    if actor.company_id is not None:
        raise Conflict("a key bound to a company cannot create companies")
    actor.require(Role.ADMIN)
    country = cmd.country.strip().upper()
    if country not in COUNTRY_DEFAULTS:
        raise ValidationFailed(
            f"unsupported country {cmd.country!r} (CL, CO or ES)", field="country"
        )
    slug = cmd.slug.strip().lower()
    if not SLUG.match(slug):
        raise ValidationFailed(
            "slug must be 1-63 lower-case letters, digits or hyphens", field="slug"
        )
    name = cmd.legal_name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("legal name must have 1 to 200 characters", field="legal_name")
    default_currency, default_tz = COUNTRY_DEFAULTS[country]
    currency = (cmd.currency or default_currency).strip().upper()
    money.exponent(currency)  # refuses an unsupported currency
    timezone = cmd.timezone or default_tz
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown time zone {timezone!r}", field="timezone") from None
    with uow:
        if uow.session.scalar(select(Company.id).where(Company.slug == slug)) is not None:
            raise Conflict(f"a company with slug {slug!r} already exists", field="slug")
        company = Company(
            slug=slug,
            legal_name=name,
            tax_id=(cmd.tax_id or "").strip() or None,
            country=country,
            currency=currency,
            timezone=timezone,
            created_at=clock(),
        )
        uow.session.add(company)
        try:
            uow.session.flush()
        except IntegrityError:
            raise Conflict(f"a company with slug {slug!r} already exists", field="slug") from None
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="company.created",
            entity_type="company",
            entity_id=company.id,
            after=company_snapshot(company),
        )
        uow.commit()
    return company


def company_by_slug(uow: UnitOfWork, slug: str) -> Company:
    company = uow.session.scalar(select(Company).where(Company.slug == slug.strip().lower()))
    if company is None:
        raise NotFound(f"no company {slug!r}")
    return company


def _hash_key(secret: str) -> str:
    # API keys are 256-bit random tokens, so a fast hash is safe (no dictionary to guess
    # from); argon2 is kept for human passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: int
    secret: str  # shown once; only its hash is stored


def issue_api_key(
    uow: UnitOfWork,
    company_slug: str,
    role: Role,
    *,
    actor: Actor,
    clock: Clock,
    label: str | None = None,
) -> IssuedKey:
    actor.require(Role.ADMIN)
    if role not in API_KEY_ROLES:
        raise ValidationFailed(f"an API key cannot have the role {role.value}")
    with uow:
        company = company_by_slug(uow, company_slug)
        if not actor.can_see(company.id):
            raise NotFound(f"no company {company_slug!r}")
        prefix = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            company_id=company.id,
            prefix=prefix,
            key_hash=_hash_key(secret),
            role=role.value,
            label=label,
            created_at=clock(),
        )
        uow.session.add(key)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="api_key.issued",
            entity_type="api_key",
            entity_id=key.id,
            after={"role": role.value, "prefix": prefix, "label": label},
        )
        uow.commit()
    return IssuedKey(key.id, secret)


def authenticate(uow: UnitOfWork, secret: str) -> Actor:
    """The actor behind an API key, or `Unauthenticated`; constant-time on the hash."""
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(KEY_PREFIX):
        raise Unauthenticated("malformed API key")
    key = uow.session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.key_hash, _hash_key(secret))
    ):
        raise Unauthenticated("unknown or revoked API key")
    return Actor(label=f"api_key:{key.id}", role=Role(key.role), company_id=key.company_id)


def revoke_api_key(uow: UnitOfWork, key_id: int, *, actor: Actor, clock: Clock) -> None:
    actor.require(Role.ADMIN)
    with uow:
        key = uow.session.get(ApiKey, key_id)
        if key is None or not actor.can_see(key.company_id):
            raise NotFound(f"no API key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = clock()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=key.company_id,
                action="api_key.revoked",
                entity_type="api_key",
                entity_id=key.id,
                before={"revoked": False},
                after={"revoked": True},
            )
        uow.commit()
