"""How a payment is spread over a customer's debts. Pure and exact (integer minor units)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recaudo.domain.debts import DebtBalance


@dataclass(frozen=True, slots=True)
class AllocationLine:
    debt_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    lines: tuple[AllocationLine, ...]
    credit: int  # what no debt could take: the customer's credit balance grows by it

    @property
    def allocated(self) -> int:
        return sum(line.amount for line in self.lines)


def oldest_first(debts: Sequence[DebtBalance]) -> list[DebtBalance]:
    return sorted(debts, key=lambda d: (d.due_date, d.debt_id))


def allocate(
    amount: int, debts: Sequence[DebtBalance], *, in_given_order: bool = False
) -> AllocationPlan:
    """Allocate `amount` to `debts`, oldest due first unless `in_given_order`.

    Each debt takes at most its open amount; what is left over is credit. The result
    never allocates more than the payment nor more than any debt's open amount.
    """
    if amount < 0:
        raise ValueError("a payment amount cannot be negative")
    remaining = amount
    lines: list[AllocationLine] = []
    for debt in debts if in_given_order else oldest_first(debts):
        if remaining == 0:
            break
        take = min(remaining, debt.open_amount)
        if take > 0:
            lines.append(AllocationLine(debt.debt_id, take))
            remaining -= take
    return AllocationPlan(tuple(lines), remaining)
