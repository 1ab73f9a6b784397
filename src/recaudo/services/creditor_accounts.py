"""The company's creditor accounts (the IBANs SEPA files collect into or pay from) and its
commitment settings (when the monthly generation runs and which month it generates).

Both are configuration: admins change them, operators and auditors read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select

from recaudo.adapters.db.tables import CommitmentSettings, Company, CreditorAccount
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import sepa
from recaudo.domain.commitments import GenerateFor
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import Actor, Clock, Role

PAIN008_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
PAIN001_VERSIONS = ("pain.001.001.03", "pain.001.001.09")
MAX_LEAD_DAYS = 15
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

DEFAULT_RUN_TIME = time(0, 30)


@dataclass(frozen=True, slots=True)
class CreditorAccountView:
    id: int
    company_id: int
    name: str
    iban: str
    bic: str | None
    creditor_identifier: str
    creditor_name: str
    pain008_version: str
    pain001_version: str
    include_bic: bool
    lead_days: int
    street: str | None
    town: str | None
    postcode: str | None
    country: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CreditorAccountData:
    """A new account (every field) or an update (None leaves a field as it is)."""

    name: str | None = None
    iban: str | None = None
    bic: str | None = None
    creditor_identifier: str | None = None
    creditor_name: str | None = None
    pain008_version: str | None = None
    pain001_version: str | None = None
    include_bic: bool | None = None
    lead_days: int | None = None
    street: str | None = None
    town: str | None = None
    postcode: str | None = None
    country: str | None = None
    active: bool | None = None


def view_of(row: CreditorAccount) -> CreditorAccountView:
    return CreditorAccountView(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        iban=row.iban,
        bic=row.bic,
        creditor_identifier=row.creditor_identifier,
        creditor_name=row.creditor_name,
        pain008_version=row.pain008_version,
        pain001_version=row.pain001_version,
        include_bic=row.include_bic,
        lead_days=row.lead_days,
        street=row.street,
        town=row.town,
        postcode=row.postcode,
        country=row.country,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _snapshot(row: CreditorAccount) -> dict[str, Any]:
    return {
        "name": row.name,
        "iban": row.iban,
        "bic": row.bic,
        "creditor_identifier": row.creditor_identifier,
        "creditor_name": row.creditor_name,
        "pain008_version": row.pain008_version,
        "pain001_version": row.pain001_version,
        "include_bic": row.include_bic,
        "lead_days": row.lead_days,
        "street": row.street,
        "town": row.town,
        "postcode": row.postcode,
        "country": row.country,
        "active": row.active,
    }


def _text(value: str, name: str, limit: int) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValidationFailed(f"{name} is empty", field=name)
    if len(cleaned) > limit:
        raise ValidationFailed(f"{name} is longer than {limit} characters", field=name)
    return cleaned


def _optional(value: str, name: str, limit: int) -> str | None:
    return _text(value, name, limit) if value.strip() else None


def _field_error(exc: ValidationFailed, name: str) -> ValidationFailed:
    return ValidationFailed(exc.message, field=name)


def _apply(row: CreditorAccount, data: CreditorAccountData) -> None:
    """Validate and copy the given fields onto `row` (empty text clears optional ones)."""
    if data.name is not None:
        row.name = _text(data.name, "name", 100)
    if data.iban is not None:
        try:
            row.iban = sepa.validate_iban(data.iban)
        except ValidationFailed as exc:
            raise _field_error(exc, "iban") from None
    if data.bic is not None:
        try:
            row.bic = sepa.validate_bic(data.bic) if data.bic.strip() else None
        except ValidationFailed as exc:
            raise _field_error(exc, "bic") from None
    if data.creditor_identifier is not None:
        try:
            row.creditor_identifier = sepa.validate_creditor_identifier(data.creditor_identifier)
        except ValidationFailed as exc:
            raise _field_error(exc, "creditor_identifier") from None
    if data.creditor_name is not None:
        row.creditor_name = _text(data.creditor_name, "creditor_name", 70)
    if data.pain008_version is not None:
        if data.pain008_version not in PAIN008_VERSIONS:
            raise ValidationFailed(
                f"pain008_version must be one of {', '.join(PAIN008_VERSIONS)}",
                field="pain008_version",
            )
        row.pain008_version = data.pain008_version
    if data.pain001_version is not None:
        if data.pain001_version not in PAIN001_VERSIONS:
            raise ValidationFailed(
                f"pain001_version must be one of {', '.join(PAIN001_VERSIONS)}",
                field="pain001_version",
            )
        row.pain001_version = data.pain001_version
    if data.include_bic is not None:
        row.include_bic = data.include_bic
    if data.lead_days is not None:
        if not 0 <= data.lead_days <= MAX_LEAD_DAYS:
            raise ValidationFailed(
                f"lead_days must be between 0 and {MAX_LEAD_DAYS}", field="lead_days"
            )
        row.lead_days = data.lead_days
    if data.street is not None:
        row.street = _optional(data.street, "street", 70)
    if data.town is not None:
        row.town = _optional(data.town, "town", 35)
    if data.postcode is not None:
        row.postcode = _optional(data.postcode, "postcode", 16)
    if data.country is not None:
        country = data.country.strip().upper() or None
        if country is not None and not _COUNTRY.match(country):
            raise ValidationFailed("country is a two-letter ISO code", field="country")
        row.country = country
    if data.active is not None:
        row.active = data.active


def _visible(actor: Actor, company_id: int) -> None:
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")


def _account(uow: UnitOfWork, company_id: int, account_id: int) -> CreditorAccount:
    row = uow.session.get(CreditorAccount, account_id)
    if row is None or row.company_id != company_id:
        raise NotFound(f"no creditor account {account_id}")
    return row


def _iban_taken(uow: UnitOfWork, company_id: int, iban: str, but: int | None) -> None:
    other = uow.session.scalar(
        select(CreditorAccount.id).where(
            CreditorAccount.company_id == company_id, CreditorAccount.iban == iban
        )
    )
    if other is not None and other != but:
        raise Conflict(f"IBAN {iban} is already creditor account {other}", field="iban")


def register_account(
    uow: UnitOfWork, company_id: int, data: CreditorAccountData, *, actor: Actor, clock: Clock
) -> CreditorAccountView:
    actor.require(Role.ADMIN)
    _visible(actor, company_id)
    for name in ("name", "iban", "creditor_identifier", "creditor_name"):
        if getattr(data, name) is None:
            raise ValidationFailed(f"{name} is required", field=name)
    now = clock()
    row = CreditorAccount(
        company_id=company_id,
        bic=None,
        pain008_version="pain.008.001.08",
        pain001_version="pain.001.001.09",
        include_bic=False,
        lead_days=1,
        active=True,
        created_at=now,
        updated_at=now,
    )
    _apply(row, data)
    with uow:
        if uow.session.get(Company, company_id) is None:
            raise NotFound(f"no company {company_id}")
        _iban_taken(uow, company_id, row.iban, None)
        uow.session.add(row)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="creditor_account.created",
            entity_type="creditor_account",
            entity_id=row.id,
            after=_snapshot(row),
        )
        uow.commit()
        return view_of(row)


def update_account(
    uow: UnitOfWork,
    company_id: int,
    account_id: int,
    data: CreditorAccountData,
    *,
    actor: Actor,
    clock: Clock,
) -> CreditorAccountView:
    actor.require(Role.ADMIN)
    _visible(actor, company_id)
    with uow:
        row = _account(uow, company_id, account_id)
        before = _snapshot(row)
        _apply(row, data)
        after = _snapshot(row)
        if after == before:
            return view_of(row)
        if after["iban"] != before["iban"]:
            _iban_taken(uow, company_id, row.iban, row.id)
        row.updated_at = clock()
        changed = {k: v for k, v in after.items() if before[k] != v}
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="creditor_account.updated",
            entity_type="creditor_account",
            entity_id=row.id,
            before={k: before[k] for k in changed},
            after=changed,
        )
        uow.commit()
        return view_of(row)


def list_accounts(
    uow: UnitOfWork, company_id: int, *, active: bool | None = None
) -> list[CreditorAccountView]:
    stmt = select(CreditorAccount).where(CreditorAccount.company_id == company_id)
    if active is not None:
        stmt = stmt.where(CreditorAccount.active.is_(active))
    return [view_of(r) for r in uow.session.scalars(stmt.order_by(CreditorAccount.id))]


def get_account(uow: UnitOfWork, company_id: int, account_id: int) -> CreditorAccountView:
    return view_of(_account(uow, company_id, account_id))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class SettingsView:
    generate_for: str
    run_day: int
    run_time: time
    notify_email: str | None
    last_generated_month: date | None
    updated_at: datetime | None  # None: never changed (the defaults)


@dataclass(frozen=True, slots=True)
class SettingsChanges:
    generate_for: str | None = None
    run_day: int | None = None
    run_time: time | None = None
    notify_email: str | None = None  # "" clears it


def settings_view(row: CommitmentSettings | None) -> SettingsView:
    if row is None:
        return SettingsView(GenerateFor.CURRENT.value, 1, DEFAULT_RUN_TIME, None, None, None)
    return SettingsView(
        row.generate_for,
        row.run_day,
        row.run_time.replace(tzinfo=None),
        row.notify_email,
        row.last_generated_month,
        row.updated_at,
    )


def get_settings(uow: UnitOfWork, company_id: int) -> SettingsView:
    return settings_view(uow.session.get(CommitmentSettings, company_id))


def _settings_snapshot(view: SettingsView) -> dict[str, Any]:
    return {
        "generate_for": view.generate_for,
        "run_day": view.run_day,
        "run_time": view.run_time.strftime("%H:%M:%S"),
        "notify_email": view.notify_email,
    }


def update_settings(
    uow: UnitOfWork, company_id: int, changes: SettingsChanges, *, actor: Actor, clock: Clock
) -> SettingsView:
    """Change when the monthly generation runs (day 1-28, local time) and for which month."""
    actor.require(Role.ADMIN)
    _visible(actor, company_id)
    if changes.generate_for is not None and changes.generate_for not in {
        g.value for g in GenerateFor
    }:
        raise ValidationFailed("generate_for must be current or next", field="generate_for")
    if changes.run_day is not None and not 1 <= changes.run_day <= 28:
        raise ValidationFailed(
            "run_day must be between 1 and 28 (a day every month has)", field="run_day"
        )
    email: str | None = None
    if changes.notify_email is not None and changes.notify_email.strip():
        email = changes.notify_email.strip()
        if len(email) > 254 or not _EMAIL.match(email):
            raise ValidationFailed("notify_email is not an e-mail address", field="notify_email")
    with uow:
        if uow.session.get(Company, company_id) is None:
            raise NotFound(f"no company {company_id}")
        row = uow.session.get(CommitmentSettings, company_id)
        before = settings_view(row)
        now = clock()
        if row is None:
            row = CommitmentSettings(
                company_id=company_id,
                generate_for=before.generate_for,
                run_day=before.run_day,
                run_time=before.run_time,
                notify_email=None,
                updated_at=now,
            )
            uow.session.add(row)
        if changes.generate_for is not None:
            row.generate_for = changes.generate_for
        if changes.run_day is not None:
            row.run_day = changes.run_day
        if changes.run_time is not None:
            row.run_time = changes.run_time.replace(microsecond=0, tzinfo=None)
        if changes.notify_email is not None:
            row.notify_email = email
        after = settings_view(row)
        if _settings_snapshot(after) == _settings_snapshot(before):
            return before
        row.updated_at = now
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="commitment_settings.updated",
            entity_type="commitment_settings",
            entity_id=company_id,
            before=_settings_snapshot(before),
            after=_settings_snapshot(after),
        )
        uow.commit()
        return settings_view(row)
