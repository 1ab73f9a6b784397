"""The read side: listings and details, always scoped to one company."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from recaudo.adapters.db.tables import (
    AuditEvent,
    ChannelAgreement,
    Company,
    CreditEntry,
    Customer,
    Debt,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.domain.debts import PAYABLE, DebtStatus
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.domain.payments import PaymentStatus
from recaudo.services.balances import credit_balance, paid_of_debt
from recaudo.services.customers import resolve_national_id
from recaudo.services.views import (
    AllocationView,
    AuditEventView,
    CompanyView,
    CustomerView,
    DebtView,
    Page,
    PaymentView,
)

MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Paging:
    page: int = 1
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValidationFailed("page must be 1 or more", field="page")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValidationFailed(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
            )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _count(session: Session, stmt: Select[int]) -> int:
    return int(
        session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )


def company_view(company: Company) -> CompanyView:
    return CompanyView(
        company.id,
        company.slug,
        company.legal_name,
        company.tax_id,
        company.country,
        company.currency,
        company.timezone,
        company.created_at,
    )


def get_company(uow: UnitOfWork, company_id: int) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}")
    return company


def list_companies(uow: UnitOfWork, company_id: int | None) -> list[CompanyView]:
    """All companies for an unbound actor, only its own for a key bound to one."""
    stmt = select(Company).order_by(Company.id)
    if company_id is not None:
        stmt = stmt.where(Company.id == company_id)
    return [company_view(c) for c in uow.session.scalars(stmt)]


# --- customers -------------------------------------------------------------------------


def _open_totals(session: Session, customer_ids: list[int]) -> dict[int, int]:
    if not customer_ids:
        return {}
    rows = session.execute(
        select(Debt.customer_id, func.sum(Debt.amount_minor - paid_of_debt()))
        .where(Debt.customer_id.in_(customer_ids), Debt.status.in_([s.value for s in PAYABLE]))
        .group_by(Debt.customer_id)
    )
    return {cid: int(total) for cid, total in rows}


def _credits(session: Session, customer_ids: list[int]) -> dict[int, int]:
    if not customer_ids:
        return {}
    rows = session.execute(
        select(CreditEntry.customer_id, func.sum(CreditEntry.amount_minor))
        .where(CreditEntry.customer_id.in_(customer_ids))
        .group_by(CreditEntry.customer_id)
    )
    return {cid: int(total) for cid, total in rows}


def _customer_view(c: Customer, currency: str, open_minor: int, credit_minor: int) -> CustomerView:
    return CustomerView(
        id=c.id,
        id_type=c.id_type,
        national_id=c.national_id,
        national_id_formatted=ids.format_national_id(ids.IdType(c.id_type), c.national_id),
        name=c.name,
        email=c.email,
        phone=c.phone,
        currency=currency,
        open_total=money.from_minor(open_minor, currency),
        credit_balance=money.from_minor(credit_minor, currency),
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def list_customers(
    uow: UnitOfWork,
    company_id: int,
    *,
    national_id: str | None = None,
    q: str | None = None,
    paging: Paging = Paging(),
) -> Page[CustomerView]:
    """Find customers by national id (any formatting, any of the country's types) or name."""
    company = get_company(uow, company_id)
    stmt = select(Customer).where(Customer.company_id == company_id)
    if national_id:
        candidates = []
        for kind in ids.COUNTRY_ID_TYPES[company.country]:
            try:
                candidates.append(
                    resolve_national_id(company.country, national_id, kind.value).value
                )
            except ValidationFailed:
                continue
        if not candidates:
            raise ValidationFailed(
                f"{national_id!r} is not a valid national id", field="national_id"
            )
        stmt = stmt.where(Customer.national_id.in_(candidates))
    if q:
        words = q.split()
        if len(q) > 100 or not words:
            raise ValidationFailed("search text must have 1 to 100 characters", field="q")
        for word in words:
            pattern = f"%{word.lower().replace('%', '').replace('_', '')}%"
            stmt = stmt.where(
                or_(func.lower(Customer.name).like(pattern), Customer.national_id.like(pattern))
            )
    total = _count(uow.session, stmt.with_only_columns(Customer.id))
    rows = list(
        uow.session.scalars(
            stmt.order_by(Customer.id).offset(paging.offset).limit(paging.page_size)
        )
    )
    ids_ = [c.id for c in rows]
    opens, credits = _open_totals(uow.session, ids_), _credits(uow.session, ids_)
    items = [
        _customer_view(c, company.currency, opens.get(c.id, 0), credits.get(c.id, 0)) for c in rows
    ]
    return Page(items, total, paging.page, paging.page_size)


def get_customer(uow: UnitOfWork, company_id: int, customer_id: int) -> CustomerView:
    company = get_company(uow, company_id)
    customer = uow.session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.company_id == company_id)
    )
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return _customer_view(
        customer,
        company.currency,
        _open_totals(uow.session, [customer.id]).get(customer.id, 0),
        credit_balance(uow.session, customer.id),
    )


# --- debts -----------------------------------------------------------------------------


def _debt_select(company_id: int) -> Select[Debt, int]:
    return select(Debt, paid_of_debt()).where(Debt.company_id == company_id)


def debt_view(debt: Debt, paid_minor: int) -> DebtView:
    currency = debt.currency
    open_minor = debt.amount_minor - paid_minor if DebtStatus(debt.status) in PAYABLE else 0
    return DebtView(
        id=debt.id,
        debt_id=debt.external_id,
        customer_id=debt.customer_id,
        concept=debt.concept,
        amount=money.from_minor(debt.amount_minor, currency),
        paid=money.from_minor(paid_minor, currency),
        open_amount=money.from_minor(open_minor, currency),
        currency=currency,
        issue_date=debt.issue_date,
        due_date=debt.due_date,
        status=debt.status,
        created_at=debt.created_at,
        updated_at=debt.updated_at,
    )


def _debt_filters(
    stmt: Select[Debt, int],
    customer_id: int | None,
    status: str | None,
    due_before: date | None,
) -> Select[Debt, int]:
    if customer_id is not None:
        stmt = stmt.where(Debt.customer_id == customer_id)
    if status is not None:
        try:
            stmt = stmt.where(Debt.status == DebtStatus(status).value)
        except ValueError:
            known = ", ".join(s.value for s in DebtStatus)
            raise ValidationFailed(
                f"unknown status {status!r} (one of {known})", field="status"
            ) from None
    if due_before is not None:
        stmt = stmt.where(Debt.due_date < due_before)
    return stmt


def list_debts(
    uow: UnitOfWork,
    company_id: int,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    due_before: date | None = None,
    paging: Paging = Paging(),
) -> Page[DebtView]:
    get_company(uow, company_id)
    stmt = _debt_filters(_debt_select(company_id), customer_id, status, due_before)
    total = _count(uow.session, stmt.with_only_columns(Debt.id))
    rows = uow.session.execute(
        stmt.order_by(Debt.due_date, Debt.id).offset(paging.offset).limit(paging.page_size)
    )
    return Page([debt_view(d, int(p)) for d, p in rows], total, paging.page, paging.page_size)


def get_debt(uow: UnitOfWork, company_id: int, debt_id: int) -> DebtView:
    row = uow.session.execute(_debt_select(company_id).where(Debt.id == debt_id)).first()
    if row is None:
        raise NotFound(f"no debt {debt_id}")
    debt, paid = row
    return debt_view(debt, int(paid))


def iter_debts(
    uow: UnitOfWork, company_id: int, *, status: str | None = None, customer_id: int | None = None
) -> Iterator[tuple[DebtView, Customer]]:
    """Every debt with its customer, streamed in id order (for exports of any size)."""
    get_company(uow, company_id)
    stmt = _debt_filters(_debt_select(company_id), customer_id, status, None)
    with_customer = (
        stmt.add_columns(Customer).join(Customer, Customer.id == Debt.customer_id).order_by(Debt.id)
    )
    for debt, paid, customer in uow.session.execute(
        with_customer.execution_options(yield_per=2000)
    ):
        yield debt_view(debt, int(paid)), customer


# --- payments --------------------------------------------------------------------------


def payment_view(session: Session, payment: Payment) -> PaymentView:
    currency = payment.currency
    debt_ids = [a.debt_id for a in payment.allocations]
    refs: dict[int, str] = {
        debt_id: ref
        for debt_id, ref in session.execute(
            select(Debt.id, Debt.external_id).where(Debt.id.in_(debt_ids))
        )
    }
    allocated = sum(a.amount_minor for a in payment.allocations)
    credit = session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount_minor), 0)).where(
            CreditEntry.payment_id == payment.id, CreditEntry.reason == "overpayment"
        )
    )
    agreement_channel = (
        session.scalar(
            select(ChannelAgreement.channel).where(ChannelAgreement.id == payment.agreement_id)
        )
        if payment.agreement_id is not None
        else None
    )
    return PaymentView(
        id=payment.id,
        customer_id=payment.customer_id,
        channel=payment.channel,
        method=payment.method,
        external_id=payment.external_id,
        amount=money.from_minor(payment.amount_minor, currency),
        currency=currency,
        paid_at=payment.paid_at,
        status=payment.status,
        allocated=money.from_minor(allocated, currency),
        credit=money.from_minor(int(credit or 0), currency),
        exception_reason=payment.exception_reason,
        reversal_reason=payment.reversal_reason,
        reversed_at=payment.reversed_at,
        recorded_by=payment.recorded_by,
        created_at=payment.created_at,
        allocations=[
            AllocationView(a.debt_id, refs[a.debt_id], money.from_minor(a.amount_minor, currency))
            for a in payment.allocations
        ],
        agreement_id=payment.agreement_id,
        agreement_channel=agreement_channel,
        accounting_date=payment.accounting_date,
    )


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    customer_id: int | None = None
    status: str | None = None
    channel: str | None = None
    method: str | None = None
    external_id: str | None = None
    paid_from: datetime | None = None
    paid_to: datetime | None = None


def list_payments(
    uow: UnitOfWork,
    company_id: int,
    filters: PaymentFilter = PaymentFilter(),
    *,
    paging: Paging = Paging(),
) -> Page[PaymentView]:
    get_company(uow, company_id)
    stmt = select(Payment).where(Payment.company_id == company_id)
    if filters.customer_id is not None:
        stmt = stmt.where(Payment.customer_id == filters.customer_id)
    if filters.status is not None:
        try:
            stmt = stmt.where(Payment.status == PaymentStatus(filters.status).value)
        except ValueError:
            raise ValidationFailed(
                f"unknown payment status {filters.status!r}", field="status"
            ) from None
    if filters.channel:
        stmt = stmt.where(Payment.channel == filters.channel)
    if filters.method:
        stmt = stmt.where(Payment.method == filters.method)
    if filters.external_id:
        stmt = stmt.where(Payment.external_id == filters.external_id)
    if filters.paid_from is not None:
        stmt = stmt.where(Payment.paid_at >= filters.paid_from)
    if filters.paid_to is not None:
        stmt = stmt.where(Payment.paid_at < filters.paid_to)
    total = _count(uow.session, stmt.with_only_columns(Payment.id))
    rows = uow.session.scalars(
        stmt.order_by(Payment.paid_at.desc(), Payment.id.desc())
        .offset(paging.offset)
        .limit(paging.page_size)
    )
    return Page([payment_view(uow.session, p) for p in rows], total, paging.page, paging.page_size)


def get_payment(uow: UnitOfWork, company_id: int, payment_id: int) -> PaymentView:
    payment = uow.session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.company_id == company_id)
    )
    if payment is None:
        raise NotFound(f"no payment {payment_id}")
    return payment_view(uow.session, payment)


# --- audit -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    entity_type: str | None = None
    entity_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_audit_events(
    uow: UnitOfWork,
    company_id: int,
    filters: AuditFilter = AuditFilter(),
    *,
    paging: Paging = Paging(),
) -> Page[AuditEventView]:
    stmt = select(AuditEvent).where(AuditEvent.company_id == company_id)
    if filters.entity_type:
        stmt = stmt.where(AuditEvent.entity_type == filters.entity_type)
    if filters.entity_id:
        stmt = stmt.where(AuditEvent.entity_id == filters.entity_id)
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    total = _count(uow.session, stmt.with_only_columns(AuditEvent.id))
    rows = uow.session.scalars(
        stmt.order_by(AuditEvent.id).offset(paging.offset).limit(paging.page_size)
    )
    items = [
        AuditEventView(
            e.id, e.occurred_at, e.actor, e.action, e.entity_type, e.entity_id, e.before, e.after
        )
        for e in rows
    ]
    return Page(items, total, paging.page, paging.page_size)
