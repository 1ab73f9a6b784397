"""Negotiation rules: debt components by concept, days past due, commitments, states, breaking.

Everything here is computed from data (due dates, an `as_of` date, amounts); nothing is
typed in by a user. docs/negotiation-strategies.md describes each rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from recaudo.domain.errors import Conflict, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.plans import round_minor

# --- Components by concept -------------------------------------------------------------


class Concept(StrEnum):
    """What part of a debt an amount is. Keys are fixed; their labels are per company."""

    CAPITAL = "capital"
    CURRENT_INTEREST = "current_interest"
    LATE_INTEREST = "late_interest"
    INSURANCE = "insurance"
    FEES = "fees"
    OTHER_CHARGES = "other_charges"


DEFAULT_CONCEPT_LABELS: Mapping[Concept, str] = {
    Concept.CAPITAL: "Capital",
    Concept.CURRENT_INTEREST: "Interés corriente",
    Concept.LATE_INTEREST: "Interés de mora",
    Concept.INSURANCE: "Seguros",
    Concept.FEES: "Comisiones y gastos",
    Concept.OTHER_CHARGES: "Otros cargos",
}


def parse_concept(text: str) -> Concept:
    try:
        return Concept(text.strip().lower())
    except ValueError:
        names = ", ".join(c.value for c in Concept)
        raise ValidationFailed(
            f"unknown concept {text!r}: must be one of {names}", concept=text
        ) from None


def concept_labels(overrides: Mapping[str, str] | None = None) -> dict[Concept, str]:
    """The company's labels: the defaults with `overrides` (concept key → label) applied."""
    labels = dict(DEFAULT_CONCEPT_LABELS)
    for key, label in (overrides or {}).items():
        if not label.strip():
            raise ValidationFailed(f"the label of concept {key!r} is empty", concept=key)
        labels[parse_concept(key)] = label.strip()
    return labels


def parse_percentages(data: Mapping[str, Decimal | str | int] | None) -> dict[Concept, Decimal]:
    """Condonation percentages by concept key, each 0 to 100 (any number of decimals)."""
    result: dict[Concept, Decimal] = {}
    for key, raw in (data or {}).items():
        concept = parse_concept(key)
        try:
            value = Decimal(str(raw))
        except ArithmeticError:
            raise ValidationFailed(f"percentage for {key!r} is not a number: {raw!r}") from None
        if not value.is_finite() or not 0 <= value <= 100:
            raise ValidationFailed(
                f"percentage for {key!r} must be between 0 and 100, got {raw}", concept=key
            )
        result[concept] = value
    return result


def days_past_due(due_on: date, as_of: date) -> int:
    """Days a debt due on `due_on` is late on `as_of`; 0 on the due date and before it."""
    return max(0, (as_of - due_on).days)


@dataclass(frozen=True)
class Obligation:
    """A debt as a negotiation sees it: its OPEN balance split by concept, and its due date.

    `components` must be non-negative and add up to the open balance; `Obligation.of`
    builds one from an amount with an optional breakdown (none: everything is capital).
    """

    debt_id: int
    currency: str
    due_on: date
    components: Mapping[Concept, Money]
    product_type: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if not self.components:
            raise ValidationFailed("an obligation needs at least one component", debt=self.debt_id)
        for concept, amount in self.components.items():
            if not isinstance(concept, Concept):
                raise ValidationFailed(f"not a concept: {concept!r}", debt=self.debt_id)
            if amount.currency != self.currency:
                raise ValidationFailed(
                    f"component {concept} is in {amount.currency}, the debt in {self.currency}",
                    debt=self.debt_id,
                )
            if amount.minor < 0:
                raise ValidationFailed(f"component {concept} is negative", debt=self.debt_id)

    @classmethod
    def of(
        cls,
        debt_id: int,
        amount: Money,
        due_on: date,
        breakdown: Mapping[Concept, Money] | None = None,
        *,
        product_type: str = "",
        reference: str = "",
    ) -> Obligation:
        """An obligation of open balance `amount`; without a breakdown it is all capital."""
        if not breakdown:
            components: dict[Concept, Money] = {Concept.CAPITAL: amount}
        else:
            components = {c: m for c, m in breakdown.items()}
            total = sum(m.minor for m in components.values())
            if total != amount.minor:
                raise ValidationFailed(
                    f"the components of debt {debt_id} add up to "
                    f"{Money(total, amount.currency)}, not {amount}",
                    debt=debt_id,
                )
        return cls(debt_id, amount.currency, due_on, components, product_type, reference)

    @property
    def amount(self) -> Money:
        return Money(sum(m.minor for m in self.components.values()), self.currency)

    def component(self, concept: Concept) -> Money:
        return self.components.get(concept, Money.zero(self.currency))

    def days_past_due(self, as_of: date) -> int:
        return days_past_due(self.due_on, as_of)

    def is_overdue(self, as_of: date) -> bool:
        return as_of > self.due_on


def overdue(obligations: Iterable[Obligation], as_of: date) -> list[Obligation]:
    return [o for o in obligations if o.is_overdue(as_of) and o.amount.minor > 0]


def not_yet_due(obligations: Iterable[Obligation], as_of: date) -> list[Obligation]:
    return [o for o in obligations if not o.is_overdue(as_of) and o.amount.minor > 0]


def overdue_amount(obligations: Iterable[Obligation], as_of: date, currency: str) -> Money:
    """The part of a customer's obligations already past due on `as_of`."""
    total = Money.zero(currency)
    for o in overdue(obligations, as_of):
        total = total + o.amount
    return total


def customer_days_past_due(obligations: Iterable[Obligation], as_of: date) -> int:
    """A customer's days past due: those of the oldest unpaid obligation (0 when current)."""
    return max((o.days_past_due(as_of) for o in obligations if o.amount.minor > 0), default=0)


def totals_by_concept(obligations: Iterable[Obligation], currency: str) -> dict[Concept, Money]:
    totals: dict[Concept, Money] = {}
    for o in obligations:
        for concept, amount in o.components.items():
            totals[concept] = totals.get(concept, Money.zero(currency)) + amount
    return totals


# --- Condonation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condonation:
    """An amount of one concept of one debt that the negotiation forgives (writes off)."""

    debt_id: int
    concept: Concept
    amount: Money


def condone(
    obligations: Iterable[Obligation], percentages: Mapping[Concept, Decimal]
) -> tuple[Condonation, ...]:
    """Per debt and concept, `component × percent / 100` rounded half-up to the minor unit.

    Rounding is per debt and concept, so totals by concept are exact sums of what each
    debt records as written off. Zero amounts are left out.
    """
    result: list[Condonation] = []
    for o in obligations:
        for concept, amount in o.components.items():
            pct = percentages.get(concept, Decimal(0))
            minor = round_minor(Decimal(amount.minor) * pct / Decimal(100))
            if minor > 0:
                result.append(Condonation(o.debt_id, concept, Money(minor, o.currency)))
    return tuple(result)


def condoned_by_concept(condonations: Iterable[Condonation], currency: str) -> dict[Concept, Money]:
    totals: dict[Concept, Money] = {}
    for c in condonations:
        totals[c.concept] = totals.get(c.concept, Money.zero(currency)) + c.amount
    return totals


# --- Commitments: P…P,T -----------------------------------------------------------------


class CommitmentKind(StrEnum):
    PARTIAL = "P"
    TOTAL = "T"


@dataclass(frozen=True, slots=True)
class Commitment:
    """A payment the customer commits to (`partyAcctRelRec.amt`/`rate`, `partialPmt`)."""

    kind: CommitmentKind
    amount: Money
    rate: Decimal = Decimal(100)  # percent of the negotiation it covers (the contract's rate)
    due_on: date | None = None


def check_commitments(kinds: Sequence[CommitmentKind | str]) -> tuple[CommitmentKind, ...]:
    """The bank's rule: zero or more partial (`P`) commitments, then exactly one total (`T`),
    the last one. Returns the kinds parsed; raises `ValidationFailed` saying what is wrong.
    """
    parsed: list[CommitmentKind] = []
    for n, kind in enumerate(kinds, start=1):
        try:
            parsed.append(CommitmentKind(str(kind).strip().upper()))
        except ValueError:
            raise ValidationFailed(
                f"commitment {n} has type {kind!r}: it must be 'P' (partial) or 'T' (total)",
                position=n,
            ) from None
    if not parsed:
        raise ValidationFailed(
            "a negotiation needs one total ('T') commitment, the last one; it has none"
        )
    for n, kind in enumerate(parsed[:-1], start=1):
        if kind is CommitmentKind.TOTAL:
            raise ValidationFailed(
                f"commitment {n} of {len(parsed)} is total ('T'): only the last commitment may "
                "be total, the ones before it must be partial ('P')",
                position=n,
            )
    if parsed[-1] is not CommitmentKind.TOTAL:
        raise ValidationFailed(
            f"the last commitment ({len(parsed)} of {len(parsed)}) is partial ('P'): "
            "a negotiation must end with exactly one total ('T') commitment",
            position=len(parsed),
        )
    return tuple(parsed)


# --- States -----------------------------------------------------------------------------


class NegotiationState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    FULFILLED = "fulfilled"
    BROKEN = "broken"


TRANSITIONS: Mapping[NegotiationState, frozenset[NegotiationState]] = {
    NegotiationState.PROPOSED: frozenset({NegotiationState.ACCEPTED}),
    # accepted → broken: a plan becomes active with its first payment; one whose first
    # installment is never paid breaks without ever having been active.
    NegotiationState.ACCEPTED: frozenset({NegotiationState.ACTIVE, NegotiationState.BROKEN}),
    NegotiationState.ACTIVE: frozenset({NegotiationState.FULFILLED, NegotiationState.BROKEN}),
    NegotiationState.FULFILLED: frozenset(),
    NegotiationState.BROKEN: frozenset(),
}


def _state(value: NegotiationState | str) -> NegotiationState:
    try:
        return NegotiationState(value)
    except ValueError:
        names = ", ".join(s.value for s in NegotiationState)
        raise ValidationFailed(f"unknown state {value!r}: must be one of {names}") from None


def transition(current: NegotiationState | str, target: NegotiationState | str) -> NegotiationState:
    """`target` if the state machine allows `current → target`; `Conflict` otherwise."""
    src, dst = _state(current), _state(target)
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[src])) or "none (final state)"
        raise Conflict(
            f"a {src.value} negotiation cannot become {dst.value}; allowed: {allowed}",
            state=src.value,
            target=dst.value,
        )
    return dst


# --- Following a plan: break rule and reinstatement --------------------------------------


@dataclass(frozen=True, slots=True)
class InstallmentStatus:
    """Where one installment of an active plan stands."""

    number: int
    due_on: date
    amount: Money
    paid: Money

    @property
    def open(self) -> Money:
        return Money(max(0, self.amount.minor - self.paid.minor), self.amount.currency)

    @property
    def is_paid(self) -> bool:
        return self.paid.minor >= self.amount.minor


def breaking_installment(
    installments: Iterable[InstallmentStatus], *, as_of: date, break_after_days: int
) -> InstallmentStatus | None:
    """The earliest unpaid installment MORE than `break_after_days` days late on `as_of`.

    `None` when the plan holds. With `break_after_days = 30`, an installment due on
    March 1 and still open breaks the plan on March 31 (30 days late), not on March 30.
    """
    if break_after_days < 0:
        raise ValidationFailed("break_after_days cannot be negative", days=break_after_days)
    late = [
        i
        for i in installments
        if not i.is_paid and days_past_due(i.due_on, as_of) > break_after_days
    ]
    return min(late, key=lambda i: (i.due_on, i.number), default=None)


def installments_paid_in_order(installments: Iterable[InstallmentStatus]) -> int:
    """How many installments, counted from the first, are fully paid without a gap."""
    count = 0
    for i in sorted(installments, key=lambda i: i.number):
        if not i.is_paid:
            break
        count += 1
    return count


def is_fulfilled(installments: Iterable[InstallmentStatus]) -> bool:
    items = list(installments)
    return bool(items) and all(i.is_paid for i in items)


class ReinstatePolicy(StrEnum):
    """What happens to condoned amounts when a plan breaks (a company setting)."""

    NEVER = "never"  # condonation granted stays granted
    ALWAYS = "always"  # every condoned amount comes back
    PROPORTIONAL = "proportional"  # comes back in the proportion of installments not paid


@dataclass(frozen=True, slots=True)
class Reinstatement:
    condonations: tuple[Condonation, ...] = field(default=())

    def total(self, currency: str) -> Money:
        return Money(sum(c.amount.minor for c in self.condonations), currency)


def reinstatement(
    condonations: Iterable[Condonation],
    *,
    policy: ReinstatePolicy | str,
    installments_total: int,
    installments_paid: int,
    condonation_at: int | None = None,
) -> Reinstatement:
    """The condoned amounts a broken plan brings back, per debt and concept.

    - A conditional condonation (PPPA: granted when installment `condonation_at` is paid)
      whose installment was not reached comes back in full, whatever the policy: it was
      never granted.
    - Otherwise `policy` decides: `never` nothing, `always` everything, `proportional`
      `amount × unpaid / total` installments, rounded half-up per debt and concept.
    """
    items = tuple(condonations)
    try:
        rule = ReinstatePolicy(policy)
    except ValueError:
        names = ", ".join(p.value for p in ReinstatePolicy)
        raise ValidationFailed(
            f"unknown reinstatement policy {policy!r}: must be one of {names}"
        ) from None
    if installments_total <= 0 or not 0 <= installments_paid <= installments_total:
        raise ValidationFailed(
            "installments paid must be between 0 and the plan's installments",
            paid=installments_paid,
            total=installments_total,
        )
    if condonation_at is not None and installments_paid < condonation_at:
        return Reinstatement(items)
    if rule is ReinstatePolicy.NEVER:
        return Reinstatement()
    if rule is ReinstatePolicy.ALWAYS:
        return Reinstatement(items)
    unpaid = installments_total - installments_paid
    back: list[Condonation] = []
    for c in items:
        minor = round_minor(Decimal(c.amount.minor) * unpaid / installments_total)
        if minor > 0:
            back.append(Condonation(c.debt_id, c.concept, Money(minor, c.amount.currency)))
    return Reinstatement(tuple(back))
