"""Totals computed from the append-only rows, never stored twice.

What a debt has received is the sum of its allocations from applied payments; a
customer's credit balance is the sum of their credit entries.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from recaudo.adapters.db.tables import Allocation, CreditEntry, Payment
from recaudo.domain.payments import PaymentStatus


def paid_per_debt() -> Subquery:
    """(debt_id, paid_minor) for every debt that has received money."""
    return (
        select(Allocation.debt_id, func.sum(Allocation.amount_minor).label("paid_minor"))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Payment.status == PaymentStatus.APPLIED.value)
        .group_by(Allocation.debt_id)
        .subquery("paid")
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
