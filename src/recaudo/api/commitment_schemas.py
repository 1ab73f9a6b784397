"""Request and response bodies of the commitments, commitment payments, creditor accounts
and commitment settings endpoints."""

from __future__ import annotations

from datetime import date
from datetime import time as LocalTime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from recaudo.api.schemas import MAX_ID, AmountText, Strict, UtcDatetime, _storable, amount
from recaudo.domain.errors import ValidationFailed
from recaudo.services import commitments as svc
from recaudo.services import creditor_accounts as accounts

Kind = Literal["fee", "donation", "in_kind", "services"]
Method = Literal[
    "direct_debit",
    "card",
    "bizum",
    "paypal",
    "transfer_received",
    "transfer_issued",
    "cash",
    "cheque",
    "in_kind",
]
Periodicity = Literal["one_off", "monthly", "bimonthly", "quarterly", "semiannual", "annual"]
Direction = Literal["income", "expense"]
Scheme = Literal["CORE", "B2B"]
PaymentStatus = Literal[
    "not_remitted",
    "remitted",
    "pending",
    "paid",
    "cancelled",
    "to_recover",
    "unpaid",
    "duplicate",
    "card_rejected",
]
Concept = Annotated[str, Field(min_length=1, max_length=140), BeforeValidator(_storable)]
Label50 = Annotated[str, Field(max_length=50), BeforeValidator(_storable)]
Label100 = Annotated[str, Field(max_length=100), BeforeValidator(_storable)]
IbanText = Annotated[str, Field(min_length=1, max_length=42), BeforeValidator(_storable)]
BicText = Annotated[str, Field(max_length=11), BeforeValidator(_storable)]
EmailText = Annotated[str, Field(max_length=254), BeforeValidator(_storable)]
CardExpiry = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2028-07"])]
CustomerRef = Annotated[int, Field(ge=1, le=MAX_ID)]
EndReason = Annotated[str, Field(min_length=1, max_length=200), BeforeValidator(_storable)]


class CommitmentIn(Strict):
    payer_customer_id: CustomerRef = Field(description="The customer who pays.")
    beneficiary_customer_id: CustomerRef | None = Field(
        default=None, description="Another customer the payment is made for."
    )
    beneficiary_label: Label100 | None = Field(
        default=None, description="Or a project the payment is made for."
    )
    kind: Kind
    method: Method
    periodicity: Periodicity
    amount: AmountText = Field(description="Per payment, at the currency's scale.")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, description="Default: the company's currency."
    )
    first_payment_on: date
    ends_on: date | None = Field(default=None, description="Inclusive; none: open-ended.")
    concept: Concept = Field(description="Shown on the receipt (SEPA remittance information).")
    direction: Direction = "income"
    channel_label: Label50 | None = None
    campaign_label: Label50 | None = None
    iban: IbanText | None = Field(
        default=None, description="Required for direct_debit (payer) and transfer_issued (payee)."
    )
    bic: BicText | None = None
    mandate_signed_on: date | None = Field(
        default=None, description="Direct debit: the mandate's signature date (default today)."
    )
    mandate_scheme: Scheme = "CORE"
    card_token: Label100 | None = Field(
        default=None, description="Card: the gateway's token (required when recurring)."
    )
    card_expiry: CardExpiry | None = None
    responsible_email: EmailText | None = None

    def to_service(self) -> svc.NewCommitment:
        return svc.NewCommitment(
            payer_customer_id=self.payer_customer_id,
            kind=self.kind,
            method=self.method,
            periodicity=self.periodicity,
            amount=self.amount,
            first_payment_on=self.first_payment_on,
            concept=self.concept,
            direction=self.direction,
            currency=self.currency,
            ends_on=self.ends_on,
            beneficiary_customer_id=self.beneficiary_customer_id,
            beneficiary_label=self.beneficiary_label,
            channel_label=self.channel_label,
            campaign_label=self.campaign_label,
            iban=self.iban,
            bic=self.bic,
            mandate_signed_on=self.mandate_signed_on,
            mandate_scheme=self.mandate_scheme,
            card_token=self.card_token,
            card_expiry=self.card_expiry,
            responsible_email=self.responsible_email,
        )


class CommitmentPatch(Strict):
    """Only the members sent change; `null` empties an optional one (e.g. `ends_on`)."""

    amount: AmountText | None = None
    method: Method | None = None
    iban: IbanText | None = Field(default=None, description="A new IBAN makes a new mandate.")
    bic: BicText | None = None
    ends_on: date | None = None
    concept: Concept | None = None
    beneficiary_customer_id: CustomerRef | None = None
    beneficiary_label: Label100 | None = None
    channel_label: Label50 | None = None
    campaign_label: Label50 | None = None
    card_token: Label100 | None = None
    card_expiry: CardExpiry | None = None
    responsible_email: EmailText | None = None
    mandate_signed_on: date | None = None
    mandate_scheme: Scheme | None = None

    def to_service(self) -> svc.CommitmentChanges:
        sent = self.model_fields_set
        nulls = {name for name in sent if getattr(self, name) is None}
        fixed = sorted(nulls - svc.CLEARABLE)
        if fixed:
            raise ValidationFailed(f"{fixed[0]} cannot be emptied", field=fixed[0])
        clear = frozenset(nulls)
        return svc.CommitmentChanges(
            amount=self.amount,
            method=self.method,
            iban=self.iban,
            bic=self.bic,
            ends_on=self.ends_on,
            concept=self.concept,
            beneficiary_customer_id=self.beneficiary_customer_id,
            beneficiary_label=self.beneficiary_label,
            channel_label=self.channel_label,
            campaign_label=self.campaign_label,
            card_token=self.card_token,
            card_expiry=self.card_expiry,
            responsible_email=self.responsible_email,
            mandate_signed_on=self.mandate_signed_on,
            mandate_scheme=self.mandate_scheme,
            clear=clear,
        )


class CommitmentEndIn(Strict):
    reason: EndReason
    ends_on: date | None = Field(default=None, description="Default: the company's today.")


class MandateOut(BaseModel):
    id: int
    commitment_id: int
    reference: str = Field(description="The unique mandate reference (UMR).")
    iban: str
    bic: str | None
    scheme: str
    signed_on: date
    status: str = Field(description="active, replaced or invalid.")
    invalid_reason: str | None
    first_collection_done: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: svc.MandateView) -> MandateOut:
        return cls(
            id=v.id,
            commitment_id=v.commitment_id,
            reference=v.reference,
            iban=v.iban,
            bic=v.bic,
            scheme=v.scheme,
            signed_on=v.signed_on,
            status=v.status,
            invalid_reason=v.invalid_reason,
            first_collection_done=v.first_collection_done,
            created_at=v.created_at,
        )


class CommitmentOut(BaseModel):
    id: int
    payer_customer_id: int
    beneficiary_customer_id: int | None
    beneficiary_label: str | None
    kind: str
    method: str
    periodicity: str
    amount: str
    currency: str
    first_payment_on: date
    ends_on: date | None
    concept: str
    direction: str
    channel_label: str | None
    campaign_label: str | None
    iban: str | None
    bic: str | None
    mandate: MandateOut | None = Field(description="The current mandate (direct debit).")
    has_card_token: bool
    card_expiry: str | None
    responsible_email: str | None
    active: bool
    ended_reason: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, v: svc.CommitmentView) -> CommitmentOut:
        return cls(
            id=v.id,
            payer_customer_id=v.payer_customer_id,
            beneficiary_customer_id=v.beneficiary_customer_id,
            beneficiary_label=v.beneficiary_label,
            kind=v.kind,
            method=v.method,
            periodicity=v.periodicity,
            amount=amount(v.amount),
            currency=v.currency,
            first_payment_on=v.first_payment_on,
            ends_on=v.ends_on,
            concept=v.concept,
            direction=v.direction,
            channel_label=v.channel_label,
            campaign_label=v.campaign_label,
            iban=v.iban,
            bic=v.bic,
            mandate=MandateOut.of(v.mandate) if v.mandate is not None else None,
            has_card_token=v.has_card_token,
            card_expiry=v.card_expiry,
            responsible_email=v.responsible_email,
            active=v.active,
            ended_reason=v.ended_reason,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class CommitmentChangedOut(CommitmentOut):
    payments_created: int = Field(description="Payments this call generated.")

    @classmethod
    def of_change(cls, v: svc.CommitmentView) -> CommitmentChangedOut:
        return cls(**CommitmentOut.of(v).model_dump(), payments_created=v.payments_created)


class CommitmentPaymentOut(BaseModel):
    id: int
    commitment_id: int
    customer_id: int
    period_start: date
    due_on: date
    amount: str
    currency: str
    method: str
    iban: str | None
    bic: str | None
    mandate_id: int | None
    sequence_type: str | None
    status: str
    remittance_id: int | None
    end_to_end_id: str
    return_reason_code: str | None
    return_reason: str | None
    refund_requested: bool
    gateway_reference: str | None
    gateway_message: str | None
    paid_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, v: svc.PaymentView) -> CommitmentPaymentOut:
        return cls(
            id=v.id,
            commitment_id=v.commitment_id,
            customer_id=v.customer_id,
            period_start=v.period_start,
            due_on=v.due_on,
            amount=amount(v.amount),
            currency=v.currency,
            method=v.method,
            iban=v.iban,
            bic=v.bic,
            mandate_id=v.mandate_id,
            sequence_type=v.sequence_type,
            status=v.status,
            remittance_id=v.remittance_id,
            end_to_end_id=v.end_to_end_id,
            return_reason_code=v.return_reason_code,
            return_reason=v.return_reason,
            refund_requested=v.refund_requested,
            gateway_reference=v.gateway_reference,
            gateway_message=v.gateway_message,
            paid_at=v.paid_at,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class TransitionIn(Strict):
    status: PaymentStatus
    reason: EndReason | None = Field(default=None, description="Kept in the audit trail.")


class GenerateIn(Strict):
    month: date | None = Field(
        default=None,
        description="Any day of the last month to generate; default: the company's setting.",
    )


class GenerationOut(BaseModel):
    month: date
    commitments: int
    created: int


# --------------------------------------------------------------------------- creditor accounts

Pain008 = Literal["pain.008.001.02", "pain.008.001.08"]
Pain001 = Literal["pain.001.001.03", "pain.001.001.09"]
LeadDays = Annotated[int, Field(ge=0, le=accounts.MAX_LEAD_DAYS)]
Name100 = Annotated[str, Field(min_length=1, max_length=100), BeforeValidator(_storable)]
Name70 = Annotated[str, Field(min_length=1, max_length=70), BeforeValidator(_storable)]
CreditorId = Annotated[str, Field(min_length=1, max_length=40), BeforeValidator(_storable)]
Street = Annotated[str, Field(max_length=70), BeforeValidator(_storable)]
Town = Annotated[str, Field(max_length=35), BeforeValidator(_storable)]
Postcode = Annotated[str, Field(max_length=16), BeforeValidator(_storable)]
Country = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]


class CreditorAccountIn(Strict):
    name: Name100
    iban: IbanText
    bic: BicText | None = None
    creditor_identifier: CreditorId = Field(description="SEPA creditor identifier (AT-02).")
    creditor_name: Name70
    pain008_version: Pain008 = "pain.008.001.08"
    pain001_version: Pain001 = "pain.001.001.09"
    include_bic: bool = False
    lead_days: LeadDays = Field(default=1, description="TARGET2 business days of notice.")
    street: Street | None = None
    town: Town | None = None
    postcode: Postcode | None = None
    country: Country | None = None

    def to_service(self) -> accounts.CreditorAccountData:
        return accounts.CreditorAccountData(**self.model_dump())


class CreditorAccountPatch(Strict):
    """Only the members sent change; `null` or "" empties bic and the address fields."""

    name: Name100 | None = None
    iban: IbanText | None = None
    bic: BicText | None = None
    creditor_identifier: CreditorId | None = None
    creditor_name: Name70 | None = None
    pain008_version: Pain008 | None = None
    pain001_version: Pain001 | None = None
    include_bic: bool | None = None
    lead_days: LeadDays | None = None
    street: Street | None = None
    town: Town | None = None
    postcode: Postcode | None = None
    country: Country | None = None
    active: bool | None = None

    def to_service(self) -> accounts.CreditorAccountData:
        values = self.model_dump(exclude_unset=True)
        clearable = ("bic", "street", "town", "postcode", "country")
        fixed = sorted(k for k, v in values.items() if v is None and k not in clearable)
        if fixed:
            raise ValidationFailed(f"{fixed[0]} cannot be emptied", field=fixed[0])
        for name in clearable:
            if name in values and values[name] is None:
                values[name] = ""
        return accounts.CreditorAccountData(**values)


class CreditorAccountOut(BaseModel):
    id: int
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
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, v: accounts.CreditorAccountView) -> CreditorAccountOut:
        return cls(
            id=v.id,
            name=v.name,
            iban=v.iban,
            bic=v.bic,
            creditor_identifier=v.creditor_identifier,
            creditor_name=v.creditor_name,
            pain008_version=v.pain008_version,
            pain001_version=v.pain001_version,
            include_bic=v.include_bic,
            lead_days=v.lead_days,
            street=v.street,
            town=v.town,
            postcode=v.postcode,
            country=v.country,
            active=v.active,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class SettingsPatch(Strict):
    generate_for: Literal["current", "next"] | None = None
    run_day: Annotated[int, Field(ge=1, le=28)] | None = None
    run_time: LocalTime | None = Field(default=None, description="Company local time.")
    notify_email: EmailText | None = Field(default=None, description='"" or null clears it.')

    def to_service(self) -> accounts.SettingsChanges:
        email = self.notify_email
        if "notify_email" in self.model_fields_set and email is None:
            email = ""
        return accounts.SettingsChanges(
            generate_for=self.generate_for,
            run_day=self.run_day,
            run_time=self.run_time,
            notify_email=email,
        )


class SettingsOut(BaseModel):
    generate_for: str
    run_day: int
    run_time: str = Field(examples=["00:30:00"], description="Company local time.")
    notify_email: str | None
    last_generated_month: date | None
    updated_at: UtcDatetime | None

    @classmethod
    def of(cls, v: accounts.SettingsView) -> SettingsOut:
        return cls(
            generate_for=v.generate_for,
            run_day=v.run_day,
            run_time=v.run_time.strftime("%H:%M:%S"),
            notify_email=v.notify_email,
            last_generated_month=v.last_generated_month,
            updated_at=v.updated_at,
        )
