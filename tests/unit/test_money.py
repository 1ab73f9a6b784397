"""Money: exact Decimal parsing at the currency's scale, integer minor units at rest."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recaudo.domain import money
from recaudo.domain.errors import CurrencyMismatch, InvalidAmount
from recaudo.domain.money import Money


def test_parse_at_currency_scale() -> None:
    assert money.parse_amount("141418", "CLP") == Decimal("141418")
    assert money.parse_amount("141418.79", "COP") == Decimal("141418.79")
    assert money.parse_amount("12,5", "EUR") == Decimal("12.50")
    assert str(money.parse_amount("7", "EUR")) == "7.00"
    assert money.parse_amount("141418.00", "CLP") == Decimal("141418")  # banks' two-decimal CLP


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.5", "CLP"),
        ("1.005", "EUR"),
        ("-1", "CLP"),
        ("abc", "CLP"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("1e30", "CLP"),
        ("", "CLP"),
        ("1,234.5", "EUR"),
    ],
)
def test_bad_amounts_are_refused(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        money.parse_amount(text, currency)


def test_unknown_currency() -> None:
    with pytest.raises(InvalidAmount, match="unsupported currency"):
        money.exponent("XXX")


@given(st.integers(min_value=0, max_value=10**14), st.sampled_from(sorted(money.MINOR_UNITS)))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    assert money.to_minor(money.from_minor(minor, currency), currency) == minor


def test_money_arithmetic_refuses_mixed_currencies() -> None:
    assert Money.of("10.50", "EUR") + Money.of("0.50", "EUR") == Money(1100, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "EUR") + Money.of("1", "CLP")
    assert str(Money.of("1500", "CLP")) == "1500 CLP"
