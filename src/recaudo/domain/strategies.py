"""Negotiation strategies (the bank's "herramientas"): selected obligations → an exact `Offer`.

One pure function per strategy; `build_offer` dispatches on the strategy code with a
`StrategyParameters` (the JSON a policy or a simulation carries). Every offer satisfies

    balance == payment_today + total_condoned + financed + kept_balance

where `financed` is the principal of the new schedule (0 without one) and `kept_balance`
the obligations that keep their own schedule (PDIA, PDDA). docs/negotiation-strategies.md
gives each strategy's meaning, taken from the collections-management API document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money, parse_amount, to_minor
from recaudo.domain.negotiation import (
    Concept,
    Condonation,
    Obligation,
    condone,
    condoned_by_concept,
    not_yet_due,
    overdue,
    parse_percentages,
)
from recaudo.domain.plans import Installment, Schedule, french_schedule


class Strategy(StrEnum):
    CNTL = "CNTL"  # Cancelación total: payoff today, condonation per concept
    PDIA = "PDIA"  # Puesta al día: pay the overdue part
    PDDA = "PDDA"  # Puesta al día con diferido: the overdue part deferred over N installments
    PPPL = "PPPL"  # Plan de pagos a plazo: French schedule, rate, grace
    PPPA = "PPPA"  # Plan de pagos con condonación intermedia: condonation at installment K
    PPPS = "PPPS"  # Preaprobados (BM/SLP): pre-approved restructuring/modification
    PRERM = "PRERM"  # Preaprobado reestructuración/modificación (OpenCard)
    REDIF = "REDIF"  # Rediferido: the revolving balance re-deferred to a new term


STRATEGY_NAMES: Mapping[Strategy, str] = {
    Strategy.CNTL: "Cancelación total",
    Strategy.PDIA: "Puesta al día",
    Strategy.PDDA: "Puesta al día con diferido",
    Strategy.PPPL: "Plan de pagos a plazo",
    Strategy.PPPA: "Plan de pagos con condonación intermedia",
    Strategy.PPPS: "Preaprobado reestructuración / modificación",
    Strategy.PRERM: "Preaprobado reestructuración / modificación (tarjeta / rotativo)",
    Strategy.REDIF: "Rediferido",
}


def parse_strategy(text: str) -> Strategy:
    try:
        return Strategy(text.strip().upper())
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise ValidationFailed(
            f"unknown strategy {text!r}: must be one of {names}", strategy=text
        ) from None


@dataclass(frozen=True)
class Offer:
    """What a strategy proposes for a set of obligations, exact to the minor unit."""

    strategy: Strategy
    currency: str
    as_of: date
    debt_ids: tuple[int, ...]  # obligations the negotiation replaces (by today's payment/plan)
    kept_debt_ids: tuple[int, ...]  # obligations that keep their own schedule (PDIA/PDDA)
    balance: Money  # open balance of all the selected obligations
    kept_balance: Money  # open balance of the kept obligations
    payment_today: Money  # due on `as_of`
    condonations: tuple[Condonation, ...]
    schedule: Schedule | None
    condonation_at: int | None = None  # PPPA: installment K whose payment grants condonation

    def __post_init__(self) -> None:
        financed = self.schedule.principal.minor if self.schedule else 0
        parts = self.payment_today.minor + self.total_condoned.minor + financed
        if parts + self.kept_balance.minor != self.balance.minor:
            raise ValidationFailed(
                "offer does not add up: payment today + condoned + financed + kept "
                f"= {parts + self.kept_balance.minor} minor units, balance {self.balance.minor}"
            )
        if self.payment_today.minor < 0:
            raise ValidationFailed("the payment today cannot be negative")

    @property
    def installments(self) -> tuple[Installment, ...]:
        return self.schedule.installments if self.schedule else ()

    @property
    def term(self) -> int:
        """Amortising installments of the new schedule (grace installments not counted)."""
        return self.schedule.term if self.schedule else 0

    @property
    def grace_months(self) -> int:
        return self.schedule.grace_months if self.schedule else 0

    @property
    def annual_rate(self) -> Decimal:
        return self.schedule.annual_rate if self.schedule else Decimal(0)

    @property
    def financed(self) -> Money:
        return self.schedule.principal if self.schedule else Money.zero(self.currency)

    @property
    def new_installment(self) -> Money:
        """The fixed installment of the new schedule (0 without one)."""
        return self.schedule.fixed_installment if self.schedule else Money.zero(self.currency)

    @property
    def max_installment(self) -> Money:
        return self.schedule.max_installment if self.schedule else Money.zero(self.currency)

    @property
    def total_interest(self) -> Money:
        return self.schedule.total_interest if self.schedule else Money.zero(self.currency)

    @property
    def condoned_by_concept(self) -> dict[Concept, Money]:
        return condoned_by_concept(self.condonations, self.currency)

    @property
    def total_condoned(self) -> Money:
        return Money(sum(c.amount.minor for c in self.condonations), self.currency)

    @property
    def new_balance(self) -> Money:
        """What the customer still owes once today's payment is made, before future
        interest: the financed principal plus the kept obligations."""
        return self.financed + self.kept_balance

    @property
    def total_to_pay(self) -> Money:
        """Payment today plus every new installment (kept obligations not included)."""
        scheduled = self.schedule.total if self.schedule else Money.zero(self.currency)
        return self.payment_today + scheduled


# --- helpers ------------------------------------------------------------------------


def _selected(obligations: Sequence[Obligation]) -> tuple[str, list[Obligation]]:
    if not obligations:
        raise ValidationFailed("select at least one obligation to negotiate")
    currencies = {o.currency for o in obligations}
    if len(currencies) != 1:
        raise ValidationFailed(
            "the selected obligations are in different currencies: " + ", ".join(sorted(currencies))
        )
    ids = [o.debt_id for o in obligations]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("an obligation is selected twice")
    items = [o for o in obligations if o.amount.minor > 0]
    if not items:
        raise ValidationFailed("the selected obligations have nothing left to pay")
    return currencies.pop(), items


def _sum(obligations: Sequence[Obligation], currency: str) -> Money:
    return Money(sum(o.amount.minor for o in obligations), currency)


def _down(down_payment: Money | None, currency: str, available: Money) -> Money:
    down = down_payment or Money.zero(currency)
    if down.currency != currency:
        raise ValidationFailed(f"the payment today is in {down.currency}, the debts in {currency}")
    if down.minor < 0:
        raise ValidationFailed("the payment today cannot be negative")
    if down.minor >= available.minor:
        raise ValidationFailed(
            f"the payment today ({down}) must be less than the amount to finance "
            f"({available}); to pay everything today use CNTL"
        )
    return down


def _ids(obligations: Sequence[Obligation]) -> tuple[int, ...]:
    return tuple(o.debt_id for o in obligations)


# --- the strategies ---------------------------------------------------------------------


def payoff(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    condonation: Mapping[Concept, Decimal] | None = None,
) -> Offer:
    """CNTL: everything paid today, minus the condoned percentages of each concept."""
    currency, items = _selected(obligations)
    balance = _sum(items, currency)
    condoned = condone(items, condonation or {})
    total_condoned = sum(c.amount.minor for c in condoned)
    return Offer(
        strategy=Strategy.CNTL,
        currency=currency,
        as_of=as_of,
        debt_ids=_ids(items),
        kept_debt_ids=(),
        balance=balance,
        kept_balance=Money.zero(currency),
        payment_today=Money(balance.minor - total_condoned, currency),
        condonations=condoned,
        schedule=None,
    )


def _split_overdue(
    obligations: Sequence[Obligation], as_of: date
) -> tuple[str, list[Obligation], list[Obligation], Money]:
    currency, items = _selected(obligations)
    late, current = overdue(items, as_of), not_yet_due(items, as_of)
    if not late:
        raise ValidationFailed(
            f"nothing is overdue on {as_of.isoformat()}: there is nothing to bring current"
        )
    return currency, late, current, _sum(items, currency)


def bring_current(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    condonation: Mapping[Concept, Decimal] | None = None,
) -> Offer:
    """PDIA: pay today the obligations already past due (less any condonation on them);
    the ones not yet due keep their schedule."""
    currency, late, current, balance = _split_overdue(obligations, as_of)
    condoned = condone(late, condonation or {})
    due_today = _sum(late, currency).minor - sum(c.amount.minor for c in condoned)
    return Offer(
        strategy=Strategy.PDIA,
        currency=currency,
        as_of=as_of,
        debt_ids=_ids(late),
        kept_debt_ids=_ids(current),
        balance=balance,
        kept_balance=_sum(current, currency),
        payment_today=Money(due_today, currency),
        condonations=condoned,
        schedule=None,
    )


def bring_current_deferred(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    installments: int,
    first_due: date,
    annual_rate: Decimal = Decimal(0),
    down_payment: Money | None = None,
) -> Offer:
    """PDDA: the overdue part (less an optional payment today) becomes a deferred charge
    spread over `installments` monthly installments from `first_due` (interest-free by
    default: the document's "cargo diferido"); obligations not yet due keep their schedule."""
    currency, late, current, balance = _split_overdue(obligations, as_of)
    overdue_total = _sum(late, currency)
    down = _down(down_payment, currency, overdue_total)
    schedule = french_schedule(
        overdue_total - down, term=installments, annual_rate=annual_rate, first_due=first_due
    )
    return Offer(
        strategy=Strategy.PDDA,
        currency=currency,
        as_of=as_of,
        debt_ids=_ids(late),
        kept_debt_ids=_ids(current),
        balance=balance,
        kept_balance=_sum(current, currency),
        payment_today=down,
        condonations=(),
        schedule=schedule,
    )


def _plan(
    strategy: Strategy,
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    term: int,
    annual_rate: Decimal,
    first_due: date,
    grace_months: int,
    dead_months: int,
    down_payment: Money | None,
    condonation: Mapping[Concept, Decimal] | None,
    condonation_at: int | None,
) -> Offer:
    currency, items = _selected(obligations)
    balance = _sum(items, currency)
    condoned = condone(items, condonation or {})
    after = Money(balance.minor - sum(c.amount.minor for c in condoned), currency)
    down = _down(down_payment, currency, after)
    schedule = french_schedule(
        after - down,
        term=term,
        annual_rate=annual_rate,
        first_due=first_due,
        grace_months=grace_months,
        dead_months=dead_months,
    )
    return Offer(
        strategy=strategy,
        currency=currency,
        as_of=as_of,
        debt_ids=_ids(items),
        kept_debt_ids=(),
        balance=balance,
        kept_balance=Money.zero(currency),
        payment_today=down,
        condonations=condoned,
        schedule=schedule,
        condonation_at=condonation_at,
    )


def payment_plan(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    term: int,
    annual_rate: Decimal,
    first_due: date,
    grace_months: int = 0,
    down_payment: Money | None = None,
) -> Offer:
    """PPPL: the whole balance (less an optional payment today) on a new French schedule."""
    return _plan(
        Strategy.PPPL,
        obligations,
        as_of=as_of,
        term=term,
        annual_rate=annual_rate,
        first_due=first_due,
        grace_months=grace_months,
        dead_months=0,
        down_payment=down_payment,
        condonation=None,
        condonation_at=None,
    )


def plan_with_intermediate_condonation(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    term: int,
    annual_rate: Decimal,
    first_due: date,
    condonation: Mapping[Concept, Decimal],
    condonation_at: int,
    grace_months: int = 0,
    down_payment: Money | None = None,
) -> Offer:
    """PPPA: as PPPL on the balance net of condonation, but the condonation is only
    GRANTED when installment `condonation_at` (K) is paid: a plan broken before K brings the
    condoned amounts back in full (see `negotiation.reinstatement`)."""
    n = grace_months + term
    if not 1 <= condonation_at <= n:
        raise ValidationFailed(
            f"the condonation installment must be 1 to {n} (the plan's installments), "
            f"got {condonation_at}"
        )
    if not any(p > 0 for p in condonation.values()):
        raise ValidationFailed("PPPA needs a condonation percentage on at least one concept")
    return _plan(
        Strategy.PPPA,
        obligations,
        as_of=as_of,
        term=term,
        annual_rate=annual_rate,
        first_due=first_due,
        grace_months=grace_months,
        dead_months=0,
        down_payment=down_payment,
        condonation=condonation,
        condonation_at=condonation_at,
    )


@dataclass(frozen=True)
class PreapprovedTerms:
    """The company's pre-approved offer for an obligation (PPPS / PRERM)."""

    term: int
    annual_rate: Decimal
    condonation: Mapping[Concept, Decimal] = field(default_factory=dict)
    grace_months: int = 0  # periodGrace: interest-only months
    dead_months: int = 0  # periodGraceDeath: months without payment, interest capitalised


def preapproved(
    obligations: Sequence[Obligation],
    *,
    strategy: Strategy,
    terms: PreapprovedTerms,
    as_of: date,
    first_due: date,
    down_payment: Money | None = None,
) -> Offer:
    """PPPS / PRERM: a restructuring or modification whose term, new rate, grace and
    condonation percentages come from the company's pre-approved offer; the condonation is
    granted at once and the rest goes on a new French schedule."""
    if strategy not in (Strategy.PPPS, Strategy.PRERM):
        raise ValidationFailed(f"{strategy} is not a pre-approved strategy (PPPS or PRERM)")
    return _plan(
        strategy,
        obligations,
        as_of=as_of,
        term=terms.term,
        annual_rate=terms.annual_rate,
        first_due=first_due,
        grace_months=terms.grace_months,
        dead_months=terms.dead_months,
        down_payment=down_payment,
        condonation=terms.condonation,
        condonation_at=None,
    )


def redeferral(
    obligations: Sequence[Obligation],
    *,
    as_of: date,
    term: int,
    annual_rate: Decimal,
    first_due: date,
) -> Offer:
    """REDIF (rediferido, the card core's strategy 04): the revolving product's WHOLE
    balance (overdue and not yet due) is deferred again over a new number of monthly
    installments at the product's own rate; no condonation, no grace, no payment today,
    and not a restructuring (the document sends causal code 0000, as for PDIA)."""
    return _plan(
        Strategy.REDIF,
        obligations,
        as_of=as_of,
        term=term,
        annual_rate=annual_rate,
        first_due=first_due,
        grace_months=0,
        dead_months=0,
        down_payment=None,
        condonation=None,
        condonation_at=None,
    )


# --- dispatch with JSON-able parameters ---------------------------------------------------


@dataclass(frozen=True)
class StrategyParameters:
    """Parameters of any strategy; which ones are required depends on the strategy:

    - CNTL, PDIA: `condonation` (optional)
    - PDDA: `term` (installments of the deferral), `first_due`; `annual_rate` (default 0),
      `down_payment`
    - PPPL: `term`, `annual_rate`, `first_due`; `grace_months`, `down_payment`
    - PPPA: as PPPL plus `condonation` and `condonation_at`
    - PPPS, PRERM: `term`, `annual_rate`, `first_due`, `condonation`; `grace_months`,
      `dead_months`, `down_payment`
    - REDIF: `term`, `annual_rate`, `first_due`

    Parameters a strategy does not use are ignored (a simulation applies the same
    overrides to every strategy it evaluates), never refused.
    """

    term: int | None = None
    annual_rate: Decimal | None = None
    first_due: date | None = None
    grace_months: int = 0
    dead_months: int = 0
    down_payment: Decimal | None = None  # in currency units (e.g. 100.50)
    condonation: Mapping[Concept, Decimal] = field(default_factory=dict)
    condonation_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (strings for decimals and dates, concept keys as strings)."""
        return {
            "term": self.term,
            "annual_rate": None if self.annual_rate is None else str(self.annual_rate),
            "first_due": None if self.first_due is None else self.first_due.isoformat(),
            "grace_months": self.grace_months,
            "dead_months": self.dead_months,
            "down_payment": None if self.down_payment is None else str(self.down_payment),
            "condonation": {c.value: str(p) for c, p in self.condonation.items()},
            "condonation_at": self.condonation_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyParameters:
        """Inverse of `to_dict`; refuses unknown keys and malformed values."""
        known = {
            "term",
            "annual_rate",
            "first_due",
            "grace_months",
            "dead_months",
            "down_payment",
            "condonation",
            "condonation_at",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationFailed(f"unknown strategy parameters: {', '.join(unknown)}")

        def integer(key: str, default: int | None) -> int | None:
            value = data.get(key, default)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationFailed(f"{key} must be a whole number, got {value!r}")
            return value

        def decimal(key: str) -> Decimal | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool | float):
                value = str(value)
            try:
                result = Decimal(str(value))
            except ArithmeticError:
                raise ValidationFailed(f"{key} must be a number, got {value!r}") from None
            if not result.is_finite() or result < 0:
                raise ValidationFailed(f"{key} must be a number ≥ 0, got {value!r}")
            return result

        first_due = data.get("first_due")
        due: date | None = None
        if first_due is not None:
            try:
                due = first_due if isinstance(first_due, date) else date.fromisoformat(first_due)
            except (TypeError, ValueError):
                raise ValidationFailed(f"first_due must be a date, got {first_due!r}") from None
        condonation = data.get("condonation") or {}
        if not isinstance(condonation, Mapping):
            raise ValidationFailed("condonation must be an object of concept → percent")
        return cls(
            term=integer("term", None),
            annual_rate=decimal("annual_rate"),
            first_due=due,
            grace_months=integer("grace_months", 0) or 0,
            dead_months=integer("dead_months", 0) or 0,
            down_payment=decimal("down_payment"),
            condonation=parse_percentages(condonation),
            condonation_at=integer("condonation_at", None),
        )


def _need(strategy: Strategy, **values: object) -> None:
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValidationFailed(f"{strategy} needs {', '.join(missing)}", strategy=strategy.value)


def build_offer(
    strategy: Strategy | str,
    obligations: Sequence[Obligation],
    params: StrategyParameters,
    *,
    as_of: date,
) -> Offer:
    """The offer of `strategy` for `obligations` with `params` (see StrategyParameters)."""
    code = parse_strategy(str(strategy))
    currency, _ = _selected(obligations)
    down = None
    if params.down_payment is not None:
        down = Money(to_minor(parse_amount(params.down_payment, currency), currency), currency)
    if code is Strategy.CNTL:
        return payoff(obligations, as_of=as_of, condonation=params.condonation)
    if code is Strategy.PDIA:
        return bring_current(obligations, as_of=as_of, condonation=params.condonation)
    _need(code, term=params.term, first_due=params.first_due)
    assert params.term is not None and params.first_due is not None
    if code is Strategy.PDDA:
        return bring_current_deferred(
            obligations,
            as_of=as_of,
            installments=params.term,
            first_due=params.first_due,
            annual_rate=params.annual_rate or Decimal(0),
            down_payment=down,
        )
    _need(code, annual_rate=params.annual_rate)
    assert params.annual_rate is not None
    if code is Strategy.PPPL:
        return payment_plan(
            obligations,
            as_of=as_of,
            term=params.term,
            annual_rate=params.annual_rate,
            first_due=params.first_due,
            grace_months=params.grace_months,
            down_payment=down,
        )
    if code is Strategy.PPPA:
        _need(code, condonation_at=params.condonation_at)
        assert params.condonation_at is not None
        return plan_with_intermediate_condonation(
            obligations,
            as_of=as_of,
            term=params.term,
            annual_rate=params.annual_rate,
            first_due=params.first_due,
            condonation=params.condonation,
            condonation_at=params.condonation_at,
            grace_months=params.grace_months,
            down_payment=down,
        )
    if code in (Strategy.PPPS, Strategy.PRERM):
        terms = PreapprovedTerms(
            term=params.term,
            annual_rate=params.annual_rate,
            condonation=params.condonation,
            grace_months=params.grace_months,
            dead_months=params.dead_months,
        )
        return preapproved(
            obligations,
            strategy=code,
            terms=terms,
            as_of=as_of,
            first_due=params.first_due,
            down_payment=down,
        )
    return redeferral(
        obligations,
        as_of=as_of,
        term=params.term,
        annual_rate=params.annual_rate,
        first_due=params.first_due,
    )
