"""The admin API's JSON for bank channels: agreements, payment exceptions, incidents."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BaseModel, Field

from recaudo.adapters.db.tables import ChannelAgreement
from recaudo.api.schemas import DebtRef, Reason, Strict, Text100, UtcDatetime, amount
from recaudo.services.exceptions import ExceptionView, Resolution
from recaudo.services.incidents import Availability, IncidentView

Convenio = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["11223"])]
Network = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Fa-f:./]+$")]
Channel = Annotated[str, Field(pattern=r"^(caja-vecina|internet)$")]


class AgreementOut(BaseModel):
    id: int
    bank: str
    channel: str
    convenio: str
    voucher_name: str | None
    cutoff: str = Field(description="Accounting cut-off hour, HH:MM local time.")
    enabled: bool
    allow_query_token: bool
    ip_allowlist: list[str] | None
    errors_as_http_200: bool
    quote_ttl_seconds: int
    passthrough_url: str | None
    passthrough_timeout_ms: int
    secret_prefix: str
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, a: ChannelAgreement) -> AgreementOut:
        return cls(
            id=a.id,
            bank=a.bank,
            channel=a.channel,
            convenio=a.convenio,
            voucher_name=a.voucher_name,
            cutoff=a.cutoff.strftime("%H:%M"),
            enabled=a.enabled,
            allow_query_token=a.allow_query_token,
            ip_allowlist=a.ip_allowlist,
            errors_as_http_200=a.errors_as_http_200,
            quote_ttl_seconds=a.quote_ttl_seconds,
            passthrough_url=a.passthrough_url,
            passthrough_timeout_ms=a.passthrough_timeout_ms,
            secret_prefix=a.secret_prefix,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


class AgreementCreated(AgreementOut):
    secret: str = Field(description="The agreement's credential: shown once, stored hashed.")


class AgreementSettingsIn(Strict):
    voucher_name: Text100 | None = None
    cutoff: time | None = Field(default=None, examples=["14:00"])
    enabled: bool | None = None
    allow_query_token: bool | None = None
    ip_allowlist: list[Network] | None = Field(default=None, max_length=100)
    errors_as_http_200: bool | None = None
    quote_ttl_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] | None = None
    passthrough_url: Annotated[str, Field(max_length=500, pattern=r"^(https?://\S+)?$")] | None = (
        Field(default=None, description="The company's debt endpoint; empty turns it off.")
    )
    passthrough_timeout_ms: Annotated[int, Field(ge=100, le=30_000)] | None = None


class AgreementIn(AgreementSettingsIn):
    channel: Channel
    convenio: Convenio


class ExceptionOut(BaseModel):
    id: int
    payment_id: int
    customer_id: int | None
    transaccion: str
    amount: str
    credit: str = Field(description="What of the payment is still the customer's credit.")
    currency: str
    reason: str
    detail: str
    status: str
    resolution: str | None
    comment: str | None
    resolved_by: str | None
    resolved_at: UtcDatetime | None
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: ExceptionView) -> ExceptionOut:
        return cls(
            id=v.id,
            payment_id=v.payment_id,
            customer_id=v.customer_id,
            transaccion=v.transaccion,
            amount=amount(v.amount),
            credit=amount(v.credit),
            currency=v.currency,
            reason=v.reason,
            detail=v.detail,
            status=v.status,
            resolution=v.resolution,
            comment=v.comment,
            resolved_by=v.resolved_by,
            resolved_at=v.resolved_at,
            created_at=v.created_at,
        )


class ResolveIn(Strict):
    resolution: Resolution
    comment: Reason
    debt_ids: list[DebtRef] = Field(
        default_factory=list,
        max_length=50,
        description="With `applied`: the debts the payment's credit pays, in order.",
    )


class IncidentOut(BaseModel):
    id: int
    occurred_at: UtcDatetime
    agreement_id: int | None
    kind: str
    cause: str

    @classmethod
    def of(cls, v: IncidentView) -> IncidentOut:
        return cls(
            id=v.id,
            occurred_at=v.occurred_at,
            agreement_id=v.agreement_id,
            kind=v.kind,
            cause=v.cause,
        )


class AvailabilityIn(Strict):
    available: bool
    reason: Reason | None = None


class AvailabilityOut(BaseModel):
    available: bool
    reason: str | None

    @classmethod
    def of(cls, v: Availability) -> AvailabilityOut:
        return cls(available=v.available, reason=v.reason)
