"""Money: `Decimal` amounts at the currency's ISO 4217 scale, integer minor units at rest.

Written by hand because the only rule needed is the ISO 4217 exponent of the few currencies
we settle in; no maintained library exposes that table without pulling in a locale database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from recaudo.domain.errors import CurrencyMismatch, InvalidAmount

# ISO 4217 minor-unit exponents of the currencies Recaudo's companies invoice in.
MINOR_UNITS: dict[str, int] = {
    "CLP": 0,
    "CLF": 4,
    "COP": 2,
    "EUR": 2,
    "USD": 2,
    "MXN": 2,
    "PEN": 2,
    "ARS": 2,
    "UYU": 2,
    "BRL": 2,
    "GBP": 2,
}

# Largest amount we accept in minor units: fits a signed 64-bit column with room for sums.
MAX_MINOR = 10**15


def exponent(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidAmount(f"unsupported currency {currency!r}", currency=currency) from None


_AMOUNT = re.compile(r"^(?P<sign>-?)(?P<units>[0-9]{1,16})(?:[.,](?P<decimals>[0-9]{1,4}))?$")


def parse_amount(text: str | Decimal | int, currency: str) -> Decimal:
    """Parse an amount as a positive-or-zero Decimal at the currency's scale.

    Text is digits with at most one decimal separator (`1234.50`, `1234,50`, `1234`).
    Zeros are accepted up to two decimals even for a currency without minor units
    (banks send CLP as `141418.00`), but never more decimal places than that: `10.000`
    in CLP reads as ten thousand with a thousands separator, so it is refused rather
    than taken as ten. Negatives, exponents, NaN and infinities are refused.
    """
    scale = exponent(currency)
    if isinstance(text, str):
        match = _AMOUNT.match(text.strip())
        if match is None:
            raise InvalidAmount(f"not an amount: {text!r}")
        decimals = match["decimals"] or ""
        if len(decimals) > max(scale, 2):
            raise InvalidAmount(f"{text!r} has more than {scale} decimals for {currency}")
        value = Decimal(f"{match['sign']}{match['units']}.{decimals or '0'}")
    else:
        value = Decimal(text)
        if not value.is_finite():
            raise InvalidAmount(f"not an amount: {text!r}")
    if value < 0:
        raise InvalidAmount(f"negative amount: {text!r}")
    if value.adjusted() >= 15:  # checked before quantize, which fails on huge exponents
        raise InvalidAmount(f"amount too large: {text!r}")
    quantized = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    if quantized != value:
        raise InvalidAmount(f"{text!r} has more than {scale} decimals for {currency}")
    if quantized.scaleb(scale) >= MAX_MINOR:
        raise InvalidAmount(f"amount too large: {text!r}")
    return quantized


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact conversion to an integer count of minor units; refuses a lossy one."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    scale = exponent(currency)
    return Decimal(minor).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one currency; arithmetic refuses mixed currencies."""

    minor: int
    currency: str

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        return cls(to_minor(parse_amount(amount, currency), currency), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @property
    def amount(self) -> Decimal:
        return from_minor(self.minor, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be mixed")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __bool__(self) -> bool:
        return self.minor != 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
