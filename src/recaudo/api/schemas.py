"""The admin API's JSON: request bodies and responses.

Amounts travel as strings at the currency's scale ("1500" in CLP, "12.50" in EUR) next
to a `currency` field, so that no client ever parses money into a float; timestamps are
ISO 8601 in UTC, dates ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from recaudo.domain.payments import PaymentMethod
from recaudo.services.imports import ImportIssueView, ImportReport
from recaudo.services.views import (
    AllocationView,
    AuditEventView,
    CompanyView,
    CustomerView,
    DebtView,
    PaymentView,
)

# Largest id a database row can have (a signed 64-bit column): bigger ids would not
# even reach the query on PostgreSQL, they would overflow in the driver.
MAX_ID = 2**63 - 1


def _storable(text: object) -> object:
    """Refuse text no database column can hold: NUL bytes and lone surrogates."""
    if not isinstance(text, str):
        return text  # not text at all: the type check that follows says so
    if "\x00" in text:
        raise ValueError("text may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode") from None
    return text


# Each alias puts its length limits before the check, so that pydantic reports them in
# its usual words ("at most 100 characters") rather than as a post-validation length.
Key = Annotated[str, Field(min_length=1, max_length=100), BeforeValidator(_storable)]
DebtRef = Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_storable)]
NationalIdText = Annotated[str, Field(max_length=30), BeforeValidator(_storable)]
IdTypeText = Annotated[str, Field(max_length=8), BeforeValidator(_storable)]
Reason = Annotated[str, Field(min_length=1, max_length=500), BeforeValidator(_storable)]
# Filters in query strings, by their longest useful value.
Text32 = Annotated[str, Field(max_length=32), BeforeValidator(_storable)]
Text64 = Annotated[str, Field(max_length=64), BeforeValidator(_storable)]
Text100 = Annotated[str, Field(max_length=100), BeforeValidator(_storable)]


def _in_utc(value: datetime) -> datetime:
    # A payment just applied still carries the offset its client sent; what was read
    # back from the database is UTC. Answers are always UTC.
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_in_utc)]
AmountText = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}([.,][0-9]{1,8})?$",
        examples=["15000", "12.50"],
        description="A positive decimal amount as a string, at most the currency's decimals.",
    ),
]


def amount(value: Decimal) -> str:
    # Fixed-point text: `str()` could turn a Decimal into scientific notation.
    return format(value, "f")


class Strict(BaseModel):
    # Unknown members are refused: a typo in `debt_ids` must not pay the oldest debts.
    model_config = ConfigDict(extra="forbid")


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int = Field(description="How many items match, over all pages.")
    page: int
    page_size: int


# --- problems --------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem; `code` is the stable, machine-readable kind."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    errors: list[FieldError] | None = None


# --- companies -------------------------------------------------------------------------


class CompanyOut(BaseModel):
    id: int
    slug: str
    legal_name: str
    tax_id: str | None
    country: str
    currency: str
    timezone: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, view: CompanyView) -> CompanyOut:
        return cls(
            id=view.id,
            slug=view.slug,
            legal_name=view.legal_name,
            tax_id=view.tax_id,
            country=view.country,
            currency=view.currency,
            timezone=view.timezone,
            created_at=view.created_at,
        )


# --- customers and debts ---------------------------------------------------------------


class CustomerOut(BaseModel):
    id: int
    id_type: str
    national_id: str = Field(description="Canonical compact form (no dots or hyphens).")
    national_id_formatted: str
    name: str
    email: str | None
    phone: str | None
    currency: str
    open_total: str = Field(description="What the customer owes on open debts.")
    credit_balance: str = Field(description="Money received that no debt has taken yet.")
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, view: CustomerView) -> CustomerOut:
        return cls(
            id=view.id,
            id_type=view.id_type,
            national_id=view.national_id,
            national_id_formatted=view.national_id_formatted,
            name=view.name,
            email=view.email,
            phone=view.phone,
            currency=view.currency,
            open_total=amount(view.open_total),
            credit_balance=amount(view.credit_balance),
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class DebtOut(BaseModel):
    id: int
    debt_id: str = Field(description="The company's own id of the debt (invoice number).")
    customer_id: int
    concept: str | None
    amount: str
    paid: str
    open_amount: str
    currency: str
    issue_date: date | None
    due_date: date
    status: str
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, view: DebtView) -> DebtOut:
        return cls(
            id=view.id,
            debt_id=view.debt_id,
            customer_id=view.customer_id,
            concept=view.concept,
            amount=amount(view.amount),
            paid=amount(view.paid),
            open_amount=amount(view.open_amount),
            currency=view.currency,
            issue_date=view.issue_date,
            due_date=view.due_date,
            status=view.status,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


# --- payments --------------------------------------------------------------------------


class AllocationOut(BaseModel):
    debt: int = Field(description="Id of the debt in this API (`/debts/{id}`).")
    debt_id: str = Field(description="The company's own id of the debt.")
    amount: str

    @classmethod
    def of(cls, view: AllocationView) -> AllocationOut:
        return cls(debt=view.debt, debt_id=view.debt_id, amount=amount(view.amount))


class PaymentOut(BaseModel):
    id: int
    customer_id: int | None
    channel: str
    method: str
    external_id: str = Field(
        description="The channel's transaction id; for the office, the idempotency key."
    )
    amount: str
    currency: str
    paid_at: UtcDatetime
    status: str
    allocated: str
    credit: str = Field(description="The part of the amount that became customer credit.")
    exception_reason: str | None
    reversal_reason: str | None
    reversed_at: UtcDatetime | None
    recorded_by: str
    created_at: UtcDatetime
    allocations: list[AllocationOut]
    agreement_id: int | None = Field(description="The bank channel agreement, if any.")
    agreement_channel: str | None = Field(description="`caja-vecina` or `internet`.")
    transaccion: str | None = Field(
        description="The bank's transaction id (`transaccion`) for bank channel payments."
    )
    accounting_date: date | None = Field(
        description="The business day the payment belongs to (bank cut-off applied)."
    )

    @classmethod
    def of(cls, view: PaymentView) -> PaymentOut:
        return cls(**cls._fields(view))

    @staticmethod
    def _fields(view: PaymentView) -> dict[str, Any]:
        return {
            "id": view.id,
            "customer_id": view.customer_id,
            "channel": view.channel,
            "method": view.method,
            "external_id": view.external_id,
            "amount": amount(view.amount),
            "currency": view.currency,
            "paid_at": view.paid_at,
            "status": view.status,
            "allocated": amount(view.allocated),
            "credit": amount(view.credit),
            "exception_reason": view.exception_reason,
            "reversal_reason": view.reversal_reason,
            "reversed_at": view.reversed_at,
            "recorded_by": view.recorded_by,
            "created_at": view.created_at,
            "allocations": [AllocationOut.of(a) for a in view.allocations],
            "agreement_id": view.agreement_id,
            "agreement_channel": view.agreement_channel,
            "transaccion": view.external_id if view.agreement_id is not None else None,
            "accounting_date": view.accounting_date,
        }


class PaymentApplied(PaymentOut):
    replayed: bool = Field(
        description="True when this idempotency key was already used: nothing changed."
    )

    @classmethod
    def applied(cls, view: PaymentView, *, replayed: bool) -> PaymentApplied:
        return cls(**cls._fields(view), replayed=replayed)


class PaymentIn(Strict):
    """An office payment: money a cashier received from one customer."""

    # Strict: a JSON string "12" is a client bug here, not an id.
    customer_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] | None = Field(
        default=None, description="Give this or `national_id`."
    )
    national_id: NationalIdText | None = Field(
        default=None, description="Any formatting: `12.345.678-5`, `12345678-5`, `123456785`."
    )
    id_type: IdTypeText | None = Field(
        default=None, description="Type of `national_id` when not the country's default."
    )
    amount: AmountText
    method: PaymentMethod
    debt_ids: list[DebtRef] = Field(
        default_factory=list,
        max_length=500,
        description="The company's own debt ids to pay, in order; oldest due first if empty.",
    )
    idempotency_key: Key | None = Field(
        default=None, description="Or the `Idempotency-Key` header: one payment per key."
    )
    paid_at: AwareDatetime | None = Field(
        default=None, description="When the money was received (with offset); now if absent."
    )

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        if (self.customer_id is None) == (self.national_id is None):
            raise ValueError("give exactly one of customer_id and national_id")
        return self


class ReverseIn(Strict):
    reason: Reason


# --- imports -------------------------------------------------------------------------


class ImportIssueOut(BaseModel):
    kind: str = Field(description="`rejected` (the row was not imported) or `conflict`.")
    row_number: int
    column: str | None
    debt_external_id: str | None
    reason: str

    @classmethod
    def of(cls, issue: ImportIssueView) -> ImportIssueOut:
        return cls(
            kind=issue.kind,
            row_number=issue.row_number,
            column=issue.column,
            debt_external_id=issue.debt_external_id,
            reason=issue.reason,
        )


class ImportReportOut(BaseModel):
    import_id: int | None
    status: str = Field(description="`completed`, `rejected` or `duplicate`.")
    file_name: str | None
    file_sha256: str
    mode: str
    skip_invalid: bool
    rows_total: int
    added: int
    updated: int
    unchanged: int
    cancelled: int
    conflicts: int
    rejected: int
    customers_added: int
    duplicate_of: int | None = Field(description="For a duplicate: the import of that file.")
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    actor: str
    issues: list[ImportIssueOut]

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            import_id=report.import_id,
            status=report.status,
            file_name=report.file_name,
            file_sha256=report.file_sha256,
            mode=str(report.mode),
            skip_invalid=report.skip_invalid,
            rows_total=report.rows_total,
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            cancelled=report.cancelled,
            conflicts=report.conflicts,
            rejected=report.rejected,
            customers_added=report.customers_added,
            duplicate_of=report.duplicate_of,
            started_at=report.started_at,
            finished_at=report.finished_at,
            actor=report.actor,
            issues=[ImportIssueOut.of(i) for i in report.issues],
        )


# --- audit -----------------------------------------------------------------------------


class AuditEventOut(BaseModel):
    id: int
    occurred_at: UtcDatetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, view: AuditEventView) -> AuditEventOut:
        return cls(
            id=view.id,
            occurred_at=view.occurred_at,
            actor=view.actor,
            action=view.action,
            entity_type=view.entity_type,
            entity_id=view.entity_id,
            before=view.before,
            after=view.after,
        )


# --- health ----------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str
