"""Read models: what the edges show of companies, customers, debts, payments and audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True, slots=True)
class CompanyView:
    id: int
    slug: str
    legal_name: str
    tax_id: str | None
    country: str
    currency: str
    timezone: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: int
    id_type: str
    national_id: str
    national_id_formatted: str
    name: str
    email: str | None
    phone: str | None
    currency: str
    open_total: Decimal
    credit_balance: Decimal
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DebtView:
    id: int
    debt_id: str  # the company's own id (invoice / boleta number)
    customer_id: int
    concept: str | None
    amount: Decimal
    paid: Decimal
    open_amount: Decimal
    currency: str
    issue_date: date | None
    due_date: date
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AllocationView:
    debt: int
    debt_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: int
    customer_id: int | None
    channel: str
    method: str
    external_id: str
    amount: Decimal
    currency: str
    paid_at: datetime
    status: str
    allocated: Decimal
    credit: Decimal
    exception_reason: str | None
    reversal_reason: str | None
    reversed_at: datetime | None
    recorded_by: str
    created_at: datetime
    allocations: list[AllocationView] = field(default_factory=list)
    # Bank channel payments: the agreement (and its channel) and the accounting date.
    agreement_id: int | None = None
    agreement_channel: str | None = None
    accounting_date: date | None = None


@dataclass(frozen=True, slots=True)
class AuditEventView:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
