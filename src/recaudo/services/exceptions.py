"""Payment exceptions: money a channel collected that did not match; a person resolves it.

The money is never refused: the payment is recorded and allocated as far as it could
be, the rest is the customer's credit, and an exception says why. Resolving it either
applies that credit to debts the operator chooses, keeps it as credit, or records that
it was refunded; each with a comment and an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import func, select

from recaudo.adapters.db.tables import (
    CreditEntry,
    Customer,
    Debt,
    Payment,
    PaymentException,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.debts import PAYABLE, DebtStatus
from recaudo.domain.errors import Conflict, DebtNotPayable, NotFound, ValidationFailed
from recaudo.services import audit, outbox
from recaudo.services.context import Actor, Clock
from recaudo.services.payments import allocate_to_debts
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

FIRST_PAGE = Paging()


class Reason(StrEnum):
    UNKNOWN_TRANSACTION = "unknown_transaction"
    UNKNOWN_CUSTOMER = "unknown_customer"
    DEBTS_NOT_PAYABLE = "debts_not_payable"
    AMOUNT_MISMATCH = "amount_mismatch"
    CUSTOMER_MISMATCH = "customer_mismatch"
    DEBTS_CHANGED = "debts_changed"
    # In the bank's settlement file but never notified online: recorded by reconciliation.
    NOT_NOTIFIED = "not_notified"


class Resolution(StrEnum):
    APPLIED = "applied"
    CREDIT = "credit"
    REFUNDED = "refunded"


OPEN = "open"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: int
    payment_id: int
    customer_id: int | None
    transaccion: str
    amount: Decimal
    credit: Decimal  # what of the payment is still the customer's credit
    currency: str
    reason: str
    detail: str
    status: str
    resolution: str | None
    comment: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime


def raise_exception(
    uow: UnitOfWork, payment: Payment, reason: Reason, detail: str, *, actor: Actor, clock: Clock
) -> PaymentException:
    """Record an exception for `payment`, in the caller's transaction."""
    row = PaymentException(
        company_id=payment.company_id,
        payment_id=payment.id,
        reason=reason.value,
        detail=detail,
        status=OPEN,
        created_at=clock(),
    )
    uow.session.add(row)
    uow.session.flush()
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=payment.company_id,
        action="payment_exception.raised",
        entity_type="payment_exception",
        entity_id=row.id,
        after={"payment_id": payment.id, "reason": reason.value, "detail": detail},
    )
    return row


def _credit_of(uow: UnitOfWork, payment_id: int) -> int:
    total = uow.session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount_minor), 0)).where(
            CreditEntry.payment_id == payment_id
        )
    )
    return int(total or 0)


def _view(uow: UnitOfWork, row: PaymentException, payment: Payment) -> ExceptionView:
    currency = payment.currency
    return ExceptionView(
        id=row.id,
        payment_id=payment.id,
        customer_id=payment.customer_id,
        transaccion=payment.external_id,
        amount=money.from_minor(payment.amount_minor, currency),
        credit=money.from_minor(_credit_of(uow, payment.id), currency),
        currency=currency,
        reason=row.reason,
        detail=row.detail,
        status=row.status,
        resolution=row.resolution,
        comment=row.comment,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        created_at=row.created_at,
    )


def list_exceptions(
    uow: UnitOfWork, company_id: int, *, status: str | None = None, paging: Paging = FIRST_PAGE
) -> Page[ExceptionView]:
    if status is not None and status not in (OPEN, RESOLVED):
        raise ValidationFailed(f"unknown status {status!r} (open or resolved)", field="status")
    stmt = select(PaymentException).where(PaymentException.company_id == company_id)
    if status is not None:
        stmt = stmt.where(PaymentException.status == status)
    total = _count(uow.session, stmt.with_only_columns(PaymentException.id))
    rows = list(
        uow.session.scalars(
            stmt.order_by(PaymentException.id.desc()).offset(paging.offset).limit(paging.page_size)
        )
    )
    payments = {
        p.id: p
        for p in uow.session.scalars(
            select(Payment).where(Payment.id.in_([r.payment_id for r in rows]))
        )
    }
    items = [_view(uow, r, payments[r.payment_id]) for r in rows]
    return Page(items, total, paging.page, paging.page_size)


def _load(uow: UnitOfWork, company_id: int, exception_id: int) -> PaymentException:
    row = uow.session.scalar(
        select(PaymentException).where(
            PaymentException.id == exception_id, PaymentException.company_id == company_id
        )
    )
    if row is None:
        raise NotFound(f"no exception {exception_id}")
    return row


def get_exception(uow: UnitOfWork, company_id: int, exception_id: int) -> ExceptionView:
    row = _load(uow, company_id, exception_id)
    payment = uow.session.get(Payment, row.payment_id)
    assert payment is not None
    return _view(uow, row, payment)


def resolve_exception(
    uow: UnitOfWork,
    company_id: int,
    exception_id: int,
    resolution: Resolution,
    comment: str,
    *,
    debts: tuple[str, ...] = (),
    actor: Actor,
    clock: Clock,
) -> ExceptionView:
    """Apply the payment's credit to `debts`, keep it as credit, or mark it refunded."""
    actor.require_write()
    comment = " ".join(comment.split())
    if not comment or len(comment) > 500:
        raise ValidationFailed(
            "a resolution needs a comment of 1 to 500 characters", field="comment"
        )
    if resolution is Resolution.APPLIED and not debts:
        raise ValidationFailed("name the debts to apply the credit to", field="debt_ids")
    if resolution is not Resolution.APPLIED and debts:
        raise ValidationFailed("debts are named only to apply the credit", field="debt_ids")
    if len(set(debts)) != len(debts):
        raise ValidationFailed("a debt is named twice", field="debt_ids")
    if not actor.can_see(company_id):
        raise NotFound(f"no exception {exception_id}")
    with uow:
        row = _load(uow, company_id, exception_id)
        payment = uow.session.get(Payment, row.payment_id)
        assert payment is not None
        if payment.customer_id is not None:
            uow.session.scalar(
                select(Customer.id).where(Customer.id == payment.customer_id).with_for_update()
            )
        uow.session.refresh(row)  # a concurrent resolution may have won the lock
        if row.status != OPEN:
            raise Conflict(f"exception {exception_id} is already resolved")
        credit = _credit_of(uow, payment.id)
        applied: dict[str, int] = {}
        if resolution is Resolution.APPLIED:
            applied = _apply_credit(uow, payment, debts, credit, actor=actor, clock=clock)
        elif resolution is Resolution.REFUNDED and credit > 0:
            assert payment.customer_id is not None
            _withdraw(uow, payment, credit, "refund", clock)
        row.status = RESOLVED
        row.resolution = resolution.value
        row.comment = comment
        row.resolved_by = actor.label
        row.resolved_at = clock()
        uow.session.flush()
        if applied:
            # Money reached debts: integrators that only follow `payment.applied` learn it
            # the way they learn every payment (the payload is the payment's whole state).
            outbox.payment_event(uow, payment, outbox.PAYMENT_APPLIED, clock)
        # What awaited this decision: the payment's credit, or all of a payment for an
        # unknown customer (kept unallocated, with no credit entry).
        held = credit if payment.customer_id is not None else payment.amount_minor
        refunded = held if resolution is Resolution.REFUNDED else 0
        outbox.add_event(
            uow,
            company_id,
            outbox.PAYMENT_EXCEPTION_RESOLVED,
            outbox.exception_resolved_payload(
                uow, payment, row, held=held, applied=applied, refunded=refunded
            ),
            clock,
        )
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="payment_exception.resolved",
            entity_type="payment_exception",
            entity_id=row.id,
            before={"status": OPEN, "credit": str(money.from_minor(credit, payment.currency))},
            after={
                "status": RESOLVED,
                "resolution": resolution.value,
                "comment": comment,
                "applied": {
                    ref: str(money.from_minor(v, payment.currency)) for ref, v in applied.items()
                },
            },
        )
        uow.commit()
        return _view(uow, row, payment)


def _withdraw(uow: UnitOfWork, payment: Payment, amount: int, reason: str, clock: Clock) -> None:
    assert payment.customer_id is not None
    uow.session.add(
        CreditEntry(
            company_id=payment.company_id,
            customer_id=payment.customer_id,
            payment_id=payment.id,
            amount_minor=-amount,
            currency=payment.currency,
            reason=reason,
            created_at=clock(),
        )
    )


def _apply_credit(
    uow: UnitOfWork,
    payment: Payment,
    refs: tuple[str, ...],
    credit: int,
    *,
    actor: Actor,
    clock: Clock,
) -> dict[str, int]:
    if payment.customer_id is None:
        raise Conflict("this payment has no known customer: keep it or mark it refunded")
    if credit <= 0:
        raise Conflict("this payment has no credit left to apply")
    rows = uow.session.scalars(
        select(Debt)
        .where(Debt.company_id == payment.company_id, Debt.external_id.in_(refs))
        .order_by(Debt.id)
        .with_for_update()
    ).all()
    by_ref = {d.external_id: d for d in rows}
    for ref in refs:
        debt = by_ref.get(ref)
        if debt is None or debt.customer_id != payment.customer_id:
            raise NotFound(f"no debt {ref!r} of this customer", field="debt_ids")
        if DebtStatus(debt.status) not in PAYABLE:
            raise DebtNotPayable(f"debt {ref!r} cannot take payments", field="debt_ids")
    debts = [by_ref[ref] for ref in refs]
    plan = allocate_to_debts(
        uow, payment, credit, debts, in_given_order=True, actor=actor, clock=clock
    )
    by_id = {d.id: d for d in debts}
    applied = {by_id[line.debt_id].external_id: line.amount for line in plan.lines}
    if plan.allocated:
        _withdraw(uow, payment, plan.allocated, "applied", clock)
    uow.session.flush()
    return applied
