"""Transaction monitoring: the company's payments with every filter the back office
offers, a page at a time or streamed whole as CSV/XLSX.

Dates are the company's local dates (`date_from`/`date_to` inclusive, on when the payment
was made); amounts are parsed at the company's currency scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, func, select

from recaudo.adapters.db.tables import (
    Allocation,
    AuditEvent,
    ChannelAgreement,
    Company,
    Customer,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.payments import PaymentMethod, PaymentStatus
from recaudo.formats.tabular import Cell, TableFormat, write_table
from recaudo.services.queries import Paging, get_company
from recaudo.services.views import AuditEventView, Page

FIRST_PAGE = Paging()


@dataclass(frozen=True, slots=True)
class PaymentSearch:
    date_from: date | None = None
    date_to: date | None = None
    channel: str | None = None
    method: str | None = None
    status: str | None = None
    agreement_id: int | None = None
    amount_min: Decimal | str | None = None
    amount_max: Decimal | str | None = None
    external_id: str | None = None
    customer_id: int | None = None


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: int
    paid_at: datetime
    accounting_date: date | None
    channel: str
    agreement_id: int | None
    agreement_channel: str | None
    method: str
    external_id: str
    amount: Decimal
    currency: str
    status: str
    customer_id: int | None
    customer_name: str | None
    customer_national_id: str | None  # formatted


def _local_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _minor(value: Decimal | str | None, currency: str, field: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return money.to_minor(money.parse_amount(value, currency), currency)
    except ValidationFailed as error:
        raise ValidationFailed(str(error), field=field) from None


def _conditions(company: Company, search: PaymentSearch) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `search` (refused before any query when a filter is bad)."""
    where: list[ColumnElement[bool]] = [Payment.company_id == company.id]
    zone = ZoneInfo(company.timezone)
    if search.date_from and search.date_to and search.date_from > search.date_to:
        raise ValidationFailed("the date range ends before it starts", field="date_to")
    if search.date_from is not None:
        where.append(Payment.paid_at >= _local_start(search.date_from, zone))
    if search.date_to is not None:
        where.append(Payment.paid_at < _local_start(search.date_to + timedelta(days=1), zone))
    if search.channel:
        where.append(Payment.channel == search.channel)
    if search.method:
        try:
            where.append(Payment.method == PaymentMethod(search.method).value)
        except ValueError:
            raise ValidationFailed(f"unknown method {search.method!r}", field="method") from None
    if search.status:
        try:
            where.append(Payment.status == PaymentStatus(search.status).value)
        except ValueError:
            raise ValidationFailed(f"unknown status {search.status!r}", field="status") from None
    if search.agreement_id is not None:
        where.append(Payment.agreement_id == search.agreement_id)
    low = _minor(search.amount_min, company.currency, "amount_min")
    high = _minor(search.amount_max, company.currency, "amount_max")
    if low is not None and high is not None and low > high:
        raise ValidationFailed("the minimum amount is above the maximum", field="amount_max")
    if low is not None:
        where.append(Payment.amount_minor >= low)
    if high is not None:
        where.append(Payment.amount_minor <= high)
    if search.external_id and search.external_id.strip():
        where.append(Payment.external_id == search.external_id.strip())
    if search.customer_id is not None:
        where.append(Payment.customer_id == search.customer_id)
    return where


def _rows(where: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    # Plain columns, not entities: no ORM objects (nor their allocations) per row.
    return (
        select(
            Payment.id,
            Payment.paid_at,
            Payment.accounting_date,
            Payment.channel,
            Payment.agreement_id,
            ChannelAgreement.channel.label("agreement_channel"),
            Payment.method,
            Payment.external_id,
            Payment.amount_minor,
            Payment.currency,
            Payment.status,
            Payment.customer_id,
            Customer.name.label("customer_name"),
            Customer.id_type,
            Customer.national_id,
        )
        .outerjoin(Customer, Customer.id == Payment.customer_id)
        .outerjoin(ChannelAgreement, ChannelAgreement.id == Payment.agreement_id)
        .where(*where)
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
    )


def _row(r: Row[*tuple[Any, ...]]) -> PaymentRow:
    return PaymentRow(
        id=r.id,
        paid_at=r.paid_at,
        accounting_date=r.accounting_date,
        channel=r.channel,
        agreement_id=r.agreement_id,
        agreement_channel=r.agreement_channel,
        method=r.method,
        external_id=r.external_id,
        amount=money.from_minor(r.amount_minor, r.currency),
        currency=r.currency,
        status=r.status,
        customer_id=r.customer_id,
        customer_name=r.customer_name,
        customer_national_id=(
            ids.format_national_id(ids.IdType(r.id_type), r.national_id)
            if r.national_id is not None
            else None
        ),
    )


def search_payments(
    uow: UnitOfWork, company_id: int, search: PaymentSearch, *, paging: Paging = FIRST_PAGE
) -> Page[PaymentRow]:
    """One page of the matching payments, newest first."""
    where = _conditions(get_company(uow, company_id), search)
    total = int(uow.session.scalar(select(func.count(Payment.id)).where(*where)) or 0)
    rows = uow.session.execute(_rows(where).offset(paging.offset).limit(paging.page_size))
    return Page([_row(r) for r in rows], total, paging.page, paging.page_size)


def iter_payments(uow: UnitOfWork, company_id: int, search: PaymentSearch) -> Iterator[PaymentRow]:
    """Every matching payment, newest first, streamed (exports of any size)."""
    where = _conditions(get_company(uow, company_id), search)
    for r in uow.session.execute(_rows(where).execution_options(yield_per=2000)):
        yield _row(r)


EXPORT_HEADERS = (
    "id",
    "fecha_pago",
    "fecha_contable",
    "canal",
    "convenio_canal",
    "medio",
    "transaccion",
    "rut_cliente",
    "cliente",
    "monto",
    "moneda",
    "estado",
)


def write_export(
    uow: UnitOfWork, company_id: int, search: PaymentSearch, fmt: TableFormat | str, out: BinaryIO
) -> int:
    """The matching payments as CSV or XLSX; returns how many rows were written."""
    company = get_company(uow, company_id)
    _conditions(company, search)  # bad filters refused before the first byte
    if str(fmt) not in (TableFormat.CSV.value, TableFormat.XLSX.value):
        raise ValidationFailed(f"unknown table format {fmt!r} (csv or xlsx)", field="format")
    count = 0

    def rows() -> Iterator[list[Cell]]:
        nonlocal count
        for r in iter_payments(uow, company_id, search):
            count += 1
            yield [
                r.id,
                r.paid_at,
                r.accounting_date,
                r.channel,
                r.agreement_channel,
                r.method,
                r.external_id,
                r.customer_national_id,
                r.customer_name,
                r.amount,
                r.currency,
                r.status,
            ]

    write_table(EXPORT_HEADERS, rows(), str(fmt), out)
    return count


def channels_in_use(uow: UnitOfWork, company_id: int) -> list[str]:
    """The channels the company's payments came through (for the filter's choices)."""
    return sorted(
        uow.session.scalars(
            select(Payment.channel).where(Payment.company_id == company_id).distinct()
        )
    )


def payment_trail(uow: UnitOfWork, company_id: int, payment_id: int) -> list[AuditEventView]:
    """The audit trail of one payment: its own events and the debt status changes it caused
    (`debt.status_changed` naming it as `payment_id` or `reversed_payment_id`), in order."""
    debt_ids = [
        str(debt_id)
        for debt_id in uow.session.scalars(
            select(Allocation.debt_id)
            .join(Payment, Payment.id == Allocation.payment_id)
            .where(Payment.id == payment_id, Payment.company_id == company_id)
        )
    ]
    own = (AuditEvent.entity_type == "payment") & (AuditEvent.entity_id == str(payment_id))
    stmt = select(AuditEvent).where(AuditEvent.company_id == company_id)
    if debt_ids:
        debts = (
            (AuditEvent.entity_type == "debt")
            & AuditEvent.entity_id.in_(debt_ids)
            & (AuditEvent.action == "debt.status_changed")
        )
        stmt = stmt.where(own | debts)
    else:
        stmt = stmt.where(own)
    trail = []
    for e in uow.session.scalars(stmt.order_by(AuditEvent.id)):
        after = e.after or {}
        if e.entity_type == "debt" and payment_id not in (
            after.get("payment_id"),
            after.get("reversed_payment_id"),
        ):
            continue
        trail.append(
            AuditEventView(
                e.id, e.occurred_at, e.actor, e.action, e.entity_type, e.entity_id, e.before, after
            )
        )
    return trail
