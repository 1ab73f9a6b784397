"""Checkout monitoring: eCollect's transaction report and user-defined flat files.

The report filters by service, date-time range (UTC, `since` inclusive, `until`
exclusive), state, payment means, bank, confirmation number (the bank's trace code),
coupon number and ticket; its columns are eCollect's: ticket, first reference, amount,
company, service, date, payment system, bank, state, trace code, payer e-mail (plus the
coupon number). It is answered as a page, or written whole as CSV/XLSX.

A flat-file report is chosen by the user: an ordered list of fields, each a report
column, one of the transaction's references (by position, 1-based, in the service's
order) or a fixed text, each under its own header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Select, func, select

from recaudo.adapters.db.tables import CheckoutService, CheckoutTransaction, Company, Coupon
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import checkout as rules
from recaudo.domain import money
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.domain.money import Money
from recaudo.formats.tabular import Cell, write_table
from recaudo.services.context import Actor
from recaudo.services.queries import Paging
from recaudo.services.views import Page

EXPORT_BATCH = 500
# Control characters: no database column, spreadsheet cell or flat file takes them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str | None, field: str) -> None:
    if value is not None and _CONTROL.search(value):
        raise ValidationFailed("control characters are not allowed", field=field)


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    service_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: str | None = None
    means: str | None = None
    bank: str | None = None
    confirmation: str | None = None
    coupon: str | None = None
    ticket: int | None = None

    def checked(self) -> TransactionFilter:
        for name in ("service_code", "state", "means", "bank", "confirmation", "coupon"):
            _printable(getattr(self, name), name)
        if self.state is not None and self.state not in rules.STATES:
            raise ValidationFailed(
                f"state is one of {', '.join(rules.STATES)}", field="state", value=self.state
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValidationFailed(f"{name} needs a time zone", field=name)
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValidationFailed("since must be before until", field="since")
        return self


@dataclass(frozen=True, slots=True)
class ReportRow:
    ticket: int
    first_reference: str | None
    amount: Money
    company: str
    service_code: str
    service_name: str
    created_at: datetime
    means: str | None
    bank: str | None
    state: str
    trace_code: str | None
    payer_email: str | None
    coupon: str | None
    references: tuple[str, ...]


# Report column key → header (Spanish: the back office's language and eCollect's).
COLUMNS: dict[str, str] = {
    "ticket": "Ticket",
    "first_reference": "Referencia 1",
    "amount": "Valor",
    "currency": "Moneda",
    "company": "Empresa",
    "service": "Servicio",
    "date": "Fecha",
    "means": "Sistema de pago",
    "bank": "Banco",
    "state": "Estado",
    "trace_code": "Código de trazabilidad",
    "payer_email": "Correo del pagador",
    "coupon": "Cupón",
}


def _query(
    company_id: int, f: TransactionFilter
) -> Select[CheckoutTransaction, CheckoutService, str]:
    q = (
        select(CheckoutTransaction, CheckoutService, Coupon.number)
        .join(CheckoutService, CheckoutService.id == CheckoutTransaction.service_id)
        .outerjoin(Coupon, Coupon.transaction_id == CheckoutTransaction.id)
        .where(CheckoutTransaction.company_id == company_id)
    )
    if f.service_code is not None:
        q = q.where(CheckoutService.code == f.service_code)
    if f.since is not None:
        q = q.where(CheckoutTransaction.created_at >= f.since)
    if f.until is not None:
        q = q.where(CheckoutTransaction.created_at < f.until)
    if f.state is not None:
        q = q.where(CheckoutTransaction.state == f.state)
    if f.means is not None:
        q = q.where(CheckoutTransaction.means == f.means)
    if f.bank is not None:
        q = q.where(CheckoutTransaction.bank == f.bank)
    if f.confirmation is not None:
        q = q.where(CheckoutTransaction.trace_code == f.confirmation)
    if f.coupon is not None:
        q = q.where(Coupon.number == f.coupon)
    if f.ticket is not None:
        q = q.where(CheckoutTransaction.ticket == f.ticket)
    return q


def _row(
    tx: CheckoutTransaction, service: CheckoutService, coupon: str | None, company: str
) -> ReportRow:
    return ReportRow(
        ticket=tx.ticket,
        first_reference=tx.first_reference,
        amount=Money(tx.amount_minor, tx.currency),
        company=company,
        service_code=service.code,
        service_name=service.name,
        created_at=tx.created_at,
        means=tx.means,
        bank=tx.bank,
        state=tx.state,
        trace_code=tx.trace_code,
        payer_email=tx.payer_email,
        coupon=coupon,
        references=tuple(str(r.get("value", "")) for r in tx.references),
    )


def _company(uow: UnitOfWork, company_id: int, actor: Actor) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None or not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    return company


def search_transactions(
    uow: UnitOfWork, company_id: int, f: TransactionFilter, *, actor: Actor, paging: Paging
) -> Page[ReportRow]:
    """One page of the report, newest first."""
    f = f.checked()
    with uow:
        company = _company(uow, company_id, actor)
        q = _query(company_id, f)
        total = uow.session.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = uow.session.execute(
            q.order_by(CheckoutTransaction.created_at.desc(), CheckoutTransaction.id.desc())
            .offset(paging.offset)
            .limit(paging.page_size)
        ).all()
        items = [_row(tx, svc, number, company.legal_name) for tx, svc, number in rows]
    return Page(items, total, paging.page, paging.page_size)


def _all(
    uow: UnitOfWork, company_id: int, f: TransactionFilter, actor: Actor
) -> Iterator[ReportRow]:
    with uow:
        company = _company(uow, company_id, actor)
        q = _query(company_id, f).order_by(CheckoutTransaction.created_at, CheckoutTransaction.id)
        for tx, svc, number in uow.session.execute(q.execution_options(yield_per=EXPORT_BATCH)):
            yield _row(tx, svc, number, company.legal_name)


def column_value(row: ReportRow, key: str) -> Cell:
    values: dict[str, Cell] = {
        "ticket": row.ticket,
        "first_reference": row.first_reference,
        "amount": money.from_minor(row.amount.minor, row.amount.currency),
        "currency": row.amount.currency,
        "company": row.company,
        "service": row.service_name,
        "date": row.created_at,
        "means": row.means,
        "bank": row.bank,
        "state": row.state,
        "trace_code": row.trace_code,
        "payer_email": row.payer_email,
        "coupon": row.coupon,
    }
    return values[key]


def export_transactions(
    uow: UnitOfWork, company_id: int, f: TransactionFilter, fmt: str, out: BinaryIO, *, actor: Actor
) -> int:
    """The whole report (oldest first) as CSV or XLSX; answers the number of rows."""
    f = f.checked()
    count = 0

    def rows() -> Iterator[list[Cell]]:
        nonlocal count
        for row in _all(uow, company_id, f, actor):
            count += 1
            yield [column_value(row, key) for key in COLUMNS]

    write_table(list(COLUMNS.values()), rows(), fmt, out)
    return count


# --- user-defined flat files --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlatField:
    """One column of a flat file: `column` (a report column key), `reference` (its
    position, 1-based) or `fixed` (the text in `value`), under `header`."""

    kind: str
    header: str
    value: str = ""

    def checked(self, index: int) -> FlatField:
        name = f"fields[{index}]"
        _printable(self.header, f"{name}.header")
        _printable(self.value, f"{name}.value")
        if not self.header.strip() or len(self.header) > 60:
            raise ValidationFailed("a header is 1 to 60 characters", field=f"{name}.header")
        if self.kind == "column":
            if self.value not in COLUMNS:
                raise ValidationFailed(
                    f"column is one of {', '.join(COLUMNS)}", field=f"{name}.value"
                )
        elif self.kind == "reference":
            if not self.value.isdigit() or not 1 <= int(self.value) <= 20:
                raise ValidationFailed(
                    "a reference is its position, 1 to 20", field=f"{name}.value"
                )
        elif self.kind == "fixed":
            if len(self.value) > 100:
                raise ValidationFailed(
                    "a fixed text is at most 100 characters", field=f"{name}.value"
                )
        else:
            raise ValidationFailed("kind is column, reference or fixed", field=f"{name}.kind")
        return self


MAX_FLAT_FIELDS = 40


def flat_value(row: ReportRow, field: FlatField) -> Cell:
    if field.kind == "column":
        return column_value(row, field.value)
    if field.kind == "reference":
        position = int(field.value)
        return row.references[position - 1] if position <= len(row.references) else ""
    return field.value


def export_flat_file(
    uow: UnitOfWork,
    company_id: int,
    f: TransactionFilter,
    fields: Sequence[FlatField],
    fmt: str,
    out: BinaryIO,
    *,
    actor: Actor,
) -> int:
    """The user's flat file: the chosen fields, in order, for every matching transaction."""
    if not 1 <= len(fields) <= MAX_FLAT_FIELDS:
        raise ValidationFailed(f"choose 1 to {MAX_FLAT_FIELDS} fields", field="fields")
    checked = [field.checked(n) for n, field in enumerate(fields)]
    f = f.checked()
    count = 0

    def rows() -> Iterator[list[Cell]]:
        nonlocal count
        for row in _all(uow, company_id, f, actor):
            count += 1
            yield [flat_value(row, field) for field in checked]

    write_table([field.header for field in checked], rows(), fmt, out)
    return count
