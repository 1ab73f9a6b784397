"""Remittances: the batches of commitment payments sent to the bank (see docs/sepa.md).

A remittance has a kind — ``direct_debit`` (a pain.008 file), ``transfer`` (transfers the
company issues: a pain.001 file) or ``card`` (charged one by one through the card gateway)
— a charge date and the creditor account it collects into or pays from. It is ``open``
while payments are added (one by one or by a filter, in one statement) and removed;
``generated`` once its file is written (the payments ``remitted``); ``sent`` once the
operator says the bank has it (the payments ``paid``).

Validation lists every blocking error (creditor identifier missing or with a wrong AT-02
check digit, a payment without a valid IBAN or mandate, an amount of zero or less, a charge
date earlier than the creditor account's lead time in TARGET2 business days allows, a name
or concept that cannot be written in the SEPA character set) and the warnings (a BIC that
is not the IBAN's bank's, debtors without a postal address); the findings are stored on
the remittance (`warnings`, each with its `severity`).

Generation is one transaction and one pass over the payments: a single UPDATE sets each
payment's sequence type (FRST for a mandate's first collection, RCUR after, OOFF for
one-off commitments) and moves them to ``remitted``; SQL aggregates give NbOfTxs and
CtrlSum per payment information block and per file; the rows are then streamed (Core
select, ``yield_per``, ordered) into the lxml writer, checked on the way, into a spooled
file that is validated against the XSD, hashed and stored. Any problem rolls the whole
thing back: the remittance stays open and its payments as they were. No ORM object is made
per payment and the bulk state change writes ONE audit row on the remittance carrying the
count, not one per payment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from recaudo.adapters import transfer
from recaudo.adapters.db.tables import (
    Commitment,
    CommitmentPayment,
    CommitmentSettings,
    Company,
    CreditorAccount,
    Customer,
    Mandate,
    Remittance,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain import money, sepa
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.formats import sepa_write
from recaudo.services import audit, commitments, deliveries, incidents, outbox, storage
from recaudo.services.context import Actor, Clock
from recaudo.services.ports import (
    CardGateway,
    CardGatewayError,
    ChargeOutcome,
    ChargeRequest,
)
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

logger = logging.getLogger("recaudo.remittances")

KINDS = ("direct_debit", "transfer", "card")
OPEN, GENERATED, SENT = "open", "generated", "sent"
STATES = (OPEN, GENERATED, SENT)
# The payment method each kind of remittance carries.
METHOD_OF_KIND = {"direct_debit": "direct_debit", "transfer": "transfer_issued", "card": "card"}
# Payment states that may join a remittance: new ones, and returned ones to collect again.
ADDABLE = {
    "direct_debit": ("not_remitted", "to_recover"),
    "card": ("not_remitted", "to_recover"),
    "transfer": ("pending", "to_recover"),
}
SEPA_CURRENCY = "EUR"
ERROR, WARNING = "error", "warning"
# Findings kept on the remittance per severity (the counts are always exact).
MAX_FINDINGS = 500
INCIDENT_KIND = "commitment_notification"
PAIN008_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
PAIN001_VERSIONS = ("pain.001.001.03", "pain.001.001.09")
FIRST_PAGE = Paging()


# --------------------------------------------------------------------------- read models


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # error | warning
    code: str
    message: str
    payment_id: int | None = None

    def document(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "payment_id": self.payment_id,
        }


@dataclass(frozen=True, slots=True)
class RemittanceView:
    id: int
    company_id: int
    name: str
    kind: str
    state: str
    charge_date: date
    creditor_account_id: int
    currency: str
    payment_count: int  # the payments in it now
    payments_total: Decimal
    message_id: str | None
    file_version: str | None
    file_name: str | None
    sha256: str | None
    transaction_count: int  # NbOfTxs of the file (0 before generation)
    control_sum: Decimal  # CtrlSum of the file
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    generated_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    storage_path: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ValidationReport:
    remittance: RemittanceView
    errors: list[Finding]
    warnings: list[Finding]
    error_count: int
    warning_count: int

    @property
    def ok(self) -> bool:
        return self.error_count == 0


@dataclass(frozen=True, slots=True)
class NewRemittance:
    name: str
    kind: str
    charge_date: date
    creditor_account_id: int


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    """Which payments a bulk add takes: the kind's method, an addable state, a due month."""

    status: str | None = None
    method: str | None = None
    due_month: str | None = None  # YYYY-MM


class RemittanceInvalid(ValidationFailed):
    """Generation refused: the remittance has blocking errors (listed in `details`)."""

    code = "remittance_invalid"


def _file_name(row: Remittance) -> str | None:
    if row.message_id is None or row.file_version is None:
        return None
    return f"{row.message_id}.xml"


def _view(
    uow: UnitOfWork, row: Remittance, currency: str, totals: tuple[int, int] | None = None
) -> RemittanceView:
    if totals is None:
        totals = uow.session.execute(
            select(func.count(), func.coalesce(func.sum(CommitmentPayment.amount_minor), 0)).where(
                CommitmentPayment.remittance_id == row.id
            )
        ).one()
    count, total = totals
    findings = list(row.warnings or [])
    return RemittanceView(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        kind=row.kind,
        state=row.state,
        charge_date=row.charge_date,
        creditor_account_id=row.creditor_account_id,
        currency=currency,
        payment_count=int(count),
        payments_total=money.from_minor(int(total), currency),
        message_id=row.message_id,
        file_version=row.file_version,
        file_name=_file_name(row),
        sha256=row.sha256,
        transaction_count=row.transaction_count,
        control_sum=money.from_minor(row.control_sum_minor, currency),
        errors=[f for f in findings if f.get("severity") == ERROR],
        warnings=[f for f in findings if f.get("severity") == WARNING],
        generated_at=row.generated_at,
        sent_at=row.sent_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        storage_path=row.storage_path,
    )


def _company(uow: UnitOfWork, company_id: int) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}")
    return company


def _currency(uow: UnitOfWork, company_id: int) -> str:
    return _company(uow, company_id).currency


def _remittance(
    uow: UnitOfWork, company_id: int, remittance_id: int, *, lock: bool = False
) -> Remittance:
    stmt = select(Remittance).where(
        Remittance.id == remittance_id, Remittance.company_id == company_id
    )
    if lock:
        stmt = stmt.with_for_update()
    row = uow.session.scalar(stmt)
    if row is None:
        raise NotFound(f"no remittance {remittance_id}")
    return row


def _require_open(row: Remittance) -> None:
    if row.state != OPEN:
        raise Conflict(f"remittance {row.id} is {row.state}: only open remittances change")


def _now(clock: Clock) -> datetime:
    return clock().astimezone(UTC)


def _today(company: Company, clock: Clock) -> date:
    return clock().astimezone(ZoneInfo(company.timezone)).date()


# --------------------------------------------------------------------------- create, list


def create_remittance(
    uow: UnitOfWork, company_id: int, new: NewRemittance, *, actor: Actor, clock: Clock
) -> RemittanceView:
    actor.require_write()
    name = new.name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("the name must have 1 to 100 characters", field="name")
    if new.kind not in KINDS:
        raise ValidationFailed(
            f"unknown remittance kind {new.kind!r} ({', '.join(KINDS)})", field="kind"
        )
    with uow:
        company = _company(uow, company_id)
        account = uow.session.get(CreditorAccount, new.creditor_account_id)
        if account is None or account.company_id != company_id:
            raise NotFound(f"no creditor account {new.creditor_account_id}")
        if not account.active:
            raise Conflict(f"creditor account {account.id} is not active")
        now = _now(clock)
        row = Remittance(
            company_id=company_id,
            name=name,
            kind=new.kind,
            state=OPEN,
            charge_date=new.charge_date,
            creditor_account_id=account.id,
            transaction_count=0,
            control_sum_minor=0,
            warnings=None,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.created",
            entity_type="remittance",
            entity_id=row.id,
            after={
                "name": name,
                "kind": new.kind,
                "charge_date": new.charge_date,
                "creditor_account_id": account.id,
            },
        )
        view = _view(uow, row, company.currency)
        uow.commit()
    return view


def get_remittance(uow: UnitOfWork, company_id: int, remittance_id: int) -> RemittanceView:
    row = _remittance(uow, company_id, remittance_id)
    return _view(uow, row, _currency(uow, company_id))


def read_remittance_file(
    uow: UnitOfWork, company_id: int, remittance_id: int, *, data_dir: Path
) -> tuple[RemittanceView, bytes]:
    """The generated file's bytes (checked against the recorded SHA-256)."""
    view = get_remittance(uow, company_id, remittance_id)
    if view.storage_path is None or view.sha256 is None:
        raise Conflict(f"remittance {remittance_id} has no file: it is {view.state}")
    try:
        data = storage.read_bytes(data_dir, view.storage_path)
    except FileNotFoundError:
        raise Conflict(f"the file of remittance {remittance_id} is missing from storage") from None
    if storage.sha256_of(data) != view.sha256:
        raise Conflict(f"the file of remittance {remittance_id} changed in storage")
    return view, data


def list_remittances(
    uow: UnitOfWork,
    company_id: int,
    *,
    state: str | None = None,
    kind: str | None = None,
    paging: Paging = FIRST_PAGE,
) -> Page[RemittanceView]:
    """The company's remittances, newest first."""
    stmt = select(Remittance).where(Remittance.company_id == company_id)
    if state is not None:
        if state not in STATES:
            raise ValidationFailed(f"unknown state {state!r} ({', '.join(STATES)})", field="state")
        stmt = stmt.where(Remittance.state == state)
    if kind is not None:
        if kind not in KINDS:
            raise ValidationFailed(f"unknown kind {kind!r} ({', '.join(KINDS)})", field="kind")
        stmt = stmt.where(Remittance.kind == kind)
    total = _count(uow.session, stmt.with_only_columns(Remittance.id))
    rows = uow.session.scalars(
        stmt.order_by(Remittance.id.desc()).offset(paging.offset).limit(paging.page_size)
    ).all()
    currency = _currency(uow, company_id)
    sums: dict[int, tuple[int, int]] = {}
    if rows:
        for rid, n, minor in uow.session.execute(
            select(
                CommitmentPayment.remittance_id,
                func.count(),
                func.coalesce(func.sum(CommitmentPayment.amount_minor), 0),
            )
            .where(CommitmentPayment.remittance_id.in_([r.id for r in rows]))
            .group_by(CommitmentPayment.remittance_id)
        ):
            if rid is not None:
                sums[rid] = (int(n), int(minor))
    items = [_view(uow, r, currency, sums.get(r.id, (0, 0))) for r in rows]
    return Page(items, total, paging.page, paging.page_size)


# --------------------------------------------------------------------------- adding payments


def _free_for(kind: str) -> ColumnElement[bool]:
    """Payments in no remittance, or returned ones (`to_recover`) whose remittance is not
    open any more (generated or sent): they may join a new one."""
    busy = select(Remittance.id).where(Remittance.state == OPEN).scalar_subquery()
    return or_(
        CommitmentPayment.remittance_id.is_(None),
        and_(
            CommitmentPayment.status == "to_recover",
            CommitmentPayment.remittance_id.not_in(busy),
        ),
    )


def _candidates(company_id: int, kind: str) -> list[ColumnElement[bool]]:
    return [
        CommitmentPayment.company_id == company_id,
        CommitmentPayment.method == METHOD_OF_KIND[kind],
        CommitmentPayment.status.in_(ADDABLE[kind]),
        _free_for(kind),
    ]


def _touch(row: Remittance, clock: Clock, *, clear_findings: bool = True) -> None:
    row.updated_at = _now(clock)
    if clear_findings:
        row.warnings = None  # the last validation no longer describes the content


def add_payment(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    payment_id: int,
    *,
    actor: Actor,
    clock: Clock,
) -> RemittanceView:
    """Put one payment in an open remittance (its kind's method, an addable state)."""
    actor.require_write()
    with uow:
        row = _remittance(uow, company_id, remittance_id, lock=True)
        _require_open(row)
        payment = uow.session.scalar(
            select(CommitmentPayment)
            .where(CommitmentPayment.id == payment_id, CommitmentPayment.company_id == company_id)
            .with_for_update()
        )
        if payment is None:
            raise NotFound(f"no commitment payment {payment_id}")
        if payment.remittance_id == row.id:
            raise Conflict(f"payment {payment_id} is already in remittance {row.id}")
        method = METHOD_OF_KIND[row.kind]
        if payment.method != method:
            raise Conflict(
                f"payment {payment_id} is paid by {payment.method}; a {row.kind} remittance "
                f"takes {method} payments"
            )
        if payment.status not in ADDABLE[row.kind]:
            raise Conflict(
                f"payment {payment_id} is {payment.status}; a {row.kind} remittance takes "
                f"{' or '.join(ADDABLE[row.kind])} payments"
            )
        free = uow.session.scalar(
            select(func.count()).where(CommitmentPayment.id == payment_id, _free_for(row.kind))
        )
        if not free:
            raise Conflict(f"payment {payment_id} is already in remittance {payment.remittance_id}")
        payment.remittance_id = row.id
        payment.updated_at = _now(clock)
        _touch(row, clock)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.payment_added",
            entity_type="remittance",
            entity_id=row.id,
            after={"payment_id": payment_id},
        )
        uow.session.flush()
        view = _view(uow, row, _currency(uow, company_id))
        uow.commit()
    return view


@dataclass(frozen=True, slots=True)
class BulkAdd:
    remittance: RemittanceView
    added: int


def _month_bounds(text: str) -> tuple[date, date]:
    try:
        year, month = (int(p) for p in text.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise ValidationFailed(
            f"due_month {text!r} is not a month (YYYY-MM)", field="due_month"
        ) from None
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def add_payments(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    where: PaymentFilter,
    *,
    actor: Actor,
    clock: Clock,
) -> BulkAdd:
    """Put every payment the filter selects in an open remittance: one UPDATE statement."""
    actor.require_write()
    with uow:
        row = _remittance(uow, company_id, remittance_id, lock=True)
        _require_open(row)
        conditions = _candidates(company_id, row.kind)
        if where.method is not None and where.method != METHOD_OF_KIND[row.kind]:
            raise ValidationFailed(
                f"a {row.kind} remittance takes {METHOD_OF_KIND[row.kind]} payments, "
                f"not {where.method}",
                field="method",
            )
        if where.status is not None:
            if where.status not in ADDABLE[row.kind]:
                raise ValidationFailed(
                    f"a {row.kind} remittance takes {' or '.join(ADDABLE[row.kind])} payments, "
                    f"not {where.status}",
                    field="status",
                )
            conditions.append(CommitmentPayment.status == where.status)
        if where.due_month is not None:
            first, last = _month_bounds(where.due_month)
            conditions.append(CommitmentPayment.due_on.between(first, last))
        now = _now(clock)
        result = uow.session.execute(
            update(CommitmentPayment)
            .where(*conditions)
            .values(remittance_id=row.id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        added = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if added:
            _touch(row, clock)
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="remittance.payments_added",
                entity_type="remittance",
                entity_id=row.id,
                after={
                    "count": added,
                    "status": where.status,
                    "due_month": where.due_month,
                },
            )
        uow.session.flush()
        view = _view(uow, row, _currency(uow, company_id))
        uow.commit()
    return BulkAdd(view, added)


def remove_payment(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    payment_id: int,
    *,
    actor: Actor,
    clock: Clock,
) -> RemittanceView:
    """Take a payment out of an open remittance."""
    actor.require_write()
    with uow:
        row = _remittance(uow, company_id, remittance_id, lock=True)
        _require_open(row)
        payment = uow.session.scalar(
            select(CommitmentPayment).where(
                CommitmentPayment.id == payment_id,
                CommitmentPayment.company_id == company_id,
                CommitmentPayment.remittance_id == row.id,
            )
        )
        if payment is None:
            raise NotFound(f"payment {payment_id} is not in remittance {row.id}")
        payment.remittance_id = None
        payment.updated_at = _now(clock)
        _touch(row, clock)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.payment_removed",
            entity_type="remittance",
            entity_id=row.id,
            before={"payment_id": payment_id},
        )
        uow.session.flush()
        view = _view(uow, row, _currency(uow, company_id))
        uow.commit()
    return view


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True, slots=True)
class _Row:
    """One payment as the file needs it (a Core row, never an ORM object)."""

    id: int
    end_to_end_id: str
    amount_minor: int
    currency: str
    status: str
    method: str
    iban: str | None
    bic: str | None
    sequence_type: str | None
    mandate_reference: str | None
    mandate_signed_on: date | None
    mandate_status: str | None
    scheme: str | None
    name: str
    concept: str


def _row_columns() -> tuple[Any, ...]:
    return (
        CommitmentPayment.id,
        CommitmentPayment.end_to_end_id,
        CommitmentPayment.amount_minor,
        CommitmentPayment.currency,
        CommitmentPayment.status,
        CommitmentPayment.method,
        CommitmentPayment.iban,
        CommitmentPayment.bic,
        CommitmentPayment.sequence_type,
        Mandate.reference,
        Mandate.signed_on,
        Mandate.status,
        Mandate.scheme,
        Customer.name,
        Commitment.concept,
    )


def _rows_stmt(remittance_id: int) -> Any:
    return (
        select(*_row_columns())
        .join(Customer, Customer.id == CommitmentPayment.customer_id)
        .join(Commitment, Commitment.id == CommitmentPayment.commitment_id)
        .outerjoin(Mandate, Mandate.id == CommitmentPayment.mandate_id)
        .where(CommitmentPayment.remittance_id == remittance_id)
    )


class _Checker:
    """The rules, applied to the creditor account once and to each payment as it streams.

    `full_iban`: schwifty's complete IBAN check (country length and format); the generation
    path checks the ISO 13616 check digits only (every IBAN was fully checked when its
    commitment was saved) to stay fast on 100,000-payment files.
    """

    def __init__(self, kind: str, *, full_iban: bool) -> None:
        self.kind = kind
        self.full_iban = full_iban
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.error_count = 0
        self.warning_count = 0
        self.without_address = 0
        self._bic_checked: dict[tuple[str, str], bool | None] = {}

    def error(self, code: str, message: str, payment_id: int | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_FINDINGS:
            self.errors.append(Finding(ERROR, code, message, payment_id))

    def warning(self, code: str, message: str, payment_id: int | None = None) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_FINDINGS:
            self.warnings.append(Finding(WARNING, code, message, payment_id))

    def account(self, account: CreditorAccount, charge_date: date, today: date) -> None:
        if self.kind == "direct_debit":
            if not (account.creditor_identifier or "").strip():
                self.error(
                    "creditor_identifier_missing", "the creditor account has no creditor identifier"
                )
            else:
                try:
                    sepa.validate_creditor_identifier(account.creditor_identifier)
                except ValidationFailed as exc:
                    self.error("invalid_creditor_identifier", exc.message)
        try:
            sepa.validate_iban(account.iban)
        except ValidationFailed as exc:
            self.error("invalid_creditor_iban", f"creditor account: {exc.message}")
        if account.bic:
            try:
                sepa.validate_bic(account.bic)
            except ValidationFailed as exc:
                self.error("invalid_creditor_bic", f"creditor account: {exc.message}")
        try:
            sepa.sepa_text(account.creditor_name, max_length=sepa.MAX_NAME, field="creditor name")
        except ValidationFailed as exc:
            self.error("invalid_name", exc.message)
        lead = account.lead_days if self.kind == "direct_debit" else 0
        earliest = sepa.earliest_charge_date(today, lead)
        if charge_date < earliest:
            self.error(
                "charge_date_too_early",
                f"charge date {charge_date.isoformat()} is too early: with {lead} TARGET2 "
                f"business day(s) of lead time the earliest is {earliest.isoformat()}",
            )

    def payment(self, row: _Row) -> tuple[str, str] | None:
        """Check one payment; its (name, concept) in the SEPA set when it can be written."""
        ok = True
        pid = row.id
        if row.method != METHOD_OF_KIND[self.kind]:
            self.error("wrong_method", f"payment {pid} is paid by {row.method}", pid)
            ok = False
        if row.status not in ADDABLE[self.kind]:
            self.error("wrong_status", f"payment {pid} is {row.status}", pid)
            ok = False
        if row.amount_minor <= 0:
            self.error(
                "amount_not_positive",
                f"payment {pid}: the amount {money.from_minor(row.amount_minor, row.currency)} "
                "is not above zero",
                pid,
            )
            ok = False
        if row.currency != SEPA_CURRENCY:
            self.error("wrong_currency", f"payment {pid} is in {row.currency}, not EUR", pid)
            ok = False
        if self.kind != "card":
            ok = self._account_of(row) and ok
        if self.kind == "direct_debit":
            ok = self._mandate_of(row) and ok
        try:
            name = sepa.sepa_text(row.name, max_length=sepa.MAX_NAME, field="name")
        except ValidationFailed as exc:
            self.error("invalid_name", f"payment {pid}: {exc.message}", pid)
            ok = False
        try:
            concept = sepa.sepa_text(
                row.concept, max_length=sepa.MAX_REMITTANCE_INFORMATION, field="concept"
            )
        except ValidationFailed as exc:
            self.error("invalid_concept", f"payment {pid}: {exc.message}", pid)
            ok = False
        if self.kind != "card":
            self.without_address += 1  # Recaudo keeps no postal address for debtors yet
        return (name, concept) if ok else None

    def _account_of(self, row: _Row) -> bool:
        pid = row.id
        if not row.iban:
            self.error("iban_missing", f"payment {pid} has no IBAN", pid)
            return False
        if self.full_iban:
            try:
                sepa.validate_iban(row.iban)
            except ValidationFailed as exc:
                self.error("invalid_iban", f"payment {pid}: {exc.message}", pid)
                return False
        elif not sepa.iban_checksum_ok(row.iban):
            self.error("invalid_iban", f"payment {pid}: IBAN {row.iban!r} is not valid", pid)
            return False
        if row.bic:
            self.bic(pid, row.bic, row.iban)
        return True

    def bic(self, pid: int, bic: str, iban: str) -> None:
        """Warn when the BIC is not the IBAN's bank's (checked once per bank)."""
        key = (bic, iban[:12])
        if key not in self._bic_checked:
            try:
                sepa.validate_bic(bic)
                self._bic_checked[key] = sepa.bic_matches_iban(bic, iban)
            except (ValidationFailed, ValueError):
                self._bic_checked[key] = False
        if self._bic_checked[key] is False:
            self.warning(
                "bic_mismatch", f"payment {pid}: BIC {bic} is not the bank of IBAN {iban}", pid
            )

    def _mandate_of(self, row: _Row) -> bool:
        pid = row.id
        if row.mandate_reference is None:
            self.error("mandate_missing", f"payment {pid} has no mandate", pid)
            return False
        if row.mandate_status == "invalid":
            self.error(
                "mandate_invalid", f"payment {pid}: mandate {row.mandate_reference} is invalid", pid
            )
            return False
        return True

    def finish(self) -> None:
        if self.without_address:
            self.warning(
                "debtor_without_address",
                f"{self.without_address} debtor(s) have no postal address: the file carries "
                "none (banks outside the EEA need it)",
            )

    def findings(self) -> list[dict[str, Any]]:
        return [f.document() for f in (*self.errors, *self.warnings)]


def _check_all(
    uow: UnitOfWork, row: Remittance, company: Company, clock: Clock, *, full_iban: bool
) -> _Checker:
    checker = _Checker(row.kind, full_iban=full_iban)
    account = uow.session.get(CreditorAccount, row.creditor_account_id)
    assert account is not None
    checker.account(account, row.charge_date, _today(company, clock))
    count = 0
    for values in uow.session.execute(
        _rows_stmt(row.id).order_by(CommitmentPayment.id).execution_options(yield_per=2000)
    ):
        count += 1
        checker.payment(_Row(*values))
    if count == 0:
        checker.error("empty", "the remittance has no payments")
    checker.finish()
    return checker


def validate_remittance(
    uow: UnitOfWork, company_id: int, remittance_id: int, *, actor: Actor, clock: Clock
) -> ValidationReport:
    """Check an open remittance; stores and answers every error and warning."""
    actor.require_write()
    with uow:
        company = _company(uow, company_id)
        row = _remittance(uow, company_id, remittance_id, lock=True)
        _require_open(row)
        checker = _check_all(uow, row, company, clock, full_iban=True)
        row.warnings = checker.findings()
        row.updated_at = _now(clock)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.validated",
            entity_type="remittance",
            entity_id=row.id,
            after={"errors": checker.error_count, "warnings": checker.warning_count},
        )
        uow.session.flush()
        view = _view(uow, row, company.currency)
        uow.commit()
    return ValidationReport(
        view, checker.errors, checker.warnings, checker.error_count, checker.warning_count
    )


# --------------------------------------------------------------------------- marking sent


def mark_sent(
    uow: UnitOfWork, company_id: int, remittance_id: int, *, actor: Actor, clock: Clock
) -> RemittanceView:
    """The bank has the file: its payments are `paid` and their mandates' first collection
    done (the next ones are RCUR). One UPDATE per table and one audit row."""
    actor.require_write()
    with uow:
        row = _remittance(uow, company_id, remittance_id, lock=True)
        if row.kind == "card":
            raise Conflict("a card remittance is charged (`charge`), not sent")
        if row.state != GENERATED:
            raise Conflict(f"remittance {row.id} is {row.state}: only a generated one is sent")
        now = _now(clock)
        session = uow.session
        mandates = (
            select(CommitmentPayment.mandate_id)
            .where(
                CommitmentPayment.remittance_id == row.id,
                CommitmentPayment.status == "remitted",
                CommitmentPayment.mandate_id.is_not(None),
            )
            .scalar_subquery()
        )
        session.execute(
            update(Mandate)
            .where(Mandate.id.in_(mandates), Mandate.first_collection_done.is_(False))
            .values(first_collection_done=True)
            .execution_options(synchronize_session=False)
        )
        result = session.execute(
            update(CommitmentPayment)
            .where(
                CommitmentPayment.remittance_id == row.id,
                CommitmentPayment.status == "remitted",
            )
            .values(status="paid", paid_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        paid = int(result.rowcount or 0)  # type: ignore[attr-defined]
        row.state = SENT
        row.sent_at = now
        row.updated_at = now
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.sent",
            entity_type="remittance",
            entity_id=row.id,
            before={"state": GENERATED},
            after={"state": SENT, "payments_paid": paid},
        )
        session.flush()
        view = _view(uow, row, _currency(uow, company_id))
        # One event for the whole file, not one per payment (a remittance can hold 100,000):
        # the company's system lists them with GET /api/v1/commitment-payments?remittance_id=.
        outbox.add_event(uow, company_id, REMITTANCE_SENT, sent_document(view, paid), clock)
        uow.commit()
    return view


REMITTANCE_SENT = "remittance.sent"


def sent_document(view: RemittanceView, paid: int) -> dict[str, Any]:
    """The `remittance.sent` event's payload."""
    return {
        "remittance_id": view.id,
        "name": view.name,
        "kind": view.kind,
        "message_id": view.message_id,
        "charge_date": view.charge_date.isoformat(),
        "transaction_count": view.transaction_count,
        "control_sum": format(view.control_sum, "f"),
        "currency": view.currency,
        "payments_paid": paid,
        "sent_at": view.sent_at.isoformat() if view.sent_at else None,
    }


# --------------------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True)
class Notice:
    """An e-mail to the person responsible for a commitment, sent after the commit."""

    company_id: int
    recipients: tuple[str, ...]
    subject: str
    body: str


def notice_for_ended(uow: UnitOfWork, commitment: Commitment, reason: str) -> Notice | None:
    """Who hears that `commitment` ended: its responsible user, else the company's
    commitment notification address; None when nobody is set (an incident says so)."""
    recipient = commitment.responsible_email
    if not recipient:
        settings = uow.session.get(CommitmentSettings, commitment.company_id)
        recipient = settings.notify_email if settings is not None else None
    payer = uow.session.get(Customer, commitment.payer_customer_id)
    payer_name = payer.name if payer is not None else f"customer {commitment.payer_customer_id}"
    company = uow.session.get(Company, commitment.company_id)
    slug = company.slug if company is not None else str(commitment.company_id)
    if not recipient:
        return Notice(commitment.company_id, (), "", f"commitment {commitment.id}: {reason}")
    body = "\n".join(
        [
            f"El compromiso {commitment.id} ({commitment.concept}) de {payer_name} ha finalizado.",
            f"Motivo: {reason}",
            "",
            f"Commitment {commitment.id} of {payer_name} has ended: {reason}.",
        ]
    )
    return Notice(
        commitment.company_id,
        (recipient,),
        f"Recaudo {slug}: compromiso {commitment.id} finalizado",
        body,
    )


def has_ended(uow: UnitOfWork, commitment: Commitment, clock: Clock) -> bool:
    """The commitment already ends today or earlier (its end date is inclusive)."""
    company = _company(uow, commitment.company_id)
    return commitment.ends_on is not None and commitment.ends_on <= _today(company, clock)


def end_and_notice(
    uow: UnitOfWork, company_id: int, commitment_id: int, reason: str, actor: Actor, clock: Clock
) -> Notice | None:
    """End the commitment today (inside the caller's transaction) and prepare the e-mail
    telling its responsible user; nothing when it has ended already (a second payment of
    the same commitment returned or declined: one notice is enough)."""
    commitment = uow.session.get(Commitment, commitment_id)
    if commitment is None or commitment.company_id != company_id:
        return None
    if has_ended(uow, commitment, clock):
        return None
    ended = commitments.end_commitment_in_uow(
        uow, company_id, commitment_id, reason=reason[:200], actor=actor, clock=clock
    )
    return notice_for_ended(uow, ended, reason[:200])


def send_notice(
    uow: UnitOfWork, notice: Notice, *, settings: Settings | None, clock: Clock
) -> bool:
    """Send a notice through the company's e-mail target (its enabled e-mail delivery target
    not bound to an agreement, the oldest if several: the one file exchange reports use).
    A notice that cannot be sent is logged and recorded as an incident, never raised: the
    change it reports is already committed. True when the message was accepted."""
    problem: str
    if not notice.recipients:
        problem = f"{notice.body}: no responsible e-mail nor notify_email to tell"
    elif settings is None:
        problem = "no settings to send e-mail with"
    else:
        config: transfer.TargetConfig | None = None
        problem = "no e-mail target to send the notice through"
        with uow:
            target = deliveries.company_mail_target(uow, notice.company_id)
            if target is not None:
                try:
                    config = deliveries.target_config(target, settings)
                except transfer.TransferError as exc:
                    problem = str(exc)
        if config is not None:
            try:
                transfer.send_mail(config, list(notice.recipients), notice.subject, notice.body)
                return True
            except transfer.TransferError as exc:
                problem = str(exc)
    cause = f"commitment notice not sent: {problem}"
    logger.warning("%s", cause)
    try:
        incidents.record_incident(uow, notice.company_id, None, INCIDENT_KIND, cause, clock)
    except Exception:  # the database may be what failed; the log has it
        logger.exception("could not record the incident")
    return False


# --------------------------------------------------------------------------- card remittances

CHARGEABLE = ("not_remitted", "to_recover")


def charge_key(end_to_end_id: str, remittance_id: int) -> str:
    """The idempotency key of a payment's charge in a remittance: its end-to-end id and the
    remittance's id. A re-run of the remittance asks again under the same key (the gateway
    answers the first result); the payment collected again in a later remittance (after a
    refund: to_recover) is a new charge."""
    return f"{end_to_end_id}-R{remittance_id}"


@dataclass(frozen=True, slots=True)
class ChargeLine:
    payment_id: int
    end_to_end_id: str
    amount: Decimal
    status: str  # paid | card_rejected
    gateway_reference: str | None
    gateway_message: str
    commitment_ended: bool


@dataclass(frozen=True, slots=True)
class ChargeRun:
    remittance: RemittanceView
    lines: list[ChargeLine]
    paid: int
    rejected: int
    expired: int


@dataclass(frozen=True, slots=True)
class _CardCharge:
    payment_id: int
    commitment_id: int
    end_to_end_id: str
    amount_minor: int
    currency: str
    card_token: str | None
    concept: str


def _start_charging(
    uow: UnitOfWork, company_id: int, remittance_id: int, *, actor: Actor, clock: Clock
) -> None:
    """Check an open card remittance and move it to `generated` (being charged)."""
    with uow:
        company = _company(uow, company_id)
        row = _remittance(uow, company_id, remittance_id, lock=True)
        if row.kind != "card":
            raise Conflict(f"remittance {row.id} is a {row.kind} remittance, not a card one")
        if row.state == SENT:
            raise Conflict(f"remittance {row.id} is already charged (sent)")
        if row.state == GENERATED:
            return  # a run that stopped half-way: carry on
        checker = _check_all(uow, row, company, clock, full_iban=False)
        for values in uow.session.execute(
            select(CommitmentPayment.id)
            .join(Commitment, Commitment.id == CommitmentPayment.commitment_id)
            .where(
                CommitmentPayment.remittance_id == row.id,
                or_(Commitment.card_token.is_(None), Commitment.card_token == ""),
            )
            .order_by(CommitmentPayment.id)
        ):
            checker.error("card_missing", f"payment {values[0]} has no card", values[0])
        row.warnings = checker.findings()
        row.updated_at = _now(clock)
        if checker.error_count:
            uow.commit()  # the findings are kept; nothing is charged
            raise RemittanceInvalid(
                f"remittance {row.id} has {checker.error_count} blocking error(s); "
                "nothing was charged",
                errors=[f.document() for f in checker.errors],
            )
        count, total = uow.session.execute(
            select(func.count(), func.coalesce(func.sum(CommitmentPayment.amount_minor), 0)).where(
                CommitmentPayment.remittance_id == row.id
            )
        ).one()
        row.state = GENERATED
        row.generated_at = row.updated_at
        row.transaction_count = int(count)
        row.control_sum_minor = int(total)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="remittance.charging",
            entity_type="remittance",
            entity_id=row.id,
            before={"state": OPEN},
            after={"state": GENERATED, "count": int(count), "total_minor": int(total)},
        )
        uow.commit()


def charge_card_remittance(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    *,
    gateway: CardGateway,
    actor: Actor,
    clock: Clock,
    settings: Settings | None = None,
    on_charged: Callable[[ChargeLine], None] | None = None,
) -> ChargeRun:
    """Charge each payment of a card remittance through the gateway, one by one.

    Each payment is its own transaction (read, charge outside any transaction, record): a
    crash loses at most the recording of one charge, and the re-run asks the gateway again
    with the same idempotency key (the payment's end-to-end id), which answers the first
    result instead of charging twice. Payments already `paid` or `card_rejected` are never
    sent again. Approved → `paid` with the gateway's reference; declined → `card_rejected`
    with its message; expired → `card_rejected`, the commitment ends and its responsible
    user is told by e-mail. When no payment is left to charge the remittance is `sent`.
    A gateway that cannot be reached stops the run (409); what was recorded stays.
    """
    actor.require_write()
    _start_charging(uow, company_id, remittance_id, actor=actor, clock=clock)
    with uow:
        todo = list(
            uow.session.scalars(
                select(CommitmentPayment.id)
                .where(
                    CommitmentPayment.remittance_id == remittance_id,
                    CommitmentPayment.company_id == company_id,
                    CommitmentPayment.status.in_(CHARGEABLE),
                )
                .order_by(CommitmentPayment.id)
            )
        )
    lines: list[ChargeLine] = []
    for payment_id in todo:
        line = _charge_one(
            uow,
            company_id,
            payment_id,
            gateway=gateway,
            actor=actor,
            clock=clock,
            settings=settings,
            done=len(lines),
            remittance_id=remittance_id,
        )
        if line is not None:
            lines.append(line)
            if on_charged is not None:
                on_charged(line)
    with uow:
        row = _remittance(uow, company_id, remittance_id, lock=True)
        left = uow.session.scalar(
            select(func.count()).where(
                CommitmentPayment.remittance_id == row.id,
                CommitmentPayment.status.in_(CHARGEABLE),
            )
        )
        paid = sum(1 for line in lines if line.status == "paid")
        rejected = len(lines) - paid
        expired = sum(1 for line in lines if line.commitment_ended)
        if not left and row.state == GENERATED:
            now = _now(clock)
            row.state = SENT
            row.sent_at = now
            row.updated_at = now
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="remittance.charged",
                entity_type="remittance",
                entity_id=row.id,
                before={"state": GENERATED},
                after={"state": SENT, "paid": paid, "rejected": rejected, "expired": expired},
            )
        uow.session.flush()
        view = _view(uow, row, _currency(uow, company_id))
        uow.commit()
    return ChargeRun(view, lines, paid, rejected, expired)


def _charge_one(
    uow: UnitOfWork,
    company_id: int,
    payment_id: int,
    *,
    gateway: CardGateway,
    actor: Actor,
    clock: Clock,
    settings: Settings | None,
    done: int,
    remittance_id: int,
) -> ChargeLine | None:
    with uow:
        found = uow.session.execute(
            select(
                CommitmentPayment.id,
                CommitmentPayment.commitment_id,
                CommitmentPayment.end_to_end_id,
                CommitmentPayment.amount_minor,
                CommitmentPayment.currency,
                Commitment.card_token,
                Commitment.concept,
            )
            .join(Commitment, Commitment.id == CommitmentPayment.commitment_id)
            .where(
                CommitmentPayment.id == payment_id,
                CommitmentPayment.status.in_(CHARGEABLE),
            )
        ).one_or_none()
    if found is None:
        return None  # charged meanwhile (another run)
    item = _CardCharge(*found)
    request = ChargeRequest(
        idempotency_key=charge_key(item.end_to_end_id, remittance_id),
        card_token=item.card_token or "",
        amount_minor=item.amount_minor,
        currency=item.currency,
        description=item.concept[:140],
    )
    try:
        result = gateway.charge(request)
    except CardGatewayError as exc:
        raise Conflict(
            f"{exc}; {done} payment(s) charged before it failed: run the charge again "
            "(nothing is charged twice)"
        ) from None
    notice: Notice | None = None
    with uow:
        status = uow.session.scalar(
            select(CommitmentPayment.status)
            .where(CommitmentPayment.id == payment_id)
            .with_for_update()
        )
        if status not in CHARGEABLE:
            return None
        message = (result.message or result.outcome.value)[:200]
        ended = False
        if result.outcome is ChargeOutcome.APPROVED:
            new_status = "paid"
            commitments.transition_payment(
                uow,
                company_id,
                payment_id,
                "paid",
                actor=actor,
                clock=clock,
                reason="card charged",
                gateway_reference=result.reference,
                gateway_message=message,
                paid_at=_now(clock),
            )
        else:
            new_status = "card_rejected"
            commitments.transition_payment(
                uow,
                company_id,
                payment_id,
                "card_rejected",
                actor=actor,
                clock=clock,
                reason=f"card {result.outcome.value}: {message}",
                gateway_reference=result.reference,
                gateway_message=message,
            )
            if result.outcome is ChargeOutcome.EXPIRED:
                ended = True
                reason = f"card expired ({message})"
                notice = end_and_notice(uow, company_id, item.commitment_id, reason, actor, clock)
        uow.commit()
    if notice is not None:
        send_notice(uow, notice, settings=settings, clock=clock)
    return ChargeLine(
        payment_id=payment_id,
        end_to_end_id=item.end_to_end_id,
        amount=money.from_minor(item.amount_minor, item.currency),
        status=new_status,
        gateway_reference=result.reference,
        gateway_message=message,
        commitment_ended=ended,
    )


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True, slots=True)
class GenerationResult:
    remittance: RemittanceView
    transaction_count: int
    control_sum: Decimal
    groups: int
    size_bytes: int


def _follows_in_this_remittance() -> ColumnElement[bool]:
    """Whether the payment's mandate has an earlier payment (due date, then id) in the
    same remittance: that one is the mandate's first collection, this one a recurring one.
    A mandate's catch-up months in one file are then one FRST and RCURs, never several
    first collections of one mandate."""
    earlier = aliased(CommitmentPayment)
    return exists().where(
        earlier.remittance_id == CommitmentPayment.remittance_id,
        earlier.mandate_id == CommitmentPayment.mandate_id,
        or_(
            earlier.due_on < CommitmentPayment.due_on,
            and_(earlier.due_on == CommitmentPayment.due_on, earlier.id < CommitmentPayment.id),
        ),
    )


def _sequence_case_select() -> ColumnElement[str]:
    return case(
        (Commitment.periodicity == "one_off", "OOFF"),
        (Mandate.first_collection_done.is_(True), "RCUR"),
        (_follows_in_this_remittance(), "RCUR"),
        else_="FRST",
    )


def _sequence_case_update() -> ColumnElement[str]:
    periodicity = (
        select(Commitment.periodicity)
        .where(Commitment.id == CommitmentPayment.commitment_id)
        .scalar_subquery()
    )
    done = (
        select(Mandate.first_collection_done)
        .where(Mandate.id == CommitmentPayment.mandate_id)
        .scalar_subquery()
    )
    return case(
        (periodicity == "one_off", "OOFF"),
        (done.is_(True), "RCUR"),
        (_follows_in_this_remittance(), "RCUR"),
        else_="FRST",
    )


def _message_id(row: Remittance, now: datetime) -> str:
    return f"RCD-{row.id}-{now:%Y%m%d%H%M%S}"


def _company_account(account: CreditorAccount, *, direct_debit: bool) -> sepa_write.Account:
    address = None
    if account.country:
        address = sepa_write.PostalAddress(
            country=account.country,
            street=account.street,
            postcode=account.postcode,
            town=account.town,
        )
    return sepa_write.Account(
        name=account.creditor_name,
        iban=account.iban,
        bic=account.bic,
        include_bic=account.include_bic,
        creditor_identifier=account.creditor_identifier if direct_debit else None,
        address=address,
    )


def generate_remittance(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    *,
    data_dir: Path,
    actor: Actor,
    clock: Clock,
) -> GenerationResult:
    """Write the remittance's SEPA file, store it and move its payments to `remitted`.

    One transaction: on any blocking error (every one is listed and kept on the remittance
    as its findings), write error or XSD error, nothing changes but those findings.
    """
    actor.require_write()
    try:
        with uow:
            result = _generate(uow, company_id, remittance_id, data_dir, actor, clock)
            uow.commit()
            return result
    except _Blocked as blocked:
        checker = blocked.checker
        with uow:
            row = _remittance(uow, company_id, remittance_id, lock=True)
            if row.state == OPEN:
                row.warnings = checker.findings()
                row.updated_at = _now(clock)
                uow.commit()
        shown = "; ".join(f.message for f in checker.errors[:5])
        more = f" (and {checker.error_count - 5} more)" if checker.error_count > 5 else ""
        raise RemittanceInvalid(
            f"remittance {remittance_id} has {checker.error_count} blocking error(s): "
            f"{shown}{more}",
            error_count=checker.error_count,
        ) from None


class _Blocked(Exception):
    def __init__(self, checker: _Checker) -> None:
        super().__init__("blocking errors")
        self.checker = checker


def _generate(
    uow: UnitOfWork,
    company_id: int,
    remittance_id: int,
    data_dir: Path,
    actor: Actor,
    clock: Clock,
) -> GenerationResult:
    session = uow.session
    company = _company(uow, company_id)
    row = _remittance(uow, company_id, remittance_id, lock=True)
    if row.kind == "card":
        raise Conflict("a card remittance is charged through the card gateway, not generated")
    _require_open(row)
    account = session.get(CreditorAccount, row.creditor_account_id)
    assert account is not None
    direct_debit = row.kind == "direct_debit"
    version = account.pain008_version if direct_debit else account.pain001_version
    if version not in (PAIN008_VERSIONS if direct_debit else PAIN001_VERSIONS):
        raise Conflict(f"creditor account {account.id} asks for an unknown version {version!r}")
    checker = _Checker(row.kind, full_iban=False)
    checker.account(account, row.charge_date, _today(company, clock))
    if checker.error_count:
        # No file can be written for this account: list the payments' problems too.
        raise _Blocked(_check_all(uow, row, company, clock, full_iban=False))
    now = _now(clock)
    message_id = _message_id(row, now)
    sequence = _sequence_case_select() if direct_debit else None
    scheme = func.coalesce(Mandate.scheme, "CORE")
    joined = (
        select(CommitmentPayment.id)
        .join(Commitment, Commitment.id == CommitmentPayment.commitment_id)
        .outerjoin(Mandate, Mandate.id == CommitmentPayment.mandate_id)
        .where(CommitmentPayment.remittance_id == row.id)
    )
    if sequence is not None:
        keys: tuple[Any, ...] = (sequence, scheme)
    else:
        keys = ()
    totals = session.execute(
        joined.with_only_columns(
            *keys, func.count(), func.coalesce(func.sum(CommitmentPayment.amount_minor), 0)
        )
        .group_by(*keys)
        .order_by(*keys)
    ).all()
    count = sum(int(t[-2]) for t in totals)
    total_minor = sum(int(t[-1]) for t in totals)
    if count == 0:
        checker.error("empty", "the remittance has no payments")
        raise _Blocked(checker)
    header = sepa_write.MessageHeader(
        message_id=message_id,
        created_at=now,
        initiating_party_name=account.creditor_name,
        number_of_transactions=count,
        control_sum=money.from_minor(total_minor, SEPA_CURRENCY),
        initiating_party_id=None,
    )
    columns = (*_row_columns(), sequence) if sequence is not None else _row_columns()
    stmt = (
        select(*columns)
        .join(Customer, Customer.id == CommitmentPayment.customer_id)
        .join(Commitment, Commitment.id == CommitmentPayment.commitment_id)
        .outerjoin(Mandate, Mandate.id == CommitmentPayment.mandate_id)
        .where(CommitmentPayment.remittance_id == row.id)
        .order_by(*keys, CommitmentPayment.id)
    )
    connection = session.connection()
    stream = connection.execute(stmt, execution_options={"stream_results": True, "yield_per": 5000})
    company_account = _company_account(account, direct_debit=direct_debit)
    rows = _Peekable(iter(stream), checker, row.kind)
    with storage.spooled(data_dir) as tmp:
        with open(tmp, "wb") as out:
            try:
                if direct_debit:
                    summary = sepa_write.write_pain008(
                        out,
                        header,
                        company_account,
                        _dd_groups(rows, totals, message_id, row.charge_date),
                        version=version,
                    )
                else:
                    summary = sepa_write.write_pain001(
                        out,
                        header,
                        company_account,
                        _ct_groups(rows, count, total_minor, message_id, row.charge_date),
                        version=version,
                    )
            except sepa_write.SepaWriteError:
                if not checker.error_count:
                    stream.close()
                    # A value the writer refused: check everything the slow way, so that
                    # every problem is listed (not only the first).
                    full = _check_all(uow, row, company, clock, full_iban=False)
                    if not full.error_count:
                        raise
                    raise _Blocked(full) from None
                rows.drain()  # every problem is listed, not only those before the stop
            finally:
                stream.close()
        if row.kind != "card":
            checker.without_address = rows.seen
        checker.finish()
        if checker.error_count:
            raise _Blocked(checker)
        sepa_write.validate_xml(tmp, version)
        sha, size = storage.hash_file(tmp)
        path = f"files/remittances/{company_id}/{row.id}/{message_id}.xml"
        storage.store_file(data_dir, path, tmp)
    values: dict[str, Any] = {"status": "remitted", "updated_at": now}
    if direct_debit:
        values["sequence_type"] = _sequence_case_update()
    moved = session.execute(
        update(CommitmentPayment)
        .where(
            CommitmentPayment.remittance_id == row.id,
            CommitmentPayment.status.in_(ADDABLE[row.kind]),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if int(moved.rowcount or 0) != count:  # type: ignore[attr-defined]
        raise Conflict(
            f"the payments of remittance {row.id} changed while its file was written; "
            "generate it again"
        )
    row.state = GENERATED
    row.message_id = message_id
    row.file_version = version
    row.storage_path = path
    row.sha256 = sha
    row.transaction_count = count
    row.control_sum_minor = total_minor
    row.generated_at = now
    row.updated_at = now
    row.warnings = checker.findings()
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=company_id,
        action="remittance.generated",
        entity_type="remittance",
        entity_id=row.id,
        before={"state": OPEN},
        after={
            "state": GENERATED,
            "message_id": message_id,
            "file_version": version,
            "sha256": sha,
            # The payments' move to `remitted`: one bulk change, this one audit row.
            "payments_remitted": count,
            "control_sum_minor": total_minor,
            "warnings": checker.warning_count,
        },
    )
    session.flush()
    view = _view(uow, row, company.currency)
    return GenerationResult(
        view, count, money.from_minor(total_minor, SEPA_CURRENCY), summary.groups, size
    )


_CENTS = -2  # EUR minor units


class _Peekable:
    """The streamed rows, checked on the way, one look ahead (to end each group at its
    last row). Rows stay the driver's tuples (no ORM object, no copy).

    The checks here are the ones the writer does not make (state, method, amount,
    currency, IBAN and mandate present, mandate not invalid) plus the BIC warning; the
    writer checks the IBAN's digits and transliterates the texts, and on its first refusal
    the whole remittance is checked again the slow way so that every problem is listed.
    """

    def __init__(self, stream: Iterator[Any], checker: _Checker, kind: str) -> None:
        self._stream = stream
        self._checker = checker
        self._addable = frozenset(ADDABLE[kind])
        self._method = METHOD_OF_KIND[kind]
        self._direct_debit = kind == "direct_debit"
        self._next: Any = None
        self._done = False
        self.seen = 0

    def _ok(self, v: Any) -> bool:
        if (
            v[4] in self._addable
            and v[5] == self._method
            and v[2] > 0
            and v[3] == SEPA_CURRENCY
            and v[6]
            and (not self._direct_debit or (v[9] is not None and v[11] != "invalid"))
        ):
            if v[7]:
                self._checker.bic(v[0], v[7], v[6])
            return True
        self._checker.payment(_Row(*v[:15]))  # lists each of its problems
        return False

    def peek(self) -> Any:
        while self._next is None and not self._done:
            values = next(self._stream, None)
            if values is None:
                self._done = True
                break
            self.seen += 1
            if self._ok(values):
                self._next = values
        return self._next

    def take(self) -> Any:
        found = self.peek()
        self._next = None
        return found

    def drain(self) -> None:
        """Check the rows no group took (there are none unless the data changed)."""
        while self.peek() is not None:
            self.take()


def _dd_groups(
    rows: _Peekable, totals: Sequence[Any], message_id: str, charge_date: date
) -> Iterator[sepa_write.DirectDebitGroup]:
    transaction = sepa_write.DirectDebitTransaction
    for n, (seq, scheme, count, total) in enumerate(totals, 1):

        def transactions(
            seq: str = seq, scheme: str = scheme
        ) -> Iterator[sepa_write.DirectDebitTransaction]:
            while (v := rows.peek()) is not None and v[15] == seq and (v[12] or "CORE") == scheme:
                rows.take()
                yield transaction(
                    v[1],
                    Decimal(v[2]).scaleb(_CENTS),
                    v[9],
                    v[10] or charge_date,
                    v[13],
                    v[6],
                    v[7],
                    None,
                    v[14],
                )

        yield sepa_write.DirectDebitGroup(
            payment_information_id=f"{message_id}-{n}",
            sequence_type=sepa.SequenceType(seq),
            scheme=sepa.Scheme(scheme),
            collection_date=charge_date,
            number_of_transactions=int(count),
            control_sum=money.from_minor(int(total), SEPA_CURRENCY),
            transactions=transactions(),
        )
    rows.drain()


def _ct_groups(
    rows: _Peekable, count: int, total_minor: int, message_id: str, execution_date: date
) -> Iterator[sepa_write.CreditTransferGroup]:
    transaction = sepa_write.CreditTransferTransaction

    def transactions() -> Iterator[sepa_write.CreditTransferTransaction]:
        while (v := rows.take()) is not None:
            yield transaction(v[1], Decimal(v[2]).scaleb(_CENTS), v[13], v[6], v[7], None, v[14])

    yield sepa_write.CreditTransferGroup(
        payment_information_id=f"{message_id}-1",
        requested_execution_date=execution_date,
        number_of_transactions=count,
        control_sum=money.from_minor(total_minor, SEPA_CURRENCY),
        transactions=transactions(),
    )
