"""Request and response bodies of the negotiation and viability-policy routes.

Amounts travel as decimal strings in the company's currency (`"333.33"`), rates and
percentages as decimal strings too; dates are ISO 8601.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from recaudo.api.schemas import (
    MAX_ID,
    AmountText,
    DebtRef,
    Key,
    Strict,
    UtcDatetime,
    _storable,
    amount,
)
from recaudo.services import negotiations as neg
from recaudo.services import policies

Text100 = Annotated[str, Field(min_length=1, max_length=100), BeforeValidator(_storable)]
Text300 = Annotated[str, Field(min_length=1, max_length=300), BeforeValidator(_storable)]
RuleText = Annotated[str, Field(min_length=1, max_length=1000), BeforeValidator(_storable)]
StrategyCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=8,
        examples=["PPPL"],
        description="CNTL, PDIA, PDDA, PPPL, PPPA, PPPS, PRERM or REDIF.",
    ),
]
Parameters = Annotated[
    dict[str, Any],
    Field(
        description="Strategy parameters: term, annual_rate (percent a year), first_due, "
        "grace_months, dead_months, down_payment, condonation {concept: percent}, "
        "condonation_at.",
        examples=[{"term": 12, "annual_rate": "18.5", "condonation": {"late_interest": "100"}}],
    ),
]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else amount(value)


# --- simulation ------------------------------------------------------------------------------


class SimulateIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    debts: list[DebtRef] = Field(
        default_factory=list, max_length=100, description="Debt ids; none: all payable debts."
    )
    strategies: list[StrategyCode] = Field(
        default_factory=list, max_length=8, description="Only these strategies; none: all."
    )
    parameters: dict[StrategyCode, Parameters] = Field(
        default_factory=dict,
        description="Per strategy, parameters over the policies' (a recalculation).",
    )


class CauseOut(BaseModel):
    policy: str
    cause: str
    message: str


class InstallmentOut(BaseModel):
    number: int
    due_date: date
    amount: str
    principal: str
    interest: str


class OfferTermsOut(BaseModel):
    currency: str
    debts: list[str] = Field(description="Replaced by the payment today and the installments.")
    kept_debts: list[str] = Field(description="Keep their own schedule (PDIA, PDDA).")
    balance: str
    payment_today: str
    financed: str
    new_installment: str
    term: int
    grace_months: int
    annual_rate: str
    total_interest: str
    total_condoned: str
    condoned_by_concept: dict[str, str]
    total_to_pay: str
    condonation_at: int | None
    installments: list[InstallmentOut]

    @classmethod
    def of(cls, t: neg.OfferTerms) -> OfferTermsOut:
        return cls(
            currency=t.currency,
            debts=list(t.debts),
            kept_debts=list(t.kept_debts),
            balance=amount(t.balance),
            payment_today=amount(t.payment_today),
            financed=amount(t.financed),
            new_installment=amount(t.new_installment),
            term=t.term,
            grace_months=t.grace_months,
            annual_rate=amount(t.annual_rate),
            total_interest=amount(t.total_interest),
            total_condoned=amount(t.total_condoned),
            condoned_by_concept={k: amount(v) for k, v in t.condoned_by_concept.items()},
            total_to_pay=amount(t.total_to_pay),
            condonation_at=t.condonation_at,
            installments=[
                InstallmentOut(
                    number=i.number,
                    due_date=i.due_date,
                    amount=amount(i.amount),
                    principal=amount(i.principal),
                    interest=amount(i.interest),
                )
                for i in t.installments
            ],
        )


class OfferOut(BaseModel):
    strategy: str
    name: str
    viable: bool
    causes: list[CauseOut]
    exceptions: list[int] = Field(description="Exceptions that overrode failing rules.")
    fits_capacity: bool | None = Field(description="null: the customer declared no profile.")
    parameters: dict[str, Any]
    terms: OfferTermsOut | None = Field(description="null when the strategy does not apply.")

    @classmethod
    def of(cls, o: neg.OfferView) -> OfferOut:
        return cls(
            strategy=o.strategy,
            name=o.name,
            viable=o.viable,
            causes=[CauseOut(policy=c.policy, cause=c.cause, message=c.message) for c in o.causes],
            exceptions=list(o.exceptions),
            fits_capacity=o.fits_capacity,
            parameters=o.parameters,
            terms=None if o.terms is None else OfferTermsOut.of(o.terms),
        )


class ObligationOut(BaseModel):
    debt: str
    due_date: date
    balance: str
    overdue_amount: str
    days_past_due: int
    components: dict[str, str]
    offers: list[OfferOut]


class SimulationOut(BaseModel):
    customer_id: int
    currency: str
    as_of: date
    capacity: str | None
    cash_today: str | None
    obligations: list[ObligationOut]

    @classmethod
    def of(cls, s: neg.Simulation) -> SimulationOut:
        return cls(
            customer_id=s.customer_id,
            currency=s.currency,
            as_of=s.as_of,
            capacity=_money(s.capacity),
            cash_today=_money(s.cash_today),
            obligations=[
                ObligationOut(
                    debt=o.debt,
                    due_date=o.due_date,
                    balance=amount(o.balance),
                    overdue_amount=amount(o.overdue_amount),
                    days_past_due=o.days_past_due,
                    components={k: amount(v) for k, v in o.components.items()},
                    offers=[OfferOut.of(x) for x in o.offers],
                )
                for o in s.obligations
            ],
        )


# --- negotiations ------------------------------------------------------------------------------


class CommitmentIn(Strict):
    kind: Annotated[str, Field(min_length=1, max_length=1, description="P (partial) or T (total).")]
    amount: AmountText
    due_date: date | None = None
    rate: Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?$")] = "100"


class NegotiationIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    strategy: StrategyCode
    debts: list[DebtRef] = Field(min_length=1, max_length=100)
    parameters: Parameters = Field(default_factory=dict)
    commitments: list[CommitmentIn] = Field(
        default_factory=list,
        max_length=100,
        description="Zero or more P then one T; none: one per payment of the plan.",
    )
    adviser: Text100 | None = None
    office: Annotated[str, Field(max_length=20), BeforeValidator(_storable)] | None = None
    mark_start: date | None = None
    mark_end: date | None = None
    idempotency_key: Key | None = None


class NegotiatedDebtOut(BaseModel):
    debt: str
    open_amount: str
    overdue_amount: str
    days_past_due: int
    status: str


class PlanDebtOut(BaseModel):
    number: int = Field(description="0: the payment today; 1…: the installments.")
    debt: str
    due_date: date
    amount: str
    principal: str
    interest: str
    paid: str
    status: str


class CommitmentOut(BaseModel):
    position: int
    kind: str
    due_date: date
    amount: str
    rate: str


class NegotiationOut(BaseModel):
    id: int
    customer_id: int
    idempotency_key: str | None
    strategy: str
    strategy_name: str
    state: str
    parameters: dict[str, Any]
    adviser: str | None
    office: str | None
    channel: str
    mark_start: date
    mark_end: date
    currency: str
    negotiated: str
    payment_today: str
    installments_total: str
    condoned: str
    condoned_by_concept: dict[str, str]
    annual_rate: str
    term: int
    exceptions_used: list[str]
    debts: list[NegotiatedDebtOut]
    plan: list[PlanDebtOut]
    commitments: list[CommitmentOut]
    break_reason: str | None
    reinstated_debt: str | None
    created_by: str
    created_at: UtcDatetime
    accepted_at: UtcDatetime | None
    activated_at: UtcDatetime | None
    closed_at: UtcDatetime | None

    @classmethod
    def of(cls, v: neg.NegotiationView) -> NegotiationOut:
        return cls(
            id=v.id,
            customer_id=v.customer_id,
            idempotency_key=v.external_id,
            strategy=v.strategy,
            strategy_name=v.strategy_name,
            state=v.state,
            parameters={k: x for k, x in v.parameters.items() if not k.startswith("_")},
            adviser=v.adviser,
            office=v.office,
            channel=v.channel,
            mark_start=v.mark_start,
            mark_end=v.mark_end,
            currency=v.currency,
            negotiated=amount(v.negotiated),
            payment_today=amount(v.payment_today),
            installments_total=amount(v.installments_total),
            condoned=amount(v.condoned),
            condoned_by_concept={k: amount(x) for k, x in v.condoned_by_concept.items()},
            annual_rate=amount(v.annual_rate),
            term=v.term,
            exceptions_used=v.exceptions_used,
            debts=[
                NegotiatedDebtOut(
                    debt=d.debt,
                    open_amount=amount(d.open_amount),
                    overdue_amount=amount(d.overdue_amount),
                    days_past_due=d.days_past_due,
                    status=d.status,
                )
                for d in v.debts
            ],
            plan=[
                PlanDebtOut(
                    number=p.number,
                    debt=p.debt,
                    due_date=p.due_date,
                    amount=amount(p.amount),
                    principal=amount(p.principal),
                    interest=amount(p.interest),
                    paid=amount(p.paid),
                    status=p.status,
                )
                for p in v.plan
            ],
            commitments=[
                CommitmentOut(
                    position=c.position,
                    kind=c.kind,
                    due_date=c.due_date,
                    amount=amount(c.amount),
                    rate=amount(c.rate),
                )
                for c in v.commitments
            ],
            break_reason=v.break_reason,
            reinstated_debt=v.reinstated_debt,
            created_by=v.created_by,
            created_at=v.created_at,
            accepted_at=v.accepted_at,
            activated_at=v.activated_at,
            closed_at=v.closed_at,
        )


class NegotiationSummaryOut(BaseModel):
    id: int
    customer_id: int
    strategy: str
    state: str
    currency: str
    negotiated: str
    payment_today: str
    installments_total: str
    condoned: str
    channel: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, s: neg.NegotiationSummary) -> NegotiationSummaryOut:
        return cls(
            id=s.id,
            customer_id=s.customer_id,
            strategy=s.strategy,
            state=s.state,
            currency=s.currency,
            negotiated=amount(s.negotiated),
            payment_today=amount(s.payment_today),
            installments_total=amount(s.installments_total),
            condoned=amount(s.condoned),
            channel=s.channel,
            created_at=s.created_at,
        )


# --- profiles, settings, components -------------------------------------------------------------


class ProfileIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    income: AmountText
    other_income: AmountText = "0"
    personal_expenses: AmountText = "0"
    self_employed: bool = False
    sales: AmountText | None = None
    operating_costs: AmountText | None = None
    cash_today: AmountText | None = None


class ProfileOut(BaseModel):
    id: int
    customer_id: int
    currency: str
    income: str
    other_income: str
    personal_expenses: str
    self_employed: bool
    sales: str | None
    operating_costs: str | None
    cash_today: str | None
    available_income: str
    capacity: str
    capacity_ratio: str
    source: str
    declared_by: str
    declared_at: UtcDatetime

    @classmethod
    def of(cls, p: neg.ProfileView) -> ProfileOut:
        return cls(
            id=p.id,
            customer_id=p.customer_id,
            currency=p.currency,
            income=amount(p.income),
            other_income=amount(p.other_income),
            personal_expenses=amount(p.personal_expenses),
            self_employed=p.self_employed,
            sales=_money(p.sales),
            operating_costs=_money(p.operating_costs),
            cash_today=_money(p.cash_today),
            available_income=amount(p.available_income),
            capacity=amount(p.capacity),
            capacity_ratio=amount(p.capacity_ratio),
            source=p.source,
            declared_by=p.declared_by,
            declared_at=p.declared_at,
        )


class SettingsIn(Strict):
    concept_labels: dict[Annotated[str, Field(max_length=32)], Text100] | None = None
    break_after_days: int | None = Field(None, ge=0, le=3650)
    reinstate_on_break: Annotated[str, Field(max_length=16)] | None = Field(
        None, description="never, always or proportional."
    )
    capacity_ratio: Annotated[str, Field(pattern=r"^[0-9](\.[0-9]{1,4})?$")] | None = None


class SettingsOut(BaseModel):
    concept_labels: dict[str, str]
    break_after_days: int
    reinstate_on_break: str
    capacity_ratio: str

    @classmethod
    def of(cls, s: neg.SettingsView) -> SettingsOut:
        return cls(
            concept_labels=s.concept_labels,
            break_after_days=s.break_after_days,
            reinstate_on_break=s.reinstate_on_break,
            capacity_ratio=amount(s.capacity_ratio),
        )


class ComponentsIn(Strict):
    components: dict[Annotated[str, Field(max_length=32)], AmountText] = Field(
        min_length=1,
        max_length=6,
        description="Amount by concept: capital, current_interest, late_interest, insurance, "
        "fees, other_charges; they must add up to the debt's amount.",
    )


class ComponentsOut(BaseModel):
    debt: str
    components: dict[str, str]


# --- policies ------------------------------------------------------------------------------------


class PolicyIn(Strict):
    name: Text100
    strategy: StrategyCode
    rule: RuleText = Field(examples=["days_past_due >= 30 and balance <= 5000000"])
    cause: Text100 = Field(examples=["causalDeNoViabilidadPuestaAlDia2"])
    message: Text300
    exception_name: Annotated[str, Field(max_length=40)] | None = Field(
        None, examples=["EXC_DIAS_MORA"]
    )
    parameters: Parameters = Field(default_factory=dict)
    active: bool = True


class PolicyPatch(Strict):
    rule: RuleText | None = None
    cause: Text100 | None = None
    message: Text300 | None = None
    exception_name: Annotated[str, Field(max_length=40)] | None = None
    parameters: Parameters | None = None
    active: bool | None = None


class PolicyOut(BaseModel):
    id: int
    name: str
    strategy: str
    rule: str
    cause: str
    message: str
    exception_name: str | None
    parameters: dict[str, Any]
    active: bool
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, p: policies.PolicyView) -> PolicyOut:
        return cls(
            id=p.id,
            name=p.name,
            strategy=p.strategy,
            rule=p.rule,
            cause=p.cause,
            message=p.message,
            exception_name=p.exception_name,
            parameters=p.parameters,
            active=p.active,
            created_by=p.created_by,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class ExceptionIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    reason: Annotated[str, Field(min_length=3, max_length=1000), BeforeValidator(_storable)]
    valid_until: date
    debt: DebtRef | None = Field(None, description="Only this debt; none: any of the customer's.")


class ExceptionOut(BaseModel):
    id: int
    customer_id: int
    policy_id: int
    policy_name: str
    exception_name: str | None
    debt: str | None
    reason: str
    granted_by: str
    granted_at: UtcDatetime
    valid_until: date
    negotiation_id: int | None

    @classmethod
    def of(cls, e: policies.ExceptionView) -> ExceptionOut:
        return cls(
            id=e.id,
            customer_id=e.customer_id,
            policy_id=e.policy_id,
            policy_name=e.policy_name,
            exception_name=e.exception_name,
            debt=e.debt,
            reason=e.reason,
            granted_by=e.granted_by,
            granted_at=e.granted_at,
            valid_until=e.valid_until,
            negotiation_id=e.negotiation_id,
        )
