"""Debts: the states a debt goes through and what each state allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class DebtStatus(StrEnum):
    OPEN = "open"
    IN_PAYMENT = "in_payment"  # offered to a channel or remitted: a replace import keeps it
    PAID = "paid"
    CANCELLED = "cancelled"
    WRITTEN_OFF = "written_off"
    # Negotiated: the plan's installments (new debts) took its place (issue 7).
    REPLACED = "replaced"


PAYABLE = frozenset({DebtStatus.OPEN, DebtStatus.IN_PAYMENT})
# States an import may never touch: their history belongs to the payments that closed them.
SETTLED = frozenset({DebtStatus.PAID, DebtStatus.WRITTEN_OFF, DebtStatus.REPLACED})


@dataclass(frozen=True, slots=True)
class DebtBalance:
    """What allocation needs to know of one debt, in minor units."""

    debt_id: int
    due_date: date
    amount: int
    paid: int
    status: DebtStatus

    @property
    def open_amount(self) -> int:
        return self.amount - self.paid if self.status in PAYABLE else 0


def status_after_payment(amount: int, paid: int, current: DebtStatus) -> DebtStatus:
    """Status of a payable debt once `paid` minor units of `amount` are allocated to it."""
    if paid >= amount:
        return DebtStatus.PAID
    return current if current in PAYABLE else DebtStatus.OPEN


def status_after_reversal(amount: int, paid: int, current: DebtStatus) -> DebtStatus:
    """A reversal reopens a debt it had paid; other states (cancelled, ...) stay."""
    if current is DebtStatus.PAID and paid < amount:
        return DebtStatus.OPEN
    return current
