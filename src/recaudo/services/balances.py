"""Totals computed from the append-only rows, never stored twice.

What a debt has received is the sum of its allocations from applied payments; a
customer's credit balance is the sum of their credit entries.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import Session

from recaudo.adapters.db.tables import Allocation, CreditEntry, Debt, Payment
from recaudo.domain.payments import PaymentStatus


def paid_of_debt() -> ScalarSelect[int]:
    """What the enclosing query's debt (`debts.id`) has received, as a correlated subquery.

    Correlated on purpose: an aggregate over all allocations joined afterwards would be
    computed for every debt of every company on each query (O(all allocations)), while
    this one reads only the allocations of the rows the outer query keeps.
    """
    return (
        select(func.coalesce(func.sum(Allocation.amount_minor), 0))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Allocation.debt_id == Debt.id, Payment.status == PaymentStatus.APPLIED.value)
        .correlate(Debt)
        .scalar_subquery()
    )


def paid_by_debt(session: Session, debt_ids: Iterable[int]) -> dict[int, int]:
    ids = list(debt_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Allocation.debt_id, func.sum(Allocation.amount_minor))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Payment.status == PaymentStatus.APPLIED.value, Allocation.debt_id.in_(ids))
        .group_by(Allocation.debt_id)
    )
    return {debt_id: int(total) for debt_id, total in rows}


def credit_balance(session: Session, customer_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount_minor), 0)).where(
            CreditEntry.customer_id == customer_id
        )
    )
    return int(total or 0)
