"""Payment capacity from what the customer declares, and which offers fit it.

    available = income + other income − personal expenses                (employee)
    available = (sales − operating costs) + other income − personal expenses   (self-employed)
    capacity  = available × ratio, rounded DOWN to the minor unit (never more than declared)

A negative available income gives a capacity of 0. The ratio (e.g. 0.30, a company
setting) is the share of the available income the customer can put into installments.

`fits(offer, capacity)` compares the offer's LARGEST new monthly installment with the
capacity (the monthly commitment is what the declared income has to carry). The payment
today is a one-off: it is checked only against `cash_today` (savings, a lump sum the
customer declares) when that is given; CNTL and PDIA, which have no installments, then
fit when their payment today does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.strategies import Offer

DEFAULT_CAPACITY_RATIO = Decimal("0.30")


@dataclass(frozen=True, slots=True)
class DeclaredFinances:
    """Monthly amounts the customer declares (all in the same currency, all ≥ 0)."""

    income: Money
    other_income: Money
    personal_expenses: Money
    self_employed: bool = False
    sales: Money | None = None  # self-employed: monthly sales
    operating_costs: Money | None = None  # self-employed: monthly operating costs

    def __post_init__(self) -> None:
        currency = self.income.currency
        amounts = {
            "income": self.income,
            "other_income": self.other_income,
            "personal_expenses": self.personal_expenses,
            "sales": self.sales,
            "operating_costs": self.operating_costs,
        }
        for name, amount in amounts.items():
            if amount is None:
                continue
            if amount.currency != currency:
                raise ValidationFailed(f"{name} is in {amount.currency}, income in {currency}")
            if amount.minor < 0:
                raise ValidationFailed(f"{name} cannot be negative", field=name)
        if self.self_employed and (self.sales is None or self.operating_costs is None):
            raise ValidationFailed("a self-employed customer declares sales and operating costs")

    @property
    def currency(self) -> str:
        return self.income.currency

    @property
    def available_income(self) -> Money:
        """Monthly income left after personal expenses (0 if expenses exceed income)."""
        if self.self_employed:
            assert self.sales is not None and self.operating_costs is not None
            earned = self.sales.minor - self.operating_costs.minor
        else:
            earned = self.income.minor
        left = earned + self.other_income.minor - self.personal_expenses.minor
        return Money(max(0, left), self.currency)


def check_ratio(ratio: Decimal) -> Decimal:
    value = Decimal(ratio)
    if not value.is_finite() or not 0 < value <= 1:
        raise ValidationFailed(f"the capacity ratio must be above 0 and at most 1, got {ratio}")
    return value


def payment_capacity(finances: DeclaredFinances, ratio: Decimal = DEFAULT_CAPACITY_RATIO) -> Money:
    """The monthly installment the customer can carry: available income × ratio, rounded
    down to the minor unit."""
    share = Decimal(finances.available_income.minor) * check_ratio(ratio)
    return Money(int(share.to_integral_value(rounding=ROUND_DOWN)), finances.currency)


def fits(offer: Offer, capacity: Money, *, cash_today: Money | None = None) -> bool:
    """Whether `offer`'s largest new installment is within `capacity` (and, when
    `cash_today` is given, its payment today within `cash_today`)."""
    if capacity.currency != offer.currency:
        raise ValidationFailed(f"capacity is in {capacity.currency}, the offer in {offer.currency}")
    if offer.max_installment.minor > capacity.minor:
        return False
    if cash_today is not None:
        if cash_today.currency != offer.currency:
            raise ValidationFailed(
                f"cash today is in {cash_today.currency}, the offer in {offer.currency}"
            )
        return offer.payment_today.minor <= cash_today.minor
    return True


def fitting(
    offers: Iterable[Offer], capacity: Money, *, cash_today: Money | None = None
) -> list[Offer]:
    """The offers that fit, in the order given."""
    return [o for o in offers if fits(o, capacity, cash_today=cash_today)]
