"""Resolving a payment exception writes webhook events, delivered signed to a real receiver.

Every resolution writes `payment.exception_resolved`; one that applies the held credit to
debts also writes `payment.applied` with the payment's new state. Runs on SQLite and
PostgreSQL (the `uow` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from recaudo.adapters.db.tables import Company, Customer, OutboxEvent, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender, verify_signature
from recaudo.domain.errors import Conflict
from recaudo.domain.payments import PaymentMethod
from recaudo.services import webhooks
from recaudo.services.context import Actor
from recaudo.services.exceptions import (
    ExceptionView,
    Reason,
    Resolution,
    get_exception,
    list_exceptions,
    raise_exception,
    resolve_exception,
)
from recaudo.services.payments import ApplyPayment, Settled, apply_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import Received, Receiver, running_receiver

DETAIL = "paid 3500 but the quote was for 3000; credited 500"
JUANA = {
    "id_type": "RUT",
    "national_id": "123456785",
    "national_id_formatted": "12.345.678-5",
    "name": "Juana Pérez",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def sender() -> Iterator[HttpSender]:
    sender = HttpSender(timeout_s=5, allow_private=True)  # the receiver is on 127.0.0.1
    yield sender
    sender.close()


@pytest.fixture
def juana(uow: UnitOfWork, company: Company, clock: FrozenClock) -> Customer:
    customer = add_customer(uow, company, "12.345.678-5", "Juana Pérez", clock)
    add_debt(uow, company, customer, "B-1", "1000", date(2026, 1, 10), clock)
    add_debt(uow, company, customer, "B-2", "2000", date(2026, 2, 10), clock)
    add_debt(uow, company, customer, "B-3", "300", date(2026, 3, 10), clock)
    return customer


def bank_payment(
    uow: UnitOfWork, company: Company, customer: Customer, admin: Actor, clock: FrozenClock
) -> Payment:
    """3500 for a quote of B-1 and B-2 (3000): applied to them, 500 credit, an exception.
    The same path the bank channel takes (`partial`, the exception raised before commit)."""

    def before_commit(uow: UnitOfWork, settled: Settled) -> None:
        raise_exception(
            uow, settled.payment, Reason.AMOUNT_MISMATCH, DETAIL, actor=admin, clock=clock
        )
        settled.payment.exception_reason = Reason.AMOUNT_MISMATCH.value

    cmd = ApplyPayment(
        company.id,
        customer.id,
        "3500",
        PaymentMethod.CASH,
        "tx-0001",
        channel="bancoestado",
        debts=("B-1", "B-2"),
        strict=False,
        partial=True,
    )
    apply_payment(uow, cmd, actor=admin, clock=clock, before_commit=before_commit)
    with uow:
        payment = uow.session.scalar(select(Payment).where(Payment.external_id == "tx-0001"))
        assert payment is not None
        uow.commit()  # keeps the loaded attributes (expire_on_commit=False)
        return payment


def unmatched_payment(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> Payment:
    """A payment for a RUT nobody knows: kept whole, unallocated, as the channel records it."""
    with uow:
        payment = Payment(
            company_id=company.id,
            customer_id=None,
            channel="bancoestado",
            method=PaymentMethod.CASH.value,
            external_id="tx-0002",
            request_fingerprint="f" * 64,
            amount_minor=4200,
            currency="CLP",
            paid_at=clock(),
            status="exception",
            exception_reason=Reason.UNKNOWN_CUSTOMER.value,
            recorded_by=admin.label,
            created_at=clock(),
        )
        uow.session.add(payment)
        uow.session.flush()
        raise_exception(
            uow, payment, Reason.UNKNOWN_CUSTOMER, "no customer", actor=admin, clock=clock
        )
        uow.commit()
        return payment


def only_exception(uow: UnitOfWork, company: Company) -> int:
    with uow:
        [view] = list_exceptions(uow, company.id).items
        return view.id


def event_ids(uow: UnitOfWork) -> list[int]:
    with uow:
        return list(uow.session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id)))


def deliver(
    uow: UnitOfWork, sender: HttpSender, clock: FrozenClock, receiver: Receiver, count: int
) -> list[Received]:
    already = len(receiver.posts)
    assert webhooks.deliver_due(uow, sender, clock) == count
    posts = receiver.posts[already:]
    assert len(posts) == count
    return posts


def signed_document(request: Received, secret: str) -> dict[str, Any]:
    header = request.headers["Recaudo-Signature"]
    signed_at = int(header.split(",")[0].removeprefix("t="))  # the frozen clock's time
    assert verify_signature(secret, header, request.body, now=signed_at)
    assert not verify_signature("whsec_other", header, request.body, now=signed_at)
    document: dict[str, Any] = json.loads(request.body)
    assert request.headers["Recaudo-Event"] == document["type"]
    return document


def created_at(uow: UnitOfWork, event_id: int) -> str:
    with uow:
        event = uow.session.get(OutboxEvent, event_id)
        assert event is not None
        return event.created_at.isoformat()


def payment_data(payment: Payment, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "payment_id": payment.id,
        "company": "acme",
        "customer": JUANA,
        "amount": "3500",
        "currency": "CLP",
        "channel": "bancoestado",
        "method": "cash",
        "external_id": "tx-0001",
        "status": "applied",
        "paid_at": payment.paid_at.isoformat(),
        "allocations": [
            {"debt_id": "B-1", "amount": "1000"},
            {"debt_id": "B-2", "amount": "2000"},
        ],
        "credit": "500",
        "exception_reason": "amount_mismatch",
        "reversal_reason": None,
    }
    data.update(over)
    return data


def exception_data(view: ExceptionView, **over: Any) -> dict[str, Any]:
    assert view.resolved_at is not None
    data: dict[str, Any] = {
        "id": view.id,
        "reason": view.reason,
        "detail": view.detail,
        "created_at": view.created_at.isoformat(),
        "resolution": view.resolution,
        "comment": view.comment,
        "resolved_by": "test:admin",
        "resolved_at": view.resolved_at.isoformat(),
    }
    data.update(over)
    return data


def setup_endpoint(
    uow: UnitOfWork, company: Company, receiver: Receiver, admin: Actor, clock: FrozenClock
) -> str:
    url = f"{receiver.url}/hooks"
    created = webhooks.create_endpoint(
        uow, company.id, url, actor=admin, clock=clock, allow_private=True
    )
    return created.secret


def test_applying_the_credit_sends_payment_applied_and_exception_resolved(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    secret = setup_endpoint(uow, company, receiver, admin, clock)
    payment = bank_payment(uow, company, juana, admin, clock)
    [first] = deliver(uow, sender, clock, receiver, 1)
    assert signed_document(first, secret)["data"] == payment_data(payment)
    exception_id = only_exception(uow, company)

    clock.advance(hours=2)
    before = event_ids(uow)
    resolve_exception(
        uow,
        company.id,
        exception_id,
        Resolution.APPLIED,
        "  customer asked for B-3  ",
        debts=("B-3",),
        actor=admin,
        clock=clock,
    )
    new_events = [e for e in event_ids(uow) if e not in before]
    assert len(new_events) == 2
    with uow:
        view = get_exception(uow, company.id, exception_id)
    # B-3 owes 300 of the 500 credit: 200 stays the customer's credit.
    after = payment_data(
        payment,
        allocations=[
            {"debt_id": "B-1", "amount": "1000"},
            {"debt_id": "B-2", "amount": "2000"},
            {"debt_id": "B-3", "amount": "300"},
        ],
        credit="200",
    )
    applied, resolved = deliver(uow, sender, clock, receiver, 2)
    assert signed_document(applied, secret) == {
        "id": new_events[0],
        "type": "payment.applied",
        "created_at": created_at(uow, new_events[0]),
        "data": after,
    }
    assert signed_document(resolved, secret) == {
        "id": new_events[1],
        "type": "payment.exception_resolved",
        "created_at": created_at(uow, new_events[1]),
        "data": {
            **after,
            "exception": exception_data(
                view,
                reason="amount_mismatch",
                detail=DETAIL,
                resolution="applied",
                comment="customer asked for B-3",
                held="500",
                applied=[{"debt_id": "B-3", "amount": "300"}],
                refunded="0",
            ),
        },
    }
    assert view.credit == 200
    assert webhooks.deliver_due(uow, sender, clock) == 0


@pytest.mark.parametrize(
    ("resolution", "refunded", "credit_left"),
    [(Resolution.CREDIT, "0", 500), (Resolution.REFUNDED, "500", 0)],
)
def test_keeping_or_refunding_sends_only_exception_resolved(
    uow, company, juana, admin, clock, receiver, sender, resolution, refunded, credit_left
) -> None:  # type: ignore[no-untyped-def]
    secret = setup_endpoint(uow, company, receiver, admin, clock)
    payment = bank_payment(uow, company, juana, admin, clock)
    deliver(uow, sender, clock, receiver, 1)
    exception_id = only_exception(uow, company)

    before = event_ids(uow)
    resolve_exception(
        uow, company.id, exception_id, resolution, "agreed by phone", actor=admin, clock=clock
    )
    [event_id] = [e for e in event_ids(uow) if e not in before]
    with uow:
        view = get_exception(uow, company.id, exception_id)
    [resolved] = deliver(uow, sender, clock, receiver, 1)
    assert signed_document(resolved, secret) == {
        "id": event_id,
        "type": "payment.exception_resolved",
        "created_at": created_at(uow, event_id),
        # `credit` is what the payment left as credit; a refund is told in the exception.
        "data": {
            **payment_data(payment),
            "exception": exception_data(
                view,
                reason="amount_mismatch",
                detail=DETAIL,
                resolution=resolution.value,
                comment="agreed by phone",
                held="500",
                applied=[],
                refunded=refunded,
            ),
        },
    }
    assert view.credit == credit_left


@pytest.mark.parametrize(
    ("resolution", "refunded"), [(Resolution.CREDIT, "0"), (Resolution.REFUNDED, "4200")]
)
def test_a_payment_for_an_unknown_customer(
    uow, company, admin, clock, receiver, sender, resolution, refunded
) -> None:  # type: ignore[no-untyped-def]
    secret = setup_endpoint(uow, company, receiver, admin, clock)
    payment = unmatched_payment(uow, company, admin, clock)
    assert event_ids(uow) == []  # nothing was applied: no payment.applied
    exception_id = only_exception(uow, company)

    resolve_exception(
        uow,
        company.id,
        exception_id,
        resolution,
        "returned at the branch",
        actor=admin,
        clock=clock,
    )
    [event_id] = event_ids(uow)
    with uow:
        view = get_exception(uow, company.id, exception_id)
    [resolved] = deliver(uow, sender, clock, receiver, 1)
    assert signed_document(resolved, secret) == {
        "id": event_id,
        "type": "payment.exception_resolved",
        "created_at": created_at(uow, event_id),
        "data": {
            **payment_data(
                payment,
                customer=None,
                amount="4200",
                external_id="tx-0002",
                status="exception",
                allocations=[],
                credit="0",
                exception_reason="unknown_customer",
            ),
            "exception": exception_data(
                view,
                reason="unknown_customer",
                detail="no customer",
                resolution=resolution.value,
                comment="returned at the branch",
                held="4200",
                applied=[],
                refunded=refunded,
            ),
        },
    }


def test_a_failed_resolution_writes_no_event(uow, company, admin, clock, receiver) -> None:  # type: ignore[no-untyped-def]
    setup_endpoint(uow, company, receiver, admin, clock)
    unmatched_payment(uow, company, admin, clock)
    exception_id = only_exception(uow, company)
    with pytest.raises(Conflict):
        resolve_exception(
            uow,
            company.id,
            exception_id,
            Resolution.APPLIED,
            "try",
            debts=("B-1",),
            actor=admin,
            clock=clock,
        )
    assert event_ids(uow) == []
