"""The portfolio as the back office reads it: debts with filters (a page at a time or
streamed as CSV/XLSX) and everything about one customer on one page.

Always one company: another company's customer is "not found".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import BinaryIO

from sqlalchemy import ColumnElement, Select, func, select

from recaudo.adapters.db.tables import Allocation, Company, Customer, Debt, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.domain.debts import PAYABLE, DebtStatus
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.payments import PaymentStatus
from recaudo.formats.tabular import Cell, TableFormat, write_table
from recaudo.services import commitments
from recaudo.services.balances import paid_of_debt
from recaudo.services.queries import (
    Paging,
    _count,
    debt_view,
    get_company,
    get_customer,
    payment_view,
)
from recaudo.services.views import CustomerView, DebtView, Page, PaymentView

FIRST_PAGE = Paging()


@dataclass(frozen=True, slots=True)
class DebtSearch:
    status: str | None = None  # a DebtStatus, or "payable" for open and in payment
    due_from: date | None = None
    due_to: date | None = None
    amount_min: Decimal | str | None = None
    amount_max: Decimal | str | None = None
    customer_id: int | None = None


PAYABLE_FILTER = "payable"


@dataclass(frozen=True, slots=True)
class DebtRow:
    debt: DebtView
    customer_name: str
    customer_national_id: str  # formatted


def _minor(value: Decimal | str | None, currency: str, field: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return money.to_minor(money.parse_amount(value, currency), currency)
    except ValidationFailed as error:
        raise ValidationFailed(str(error), field=field) from None


def _conditions(company: Company, search: DebtSearch) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `search` (refused before any query when a filter is bad)."""
    where: list[ColumnElement[bool]] = [Debt.company_id == company.id]
    if search.status == PAYABLE_FILTER:
        where.append(Debt.status.in_([s.value for s in PAYABLE]))
    elif search.status:
        try:
            where.append(Debt.status == DebtStatus(search.status).value)
        except ValueError:
            raise ValidationFailed(f"unknown status {search.status!r}", field="status") from None
    if search.due_from and search.due_to and search.due_from > search.due_to:
        raise ValidationFailed("the due date range ends before it starts", field="due_to")
    if search.due_from is not None:
        where.append(Debt.due_date >= search.due_from)
    if search.due_to is not None:
        where.append(Debt.due_date <= search.due_to)
    low = _minor(search.amount_min, company.currency, "amount_min")
    high = _minor(search.amount_max, company.currency, "amount_max")
    if low is not None and high is not None and low > high:
        raise ValidationFailed("the minimum amount is above the maximum", field="amount_max")
    if low is not None:
        where.append(Debt.amount_minor >= low)
    if high is not None:
        where.append(Debt.amount_minor <= high)
    if search.customer_id is not None:
        where.append(Debt.customer_id == search.customer_id)
    return where


def _filtered(where: list[ColumnElement[bool]]) -> Select[Debt, int, Customer]:
    return (
        select(Debt, paid_of_debt(), Customer)
        .join(Customer, Customer.id == Debt.customer_id)
        .where(*where)
        .order_by(Debt.due_date, Debt.id)
    )


def _row(debt: Debt, paid: int, customer: Customer) -> DebtRow:
    return DebtRow(
        debt_view(debt, int(paid)),
        customer.name,
        ids.format_national_id(ids.IdType(customer.id_type), customer.national_id),
    )


def search_debts(
    uow: UnitOfWork, company_id: int, search: DebtSearch, *, paging: Paging = FIRST_PAGE
) -> Page[DebtRow]:
    """One page of the matching debts, by due date."""
    where = _conditions(get_company(uow, company_id), search)
    total = int(uow.session.scalar(select(func.count(Debt.id)).where(*where)) or 0)
    rows = uow.session.execute(_filtered(where).offset(paging.offset).limit(paging.page_size))
    return Page([_row(d, p, c) for d, p, c in rows], total, paging.page, paging.page_size)


EXPORT_HEADERS = (
    "id_deuda",
    "rut_cliente",
    "cliente",
    "concepto",
    "emision",
    "vencimiento",
    "monto",
    "pagado",
    "saldo",
    "moneda",
    "estado",
)


def write_export(
    uow: UnitOfWork, company_id: int, search: DebtSearch, fmt: TableFormat | str, out: BinaryIO
) -> int:
    """The matching debts (by due date) as CSV or XLSX; returns how many rows.

    Plain columns and the paid sums of the company's applied payments grouped once (a
    correlated sum and an ORM object per debt made 300,000 debts take 30 s).
    """
    company = get_company(uow, company_id)
    where = _conditions(company, search)
    if str(fmt) not in (TableFormat.CSV.value, TableFormat.XLSX.value):
        raise ValidationFailed(f"unknown table format {fmt!r} (csv or xlsx)", field="format")
    paid = (
        select(Allocation.debt_id, func.sum(Allocation.amount_minor).label("paid"))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Payment.company_id == company.id, Payment.status == PaymentStatus.APPLIED.value)
        .group_by(Allocation.debt_id)
        .subquery()
    )
    stmt = (
        select(
            Debt.external_id,
            Customer.id_type,
            Customer.national_id,
            Customer.name,
            Debt.concept,
            Debt.issue_date,
            Debt.due_date,
            Debt.amount_minor,
            func.coalesce(paid.c.paid, 0),
            Debt.currency,
            Debt.status,
        )
        .join(Customer, Customer.id == Debt.customer_id)
        .outerjoin(paid, paid.c.debt_id == Debt.id)
        .where(*where)
        .order_by(Debt.due_date, Debt.id)
    )
    payable = {s.value for s in PAYABLE}
    count = 0

    def rows() -> Iterator[list[Cell]]:
        nonlocal count
        formatted: dict[tuple[str, str], str] = {}
        for (
            ref,
            id_type,
            national_id,
            name,
            concept,
            issued,
            due,
            amount,
            paid_minor,
            currency,
            status,
        ) in uow.session.execute(stmt.execution_options(yield_per=5000)):
            key = (id_type, national_id)
            if key not in formatted:
                if len(formatted) > 10_000:
                    formatted.clear()
                formatted[key] = ids.format_national_id(ids.IdType(id_type), national_id)
            got = int(paid_minor)
            count += 1
            yield [
                ref,
                formatted[key],
                name,
                concept,
                issued,
                due,
                money.from_minor(amount, currency),
                money.from_minor(got, currency),
                money.from_minor(amount - got if status in payable else 0, currency),
                currency,
                status,
            ]

    write_table(EXPORT_HEADERS, rows(), str(fmt), out)
    return count


# --- one customer ------------------------------------------------------------------------

CUSTOMER_PAYMENTS = 100


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customer: CustomerView
    open_debts: list[DebtView]  # open and in payment, by due date
    other_debts: list[DebtView]  # paid, cancelled, written off, replaced; latest due first
    payments: list[PaymentView]  # newest first, with their allocations
    payments_total: int
    commitments: list[commitments.CommitmentView]


def customer_page(uow: UnitOfWork, company_id: int, customer_id: int) -> CustomerPage:
    """The customer with their debts, payments (newest 100), credit and commitments."""
    customer = get_customer(uow, company_id, customer_id)  # NotFound for another company's
    rows = uow.session.execute(
        select(Debt, paid_of_debt())
        .where(Debt.company_id == company_id, Debt.customer_id == customer_id)
        .order_by(Debt.due_date, Debt.id)
    )
    debts = [debt_view(d, int(p)) for d, p in rows]
    payable = {s.value for s in PAYABLE}
    open_debts = [d for d in debts if d.status in payable]
    other_debts = [d for d in reversed(debts) if d.status not in payable]
    stmt = select(Payment).where(
        Payment.company_id == company_id, Payment.customer_id == customer_id
    )
    total = _count(uow.session, stmt.with_only_columns(Payment.id))
    payments = [
        payment_view(uow.session, p)
        for p in uow.session.scalars(
            stmt.order_by(Payment.paid_at.desc(), Payment.id.desc()).limit(CUSTOMER_PAYMENTS)
        )
    ]
    plans = commitments.list_commitments(
        uow,
        company_id,
        commitments.CommitmentFilter(customer_id=customer_id),
        paging=Paging(page_size=100),
    )
    return CustomerPage(customer, open_debts, other_debts, payments, total, plans.items)
