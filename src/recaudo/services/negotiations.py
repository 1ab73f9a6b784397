"""Negotiations of late debts: simulate offers, create, accept, and follow the plan.

- `simulate` answers, for each of a customer's obligations, every strategy the company
  has policies for: the offer computed by the domain (`domain.strategies`), whether the
  policies allow it (or the named causes why not) and whether its installment fits the
  customer's declared payment capacity (`domain.profiling`). Nothing is written.
- `create_negotiation` records a proposal (`proposed`): the offer, exactly as computed,
  the debts it covers, its commitments (zero or more `P` then one `T`), the exceptions it
  used. It refuses a strategy the policies do not allow (`NotViable`, with the cause).
- `accept_negotiation`, in one transaction: the negotiated debts become `replaced`,
  the plan's payments become new ordinary debts (`NEG{id}-000` for the payment today,
  `NEG{id}-001`… for the installments) that every channel can collect, the condoned
  amounts are recorded as `written_off` components of the original debts, all audited.
- Following accepted plans (activation, fulfilment, breaking, reinstatement) is
  `services/negotiation_review.py`; company settings and customers' payment profiles are
  `services/negotiation_settings.py` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import (
    Company,
    Customer,
    Debt,
    DebtComponent,
    Negotiation,
    NegotiationCommitment,
    NegotiationDebt,
    NegotiationInstallment,
    PolicyException,
    ViabilityPolicy,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids
from recaudo.domain.debts import PAYABLE, DebtStatus
from recaudo.domain.errors import Conflict, NotFound, NotViable, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.months import add_months
from recaudo.domain.negotiation import (
    Concept,
    NegotiationState,
    Obligation,
    check_commitments,
    transition,
)
from recaudo.domain.profiling import (
    fits,
    payment_capacity,
)
from recaudo.domain.strategies import (
    STRATEGY_NAMES,
    Offer,
    Strategy,
    StrategyParameters,
    build_offer,
    parse_strategy,
)
from recaudo.services import audit, outbox, policies
from recaudo.services.balances import paid_by_debt
from recaudo.services.context import Actor, Clock
from recaudo.services.customers import find_customer
from recaudo.services.debt_components import BALANCE, WRITTEN_OFF, breakdowns, open_components
from recaudo.services.negotiation_settings import (
    DEFAULT_BREAK_AFTER_DAYS as DEFAULT_BREAK_AFTER_DAYS,
)
from recaudo.services.negotiation_settings import (
    DEFAULT_REINSTATE as DEFAULT_REINSTATE,
)
from recaudo.services.negotiation_settings import (
    NewProfile as NewProfile,
)
from recaudo.services.negotiation_settings import (
    ProfileView as ProfileView,
)
from recaudo.services.negotiation_settings import (
    SettingsChanges as SettingsChanges,
)
from recaudo.services.negotiation_settings import (
    SettingsView as SettingsView,
)
from recaudo.services.negotiation_settings import (
    amount_of,
    company_in_scope,
    customer_in_company,
    finances_of,
    latest_profile_row,
    minor_of,
    settings_of,
)
from recaudo.services.negotiation_settings import (
    get_settings as get_settings,
)
from recaudo.services.negotiation_settings import (
    latest_profile as latest_profile,
)
from recaudo.services.negotiation_settings import (
    local_today as local_today,
)
from recaudo.services.negotiation_settings import (
    record_profile as record_profile,
)
from recaudo.services.negotiation_settings import (
    update_settings as update_settings,
)
from recaudo.services.policies import Cause, Facts
from recaudo.services.queries import Paging
from recaudo.services.views import Page

ACCEPT_WITHIN_DAYS = 7  # a proposal can be accepted up to a week after it was made
OPEN_STATES = (
    NegotiationState.PROPOSED.value,
    NegotiationState.ACCEPTED.value,
    NegotiationState.ACTIVE.value,
)
FOLLOWED_STATES = (NegotiationState.ACCEPTED.value, NegotiationState.ACTIVE.value)
HISTORY_STATES = (
    NegotiationState.ACCEPTED.value,
    NegotiationState.ACTIVE.value,
    NegotiationState.FULFILLED.value,
    NegotiationState.BROKEN.value,
)
CAPACITY_CAUSE = "payment_capacity"
NOT_APPLICABLE_CAUSE = "not_applicable"


# --- obligations and facts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    debt: Debt
    paid: int
    obligation: Obligation

    @property
    def open_minor(self) -> int:
        return self.obligation.amount.minor


def _lines(
    uow: UnitOfWork,
    company: Company,
    customer_id: int,
    refs: Sequence[str],
    *,
    lock: bool = False,
) -> list[_Line]:
    """The customer's payable debts with something open: the named ones (all named must
    qualify) or, without names, all of them (oldest due first)."""
    wanted = [r.strip() for r in refs]
    if len(set(wanted)) != len(wanted):
        raise ValidationFailed("a debt is named twice", field="debts")
    stmt = select(Debt).where(Debt.company_id == company.id)
    if wanted:
        stmt = stmt.where(Debt.external_id.in_(wanted))
    else:
        stmt = stmt.where(
            Debt.customer_id == customer_id, Debt.status.in_([s.value for s in PAYABLE])
        )
    stmt = stmt.order_by(Debt.id)
    debts = list(uow.session.scalars(stmt.with_for_update() if lock else stmt))
    by_ref = {d.external_id: d for d in debts}
    for ref in wanted:
        debt = by_ref.get(ref)
        if debt is None or debt.customer_id != customer_id:
            raise NotFound(f"no debt {ref!r} of customer {customer_id}", field="debts")
        if DebtStatus(debt.status) not in PAYABLE:
            raise Conflict(f"debt {ref!r} is {debt.status}: it cannot be negotiated", field="debts")
        if lock and debt.status != DebtStatus.OPEN.value:
            # Offered to a channel or in a remittance: its money may be on its way.
            raise Conflict(
                f"debt {ref!r} is in payment: wait for the channel's outcome", field="debts"
            )
    paid = paid_by_debt(uow.session, (d.id for d in debts))
    parts = breakdowns(uow, (d.id for d in debts))
    lines: list[_Line] = []
    ordered = (
        [by_ref[r] for r in wanted] if wanted else sorted(debts, key=lambda d: (d.due_date, d.id))
    )
    for debt in ordered:
        done = paid.get(debt.id, 0)
        left = debt.amount_minor - done
        if left <= 0:
            if wanted:
                raise Conflict(f"debt {debt.external_id!r} has nothing left to pay", field="debts")
            continue
        components = open_components(debt.amount_minor, done, parts.get(debt.id))
        obligation = Obligation(
            debt.id,
            debt.currency,
            debt.due_date,
            {c: Money(v, debt.currency) for c, v in components.items()},
            product_type=debt.concept or "",
            reference=debt.external_id,
        )
        lines.append(_Line(debt, done, obligation))
    return lines


@dataclass(frozen=True, slots=True)
class _History:
    earlier: int
    broken: int
    months_since_last: int | None
    installments_paid: int


def _months_between(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(0, months)


def _history(uow: UnitOfWork, company: Company, customer_id: int, as_of: date) -> _History:
    rows = uow.session.execute(
        select(Negotiation.state, Negotiation.accepted_at).where(
            Negotiation.company_id == company.id,
            Negotiation.customer_id == customer_id,
            Negotiation.state.in_(HISTORY_STATES),
        )
    ).all()
    last = max((at for _, at in rows if at is not None), default=None)
    months = None
    if last is not None:
        months = _months_between(last.astimezone(ZoneInfo(company.timezone)).date(), as_of)
    paid = uow.session.scalar(
        select(func.count())
        .select_from(NegotiationInstallment)
        .join(Negotiation, Negotiation.id == NegotiationInstallment.negotiation_id)
        .join(Debt, Debt.id == NegotiationInstallment.debt_id)
        .where(
            Negotiation.company_id == company.id,
            Negotiation.customer_id == customer_id,
            NegotiationInstallment.number > 0,
            Debt.status == DebtStatus.PAID.value,
        )
    )
    return _History(
        earlier=len(rows),
        broken=sum(1 for state, _ in rows if state == NegotiationState.BROKEN.value),
        months_since_last=months,
        installments_paid=int(paid or 0),
    )


def _facts(
    line: _Line, lines: Sequence[_Line], history: _History, offer: Offer | None, as_of: date
) -> Facts:
    currency = line.debt.currency
    overdue_minor = line.open_minor if line.obligation.is_overdue(as_of) else 0
    customer_overdue = sum(x.open_minor for x in lines if x.obligation.is_overdue(as_of))
    return Facts(
        days_past_due=line.obligation.days_past_due(as_of),
        balance=amount_of(line.open_minor, currency),
        overdue_amount=amount_of(overdue_minor, currency),
        product_type=line.debt.concept or "",
        customer_days_past_due=max(x.obligation.days_past_due(as_of) for x in lines),
        customer_balance=amount_of(sum(x.open_minor for x in lines), currency),
        customer_overdue_amount=amount_of(customer_overdue, currency),
        earlier_negotiations=history.earlier,
        broken_negotiations=history.broken,
        months_since_last_negotiation=history.months_since_last,
        installments_paid=history.installments_paid,
        term=offer.term if offer else 0,
        payment_today=offer.payment_today.amount if offer else Decimal(0),
        new_installment=offer.new_installment.amount if offer else Decimal(0),
        total_condoned=offer.total_condoned.amount if offer else Decimal(0),
    )


# --- offers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstallmentLine:
    number: int
    due_date: date
    amount: Decimal
    principal: Decimal
    interest: Decimal


@dataclass(frozen=True, slots=True)
class OfferTerms:
    """An offer as numbers, in currency units (not minor)."""

    currency: str
    debts: tuple[str, ...]  # replaced by the payment today and the new installments
    kept_debts: tuple[str, ...]  # keep their own schedule (PDIA, PDDA)
    balance: Decimal
    payment_today: Decimal
    financed: Decimal
    new_installment: Decimal
    term: int
    grace_months: int
    annual_rate: Decimal
    total_interest: Decimal
    total_condoned: Decimal
    condoned_by_concept: dict[str, Decimal]
    total_to_pay: Decimal
    condonation_at: int | None
    installments: tuple[InstallmentLine, ...]


@dataclass(frozen=True, slots=True)
class OfferView:
    strategy: str
    name: str
    viable: bool
    causes: tuple[Cause, ...]
    exceptions: tuple[int, ...]  # exceptions that overrode failing rules
    fits_capacity: bool | None  # None: no profile declared
    parameters: dict[str, Any]
    terms: OfferTerms | None  # None when the strategy does not apply (see causes)


@dataclass(frozen=True, slots=True)
class ObligationOffers:
    debt: str
    debt_id: int
    due_date: date
    balance: Decimal
    overdue_amount: Decimal
    days_past_due: int
    components: dict[str, Decimal]
    offers: tuple[OfferView, ...]


@dataclass(frozen=True, slots=True)
class Simulation:
    customer_id: int
    currency: str
    as_of: date
    capacity: Decimal | None
    cash_today: Decimal | None
    obligations: tuple[ObligationOffers, ...]


@dataclass(frozen=True, slots=True)
class Simulate:
    """Which offers a customer's obligations get. `debts` are the company's debt ids
    (all payable debts when empty); `strategies` limits the answer; `parameters` overrides
    a strategy's policy parameters (`{"PPPL": {"term": 24}}`: a recalculation)."""

    customer_id: int
    debts: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def offer_terms(offer: Offer, refs: Mapping[int, str]) -> OfferTerms:
    cur = offer.currency
    return OfferTerms(
        currency=cur,
        debts=tuple(refs[i] for i in offer.debt_ids),
        kept_debts=tuple(refs[i] for i in offer.kept_debt_ids),
        balance=offer.balance.amount,
        payment_today=offer.payment_today.amount,
        financed=offer.financed.amount,
        new_installment=offer.new_installment.amount,
        term=offer.term,
        grace_months=offer.grace_months,
        annual_rate=offer.annual_rate,
        total_interest=offer.total_interest.amount,
        total_condoned=offer.total_condoned.amount,
        condoned_by_concept={c.value: m.amount for c, m in offer.condoned_by_concept.items()},
        total_to_pay=offer.total_to_pay.amount,
        condonation_at=offer.condonation_at,
        installments=tuple(
            InstallmentLine(
                i.number, i.due_on, i.amount.amount, i.principal.amount, i.interest.amount
            )
            for i in offer.installments
        ),
    )


def _parameters(
    strategy: Strategy,
    strategy_policies: Sequence[ViabilityPolicy],
    overrides: Mapping[str, Any] | None,
    as_of: date,
) -> StrategyParameters:
    merged = policies.strategy_parameters(strategy_policies)
    merged.update(overrides or {})
    params = StrategyParameters.from_dict(merged)
    if params.first_due is None and strategy not in (Strategy.CNTL, Strategy.PDIA):
        params = StrategyParameters.from_dict({**merged, "first_due": add_months(as_of, 1)})
    return params


def _by_strategy(active: Sequence[ViabilityPolicy]) -> dict[Strategy, list[ViabilityPolicy]]:
    out: dict[Strategy, list[ViabilityPolicy]] = {}
    for p in active:
        out.setdefault(Strategy(p.strategy), []).append(p)
    return out


@dataclass(frozen=True, slots=True)
class _Capacity:
    capacity: Money | None
    cash_today: Money | None


def _capacity(uow: UnitOfWork, company: Company, customer_id: int) -> _Capacity:
    profile = latest_profile_row(uow, company.id, customer_id)
    if profile is None:
        return _Capacity(None, None)
    ratio = settings_of(uow, company.id).capacity_ratio
    capacity = payment_capacity(finances_of(profile, company.currency), ratio)
    cash = (
        None
        if profile.cash_today_minor is None
        else Money(profile.cash_today_minor, company.currency)
    )
    return _Capacity(capacity, cash)


def _capacity_cause(offer: Offer, cap: _Capacity) -> Cause:
    assert cap.capacity is not None
    if offer.max_installment.minor > cap.capacity.minor:
        message = (
            f"the installment {offer.max_installment.amount} is above the payment capacity "
            f"{cap.capacity.amount}"
        )
    else:
        message = (
            f"the payment today {offer.payment_today.amount} is above the cash available "
            f"{cap.cash_today.amount if cap.cash_today else 0}"
        )
    return Cause("profile", CAPACITY_CAUSE, message)


def _evaluate(
    strategy: Strategy,
    strategy_policies: Sequence[ViabilityPolicy],
    overrides: Mapping[str, Any] | None,
    selected: Sequence[_Line],
    lines: Sequence[_Line],
    history: _History,
    exceptions: Sequence[PolicyException],
    cap: _Capacity,
    as_of: date,
) -> tuple[Offer | None, OfferView]:
    """One strategy for `selected` (one obligation in a simulation, the chosen ones at
    creation): the offer, the policies' verdict on each obligation, the capacity check."""
    name = STRATEGY_NAMES[strategy]
    refs = {x.debt.id: x.debt.external_id for x in selected}
    try:
        params = _parameters(strategy, strategy_policies, overrides, as_of)
        offer = build_offer(strategy, [x.obligation for x in selected], params, as_of=as_of)
    except ValidationFailed as exc:
        cause = Cause("strategy", NOT_APPLICABLE_CAUSE, exc.message)
        return None, OfferView(strategy.value, name, False, (cause,), (), None, {}, None)
    causes: list[Cause] = []
    used: list[int] = []
    for line in selected:
        verdict = policies.judge(
            strategy_policies,
            _facts(line, lines, history, offer, as_of),
            exceptions,
            debt_id=line.debt.id,
        )
        causes.extend(c for c in verdict.causes if c not in causes)
        used.extend(e for e in verdict.exceptions if e not in used)
    fit: bool | None = None
    if cap.capacity is not None:
        fit = fits(offer, cap.capacity, cash_today=cap.cash_today)
        if not fit:
            causes.append(_capacity_cause(offer, cap))
    view = OfferView(
        strategy.value,
        name,
        not causes,
        tuple(causes),
        tuple(used),
        fit,
        params.to_dict(),
        offer_terms(offer, refs),
    )
    return offer, view


def simulate(
    uow: UnitOfWork, company_id: int, request: Simulate, *, actor: Actor, clock: Clock
) -> Simulation:
    """Every strategy with policies, for each obligation. Writes nothing."""
    wanted = {parse_strategy(s) for s in request.strategies}
    overrides = {parse_strategy(k): v for k, v in request.parameters.items()}
    for code, values in overrides.items():
        if not isinstance(values, Mapping):
            raise ValidationFailed(f"parameters of {code} must be an object", field="parameters")
    with uow:
        company = company_in_scope(uow, company_id, actor)
        customer = customer_in_company(uow, company_id, request.customer_id)
        as_of = local_today(company, clock)
        lines = _lines(uow, company, customer.id, request.debts)
        history = _history(uow, company, customer.id, as_of)
        exceptions = policies.open_exceptions(uow, company_id, customer.id, as_of)
        cap = _capacity(uow, company, customer.id)
        grouped = _by_strategy(policies.active_policies(uow, company_id))
        results: list[ObligationOffers] = []
        for line in lines:
            offers = [
                _evaluate(
                    code,
                    grouped[code],
                    overrides.get(code),
                    [line],
                    lines,
                    history,
                    exceptions,
                    cap,
                    as_of,
                )[1]
                for code in Strategy
                if code in grouped and (not wanted or code in wanted)
            ]
            cur = line.debt.currency
            results.append(
                ObligationOffers(
                    debt=line.debt.external_id,
                    debt_id=line.debt.id,
                    due_date=line.debt.due_date,
                    balance=amount_of(line.open_minor, cur),
                    overdue_amount=amount_of(
                        line.open_minor if line.obligation.is_overdue(as_of) else 0, cur
                    ),
                    days_past_due=line.obligation.days_past_due(as_of),
                    components={c.value: m.amount for c, m in line.obligation.components.items()},
                    offers=tuple(offers),
                )
            )
        return Simulation(
            customer_id=customer.id,
            currency=company.currency,
            as_of=as_of,
            capacity=cap.capacity.amount if cap.capacity else None,
            cash_today=cap.cash_today.amount if cap.cash_today else None,
            obligations=tuple(results),
        )


# --- the negotiation's view -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NegotiatedDebt:
    debt: str
    open_amount: Decimal
    overdue_amount: Decimal
    days_past_due: int
    status: str


@dataclass(frozen=True, slots=True)
class PlanDebt:
    """A new debt of the plan: number 0 is the payment today, 1… the installments."""

    number: int
    debt: str
    due_date: date
    amount: Decimal
    principal: Decimal
    interest: Decimal
    paid: Decimal
    status: str


@dataclass(frozen=True, slots=True)
class CommitmentView:
    position: int
    kind: str
    due_date: date
    amount: Decimal
    rate: Decimal  # percent


@dataclass(frozen=True, slots=True)
class NegotiationSummary:
    id: int
    customer_id: int
    strategy: str
    state: str
    currency: str
    negotiated: Decimal
    payment_today: Decimal
    installments_total: Decimal
    condoned: Decimal
    channel: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NegotiationView:
    id: int
    customer_id: int
    external_id: str | None
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
    negotiated: Decimal
    payment_today: Decimal
    installments_total: Decimal
    condoned: Decimal
    condoned_by_concept: dict[str, Decimal]
    annual_rate: Decimal
    term: int
    exceptions_used: list[str]
    debts: tuple[NegotiatedDebt, ...]
    plan: tuple[PlanDebt, ...]  # proposed: the offer's payments; accepted+: the new debts
    commitments: tuple[CommitmentView, ...]
    break_reason: str | None
    reinstated_debt: str | None
    created_by: str
    created_at: datetime
    accepted_at: datetime | None
    activated_at: datetime | None
    closed_at: datetime | None


def _offer_snapshot(offer: Offer, refs: Mapping[int, str]) -> dict[str, Any]:
    """The offer as stored: minor units, so acceptance reproduces it to the cent."""
    return {
        "as_of": offer.as_of.isoformat(),
        "debts": [refs[i] for i in offer.debt_ids],
        "kept_debts": [refs[i] for i in offer.kept_debt_ids],
        "balance_minor": offer.balance.minor,
        "kept_balance_minor": offer.kept_balance.minor,
        "payment_today_minor": offer.payment_today.minor,
        "financed_minor": offer.financed.minor,
        "total_interest_minor": offer.total_interest.minor,
        "annual_rate": str(offer.annual_rate),
        "term": offer.term,
        "grace_months": offer.grace_months,
        "condonation_at": offer.condonation_at,
        "condonations": [
            {"debt": refs[c.debt_id], "concept": c.concept.value, "amount_minor": c.amount.minor}
            for c in offer.condonations
        ],
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_on.isoformat(),
                "principal_minor": i.principal.minor,
                "interest_minor": i.interest.minor,
            }
            for i in offer.installments
        ],
    }


def _proposed_plan(n: Negotiation) -> list[PlanDebt]:
    cur = n.currency
    plan: list[PlanDebt] = []
    today = n.offer["payment_today_minor"]
    if today > 0:
        plan.append(
            PlanDebt(
                0,
                _plan_ref(n.id, 0),
                date.fromisoformat(n.offer["as_of"]),
                amount_of(today, cur),
                amount_of(today, cur),
                amount_of(0, cur),
                amount_of(0, cur),
                "proposed",
            )
        )
    for i in n.offer["installments"]:
        total = i["principal_minor"] + i["interest_minor"]
        if total == 0:
            continue
        plan.append(
            PlanDebt(
                i["number"],
                _plan_ref(n.id, i["number"]),
                date.fromisoformat(i["due_date"]),
                amount_of(total, cur),
                amount_of(i["principal_minor"], cur),
                amount_of(i["interest_minor"], cur),
                amount_of(0, cur),
                "proposed",
            )
        )
    return plan


def _plan_ref(negotiation_id: int, number: int) -> str:
    return f"NEG{negotiation_id}-{number:03d}"


def _view(uow: UnitOfWork, n: Negotiation) -> NegotiationView:
    cur = n.currency
    nd_rows = uow.session.execute(
        select(NegotiationDebt, Debt)
        .join(Debt, Debt.id == NegotiationDebt.debt_id)
        .where(NegotiationDebt.negotiation_id == n.id)
        .order_by(NegotiationDebt.id)
    ).all()
    debts = tuple(
        NegotiatedDebt(
            d.external_id,
            amount_of(nd.open_minor, cur),
            amount_of(nd.overdue_minor, cur),
            nd.days_past_due,
            d.status,
        )
        for nd, d in nd_rows
    )
    if n.state == NegotiationState.PROPOSED.value:
        plan = tuple(_proposed_plan(n))
    else:
        rows = uow.session.execute(
            select(NegotiationInstallment, Debt)
            .join(Debt, Debt.id == NegotiationInstallment.debt_id)
            .where(NegotiationInstallment.negotiation_id == n.id)
            .order_by(NegotiationInstallment.number)
        ).all()
        paid = paid_by_debt(uow.session, (d.id for _, d in rows))
        plan = tuple(
            PlanDebt(
                i.number,
                d.external_id,
                i.due_date,
                amount_of(i.amount_minor, cur),
                amount_of(i.principal_minor, cur),
                amount_of(i.interest_minor, cur),
                amount_of(paid.get(d.id, 0), cur),
                d.status,
            )
            for i, d in rows
        )
    commitments = tuple(
        CommitmentView(
            c.position,
            c.kind,
            c.due_date,
            amount_of(c.amount_minor, cur),
            (Decimal(c.rate_bp) / 100).quantize(Decimal("0.01")),
        )
        for c in uow.session.scalars(
            select(NegotiationCommitment)
            .where(NegotiationCommitment.negotiation_id == n.id)
            .order_by(NegotiationCommitment.position)
        )
    )
    by_concept: dict[str, int] = {}
    for c in n.offer["condonations"]:
        by_concept[c["concept"]] = by_concept.get(c["concept"], 0) + c["amount_minor"]
    reinstated = None
    if n.reinstated_debt_id is not None:
        reinstated = uow.session.scalar(
            select(Debt.external_id).where(Debt.id == n.reinstated_debt_id)
        )
    return NegotiationView(
        id=n.id,
        customer_id=n.customer_id,
        external_id=n.external_id,
        strategy=n.strategy,
        strategy_name=STRATEGY_NAMES[Strategy(n.strategy)],
        state=n.state,
        parameters={k: v for k, v in n.parameters.items() if not k.startswith("_")},
        adviser=n.adviser,
        office=n.office,
        channel=n.channel,
        mark_start=n.mark_start,
        mark_end=n.mark_end,
        currency=cur,
        negotiated=amount_of(n.negotiated_minor, cur),
        payment_today=amount_of(n.payment_today_minor, cur),
        installments_total=amount_of(n.installments_total_minor, cur),
        condoned=amount_of(n.condoned_minor, cur),
        condoned_by_concept={k: amount_of(v, cur) for k, v in by_concept.items()},
        annual_rate=Decimal(n.offer["annual_rate"]),
        term=n.offer["term"],
        exceptions_used=list(n.exceptions_used),
        debts=debts,
        plan=plan,
        commitments=commitments,
        break_reason=n.break_reason,
        reinstated_debt=reinstated,
        created_by=n.created_by,
        created_at=n.created_at,
        accepted_at=n.accepted_at,
        activated_at=n.activated_at,
        closed_at=n.closed_at,
    )


def _load(
    uow: UnitOfWork, company_id: int, negotiation_id: int, *, lock: bool = False
) -> Negotiation:
    stmt = select(Negotiation).where(
        Negotiation.id == negotiation_id, Negotiation.company_id == company_id
    )
    n = uow.session.scalar(stmt.with_for_update() if lock else stmt)
    if n is None:
        raise NotFound(f"no negotiation {negotiation_id}")
    return n


def get_negotiation(
    uow: UnitOfWork, company_id: int, negotiation_id: int, *, actor: Actor
) -> NegotiationView:
    with uow:
        company_in_scope(uow, company_id, actor)
        return _view(uow, _load(uow, company_id, negotiation_id))


def list_negotiations(
    uow: UnitOfWork,
    company_id: int,
    *,
    actor: Actor,
    state: str | None = None,
    customer_id: int | None = None,
    strategy: str | None = None,
    paging: Paging | None = None,
) -> Page[NegotiationSummary]:
    page = paging or Paging()
    with uow:
        company = company_in_scope(uow, company_id, actor)
        stmt = select(Negotiation).where(Negotiation.company_id == company.id)
        if state is not None:
            try:
                stmt = stmt.where(Negotiation.state == NegotiationState(state).value)
            except ValueError:
                names = ", ".join(s.value for s in NegotiationState)
                raise ValidationFailed(f"state must be one of {names}", field="state") from None
        if customer_id is not None:
            stmt = stmt.where(Negotiation.customer_id == customer_id)
        if strategy is not None:
            stmt = stmt.where(Negotiation.strategy == parse_strategy(strategy).value)
        total = int(
            uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
            or 0
        )
        rows = uow.session.scalars(
            stmt.order_by(Negotiation.id.desc()).offset(page.offset).limit(page.page_size)
        )
        items = [
            NegotiationSummary(
                n.id,
                n.customer_id,
                n.strategy,
                n.state,
                n.currency,
                amount_of(n.negotiated_minor, n.currency),
                amount_of(n.payment_today_minor, n.currency),
                amount_of(n.installments_total_minor, n.currency),
                amount_of(n.condoned_minor, n.currency),
                n.channel,
                n.created_at,
            )
            for n in rows
        ]
        return Page(items, total, page.page, page.page_size)


# --- creating a proposal -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitmentSpec:
    kind: str  # "P" or "T"
    amount: Decimal | str
    due_date: date | None = None
    rate: Decimal | str = "100"  # percent of the negotiation it covers (the contract's rate)


@dataclass(frozen=True, slots=True)
class NewNegotiation:
    """A proposal. Without `commitments`, each payment of the plan is one: `P` for all
    but the last, `T` for the last. `external_id` makes a retried request safe."""

    customer_id: int
    strategy: str
    debts: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    commitments: tuple[CommitmentSpec, ...] = ()
    adviser: str | None = None
    office: str | None = None
    mark_start: date | None = None
    mark_end: date | None = None
    channel: str = "api"
    external_id: str | None = None


def _optional_text(value: str | None, limit: int, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > limit:
        raise ValidationFailed(f"{name} has at most {limit} characters", field=name)
    return text


def _rate_bp(value: Decimal | str, n: int) -> int:
    try:
        rate = Decimal(str(value))
    except ArithmeticError:
        raise ValidationFailed(
            f"commitment {n}: rate is not a number", field="commitments"
        ) from None
    if not rate.is_finite() or not 0 < rate <= 100 or rate != rate.quantize(Decimal("0.01")):
        raise ValidationFailed(
            f"commitment {n}: rate must be above 0 and at most 100.00, two decimals",
            field="commitments",
        )
    return int(rate * 100)


def _commitments(
    new: NewNegotiation, offer: Offer, as_of: date, currency: str
) -> list[tuple[str, date, int, int]]:
    """(kind, due date, amount in minor units, rate in basis points) of each commitment."""
    if new.commitments:
        kinds = check_commitments([c.kind for c in new.commitments])
        out: list[tuple[str, date, int, int]] = []
        for n, (spec, kind) in enumerate(zip(new.commitments, kinds, strict=True), start=1):
            minor = minor_of(spec.amount, currency, "commitments")
            if minor is None or minor <= 0:
                raise ValidationFailed(
                    f"commitment {n} must have an amount above zero", field="commitments"
                )
            out.append((kind.value, spec.due_date or as_of, minor, _rate_bp(spec.rate, n)))
        return out
    payments: list[tuple[date, int]] = []
    if offer.payment_today.minor > 0:
        payments.append((as_of, offer.payment_today.minor))
    payments += [(i.due_on, i.amount.minor) for i in offer.installments if i.amount.minor > 0]
    last = len(payments) - 1
    return [
        ("T" if k == last else "P", due, minor, 10000) for k, (due, minor) in enumerate(payments)
    ]


def _fingerprint(new: NewNegotiation) -> dict[str, Any]:
    return {
        "customer_id": new.customer_id,
        "strategy": new.strategy.strip().upper(),
        "debts": [d.strip() for d in new.debts],
    }


def create_negotiation(
    uow: UnitOfWork, company_id: int, new: NewNegotiation, *, actor: Actor, clock: Clock
) -> NegotiationView:
    """Record a proposal; refused (`NotViable`) when the policies do not allow it."""
    actor.require_write()
    strategy = parse_strategy(new.strategy)
    if not new.debts:
        raise ValidationFailed("name at least one debt to negotiate", field="debts")
    if not isinstance(new.parameters, Mapping):
        raise ValidationFailed("parameters must be an object", field="parameters")
    adviser = _optional_text(new.adviser, 100, "adviser")
    office = _optional_text(new.office, 20, "office")
    channel = new.channel.strip()
    if not 1 <= len(channel) <= 32:
        raise ValidationFailed("channel must have 1 to 32 characters", field="channel")
    external_id = _optional_text(new.external_id, 100, "external_id")
    try:
        return _create(
            uow, company_id, new, strategy, adviser, office, channel, external_id, actor, clock
        )
    except IntegrityError:
        # Two requests with one key raced past the lookup: the loser answers the winner.
        if external_id is None:
            raise
        with uow:
            existing = uow.session.scalar(
                select(Negotiation).where(
                    Negotiation.company_id == company_id, Negotiation.external_id == external_id
                )
            )
            if existing is None:
                raise
            return _replay(uow, existing, new)


def _replay(uow: UnitOfWork, existing: Negotiation, new: NewNegotiation) -> NegotiationView:
    if existing.parameters.get("_request") != _fingerprint(new):
        raise Conflict(
            f"key {existing.external_id!r} was already used for another negotiation",
            negotiation_id=existing.id,
        )
    return _view(uow, existing)


def _create(
    uow: UnitOfWork,
    company_id: int,
    new: NewNegotiation,
    strategy: Strategy,
    adviser: str | None,
    office: str | None,
    channel: str,
    external_id: str | None,
    actor: Actor,
    clock: Clock,
) -> NegotiationView:
    with uow:
        company = company_in_scope(uow, company_id, actor)
        if external_id is not None:
            done = uow.session.scalar(
                select(Negotiation).where(
                    Negotiation.company_id == company_id, Negotiation.external_id == external_id
                )
            )
            if done is not None:
                return _replay(uow, done, new)
        customer = customer_in_company(uow, company_id, new.customer_id, lock=True)
        if external_id is not None:
            # Again under the customer's lock: a request with the same key may have
            # committed while this one waited for it.
            done = uow.session.scalar(
                select(Negotiation).where(
                    Negotiation.company_id == company_id, Negotiation.external_id == external_id
                )
            )
            if done is not None:
                return _replay(uow, done, new)
        as_of = local_today(company, clock)
        selected = _lines(uow, company, customer.id, new.debts, lock=True)
        busy = uow.session.execute(
            select(Debt.external_id, Negotiation.id)
            .join(NegotiationDebt, NegotiationDebt.debt_id == Debt.id)
            .join(Negotiation, Negotiation.id == NegotiationDebt.negotiation_id)
            .where(
                Debt.id.in_([x.debt.id for x in selected]),
                Negotiation.state.in_(OPEN_STATES),
            )
        ).first()
        if busy is not None:
            raise Conflict(
                f"debt {busy[0]!r} is already in negotiation {busy[1]}",
                field="debts",
                negotiation_id=busy[1],
            )
        grouped = _by_strategy(policies.active_policies(uow, company_id))
        if strategy not in grouped:
            raise NotViable(
                f"{strategy.value} is not offered: the company has no active policy for it",
                strategy=strategy.value,
                cause="no_policy",
            )
        all_lines = _lines(uow, company, customer.id, ())
        history = _history(uow, company, customer.id, as_of)
        exceptions = policies.open_exceptions(uow, company_id, customer.id, as_of)
        cap = _capacity(uow, company, customer.id)
        offer, view = _evaluate(
            strategy,
            grouped[strategy],
            new.parameters,
            selected,
            all_lines or selected,
            history,
            exceptions,
            cap,
            as_of,
        )
        if offer is None or not view.viable:
            reasons = "; ".join(f"{c.message} ({c.cause})" for c in view.causes)
            raise NotViable(
                f"{strategy.value} is not viable: {reasons}",
                strategy=strategy.value,
                cause=view.causes[0].cause,
            )
        commitments = _commitments(new, offer, as_of, company.currency)
        mark_start = new.mark_start or as_of
        last_due = offer.installments[-1].due_on if offer.installments else as_of
        mark_end = new.mark_end or max(last_due, mark_start)
        if mark_end < mark_start:
            raise ValidationFailed("mark_end is before mark_start", field="mark_end")
        refs = {x.debt.id: x.debt.external_id for x in selected}
        used = [e for e in exceptions if e.id in view.exceptions]
        policy_names = {p.id: p.name for p in grouped[strategy]}
        now = clock()
        parameters = dict(view.parameters)
        parameters["_request"] = _fingerprint(new)
        negotiation = Negotiation(
            company_id=company_id,
            customer_id=customer.id,
            external_id=external_id,
            strategy=strategy.value,
            parameters=parameters,
            offer=_offer_snapshot(offer, refs),
            state=NegotiationState.PROPOSED.value,
            adviser=adviser,
            office=office,
            channel=channel,
            mark_start=mark_start,
            mark_end=mark_end,
            currency=company.currency,
            negotiated_minor=offer.balance.minor,
            payment_today_minor=offer.payment_today.minor,
            installments_total_minor=offer.schedule.total.minor if offer.schedule else 0,
            condoned_minor=offer.total_condoned.minor,
            exceptions_used=[policy_names[e.policy_id] for e in used],
            created_by=actor.label,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(negotiation)
        uow.session.flush()
        for line in selected:
            uow.session.add(
                NegotiationDebt(
                    negotiation_id=negotiation.id,
                    debt_id=line.debt.id,
                    open_minor=line.open_minor,
                    overdue_minor=line.open_minor if line.obligation.is_overdue(as_of) else 0,
                    days_past_due=line.obligation.days_past_due(as_of),
                )
            )
        for position, (kind, due, minor, rate_bp) in enumerate(commitments, start=1):
            uow.session.add(
                NegotiationCommitment(
                    negotiation_id=negotiation.id,
                    position=position,
                    kind=kind,
                    due_date=due,
                    amount_minor=minor,
                    rate_bp=rate_bp,
                )
            )
        for e in used:
            e.negotiation_id = negotiation.id
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="policy_exception.used",
                entity_type="policy_exception",
                entity_id=e.id,
                after={"negotiation_id": negotiation.id, "policy": policy_names[e.policy_id]},
            )
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="negotiation.created",
            entity_type="negotiation",
            entity_id=negotiation.id,
            after={
                "customer_id": customer.id,
                "strategy": strategy.value,
                "debts": [x.debt.external_id for x in selected],
                "payment_today": offer.payment_today.amount,
                "installments": len(offer.installments),
                "condoned": offer.total_condoned.amount,
                "exceptions_used": negotiation.exceptions_used,
                "state": negotiation.state,
            },
        )
        uow.commit()
        return _view(uow, negotiation)


# --- accepting: the debts become the plan --------------------------------------------------------


def new_debt(
    company: Company,
    customer_id: int,
    ref: str,
    concept: str,
    amount_minor: int,
    due: date,
    today: date,
    now: datetime,
) -> Debt:
    return Debt(
        company_id=company.id,
        customer_id=customer_id,
        external_id=ref,
        concept=concept[:200],
        amount_minor=amount_minor,
        currency=company.currency,
        issue_date=today,
        due_date=due,
        status=DebtStatus.OPEN.value,
        created_at=now,
        updated_at=now,
    )


def _status_change(
    uow: UnitOfWork, debt: Debt, status: DebtStatus, negotiation_id: int, actor: Actor, clock: Clock
) -> None:
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=debt.company_id,
        action="debt.status_changed",
        entity_type="debt",
        entity_id=debt.id,
        before={"status": debt.status},
        after={"status": status.value, "negotiation_id": negotiation_id},
    )
    debt.status = status.value
    debt.updated_at = clock()


def accept_negotiation(
    uow: UnitOfWork, company_id: int, negotiation_id: int, *, actor: Actor, clock: Clock
) -> NegotiationView:
    """One transaction: the negotiated debts are replaced by the plan's new debts, the
    condoned amounts written off by concept, the negotiation `accepted`, all audited."""
    actor.require_write()
    with uow:
        company = company_in_scope(uow, company_id, actor)
        # Locks in the payments' order: the customer first, then this plan, then the debts.
        plan_customer = _load(uow, company_id, negotiation_id).customer_id
        customer_in_company(uow, company_id, plan_customer, lock=True)
        n = _load(uow, company_id, negotiation_id, lock=True)
        uow.session.refresh(n)
        transition(n.state, NegotiationState.ACCEPTED)
        today = local_today(company, clock)
        made = date.fromisoformat(n.offer["as_of"])
        if today > made + timedelta(days=ACCEPT_WITHIN_DAYS):
            raise Conflict(
                f"the proposal of {made.isoformat()} can no longer be accepted (more than "
                f"{ACCEPT_WITHIN_DAYS} days): simulate and propose again"
            )
        refs = list(n.offer["debts"])
        rows = list(
            uow.session.scalars(
                select(Debt)
                .join(NegotiationDebt, NegotiationDebt.debt_id == Debt.id)
                .where(NegotiationDebt.negotiation_id == n.id)
                .order_by(Debt.id)
                .with_for_update()
            )
        )
        recorded = {
            nd.debt_id: nd.open_minor
            for nd in uow.session.scalars(
                select(NegotiationDebt).where(NegotiationDebt.negotiation_id == n.id)
            )
        }
        paid = paid_by_debt(uow.session, (d.id for d in rows))
        for debt in rows:
            still = debt.amount_minor - paid.get(debt.id, 0)
            if debt.status != DebtStatus.OPEN.value or still != recorded[debt.id]:
                raise Conflict(
                    f"debt {debt.external_id!r} changed since the proposal (it is "
                    f"{debt.status}, {amount_of(max(still, 0), debt.currency)} open): "
                    "propose again",
                    field="debts",
                )
        by_ref = {d.external_id: d for d in rows}
        now = clock()
        for ref in refs:
            _status_change(uow, by_ref[ref], DebtStatus.REPLACED, n.id, actor, clock)
        for c in n.offer["condonations"]:
            uow.session.add(
                DebtComponent(
                    company_id=company_id,
                    debt_id=by_ref[c["debt"]].id,
                    concept=c["concept"],
                    kind=WRITTEN_OFF,
                    amount_minor=c["amount_minor"],
                    negotiation_id=n.id,
                    created_at=now,
                )
            )
        payments: list[tuple[int, date, int, int]] = []  # number, due, principal, interest
        if n.offer["payment_today_minor"] > 0:
            payments.append((0, today, n.offer["payment_today_minor"], 0))
        for i in n.offer["installments"]:
            payments.append(
                (
                    i["number"],
                    date.fromisoformat(i["due_date"]),
                    i["principal_minor"],
                    i["interest_minor"],
                )
            )
        count = len(n.offer["installments"])
        created: list[dict[str, Any]] = []
        for number, due, principal, interest in payments:
            if principal + interest == 0:
                continue  # a grace month at 0 %: nothing to collect, no debt
            ref = _plan_ref(n.id, number)
            if uow.session.scalar(
                select(Debt.id).where(Debt.company_id == company_id, Debt.external_id == ref)
            ):
                raise Conflict(f"a debt {ref!r} exists already: the plan's debts need that id")
            label = (
                f"Negotiation {n.id} ({n.strategy}): payment today"
                if number == 0
                else f"Negotiation {n.id} ({n.strategy}): installment {number}/{count}"
            )
            debt = new_debt(
                company, n.customer_id, ref, label, principal + interest, due, today, now
            )
            uow.session.add(debt)
            uow.session.flush()
            uow.session.add(
                NegotiationInstallment(
                    negotiation_id=n.id,
                    debt_id=debt.id,
                    number=number,
                    due_date=due,
                    amount_minor=principal + interest,
                    principal_minor=principal,
                    interest_minor=interest,
                )
            )
            for concept, minor in (
                (Concept.CAPITAL, principal),
                (Concept.CURRENT_INTEREST, interest),
            ):
                if minor > 0:
                    uow.session.add(
                        DebtComponent(
                            company_id=company_id,
                            debt_id=debt.id,
                            concept=concept.value,
                            kind=BALANCE,
                            amount_minor=minor,
                            negotiation_id=n.id,
                            created_at=now,
                        )
                    )
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="debt.created",
                entity_type="debt",
                entity_id=debt.id,
                after={
                    "debt_id": ref,
                    "amount": amount_of(principal + interest, company.currency),
                    "due_date": due,
                    "negotiation_id": n.id,
                },
            )
            created.append(
                {
                    "debt": ref,
                    "due_date": due.isoformat(),
                    "amount": str(amount_of(principal + interest, company.currency)),
                }
            )
        n.state = NegotiationState.ACCEPTED.value
        n.accepted_at = now
        n.updated_at = now
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="negotiation.accepted",
            entity_type="negotiation",
            entity_id=n.id,
            before={"state": NegotiationState.PROPOSED.value},
            after={
                "state": n.state,
                "replaced": refs,
                "plan": created,
                "condoned": amount_of(n.condoned_minor, company.currency),
            },
        )
        uow.session.flush()
        outbox.add_event(uow, company_id, NEGOTIATION_ACCEPTED, negotiation_document(uow, n), clock)
        uow.commit()
        return _view(uow, n)


# --- webhook events ----------------------------------------------------------------------------

NEGOTIATION_ACCEPTED = "negotiation.accepted"
NEGOTIATION_FULFILLED = "negotiation.fulfilled"
NEGOTIATION_BROKEN = "negotiation.broken"


def negotiation_document(uow: UnitOfWork, n: Negotiation) -> dict[str, Any]:
    """The negotiation events' payload: what the company's system needs to follow its
    debts (which were replaced, which new ones to expect payments on, what came back)."""
    company = uow.session.get(Company, n.company_id)
    customer = uow.session.get(Customer, n.customer_id)
    assert company is not None and customer is not None
    view = _view(uow, n)
    cur = n.currency

    def shown(value: Decimal) -> str:
        return format(value, "f")

    reinstated = None
    if n.reinstated_debt_id is not None:
        debt = uow.session.get(Debt, n.reinstated_debt_id)
        assert debt is not None
        reinstated = {
            "debt_id": debt.external_id,
            "amount": shown(amount_of(debt.amount_minor, cur)),
            "due_date": debt.due_date.isoformat(),
        }
    return {
        "negotiation_id": n.id,
        "company": company.slug,
        "customer": {
            "id_type": customer.id_type,
            "national_id": customer.national_id,
            "national_id_formatted": ids.format_national_id(
                ids.IdType(customer.id_type), customer.national_id
            ),
            "name": customer.name,
        },
        "strategy": n.strategy,
        "state": n.state,
        "currency": cur,
        "replaced": [d.debt for d in view.debts if d.status == DebtStatus.REPLACED.value],
        "plan": [
            {
                "debt_id": p.debt,
                "number": p.number,
                "due_date": p.due_date.isoformat(),
                "amount": shown(p.amount),
                "status": p.status,
            }
            for p in view.plan
        ],
        "condoned": {k: shown(v) for k, v in view.condoned_by_concept.items()},
        "break_reason": n.break_reason,
        "reinstated": reinstated,
    }


# --- lookups for the edges (contracts name debts, not negotiations) ---------------------------


def customer_of_debt(uow: UnitOfWork, company_id: int, debt_ref: str, *, actor: Actor) -> int:
    """The customer a debt (the company's id; right-padding spaces ignored) belongs to."""
    with uow:
        company_in_scope(uow, company_id, actor)
        customer_id = uow.session.scalar(
            select(Debt.customer_id).where(
                Debt.company_id == company_id, Debt.external_id == debt_ref.strip()
            )
        )
        if customer_id is None:
            raise NotFound(f"no debt {debt_ref.strip()!r}", field="debts")
        return int(customer_id)


def negotiation_for_debt(
    uow: UnitOfWork, company_id: int, debt_ref: str, *, actor: Actor
) -> NegotiationView:
    """The latest negotiation that covers a debt, or whose plan the debt is part of."""
    ref = debt_ref.strip()
    with uow:
        company_in_scope(uow, company_id, actor)
        debt_id = uow.session.scalar(
            select(Debt.id).where(Debt.company_id == company_id, Debt.external_id == ref)
        )
        if debt_id is None:
            raise NotFound(f"no debt {ref!r}", field="debts")
        covering = select(NegotiationDebt.negotiation_id).where(NegotiationDebt.debt_id == debt_id)
        planned = select(NegotiationInstallment.negotiation_id).where(
            NegotiationInstallment.debt_id == debt_id
        )
        n = uow.session.scalar(
            select(Negotiation)
            .where(
                Negotiation.company_id == company_id,
                Negotiation.id.in_(covering.union(planned).scalar_subquery()),
            )
            .order_by(Negotiation.id.desc())
            .limit(1)
        )
        if n is None:
            raise NotFound(f"debt {ref!r} is in no negotiation", field="debts")
        return _view(uow, n)


def negotiation_by_key(
    uow: UnitOfWork, company_id: int, key: str, *, actor: Actor
) -> NegotiationView | None:
    """The negotiation created with this idempotency key, if any."""
    with uow:
        company_in_scope(uow, company_id, actor)
        n = uow.session.scalar(
            select(Negotiation).where(
                Negotiation.company_id == company_id, Negotiation.external_id == key.strip()
            )
        )
        return None if n is None else _view(uow, n)


def customer_by_national_id(
    uow: UnitOfWork, company_id: int, raw_id: str, *, actor: Actor, id_type: str | None = None
) -> int:
    """A customer's id from their national id (validated for the company's country)."""
    with uow:
        company = company_in_scope(uow, company_id, actor)
        return find_customer(uow, company, raw_id, id_type).id
