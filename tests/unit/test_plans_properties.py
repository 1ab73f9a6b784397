"""Property tests: every schedule is exact to the minor unit, whatever the inputs.

For any principal, currency scale, rate, term, grace and dead months:
- there are `grace + term` installments, numbered 1…n, due monthly from the first due date;
- the principal parts add up to the principal (plus capitalised interest) exactly;
- the installments add up to principal + total interest exactly;
- every amount is ≥ 0; each interest is the month's balance × rate rounded half-up;
- the last installment absorbs the rounding: all amortising installments before it equal
  the fixed installment and the last is within `term` minor units of it (or, for long
  terms at high rates, every installment is recomputed and stays level).
Strategies: every offer adds up (payment today + condoned + financed + kept = balance).
Reinstatement: what comes back never exceeds what was condoned and shrinks as installments
are paid.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Concept, Condonation, Obligation, reinstatement
from recaudo.domain.plans import Schedule, french_schedule, monthly_rate
from recaudo.domain.strategies import Strategy, StrategyParameters, build_offer

CURRENCIES = st.sampled_from(["USD", "CLP", "CLF", "COP"])
RATES = st.decimals(min_value=0, max_value=120, places=3)
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Schedule, date]:
    currency = draw(CURRENCIES)
    term = draw(st.integers(min_value=1, max_value=360))
    principal = draw(st.integers(min_value=term, max_value=10**11))
    first_due = draw(DATES)
    schedule = french_schedule(
        Money(principal, currency),
        term=term,
        annual_rate=draw(RATES),
        first_due=first_due,
        grace_months=draw(st.integers(min_value=0, max_value=12)),
        dead_months=draw(st.integers(min_value=0, max_value=6)),
    )
    return schedule, first_due


def half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_schedules_are_exact(drawn: tuple[Schedule, date]) -> None:
    s, first_due = drawn
    items = s.installments
    n = s.grace_months + s.term
    assert len(items) == n
    assert [i.number for i in items] == list(range(1, n + 1))
    # sums exact to the minor unit
    principal = s.principal.minor + s.capitalized_interest.minor
    assert sum(i.principal.minor for i in items) == principal
    assert sum(i.amount.minor for i in items) == s.principal.minor + s.total_interest.minor
    assert s.total.minor == s.principal.minor + s.total_interest.minor
    # nothing negative
    assert all(i.principal.minor >= 0 and i.interest.minor >= 0 for i in items)
    # each interest is balance × monthly rate, rounded half-up, on the balance before it
    rate = monthly_rate(s.annual_rate)
    balance = principal
    for i in items:
        assert i.interest.minor == half_up(Decimal(balance) * rate)
        balance -= i.principal.minor
    assert balance == 0
    # grace installments are interest only
    assert all(i.principal.minor == 0 for i in items[: s.grace_months])
    # the last installment absorbs the rounding
    amortising = items[s.grace_months :]
    fixed = s.fixed_installment.minor
    if not s.recalculated:
        assert all(i.amount.minor == fixed for i in amortising[:-1])
        assert abs(amortising[-1].amount.minor - fixed) <= max(1, s.term)
    else:
        # recomputed each month on what is left: level within a few minor units per
        # thousand, never a balloon
        spread = max(i.amount.minor for i in amortising) - min(i.amount.minor for i in amortising)
        assert spread <= max(3, fixed // 1000)
    # due dates monthly, anchored on the first due date's day, clamped to month end
    previous = first_due - timedelta(days=1)
    for k, i in enumerate(items):
        months = first_due.year * 12 + first_due.month - 1 + k
        year, month = divmod(months, 12)
        last_day = calendar.monthrange(year, month + 1)[1]
        assert i.due_on == date(year, month + 1, min(first_due.day, last_day))
        assert i.due_on > previous
        previous = i.due_on


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=120),
    st.sampled_from(["USD", "CLP"]),
)
def test_zero_rate_is_an_equal_split(principal: int, term: int, currency: str) -> None:
    if principal < term:
        principal = term
    s = french_schedule(
        Money(principal, currency), term=term, annual_rate=Decimal(0), first_due=date(2026, 1, 31)
    )
    amounts = [i.amount.minor for i in s.installments]
    assert all(i.interest.minor == 0 for i in s.installments)
    assert amounts[:-1] == [s.fixed_installment.minor] * (term - 1)
    assert sum(amounts) == principal
    assert abs(amounts[-1] - s.fixed_installment.minor) <= max(1, term)


@st.composite
def obligations(draw: st.DrawFn) -> list[Obligation]:
    currency = draw(st.sampled_from(["USD", "CLP"]))
    count = draw(st.integers(min_value=1, max_value=5))
    result = []
    for k in range(count):
        parts = draw(
            st.dictionaries(
                st.sampled_from(list(Concept)),
                st.integers(min_value=0, max_value=10**8),
                min_size=1,
            )
        )
        if sum(parts.values()) == 0:
            parts[Concept.CAPITAL] = 1000
        breakdown = {c: Money(v, currency) for c, v in parts.items()}
        due = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
        total = Money(sum(parts.values()), currency)
        result.append(Obligation.of(k + 1, total, due, breakdown))
    return result


@settings(max_examples=200, deadline=None)
@given(
    obligations(),
    st.sampled_from(list(Strategy)),
    st.dictionaries(
        st.sampled_from(list(Concept)), st.decimals(min_value=0, max_value=100, places=3)
    ),
    st.integers(min_value=1, max_value=60),
    RATES,
)
def test_every_offer_adds_up(
    obls: list[Obligation],
    strategy: Strategy,
    pcts: dict[Concept, Decimal],
    term: int,
    rate: Decimal,
) -> None:
    as_of = date(2027, 1, 1)
    if strategy is Strategy.PPPA:
        pcts = {**pcts, Concept.LATE_INTEREST: Decimal(50)}
    params = StrategyParameters(
        term=term,
        annual_rate=rate,
        first_due=date(2027, 2, 1),
        condonation=pcts,
        condonation_at=1,
    )
    balance = sum(o.amount.minor for o in obls)
    if strategy in (Strategy.PDIA, Strategy.PDDA) and not any(o.due_on < as_of for o in obls):
        return
    try:
        offer = build_offer(strategy, obls, params, as_of=as_of)
    except ValidationFailed as exc:  # only an amount too small to finance is refused
        assert "too small" in exc.message or "must be positive" in exc.message, exc.message
        return
    financed = offer.financed.minor
    assert offer.balance.minor == balance
    assert balance == (
        offer.payment_today.minor + offer.total_condoned.minor + financed + offer.kept_balance.minor
    )
    for c in offer.condonations:
        (o,) = [o for o in obls if o.debt_id == c.debt_id]
        assert 0 < c.amount.minor <= o.component(c.concept).minor
    assert sum(m.minor for m in offer.condoned_by_concept.values()) == offer.total_condoned.minor
    assert offer.payment_today.minor >= 0
    assert set(offer.debt_ids).isdisjoint(offer.kept_debt_ids)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=120),
    st.data(),
)
def test_proportional_reinstatement_is_bounded_and_shrinks_as_installments_are_paid(
    amounts: list[int], total: int, data: st.DataObject
) -> None:
    condoned = [
        Condonation(k, Concept.LATE_INTEREST, Money(a, "USD")) for k, a in enumerate(amounts)
    ]
    paid = data.draw(st.integers(min_value=0, max_value=total))
    back = reinstatement(
        condoned, policy="proportional", installments_total=total, installments_paid=paid
    )
    more = reinstatement(
        condoned,
        policy="proportional",
        installments_total=total,
        installments_paid=min(total, paid + 1),
    )
    original = {c.debt_id: c.amount.minor for c in condoned}
    for c in back.condonations:
        assert 0 < c.amount.minor <= original[c.debt_id]
    assert more.total("USD").minor <= back.total("USD").minor <= sum(amounts)
    if paid == 0:
        assert back.condonations == tuple(condoned)
    if paid == total:
        assert back.condonations == ()
