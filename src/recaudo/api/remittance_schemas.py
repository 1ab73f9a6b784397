"""Request and response bodies of `/remittances` and `/returns`."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from recaudo.api.schemas import MAX_ID, Strict, UtcDatetime, amount
from recaudo.services import remittances, returns

Kind = Literal["direct_debit", "transfer", "card"]


class RemittanceIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    kind: Kind = Field(description="direct_debit (pain.008), transfer (pain.001) or card.")
    charge_date: date = Field(description="Collection / execution date asked of the bank.")
    creditor_account_id: int = Field(ge=1, le=MAX_ID)


class FindingOut(BaseModel):
    severity: Literal["error", "warning"]
    code: str
    message: str
    payment_id: int | None = Field(description="The payment concerned; null: the remittance.")

    @classmethod
    def of(cls, doc: dict[str, Any] | remittances.Finding) -> FindingOut:
        if isinstance(doc, remittances.Finding):
            doc = doc.document()
        return cls(
            severity=doc["severity"],
            code=doc["code"],
            message=doc["message"],
            payment_id=doc.get("payment_id"),
        )


class RemittanceOut(BaseModel):
    id: int
    name: str
    kind: str
    state: str = Field(description="open, generated or sent.")
    charge_date: date
    creditor_account_id: int
    currency: str
    payment_count: int = Field(description="Payments in the remittance now.")
    payments_total: str
    message_id: str | None = Field(description="The file's MsgId, once generated.")
    file_version: str | None
    file_name: str | None
    sha256: str | None
    transaction_count: int = Field(description="The file's NbOfTxs (0 before generation).")
    control_sum: str = Field(description="The file's CtrlSum.")
    errors: list[FindingOut] = Field(description="Blocking errors of the last validation.")
    warnings: list[FindingOut] = Field(description="Warnings of the last validation.")
    generated_at: UtcDatetime | None
    sent_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, v: remittances.RemittanceView) -> RemittanceOut:
        return cls(
            id=v.id,
            name=v.name,
            kind=v.kind,
            state=v.state,
            charge_date=v.charge_date,
            creditor_account_id=v.creditor_account_id,
            currency=v.currency,
            payment_count=v.payment_count,
            payments_total=amount(v.payments_total),
            message_id=v.message_id,
            file_version=v.file_version,
            file_name=v.file_name,
            sha256=v.sha256,
            transaction_count=v.transaction_count,
            control_sum=amount(v.control_sum),
            errors=[FindingOut.of(f) for f in v.errors],
            warnings=[FindingOut.of(f) for f in v.warnings],
            generated_at=v.generated_at,
            sent_at=v.sent_at,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class PaymentFilterIn(Strict):
    status: str | None = Field(None, max_length=16, description="not_remitted, to_recover...")
    method: str | None = Field(None, max_length=20, description="Must be the kind's method.")
    due_month: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM.")


class AddPaymentsIn(Strict):
    payment_id: int | None = Field(None, ge=1, le=MAX_ID, description="One payment...")
    filter: PaymentFilterIn | None = Field(None, description="... or every payment it selects.")

    @model_validator(mode="after")
    def one_of(self) -> AddPaymentsIn:
        if (self.payment_id is None) == (self.filter is None):
            raise ValueError("give either payment_id or filter")
        return self


class AddPaymentsOut(BaseModel):
    added: int
    remittance: RemittanceOut


class ValidationOut(BaseModel):
    ok: bool
    error_count: int
    warning_count: int
    errors: list[FindingOut]
    warnings: list[FindingOut]
    remittance: RemittanceOut


class ChargeLineOut(BaseModel):
    payment_id: int
    end_to_end_id: str
    amount: str
    status: str = Field(description="paid or card_rejected.")
    gateway_reference: str | None
    gateway_message: str
    commitment_ended: bool = Field(description="The card had expired: the commitment ended.")


class ChargeOut(BaseModel):
    paid: int
    rejected: int
    expired: int
    lines: list[ChargeLineOut]
    remittance: RemittanceOut

    @classmethod
    def of(cls, run: remittances.ChargeRun) -> ChargeOut:
        return cls(
            paid=run.paid,
            rejected=run.rejected,
            expired=run.expired,
            lines=[
                ChargeLineOut(
                    payment_id=line.payment_id,
                    end_to_end_id=line.end_to_end_id,
                    amount=amount(line.amount),
                    status=line.status,
                    gateway_reference=line.gateway_reference,
                    gateway_message=line.gateway_message,
                    commitment_ended=line.commitment_ended,
                )
                for line in run.lines
            ],
            remittance=RemittanceOut.of(run.remittance),
        )


class ReturnItemOut(BaseModel):
    end_to_end_id: str
    payment_id: int | None
    reason_code: str | None
    reason: str | None = Field(description="The reason code's Spanish description.")
    amount: str | None
    currency: str | None
    outcome: str = Field(
        description="unpaid, to_recover, commitment_ended, mandate_invalid, "
        "refund_requested, unknown_payment or not_returnable."
    )
    status: str | None = Field(description="The payment's status after loading.")

    @classmethod
    def of(cls, item: returns.ReturnItem) -> ReturnItemOut:
        return cls(
            end_to_end_id=item.end_to_end_id,
            payment_id=item.payment_id,
            reason_code=item.reason_code,
            reason=item.reason,
            amount=None if item.amount is None else amount(item.amount),
            currency=item.currency,
            outcome=item.outcome,
            status=item.status,
        )


class ReturnFileOut(BaseModel):
    id: int
    kind: str
    message_id: str
    file_name: str
    sha256: str
    remittance_id: int | None
    returned_count: int
    loaded_at: UtcDatetime

    @classmethod
    def of(cls, v: returns.ReturnFileView) -> ReturnFileOut:
        return cls(
            id=v.id,
            kind=v.kind,
            message_id=v.message_id,
            file_name=v.file_name,
            sha256=v.sha256,
            remittance_id=v.remittance_id,
            returned_count=v.returned_count,
            loaded_at=v.loaded_at,
        )


class ReturnFileDetailOut(ReturnFileOut):
    loaded_by: str | None
    items: list[ReturnItemOut]

    @classmethod
    def detail(cls, v: returns.ReturnFileView) -> ReturnFileDetailOut:
        return cls(
            **ReturnFileOut.of(v).model_dump(),
            loaded_by=v.loaded_by,
            items=[ReturnItemOut.of(i) for i in v.items],
        )


class ReturnLoadOut(ReturnFileDetailOut):
    created: bool = Field(description="False: these exact bytes were loaded before.")
