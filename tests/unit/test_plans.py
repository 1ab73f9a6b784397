"""French amortisation schedules on examples worked by hand (the arithmetic is in comments)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pytest

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.plans import (
    Installment,
    add_months,
    due_dates,
    effective_from_nominal,
    french_installment,
    french_schedule,
    monthly_rate,
    nominal_from_effective,
)


def usd(text: str) -> Money:
    return Money.of(text, "USD")


def rows(schedule_installments: Sequence[Installment]) -> list[tuple[int, date, str, str, str]]:
    return [
        (i.number, i.due_on, str(i.principal.amount), str(i.interest.amount), str(i.amount.amount))
        for i in schedule_installments
    ]


def test_monthly_rate_is_nominal_annual_over_twelve() -> None:
    assert monthly_rate(Decimal(12)) == Decimal("0.01")
    assert monthly_rate(Decimal(0)) == 0
    # 23 % a year nominal: 23 / 1200 = 0.0191666…
    assert str(monthly_rate(Decimal(23)))[:12] == "0.0191666666"


def test_effective_and_nominal_annual_rates() -> None:
    # 2 % a month: nominal 24 %; effective (1.02)^12 − 1 = 0.26824179456… → 26.824179 %
    assert effective_from_nominal(Decimal(24)) == Decimal("26.824179")
    assert nominal_from_effective(Decimal("26.824179456")) == Decimal("24.000000")
    # 0 % both ways
    assert nominal_from_effective(Decimal(0)) == Decimal("0.000000")
    with pytest.raises(ValidationFailed, match="not an effective annual rate"):
        nominal_from_effective(Decimal(-1))


def test_three_installments_at_one_percent_a_month() -> None:
    # P = 1000.00, annual 12 % nominal → i = 0.01, n = 3.
    # (1.01)^3 = 1.030301; A = 1000 × 0.01 × 1.030301 / 0.030301 = 340.0221… → 340.02
    # 1: interest 1000.00 × 0.01 = 10.00; principal 340.02 − 10.00 = 330.02; balance 669.98
    # 2: interest 669.98 × 0.01 = 6.6998 → 6.70; principal 333.32; balance 336.66
    # 3 (last, absorbs rounding): principal 336.66; interest 3.3666 → 3.37; installment 340.03
    # interest 10.00 + 6.70 + 3.37 = 20.07; installments 340.02 + 340.02 + 340.03 = 1020.07
    s = french_schedule(
        usd("1000.00"), term=3, annual_rate=Decimal(12), first_due=date(2026, 1, 31)
    )
    assert s.fixed_installment == usd("340.02")
    assert rows(s.installments) == [
        (1, date(2026, 1, 31), "330.02", "10.00", "340.02"),
        (2, date(2026, 2, 28), "333.32", "6.70", "340.02"),
        (3, date(2026, 3, 31), "336.66", "3.37", "340.03"),
    ]
    assert s.total_interest == usd("20.07")
    assert s.total == usd("1020.07")
    assert s.capitalized_interest == usd("0")
    assert s.max_installment == usd("340.03")
    assert (s.first_due, s.last_due) == (date(2026, 1, 31), date(2026, 3, 31))


def test_zero_rate_is_an_equal_split_last_absorbs_in_pesos() -> None:
    # CLP has no minor unit: 100000 / 3 = 33333.33… → 33333; last = 100000 − 2 × 33333 = 33334
    s = french_schedule(
        Money.of("100000", "CLP"), term=3, annual_rate=Decimal(0), first_due=date(2026, 1, 31)
    )
    assert [i.amount.minor for i in s.installments] == [33333, 33333, 33334]
    assert [i.interest.minor for i in s.installments] == [0, 0, 0]
    assert s.total == Money.of("100000", "CLP")


def test_grace_months_pay_interest_and_dead_months_capitalise() -> None:
    # P = 1000.00 at i = 0.01, one dead month, two grace months, term 2.
    # dead month: interest 10.00 capitalised → balance 1010.00
    # grace 1 and 2: interest only 1010.00 × 0.01 = 10.10, no principal
    # A on 1010.00 over 2: 1010 × 0.01 × 1.0201 / 0.0201 = 512.5875… → 512.59
    # 3: interest 10.10, principal 502.49, balance 507.51
    # 4 (last): principal 507.51, interest 5.0751 → 5.08, installment 512.59
    # principal parts 502.49 + 507.51 = 1010.00 = 1000.00 + 10.00 capitalised
    # interest: 10.00 capitalised + 10.10 + 10.10 + 10.10 + 5.08 = 45.38
    s = french_schedule(
        usd("1000.00"),
        term=2,
        annual_rate=Decimal(12),
        first_due=date(2026, 1, 31),
        grace_months=2,
        dead_months=1,
    )
    assert rows(s.installments) == [
        (1, date(2026, 1, 31), "0.00", "10.10", "10.10"),
        (2, date(2026, 2, 28), "0.00", "10.10", "10.10"),
        (3, date(2026, 3, 31), "502.49", "10.10", "512.59"),
        (4, date(2026, 4, 30), "507.51", "5.08", "512.59"),
    ]
    assert s.capitalized_interest == usd("10.00")
    assert s.paid_interest == usd("35.38")
    assert s.total_interest == usd("45.38")
    assert s.total == usd("1045.38")  # 1000.00 + 45.38
    assert s.term == 2 and s.grace_months == 2 and len(s.installments) == 4


def test_month_end_clamping_is_anchored_on_the_first_due_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)  # leap year
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert due_dates(date(2026, 1, 31), 4) == (
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),  # back to the 31st: not carried over from February
        date(2026, 4, 30),
    )


def test_french_installment_matches_the_formula() -> None:
    # 1200.00 over 12 at 1 %: 1200 × 0.01 / (1 − 1.01^−12) = 106.6185… → 106.62
    assert french_installment(120000, Decimal("0.01"), 12) == 10662
    assert french_installment(120000, Decimal(0), 12) == 10000


@pytest.mark.parametrize(
    ("principal", "term", "rate", "grace", "message"),
    [
        ("0.00", 12, "10", 0, "must be positive"),
        ("100.00", 0, "10", 0, "term must be"),
        ("100.00", 601, "10", 0, "term must be"),
        ("100.00", 12, "-1", 0, "annual rate"),
        ("100.00", 12, "1001", 0, "annual rate"),
        ("100.00", 12, "10", -1, "grace"),
    ],
)
def test_bad_plans_are_refused(
    principal: str, term: int, rate: str, grace: int, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        french_schedule(
            usd(principal),
            term=term,
            annual_rate=Decimal(rate),
            first_due=date(2026, 1, 1),
            grace_months=grace,
        )
