"""Installment schedules: French amortisation exact to the currency's minor unit.

Conventions (docs/negotiation-strategies.md explains them with examples):

- Rates are given as an annual NOMINAL rate in percent (`Decimal("24")` is 24 % a year)
  and converted to a monthly rate by dividing by 12: `i = annual / 12 / 100`. A 0 % rate
  gives an equal split of the principal.
- The fixed installment is `A = P·i / (1 − (1+i)^−n)` rounded half-up to the currency's
  scale (cents, or pesos for CLP). Each month's interest is `balance · i` rounded half-up;
  the principal part is `A − interest`. The LAST installment takes whatever principal is
  left, so the principal parts add up to the financed principal exactly and the
  installments add up to principal + total interest exactly; the rounding difference ends
  in the last installment.
- Grace months (`grace_months`, the contract's `periodGrace`) are months of interest only:
  the customer pays the month's interest, the capital does not move; they come before the
  `term` amortising installments, so the schedule has `grace_months + term` installments.
- Dead months (`dead_months`, the contract's `periodGraceDeath`) are months without any
  payment before the first installment: each month's interest is capitalised (added to
  the balance, rounded half-up). Capitalised interest is reported separately, and the
  principal parts then add up to `principal + capitalized_interest`.
- Due dates are monthly from `first_due`, anchored on its day of the month and clamped to
  the month's end (Jan 31 → Feb 28/29 → Mar 31 → Apr 30 …).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money

MAX_TERM = 600  # 50 years of monthly installments
MAX_ANNUAL_RATE = Decimal(1000)  # percent; anything above is a typo, not a rate
_PRECISION = 60


def monthly_rate(annual_rate: Decimal) -> Decimal:
    """Monthly rate (a fraction) of an annual nominal rate in percent: `annual / 1200`."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Decimal(annual_rate) / Decimal(1200)


def round_minor(value: Decimal) -> int:
    """A Decimal count of minor units rounded half-up to an integer."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def add_months(start: date, months: int) -> date:
    """`start` moved by `months` calendar months, clamped to the end of the target month."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last))


def due_dates(first_due: date, count: int) -> tuple[date, ...]:
    """`count` monthly due dates from `first_due`, each anchored on `first_due`'s day."""
    return tuple(add_months(first_due, k) for k in range(count))


def french_installment(principal_minor: int, rate: Decimal, term: int) -> int:
    """The fixed installment in minor units for `principal_minor` over `term` months."""
    if term <= 0:
        raise ValidationFailed("the term must be at least one installment", term=term)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if rate == 0:
            return round_minor(Decimal(principal_minor) / Decimal(term))
        factor = (1 + rate) ** term
        return round_minor(Decimal(principal_minor) * rate * factor / (factor - 1))


@dataclass(frozen=True, slots=True)
class Installment:
    """One installment of a schedule: number (1-based), due date, principal and interest."""

    number: int
    due_on: date
    principal: Money
    interest: Money

    @property
    def amount(self) -> Money:
        return self.principal + self.interest

    @property
    def currency(self) -> str:
        return self.principal.currency


@dataclass(frozen=True, slots=True)
class Schedule:
    """A French amortisation schedule. Invariants (property-tested):

    - `len(installments) == grace_months + term`
    - `sum(principal parts) == principal + capitalized_interest`
    - `sum(installment amounts) == principal + total_interest`
    - every amount ≥ 0; installments `grace_months+1 … n−1` equal `fixed_installment`
      unless the balance ran out earlier (only possible for amounts of a few minor units).
    """

    principal: Money
    annual_rate: Decimal
    monthly_rate: Decimal
    term: int
    grace_months: int
    dead_months: int
    capitalized_interest: Money
    fixed_installment: Money
    installments: tuple[Installment, ...]

    @property
    def currency(self) -> str:
        return self.principal.currency

    @property
    def paid_interest(self) -> Money:
        """Interest paid in the installments (excludes capitalised interest)."""
        return Money(sum(i.interest.minor for i in self.installments), self.currency)

    @property
    def total_interest(self) -> Money:
        """All interest the plan costs: capitalised during dead months plus paid."""
        return self.capitalized_interest + self.paid_interest

    @property
    def total(self) -> Money:
        """What the installments add up to: `principal + total_interest`."""
        return Money(sum(i.amount.minor for i in self.installments), self.currency)

    @property
    def first_due(self) -> date:
        return self.installments[0].due_on

    @property
    def last_due(self) -> date:
        return self.installments[-1].due_on

    @property
    def max_installment(self) -> Money:
        return max((i.amount for i in self.installments), key=lambda m: m.minor)


def _check(principal: Money, term: int, annual_rate: Decimal, grace: int, dead: int) -> None:
    if principal.minor <= 0:
        raise ValidationFailed("the amount to finance must be positive", principal=str(principal))
    if not 1 <= term <= MAX_TERM:
        raise ValidationFailed(f"the term must be 1 to {MAX_TERM} installments", term=term)
    if not Decimal(annual_rate).is_finite() or not 0 <= annual_rate <= MAX_ANNUAL_RATE:
        raise ValidationFailed(
            f"the annual rate must be 0 to {MAX_ANNUAL_RATE} percent", rate=str(annual_rate)
        )
    if not 0 <= grace <= MAX_TERM or not 0 <= dead <= MAX_TERM:
        raise ValidationFailed(
            f"grace and dead months must be 0 to {MAX_TERM}", grace=grace, dead=dead
        )


def french_schedule(
    principal: Money,
    *,
    term: int,
    annual_rate: Decimal,
    first_due: date,
    grace_months: int = 0,
    dead_months: int = 0,
) -> Schedule:
    """The schedule financing `principal` over `term` amortising installments.

    `first_due` is the due date of the first installment (a grace installment when
    `grace_months > 0`); dead months are the months before it, their interest capitalised.
    """
    annual = Decimal(annual_rate)
    _check(principal, term, annual, grace_months, dead_months)
    rate = monthly_rate(annual)
    currency = principal.currency
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        balance = principal.minor
        for _ in range(dead_months):
            balance += round_minor(Decimal(balance) * rate)
        capitalized = balance - principal.minor
        fixed = french_installment(balance, rate, term)
        dates = due_dates(first_due, grace_months + term)
        rows: list[Installment] = []
        for k, due in enumerate(dates, start=1):
            interest = round_minor(Decimal(balance) * rate)
            if k <= grace_months:
                part = 0
            elif k == len(dates):
                part = balance
            else:
                # interest <= fixed always holds (rounding is monotone and the balance never
                # grows); min() only bites when tiny amounts run the balance out early.
                part = min(fixed - interest, balance)
            balance -= part
            rows.append(Installment(k, due, Money(part, currency), Money(interest, currency)))
    return Schedule(
        principal=principal,
        annual_rate=annual,
        monthly_rate=rate,
        term=term,
        grace_months=grace_months,
        dead_months=dead_months,
        capitalized_interest=Money(capitalized, currency),
        fixed_installment=Money(fixed, currency),
        installments=tuple(rows),
    )
