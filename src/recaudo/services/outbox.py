"""The outbox: events written in the same transaction as the change they report.

`add_event` is called inside a use case's unit of work; the event and one pending
delivery per enabled webhook endpoint of the company commit or roll back with the
change itself. Sending happens later, outside any business transaction
(`services.webhooks.deliver_due`), so a company system that is down delays nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from recaudo.adapters.db.tables import (
    Allocation,
    Company,
    CreditEntry,
    Customer,
    Debt,
    OutboxEvent,
    Payment,
    PaymentException,
    WebhookDelivery,
    WebhookEndpoint,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.services.context import Clock

PAYMENT_APPLIED = "payment.applied"
PAYMENT_REVERSED = "payment.reversed"
PAYMENT_EXCEPTION_RESOLVED = "payment.exception_resolved"
EVENT_TYPES = (PAYMENT_APPLIED, PAYMENT_REVERSED, PAYMENT_EXCEPTION_RESOLVED)
# What the payment itself left as the customer's credit: its overpayment, less what an
# exception resolution later applied to debts. Refunds and reversals are not subtracted:
# the events that report them say so (`exception.refunded`, `status: reversed`).
_CREDIT_REASONS = ("overpayment", "applied")


def add_event(
    uow: UnitOfWork, company_id: int, event_type: str, payload: dict[str, Any], clock: Clock
) -> OutboxEvent:
    """Record an event and a pending delivery per enabled endpoint, in the caller's transaction."""
    now = clock()
    event = OutboxEvent(
        company_id=company_id, event_type=event_type, payload=payload, created_at=now
    )
    uow.session.add(event)
    uow.session.flush()
    endpoints = uow.session.scalars(
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.company_id == company_id, WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ).all()
    for endpoint_id in endpoints:
        uow.session.add(
            WebhookDelivery(
                company_id=company_id,
                event_id=event.id,
                endpoint_id=endpoint_id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    uow.session.flush()
    return event


def payment_payload(uow: UnitOfWork, payment: Payment) -> dict[str, Any]:
    """What a company's system needs to reconcile a payment, read inside the transaction."""
    session = uow.session
    currency = payment.currency
    company = session.get(Company, payment.company_id)
    assert company is not None
    customer = session.get(Customer, payment.customer_id) if payment.customer_id else None
    allocations = session.execute(
        select(Debt.external_id, Allocation.amount_minor)
        .join(Debt, Debt.id == Allocation.debt_id)
        .where(Allocation.payment_id == payment.id)
        .order_by(Allocation.id)
    ).all()
    credit = sum(
        session.scalars(
            select(CreditEntry.amount_minor).where(
                CreditEntry.payment_id == payment.id, CreditEntry.reason.in_(_CREDIT_REASONS)
            )
        )
    )
    return payment_document(
        payment_id=payment.id,
        company_slug=company.slug,
        customer=None
        if customer is None
        else (customer.id_type, customer.national_id, customer.name),
        amount_minor=payment.amount_minor,
        currency=currency,
        channel=payment.channel,
        method=payment.method,
        external_id=payment.external_id,
        status=payment.status,
        paid_at=payment.paid_at,
        allocations=[(debt_id, amount) for debt_id, amount in allocations],
        credit_minor=credit,
        exception_reason=payment.exception_reason,
        reversal_reason=payment.reversal_reason,
    )


def payment_document(
    *,
    payment_id: int,
    company_slug: str,
    customer: tuple[str, str, str] | None,  # id type, national id, name
    amount_minor: int,
    currency: str,
    channel: str,
    method: str,
    external_id: str,
    status: str,
    paid_at: datetime,
    allocations: list[tuple[str, int]],  # (the company's debt id, minor units)
    credit_minor: int,
    exception_reason: str | None,
    reversal_reason: str | None,
) -> dict[str, Any]:
    """The payment events' payload, from plain values (`payment_payload` reads them; the
    bank channel's short way already has them)."""

    def shown(minor: int) -> str:
        return str(money.from_minor(minor, currency))

    return {
        "payment_id": payment_id,
        "company": company_slug,
        "customer": None
        if customer is None
        else {
            "id_type": customer[0],
            "national_id": customer[1],
            "national_id_formatted": ids.format_national_id(ids.IdType(customer[0]), customer[1]),
            "name": customer[2],
        },
        "amount": shown(amount_minor),
        "currency": currency,
        "channel": channel,
        "method": method,
        "external_id": external_id,
        "status": status,
        "paid_at": paid_at.isoformat(),
        "allocations": [{"debt_id": ref, "amount": shown(amount)} for ref, amount in allocations],
        "credit": shown(credit_minor),
        # Set when the money was applied but a person must look at it (a bank payment that
        # no longer matched its quote): the allocations above are still what happened.
        "exception_reason": exception_reason,
        "reversal_reason": reversal_reason,
    }


def payment_event(uow: UnitOfWork, payment: Payment, event_type: str, clock: Clock) -> None:
    """`add_event` for a payment that was applied or reversed in this transaction."""
    uow.session.flush()
    add_event(uow, payment.company_id, event_type, payment_payload(uow, payment), clock)


def exception_resolved_payload(
    uow: UnitOfWork,
    payment: Payment,
    exception: PaymentException,
    *,
    held: int,
    applied: dict[str, int],
    refunded: int,
) -> dict[str, Any]:
    """`payment.exception_resolved`: the payment as `payment_payload` shows it (after the
    resolution), plus the exception and what its resolution did with the held credit."""
    currency = payment.currency
    assert exception.resolved_at is not None
    return {
        **payment_payload(uow, payment),
        "exception": {
            "id": exception.id,
            "reason": exception.reason,
            "detail": exception.detail,
            "created_at": exception.created_at.isoformat(),
            "resolution": exception.resolution,
            "comment": exception.comment,
            "resolved_by": exception.resolved_by,
            "resolved_at": exception.resolved_at.isoformat(),
            "held": str(money.from_minor(held, currency)),
            "applied": [
                {"debt_id": debt_id, "amount": str(money.from_minor(amount, currency))}
                for debt_id, amount in applied.items()
            ],
            "refunded": str(money.from_minor(refunded, currency)),
        },
    }
