"""Payment capacity from declared finances, and the offers that fit it (worked examples)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Obligation
from recaudo.domain.profiling import (
    DEFAULT_CAPACITY_RATIO,
    DeclaredFinances,
    fits,
    fitting,
    payment_capacity,
)
from recaudo.domain.strategies import payment_plan, payoff


def clp(amount: int) -> Money:
    return Money(amount, "CLP")


def employee(income: int, other: int, expenses: int) -> DeclaredFinances:
    return DeclaredFinances(
        income=clp(income), other_income=clp(other), personal_expenses=clp(expenses)
    )


def test_employee_capacity() -> None:
    # 2 000 000 + 300 000 − 1 100 000 = 1 200 000 available; × 0.30 = 360 000
    f = employee(2_000_000, 300_000, 1_100_000)
    assert f.available_income == clp(1_200_000)
    assert Decimal("0.30") == DEFAULT_CAPACITY_RATIO
    assert payment_capacity(f) == clp(360_000)
    # × 0.333 = 399 600
    assert payment_capacity(f, Decimal("0.333")) == clp(399_600)


def test_capacity_rounds_down_to_the_minor_unit() -> None:
    # 1 000 001 × 0.3 = 300 000.3 → 300 000 pesos
    assert payment_capacity(employee(1_000_001, 0, 0), Decimal("0.3")) == clp(300_000)
    # USD: 1000.01 × 0.3 = 300.003 → 300.00
    f = DeclaredFinances(
        income=Money.of("1000.01", "USD"),
        other_income=Money.of("0", "USD"),
        personal_expenses=Money.of("0", "USD"),
    )
    assert payment_capacity(f, Decimal("0.3")) == Money.of("300.00", "USD")


def test_self_employed_capacity_uses_sales_less_operating_costs() -> None:
    # (5 000 000 − 3 200 000) + 100 000 − 900 000 = 1 000 000; × 0.40 = 400 000
    f = DeclaredFinances(
        income=clp(0),
        other_income=clp(100_000),
        personal_expenses=clp(900_000),
        self_employed=True,
        sales=clp(5_000_000),
        operating_costs=clp(3_200_000),
    )
    assert f.available_income == clp(1_000_000)
    assert payment_capacity(f, Decimal("0.40")) == clp(400_000)


def test_expenses_above_income_leave_no_capacity() -> None:
    f = employee(800_000, 0, 1_000_000)
    assert f.available_income == clp(0)
    assert payment_capacity(f) == clp(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"personal_expenses": clp(-1)}, "personal_expenses cannot be negative"),
        ({"other_income": Money(1, "USD")}, "other_income is in USD, income in CLP"),
        ({"self_employed": True}, "declares sales and operating costs"),
    ],
)
def test_bad_declarations_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "income": clp(1),
        "other_income": clp(0),
        "personal_expenses": clp(0),
    }
    with pytest.raises(ValidationFailed, match=message):
        DeclaredFinances(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", ["0", "-0.1", "1.01", "NaN"])
def test_ratio_must_be_a_share(ratio: str) -> None:
    with pytest.raises(ValidationFailed, match="capacity ratio"):
        payment_capacity(employee(1, 0, 0), Decimal(ratio))


def test_offers_that_fit_the_capacity() -> None:
    debt = [Obligation.of(1, clp(1_000_000), date(2026, 9, 1))]
    as_of = date(2026, 11, 22)
    # 1 000 000 at 0 % over 3: 333 333, 333 333, 333 334 → largest 333 334
    three = payment_plan(
        debt, as_of=as_of, term=3, annual_rate=Decimal(0), first_due=date(2026, 12, 1)
    )
    # over 2: 500 000 each
    two = payment_plan(
        debt, as_of=as_of, term=2, annual_rate=Decimal(0), first_due=date(2026, 12, 1)
    )
    cntl = payoff(debt, as_of=as_of)  # 1 000 000 today, no installments
    capacity = clp(360_000)
    assert fits(three, capacity)
    assert fits(three, clp(333_334))
    assert not fits(three, clp(333_333))  # the last installment must fit too
    assert not fits(two, capacity)
    # the payment today is checked only against declared cash
    assert fits(cntl, capacity)
    assert not fits(cntl, capacity, cash_today=clp(999_999))
    assert fits(cntl, capacity, cash_today=clp(1_000_000))
    assert fitting([two, three, cntl], capacity) == [three, cntl]
    assert fitting([two, three, cntl], capacity, cash_today=clp(0)) == [three]
    with pytest.raises(ValidationFailed, match="capacity is in USD"):
        fits(three, Money(1, "USD"))
    with pytest.raises(ValidationFailed, match="cash today is in USD"):
        fits(three, capacity, cash_today=Money(1, "USD"))
