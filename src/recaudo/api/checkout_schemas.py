"""JSON of the checkout API: services, reference fields, and the company-application API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from recaudo.api.schemas import MAX_ID, AmountText, Strict, UtcDatetime, _storable
from recaudo.domain import money
from recaudo.services.checkout import FieldView, ServiceView
from recaudo.services.checkout_payments import TransactionView

Text100 = Annotated[str, Field(max_length=100), BeforeValidator(_storable)]
Text500 = Annotated[str, Field(max_length=500), BeforeValidator(_storable)]
Url = Annotated[str, Field(max_length=500, pattern=r"^https?://"), BeforeValidator(_storable)]
Means = Literal["PSE", "CARD"]


def shown(minor: int | None, currency: str) -> str | None:
    return None if minor is None else format(money.from_minor(minor, currency), "f")


def to_minor(text: str | None, currency: str) -> int | None:
    if text is None:
        return None
    return money.to_minor(money.parse_amount(text, currency), currency)


class ListItemIn(Strict):
    code: Text100 = Field(min_length=1)
    label: Text100 = Field(min_length=1)
    price: AmountText | None = Field(default=None, description="For price lists.")
    parent: Text100 | None = Field(
        default=None, description="Related lists: the parent list item's code."
    )


class FieldIn(Strict):
    title: Text100 = Field(min_length=1, examples=["Documento"])
    kind: Literal[
        "text", "integer", "currency", "email", "customer_id", "customer_id_type", "constant"
    ] = "text"
    help_text: Text500 | None = None
    prefix: Annotated[str, Field(max_length=50), BeforeValidator(_storable)] | None = None
    display_length: int = Field(default=30, ge=1, le=100)
    list_kind: Literal["text", "price", "currency"] | None = None
    list_items: list[ListItemIn] = Field(default_factory=list, max_length=5000)


class ListItemOut(BaseModel):
    code: str
    label: str
    price: str | None
    parent: str | None


class FieldOut(BaseModel):
    id: int
    title: str
    kind: str
    help_text: str | None
    prefix: str | None
    display_length: int
    list_kind: str | None
    list_items: list[ListItemOut]

    @classmethod
    def of(cls, v: FieldView, currency: str) -> FieldOut:
        return cls(
            id=v.id,
            title=v.title,
            kind=v.kind,
            help_text=v.help_text,
            prefix=v.prefix,
            display_length=v.display_length,
            list_kind=v.list_kind,
            list_items=[
                ListItemOut(
                    code=i.code,
                    label=i.label,
                    price=shown(i.price_minor, currency),
                    parent=i.parent,
                )
                for i in v.list_items
            ],
        )


class AttachIn(Strict):
    field_id: int = Field(ge=1, le=MAX_ID)
    required: bool = False
    upper_case: bool = False
    hidden: bool = False
    read_only: bool = False
    fixed_value: Text100 | None = None
    forced_length: Annotated[str, Field(max_length=100), BeforeValidator(_storable)] | None = Field(
        default=None, description="eCollect notation: `n`, `-n`, `n-m` or `n,m,p`."
    )
    double_payment_control: bool = False
    related_field_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ServiceFieldOut(BaseModel):
    position: int
    field: FieldOut
    required: bool
    upper_case: bool
    hidden: bool
    read_only: bool
    fixed_value: str | None
    forced_length: str | None
    double_payment_control: bool
    related_field_id: int | None


class PriceIn(Strict):
    code: Annotated[str, Field(min_length=1, max_length=30), BeforeValidator(_storable)]
    label: Text100 = Field(min_length=1)
    amount: AmountText


class PriceOut(BaseModel):
    code: str
    label: str
    amount: str


class ServiceParams(Strict):
    """A service's parameters (eCollect's "Parámetros servicio")."""

    name: Annotated[str, Field(min_length=1, max_length=200), BeforeValidator(_storable)] | None = (
        None
    )
    section: Text100 | None = None
    category: Text100 | None = None
    active: bool | None = None
    active_from: date | None = None
    active_until: date | None = None
    price_kind: Literal["fixed", "list", "open", "portfolio"] | None = None
    fixed_price: AmountText | None = None
    min_amount: AmountText | None = None
    vat_percent: Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?$")] | None = None
    accepted_means: list[Means] | None = Field(default=None, min_length=1)
    partial_payment: bool | None = None
    overdue_days: int | None = Field(default=None, ge=0, le=3650)
    max_retries: int | None = Field(default=None, ge=0, le=100)
    daily_attempt_limit: int | None = Field(default=None, ge=1, le=10000)
    daily_amount_limits: dict[Means, AmountText] | None = None
    double_payment: Literal["off", "refuse", "warn"] | None = None
    email_payer: bool | None = None
    company_email: Annotated[str, Field(max_length=254), BeforeValidator(_storable)] | None = None
    message_before: Text500 | None = None
    message_after: Text500 | None = None
    redirect_url: Url | None = None
    confirmation_url: Url | None = None
    informative_only: bool | None = None
    assigns_pins: bool | None = None
    allows_coupon: bool | None = None
    timeout_minutes: int | None = Field(default=None, ge=1, le=10080)


class ServiceIn(ServiceParams):
    code: Annotated[str, Field(min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200), BeforeValidator(_storable)]


class ServiceOut(BaseModel):
    id: int
    code: str
    name: str
    section: str | None
    category: str | None
    active: bool
    active_from: date | None
    active_until: date | None
    price_kind: str
    fixed_price: str | None
    min_amount: str | None
    currency: str
    vat_percent: str
    accepted_means: list[str]
    partial_payment: bool
    overdue_days: int | None
    max_retries: int
    daily_attempt_limit: int | None
    daily_amount_limits: dict[str, str]
    double_payment: str
    email_payer: bool
    company_email: str | None
    message_before: str | None
    message_after: str | None
    redirect_url: str | None
    confirmation_url: str | None
    informative_only: bool
    assigns_pins: bool
    allows_coupon: bool
    timeout_minutes: int
    fields: list[ServiceFieldOut]
    prices: list[PriceOut]
    pins_total: int
    pins_free: int

    @classmethod
    def of(cls, v: ServiceView) -> ServiceOut:
        c = v.currency
        return cls(
            id=v.id,
            code=v.code,
            name=v.name,
            section=v.section,
            category=v.category,
            active=v.active,
            active_from=v.active_from,
            active_until=v.active_until,
            price_kind=v.price_kind,
            fixed_price=shown(v.fixed_price_minor, c),
            min_amount=shown(v.min_amount_minor, c),
            currency=c,
            vat_percent=f"{v.vat_basis_points / 100:.2f}",
            accepted_means=list(v.accepted_means),
            partial_payment=v.partial_payment,
            overdue_days=v.overdue_days,
            max_retries=v.max_retries,
            daily_attempt_limit=v.daily_attempt_limit,
            daily_amount_limits={k: shown(m, c) or "0" for k, m in v.daily_amount_limits.items()},
            double_payment=v.double_payment,
            email_payer=v.email_payer,
            company_email=v.company_email,
            message_before=v.message_before,
            message_after=v.message_after,
            redirect_url=v.redirect_url,
            confirmation_url=v.confirmation_url,
            informative_only=v.informative_only,
            assigns_pins=v.assigns_pins,
            allows_coupon=v.allows_coupon,
            timeout_minutes=v.timeout_minutes,
            fields=[
                ServiceFieldOut(
                    position=f.position,
                    field=FieldOut.of(f.field, c),
                    required=f.required,
                    upper_case=f.upper_case,
                    hidden=f.hidden,
                    read_only=f.read_only,
                    fixed_value=f.fixed_value,
                    forced_length=f.forced_length,
                    double_payment_control=f.double_payment_control,
                    related_field_id=f.related_field_id,
                )
                for f in v.fields
            ],
            prices=[
                PriceOut(code=p.code, label=p.label, amount=shown(p.amount_minor, c) or "0")
                for p in v.price_items
            ],
            pins_total=v.pins_total,
            pins_free=v.pins_free,
        )


class PinsIn(Strict):
    pins: list[Annotated[str, Field(min_length=1, max_length=100), BeforeValidator(_storable)]] = (
        Field(min_length=1, max_length=100_000)
    )


class SecretOut(BaseModel):
    secret: str = Field(description="HMAC-SHA256 key of the `Recaudo-Signature` header.")


class TransactionIn(Strict):
    """What the company's application sends to start a payment (eCollect's web service)."""

    service_code: Annotated[str, Field(min_length=1, max_length=30), BeforeValidator(_storable)] = (
        Field(examples=["MAT"])
    )
    references: list[Annotated[str, Field(max_length=100), BeforeValidator(_storable)]] = Field(
        max_length=50,
        description="The references' values in the service's order.",
        examples=[["CC", "1020304050", "202601"]],
    )
    amount: AmountText | None = Field(
        default=None, description="Amount before tax; omitted for fixed-price services."
    )
    vat: AmountText | None = Field(
        default=None, description="The tax; checked against the service's VAT."
    )
    currency: Annotated[str, Field(min_length=3, max_length=3), BeforeValidator(_storable)] = Field(
        examples=["COP"]
    )
    payer_email: Annotated[str, Field(max_length=254), BeforeValidator(_storable)] | None = None
    redirect_url: Url | None = Field(
        default=None, description="Where the payer goes back once the transaction is final."
    )
    confirmation_url: Url | None = Field(
        default=None,
        description="Where Recaudo POSTs the final state (signed; retried until a 2xx).",
    )


class TransactionOut(BaseModel):
    return_code: str = Field(description="`OK` when the ticket was created.")
    ticket_id: int
    state: str
    payment_url: str = Field(description="The hosted payment page to send the payer to.")
    service_code: str
    references: list[str]
    amount: str
    vat: str
    currency: str
    means: str | None
    bank: str | None
    trace_code: str | None
    pin: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None

    @classmethod
    def of(cls, v: TransactionView, base_url: str) -> TransactionOut:
        return cls(
            return_code="OK",
            ticket_id=v.ticket,
            state=v.state,
            payment_url=f"{base_url.rstrip('/')}/pagar/t/{v.token}",
            service_code=v.service_code,
            references=[value for _, value in v.references],
            amount=shown(v.amount_minor, v.currency) or "0",
            vat=shown(v.vat_minor, v.currency) or "0",
            currency=v.currency,
            means=v.means,
            bank=v.bank,
            trace_code=v.trace_code,
            pin=v.pin,
            created_at=v.created_at,
            finished_at=v.finished_at,
        )
