"""Allocation properties: never over-allocates, sums to min(payment, open), rest is credit."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from recaudo.domain.allocation import allocate
from recaudo.domain.debts import DebtBalance, DebtStatus

statuses = st.sampled_from(list(DebtStatus))


@st.composite
def debts(draw: st.DrawFn) -> list[DebtBalance]:
    n = draw(st.integers(min_value=0, max_value=8))
    out = []
    for i in range(n):
        amount = draw(st.integers(min_value=1, max_value=10**9))
        paid = draw(st.integers(min_value=0, max_value=amount))
        due = date(2026, 1, 1) + timedelta(days=draw(st.integers(min_value=-400, max_value=400)))
        out.append(DebtBalance(i + 1, due, amount, paid, draw(statuses)))
    return out


@given(st.integers(min_value=0, max_value=10**10), debts(), st.booleans())
def test_allocation_invariants(
    amount: int, balances: list[DebtBalance], in_given_order: bool
) -> None:
    plan = allocate(amount, balances, in_given_order=in_given_order)
    open_total = sum(d.open_amount for d in balances)
    by_id = {d.debt_id: d for d in balances}
    assert plan.allocated == min(amount, open_total)
    assert plan.allocated + plan.credit == amount
    assert all(0 < line.amount <= by_id[line.debt_id].open_amount for line in plan.lines)
    assert len({line.debt_id for line in plan.lines}) == len(plan.lines)


@given(st.integers(min_value=1, max_value=10**10), debts())
def test_oldest_due_first(amount: int, balances: list[DebtBalance]) -> None:
    plan = allocate(amount, balances)
    payable = sorted(
        (d for d in balances if d.open_amount > 0), key=lambda d: (d.due_date, d.debt_id)
    )
    # Every debt that got money comes before every debt that got none, in due-date order,
    # and only the last one paid may be paid partially.
    assert [line.debt_id for line in plan.lines] == [d.debt_id for d in payable[: len(plan.lines)]]
    for line, debt in zip(plan.lines[:-1], payable, strict=False):
        assert line.amount == debt.open_amount


def test_example_partial_and_credit() -> None:
    d = [
        DebtBalance(1, date(2026, 2, 1), 1000, 0, DebtStatus.OPEN),
        DebtBalance(2, date(2026, 1, 1), 500, 200, DebtStatus.IN_PAYMENT),
        DebtBalance(3, date(2025, 1, 1), 900, 0, DebtStatus.PAID),
    ]
    plan = allocate(1000, d)
    assert [(x.debt_id, x.amount) for x in plan.lines] == [(2, 300), (1, 700)]
    assert plan.credit == 0
    assert allocate(2000, d).credit == 700
