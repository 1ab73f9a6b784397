"""Installment schedules: French amortisation exact to the currency's minor unit.

Conventions (docs/negotiation-strategies.md explains them with examples):

- Rates are given as an annual NOMINAL rate in percent (`Decimal("24")` is 24 % a year)
  and converted to a monthly rate by dividing by 12: `i = annual / 12 / 100`. A 0 % rate
  gives an equal split of the principal, rounded down, the remainder in the last one.
- The fixed installment is `A = P·i / (1 − (1+i)^−n)` rounded half-up to the currency's
  scale (cents, or pesos for CLP). Each month's interest is `balance · i` rounded half-up;
  the principal part is `A − interest`. The LAST installment takes whatever principal is
  left, so the principal parts add up to the financed principal exactly and the
  installments add up to principal + total interest exactly; the rounding difference ends
  in the last installment.
- When that difference would exceed `term` minor units (a long term at a high rate: the
  rounding of the installment compounds at the plan's rate, e.g. CLP 100 000 over 360
  months at 24 %), or the balance would run out before the last installment, each
  installment is instead recomputed on the balance and months left (`recalculated=True`):
  installments stay level within a few minor units and the last still takes what is left.
- A plan whose fixed installment would round to 0 is refused (the amount is too small).
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

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import MAX_MINOR, Money
from recaudo.domain.months import add_months

MAX_TERM = 600  # 50 years of monthly installments
MAX_ANNUAL_RATE = Decimal(1000)  # percent; anything above is a typo, not a rate
_PRECISION = 60


def monthly_rate(annual_rate: Decimal) -> Decimal:
    """Monthly rate (a fraction) of an annual nominal rate in percent: `annual / 1200`."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Decimal(annual_rate) / Decimal(1200)


def nominal_from_effective(effective_annual: Decimal) -> Decimal:
    """The annual nominal rate (percent, monthly compounding) equivalent to an effective
    annual rate in percent (Colombian "E.A."): `1200 × ((1 + EA/100)^(1/12) − 1)`,
    rounded to 6 decimals (the contract's rates have six)."""
    ea = Decimal(effective_annual)
    if not ea.is_finite() or not 0 <= ea <= MAX_ANNUAL_RATE * 100:
        raise ValidationFailed(f"not an effective annual rate: {effective_annual}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        monthly = (1 + ea / 100) ** (Decimal(1) / Decimal(12)) - 1
        return (monthly * 1200).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def effective_from_nominal(annual_rate: Decimal) -> Decimal:
    """The effective annual rate (percent) of an annual nominal rate compounded monthly:
    `100 × ((1 + annual/1200)^12 − 1)`, rounded to 6 decimals."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        effective = ((1 + monthly_rate(annual_rate)) ** 12 - 1) * 100
        return effective.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def round_minor(value: Decimal) -> int:
    """A Decimal count of minor units rounded half-up to an integer."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


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
            # an equal split rounded down: the last installment takes the remainder (< term)
            return principal_minor // term
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
    recalculated: bool = False  # installments recomputed each month (see french_schedule)

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


def _amortise(
    balance: int,
    rate: Decimal,
    fixed: int | None,
    dates: tuple[date, ...],
    grace_months: int,
    currency: str,
) -> list[Installment]:
    """The installments paying `balance` off: each amortising one is `fixed`, or, with
    `fixed=None`, the French installment recomputed on the balance and months left."""
    rows: list[Installment] = []
    n = len(dates)
    for k, due in enumerate(dates, start=1):
        interest = round_minor(Decimal(balance) * rate)
        if k <= grace_months:
            part = 0
        elif k == n:
            part = balance
        else:
            amount = fixed if fixed is not None else french_installment(balance, rate, n - k + 1)
            # interest <= amount always holds (rounding is monotone and the balance never
            # grows), so the part is never negative; min() cuts it if the balance runs out.
            part = min(amount - interest, balance)
        balance -= part
        rows.append(Installment(k, due, Money(part, currency), Money(interest, currency)))
    return rows


def _absorbs(rows: list[Installment], fixed: int, grace_months: int) -> bool:
    """Whether the last installment is within `term` minor units of the fixed one and no
    installment before it paid the balance off (a cut-short principal part)."""
    amortising = rows[grace_months:]
    term = len(amortising)
    if any(r.amount.minor != fixed for r in amortising[:-1]):
        return False
    return abs(amortising[-1].amount.minor - fixed) <= max(1, term)


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
        if balance >= MAX_MINOR:
            raise ValidationFailed("the capitalised balance is too large", dead=dead_months)
        dates = due_dates(first_due, grace_months + term)
        fixed = french_installment(balance, rate, term)
        if fixed == 0:
            raise ValidationFailed(
                f"{Money(balance, currency)} is too small to split into {term} installments"
            )
        rows = _amortise(balance, rate, fixed, dates, grace_months, currency)
        recalculated = not _absorbs(rows, fixed, grace_months)
        if recalculated:
            # A long term at a high rate: the rounding of the fixed installment compounds
            # at the plan's rate and would leave a balloon (or an early payoff) in the last
            # installment; recomputing each installment on what is left keeps them level.
            rows = _amortise(balance, rate, None, dates, grace_months, currency)
    if sum(r.amount.minor for r in rows) >= MAX_MINOR:
        raise ValidationFailed("the plan's total is too large for an amount")
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
        recalculated=recalculated,
    )
