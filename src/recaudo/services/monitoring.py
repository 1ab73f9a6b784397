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
from typing import BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select

from recaudo.adapters.db.tables import ChannelAgreement, Company, Customer, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.payments import PaymentMethod, PaymentStatus
from recaudo.formats.tabular import Cell, TableFormat, write_table
from recaudo.services.queries import Paging, _count, get_company
from recaudo.services.views import Page

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


def _filtered(company: Company, search: PaymentSearch) -> Select[Payment, Customer, str]:
    stmt = (
        select(Payment, Customer, ChannelAgreement.channel)
        .outerjoin(Customer, Customer.id == Payment.customer_id)
        .outerjoin(ChannelAgreement, ChannelAgreement.id == Payment.agreement_id)
        .where(Payment.company_id == company.id)
    )
    zone = ZoneInfo(company.timezone)
    if search.date_from and search.date_to and search.date_from > search.date_to:
        raise ValidationFailed("the date range ends before it starts", field="date_to")
    if search.date_from is not None:
        stmt = stmt.where(Payment.paid_at >= _local_start(search.date_from, zone))
    if search.date_to is not None:
        stmt = stmt.where(Payment.paid_at < _local_start(search.date_to + timedelta(days=1), zone))
    if search.channel:
        stmt = stmt.where(Payment.channel == search.channel)
    if search.method:
        try:
            stmt = stmt.where(Payment.method == PaymentMethod(search.method).value)
        except ValueError:
            raise ValidationFailed(f"unknown method {search.method!r}", field="method") from None
    if search.status:
        try:
            stmt = stmt.where(Payment.status == PaymentStatus(search.status).value)
        except ValueError:
            raise ValidationFailed(f"unknown status {search.status!r}", field="status") from None
    if search.agreement_id is not None:
        stmt = stmt.where(Payment.agreement_id == search.agreement_id)
    low = _minor(search.amount_min, company.currency, "amount_min")
    high = _minor(search.amount_max, company.currency, "amount_max")
    if low is not None and high is not None and low > high:
        raise ValidationFailed("the minimum amount is above the maximum", field="amount_max")
    if low is not None:
        stmt = stmt.where(Payment.amount_minor >= low)
    if high is not None:
        stmt = stmt.where(Payment.amount_minor <= high)
    if search.external_id and search.external_id.strip():
        stmt = stmt.where(Payment.external_id == search.external_id.strip())
    if search.customer_id is not None:
        stmt = stmt.where(Payment.customer_id == search.customer_id)
    return stmt


def _row(payment: Payment, customer: Customer | None, agreement_channel: str | None) -> PaymentRow:
    return PaymentRow(
        id=payment.id,
        paid_at=payment.paid_at,
        accounting_date=payment.accounting_date,
        channel=payment.channel,
        agreement_id=payment.agreement_id,
        agreement_channel=agreement_channel,
        method=payment.method,
        external_id=payment.external_id,
        amount=money.from_minor(payment.amount_minor, payment.currency),
        currency=payment.currency,
        status=payment.status,
        customer_id=payment.customer_id,
        customer_name=customer.name if customer else None,
        customer_national_id=(
            ids.format_national_id(ids.IdType(customer.id_type), customer.national_id)
            if customer
            else None
        ),
    )


def search_payments(
    uow: UnitOfWork, company_id: int, search: PaymentSearch, *, paging: Paging = FIRST_PAGE
) -> Page[PaymentRow]:
    """One page of the matching payments, newest first."""
    company = get_company(uow, company_id)
    stmt = _filtered(company, search)
    total = _count(uow.session, stmt.with_only_columns(Payment.id))
    rows = uow.session.execute(
        stmt.order_by(Payment.paid_at.desc(), Payment.id.desc())
        .offset(paging.offset)
        .limit(paging.page_size)
    )
    return Page([_row(p, c, a) for p, c, a in rows], total, paging.page, paging.page_size)


def iter_payments(uow: UnitOfWork, company_id: int, search: PaymentSearch) -> Iterator[PaymentRow]:
    """Every matching payment, newest first, streamed (exports of any size)."""
    company = get_company(uow, company_id)
    stmt = _filtered(company, search).order_by(Payment.paid_at.desc(), Payment.id.desc())
    for payment, customer, agreement_channel in uow.session.execute(
        stmt.execution_options(yield_per=2000)
    ):
        yield _row(payment, customer, agreement_channel)


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
    _filtered(company, search)  # bad filters refused before the first byte
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
