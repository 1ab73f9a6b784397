"""Outbox and signed webhooks against a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    Company,
    Customer,
    Debt,
    OutboxEvent,
    Payment,
    WebhookAttempt,
    WebhookDelivery,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender, sign, verify_signature
from recaudo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.services import outbox, webhooks
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, Settled, apply_payment, reverse_payment
from recaudo.services.webhooks import DeliveryStatus
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import Receiver, closed_port_url, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def sender() -> Iterator[HttpSender]:
    sender = HttpSender(timeout_s=2, allow_private=True)  # the receiver is on 127.0.0.1
    yield sender
    sender.close()


@pytest.fixture
def juana(uow: UnitOfWork, company: Company, clock: FrozenClock) -> Customer:
    customer = add_customer(uow, company, "12.345.678-5", "Juana Pérez", clock)
    add_debt(uow, company, customer, "B-1", "1000", date(2026, 1, 10), clock)
    add_debt(uow, company, customer, "B-2", "2000", date(2026, 2, 10), clock)
    return customer


def endpoint(uow: UnitOfWork, company: Company, url: str, admin: Actor, clock: FrozenClock):  # type: ignore[no-untyped-def]
    return webhooks.create_endpoint(
        uow, company.id, url, actor=admin, clock=clock, allow_private=True
    )


def pay(
    uow: UnitOfWork,
    company: Company,
    customer: Customer,
    amount: str,
    key: str,
    admin: Actor,
    clock: FrozenClock,
    **kw: Any,
):  # type: ignore[no-untyped-def]
    cmd = ApplyPayment(company.id, customer.id, amount, PaymentMethod.CASH, key, **kw)
    return apply_payment(uow, cmd, actor=admin, clock=clock)


def deliveries(uow: UnitOfWork, company: Company) -> list[webhooks.DeliveryView]:
    with uow:
        return webhooks.list_deliveries(uow, company.id).items


def delivery(uow: UnitOfWork, company: Company, delivery_id: int) -> webhooks.DeliveryView:
    with uow:
        return webhooks.get_delivery(uow, company.id, delivery_id)


def test_payment_applied_is_delivered_signed(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    created = endpoint(uow, company, f"{receiver.url}/hooks", admin, clock)
    assert created.secret.startswith("whsec_") and len(created.secret) == 49
    applied = pay(uow, company, juana, "3500", "caja-1", admin, clock, channel="bancoestado")
    [pending] = deliveries(uow, company)
    assert (pending.status, pending.attempts, pending.event_type) == (
        DeliveryStatus.PENDING,
        0,
        "payment.applied",
    )
    assert receiver.posts == []  # nothing is sent inside the payment's transaction

    assert webhooks.deliver_due(uow, sender, clock) == 1

    [request] = receiver.posts
    assert request.path == "/hooks"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Recaudo-Event"] == "payment.applied"
    assert request.headers["Recaudo-Delivery"] == str(pending.id)
    document = json.loads(request.body)
    assert document == {
        "id": pending.event_id,
        "type": "payment.applied",
        "created_at": document["created_at"],
        "data": {
            "payment_id": applied.payment.id,
            "company": "acme",
            "customer": {
                "id_type": "RUT",
                "national_id": "123456785",
                "national_id_formatted": "12.345.678-5",
                "name": "Juana Pérez",
            },
            "amount": "3500",
            "currency": "CLP",
            "channel": "bancoestado",
            "method": "cash",
            "external_id": "caja-1",
            "status": "applied",
            "paid_at": applied.payment.paid_at.isoformat(),
            "allocations": [
                {"debt_id": "B-1", "amount": "1000"},
                {"debt_id": "B-2", "amount": "2000"},
            ],
            "credit": "500",
            "exception_reason": None,
            "reversal_reason": None,
        },
    }
    header = request.headers["Recaudo-Signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(timestamp - clock.now.timestamp()) < 2
    assert header == sign(created.secret, timestamp, request.body)
    assert verify_signature(created.secret, header, request.body, now=timestamp + 10)
    assert not verify_signature("whsec_wrong", header, request.body, now=timestamp)
    assert not verify_signature(created.secret, header, request.body + b" ", now=timestamp)
    altered = request.body.replace(b'"3500"', b'"9500"')
    assert not verify_signature(created.secret, header, altered, now=timestamp)
    assert not verify_signature(created.secret, header, request.body, 300, now=timestamp + 301)
    assert not verify_signature(created.secret, "v1=abc", request.body, now=timestamp)

    done = delivery(uow, company, pending.id)
    assert (done.status, done.attempts, done.last_status_code, done.next_attempt_at) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
        None,
    )
    assert [(a.status_code, a.error) for a in done.attempt_log] == [(200, None)]
    # Delivered means delivered: later passes send nothing again.
    clock.advance(days=1)
    assert webhooks.deliver_due(uow, sender, clock) == 0
    assert len(receiver.posts) == 1


def test_retries_with_exponential_backoff(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    receiver.fail_next = 3
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    [d] = deliveries(uow, company)

    waits = []
    for expected_wait in (10, 20, 40):
        assert webhooks.deliver_due(uow, sender, clock) == 1
        state = delivery(uow, company, d.id)
        assert state.status == DeliveryStatus.PENDING
        assert state.next_attempt_at is not None
        waits.append(round((state.next_attempt_at - clock.now).total_seconds()))
        # Not due yet: nothing is sent.
        clock.advance(seconds=expected_wait - 1)
        assert webhooks.deliver_due(uow, sender, clock) == 0
        clock.advance(seconds=1)
    assert waits == [10, 20, 40]
    assert webhooks.deliver_due(uow, sender, clock) == 1
    done = delivery(uow, company, d.id)
    assert (done.status, done.attempts) == (DeliveryStatus.DELIVERED, 4)
    assert [(a.status_code, a.error) for a in done.attempt_log] == [
        (500, "HTTP 500"),
        (500, "HTTP 500"),
        (500, "HTTP 500"),
        (200, None),
    ]
    bodies = {r.body for r in receiver.posts}
    assert len(receiver.posts) == 4 and len(bodies) == 1  # the same event every time


def test_backoff_schedule_is_capped() -> None:
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 4, 11, 12, 15, 60)] == [
        10,
        20,
        40,
        80,
        10240,
        20480,
        21600,
        21600,
    ]


def test_gives_up_after_max_attempts_and_replay_rearms(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    receiver.fail_next = 3
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    [d] = deliveries(uow, company)
    for _ in range(3):
        assert webhooks.deliver_due(uow, sender, clock, max_attempts=3) == 1
        clock.advance(hours=7)
    failed = delivery(uow, company, d.id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        None,
    )
    assert webhooks.deliver_due(uow, sender, clock, max_attempts=3) == 0
    with uow:
        assert [
            x.id
            for x in webhooks.list_deliveries(uow, company.id, status=DeliveryStatus.FAILED).items
        ] == [d.id]

    operator = Actor("test:operator", Role.OPERATOR, company.id)
    replayed = webhooks.replay_delivery(uow, company.id, d.id, actor=operator, clock=clock)
    assert (replayed.status, replayed.attempts) == (DeliveryStatus.PENDING, 0)
    assert webhooks.deliver_due(uow, sender, clock, max_attempts=3) == 1
    done = delivery(uow, company, d.id)
    assert (done.status, done.attempts, len(done.attempt_log)) == (DeliveryStatus.DELIVERED, 1, 4)
    with uow:
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("webhook%"))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["webhook_endpoint.created", "webhook_delivery.replayed"]


def test_replay_of_a_delivered_delivery_sends_it_again(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    created = endpoint(uow, company, receiver.url, admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    assert webhooks.deliver_due(uow, sender, clock) == 1
    [d] = deliveries(uow, company)
    webhooks.replay_delivery(uow, company.id, d.id, actor=admin, clock=clock)
    assert webhooks.deliver_due(uow, sender, clock) == 1
    assert webhooks.deliver_due(uow, sender, clock) == 0
    first, second = receiver.posts
    assert first.body == second.body
    assert first.headers["Recaudo-Delivery"] == second.headers["Recaudo-Delivery"] == str(d.id)
    assert verify_signature(
        created.secret, second.headers["Recaudo-Signature"], second.body, now=clock.now.timestamp()
    )
    assert delivery(uow, company, d.id).status == DeliveryStatus.DELIVERED


def test_replay_needs_a_writer_and_the_company(
    uow, company, company_es, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    [d] = deliveries(uow, company)
    auditor = Actor("test:auditor", Role.AUDITOR, company.id)
    with pytest.raises(PermissionDenied):
        webhooks.replay_delivery(uow, company.id, d.id, actor=auditor, clock=clock)
    other = Actor("test:other", Role.ADMIN, company_es.id)
    with pytest.raises(NotFound, match=f"no webhook delivery {d.id}"):
        webhooks.replay_delivery(uow, company_es.id, d.id, actor=other, clock=clock)
    with pytest.raises(NotFound):
        webhooks.replay_delivery(uow, None, d.id, actor=other, clock=clock)


def test_a_down_receiver_delays_nothing(uow, company, juana, admin, clock, sender) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, closed_port_url(), admin, clock)
    started = time.monotonic()
    applied = pay(uow, company, juana, "1000", "caja-1", admin, clock)
    assert time.monotonic() - started < 2
    with uow:
        assert uow.session.get(Payment, applied.payment.id) is not None
    [d] = deliveries(uow, company)
    assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 0)
    assert webhooks.deliver_due(uow, sender, clock) == 1
    after = delivery(uow, company, d.id)
    assert (after.status, after.attempts, after.last_status_code, after.last_error) == (
        DeliveryStatus.PENDING,
        1,
        None,
        "connection error: ConnectError",
    )


def test_a_slow_receiver_times_out_and_is_retried(
    uow, company, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    receiver.delay_s = 1.0
    sender = HttpSender(timeout_s=0.2, allow_private=True)
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
    finally:
        sender.close()
    [d] = deliveries(uow, company)
    assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.PENDING, 1, "timeout")


def test_event_rolls_back_with_the_payment(
    uow, company, juana, admin, clock, receiver, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    real_add_event = outbox.add_event

    def add_then_fail(*args: Any, **kwargs: Any) -> OutboxEvent:
        real_add_event(*args, **kwargs)
        raise RuntimeError("crash after the event was written")

    monkeypatch.setattr(outbox, "add_event", add_then_fail)
    with pytest.raises(RuntimeError, match="crash after the event"):
        pay(uow, company, juana, "1000", "caja-1", admin, clock)
    with uow:
        counts = [
            uow.session.scalar(select(func.count()).select_from(t))
            for t in (Payment, OutboxEvent, WebhookDelivery)
        ]
    assert counts == [0, 0, 0]


def test_reversal_is_an_event_too(uow, company, juana, admin, clock, receiver, sender) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    applied = pay(uow, company, juana, "1000", "caja-1", admin, clock)
    reverse_payment(
        uow, company.id, applied.payment.id, "cheque sin fondos", actor=admin, clock=clock
    )
    assert webhooks.deliver_due(uow, sender, clock) == 2
    assert [r.headers["Recaudo-Event"] for r in receiver.posts] == [
        "payment.applied",
        "payment.reversed",
    ]
    data = json.loads(receiver.posts[1].body)["data"]
    assert (data["payment_id"], data["status"], data["reversal_reason"], data["allocations"]) == (
        applied.payment.id,
        "reversed",
        "cheque sin fondos",
        [{"debt_id": "B-1", "amount": "1000"}],
    )
    with uow:
        page = webhooks.list_deliveries(uow, company.id, event_type="payment.reversed")
    assert [x.event_type for x in page.items] == ["payment.reversed"]


def test_every_enabled_endpoint_gets_one_delivery(
    uow, company, company_es, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    first = endpoint(uow, company, f"{receiver.url}/a", admin, clock)
    second = endpoint(uow, company, f"{receiver.url}/b", admin, clock)
    endpoint(uow, company_es, f"{receiver.url}/other", admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    disabled = webhooks.disable_endpoint(
        uow, company.id, second.endpoint.id, actor=admin, clock=clock
    )
    assert disabled.enabled is False
    pay(uow, company, juana, "1000", "caja-2", admin, clock)
    assert webhooks.deliver_due(uow, sender, clock) == 2
    assert sorted(r.path for r in receiver.posts) == ["/a", "/a"]
    # The disabled endpoint keeps its undelivered delivery; it is not sent, not replayable.
    pending = [d for d in deliveries(uow, company) if d.status == DeliveryStatus.PENDING]
    assert [(d.endpoint_id, d.attempts) for d in pending] == [(second.endpoint.id, 0)]
    with pytest.raises(Conflict, match=f"webhook endpoint {second.endpoint.id} is disabled"):
        webhooks.replay_delivery(uow, company.id, pending[0].id, actor=admin, clock=clock)
    with uow:
        listed = webhooks.list_endpoints(uow, company.id)
    assert [(e.id, e.enabled) for e in listed] == [
        (first.endpoint.id, True),
        (second.endpoint.id, False),
    ]


def test_exception_payments_send_no_event(uow, company, juana, admin, clock, receiver) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    with uow:
        debt = uow.session.scalar(select(Debt).where(Debt.external_id == "B-1"))
        debt.status = "cancelled"
        uow.commit()
    pay(uow, company, juana, "1000", "bank-1", admin, clock, debts=("B-1",), strict=False)
    assert deliveries(uow, company) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "a webhook URL must be http:// or https:// with a host"),
        ("https://", "a webhook URL must be http:// or https:// with a host"),
        ("", "a webhook URL has 1 to 500 characters"),
        ("https://user:pw@example.com/", "a webhook URL may not carry credentials"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com/a b", "not a valid URL"),
    ],
)
def test_endpoint_url_is_validated(uow, company, admin, clock, url, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as info:
        webhooks.create_endpoint(uow, company.id, url, actor=admin, clock=clock)
    assert info.value.message == message


def test_endpoints_are_managed_by_admins_only(uow, company, clock) -> None:  # type: ignore[no-untyped-def]
    operator = Actor("test:operator", Role.OPERATOR, company.id)
    with pytest.raises(PermissionDenied):
        webhooks.create_endpoint(
            uow, company.id, "https://example.com/", actor=operator, clock=clock
        )
    other = Actor("test:other", Role.ADMIN, company.id + 1)
    with pytest.raises(NotFound):
        webhooks.create_endpoint(uow, company.id, "https://example.com/", actor=other, clock=clock)


@pytest.mark.postgres_only
def test_concurrent_workers_never_send_one_delivery_twice(
    engine: Engine, uow, company, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    for n in range(30):
        pay(uow, company, juana, "10", f"caja-{n}", admin, clock)
    receiver.delay_s = 0.02
    tried: list[int] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        sender = HttpSender(timeout_s=5, allow_private=True)
        barrier.wait()
        try:
            tried.append(webhooks.deliver_due(UnitOfWork(engine), sender, clock))
        finally:
            sender.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [r.headers["Recaudo-Delivery"] for r in receiver.posts]
    assert sum(tried) == 30
    assert len(ids) == 30 and len(set(ids)) == 30
    assert min(tried) > 0  # the work was really shared
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 30
        statuses = uow.session.scalars(select(WebhookDelivery.status).distinct()).all()
    assert statuses == ["delivered"]


def test_in_flight_attempt_does_not_override_a_replay(
    uow, company, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    [d] = deliveries(uow, company)

    class ReplayingSender:
        def send(self, url: str, secret: str, **kw: Any) -> webhooks.SendResult:
            webhooks.replay_delivery(
                UnitOfWork(uow.engine), company.id, d.id, actor=admin, clock=clock
            )
            return webhooks.SendResult(500, "HTTP 500", 3)

    assert webhooks.deliver_due(uow, ReplayingSender(), clock, limit=1) == 1
    after = delivery(uow, company, d.id)
    assert (after.status, after.attempts, after.last_status_code) == (
        DeliveryStatus.PENDING,
        0,
        None,
    )
    assert after.next_attempt_at is not None and after.next_attempt_at <= clock.now
    assert [a.status_code for a in after.attempt_log] == [500]


def test_claim_lease_keeps_a_delivery_from_a_second_worker(
    uow, company, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)
    pay(uow, company, juana, "1000", "caja-1", admin, clock)
    seen: list[int] = []

    class NestedSender:
        def send(self, url: str, secret: str, **kw: Any) -> webhooks.SendResult:
            # While this attempt is in flight another worker finds nothing due.
            seen.append(webhooks.deliver_due(UnitOfWork(uow.engine), self, clock))
            return webhooks.SendResult(200, None, 1)

    assert webhooks.deliver_due(uow, NestedSender(), clock) == 1
    assert seen == [0]
    assert clock.now - deliveries(uow, company)[0].created_at < timedelta(seconds=1)


def test_event_carries_the_callers_exception_reason(
    uow, company, juana, admin, clock, receiver, sender
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)

    def mark(uow: UnitOfWork, settled: Settled) -> None:
        settled.payment.exception_reason = "amount_mismatch"

    cmd = ApplyPayment(company.id, juana.id, "1000", PaymentMethod.CASH, "bank-1", channel="bank")
    apply_payment(uow, cmd, actor=admin, clock=clock, before_commit=mark)
    assert webhooks.deliver_due(uow, sender, clock) == 1
    data = json.loads(receiver.posts[0].body)["data"]
    assert (data["status"], data["exception_reason"], data["allocations"]) == (
        "applied",
        "amount_mismatch",
        [{"debt_id": "B-1", "amount": "1000"}],
    )


def test_a_failing_before_commit_check_rolls_the_event_back(
    uow, company, juana, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    endpoint(uow, company, receiver.url, admin, clock)

    def refuse(uow: UnitOfWork, settled: Settled) -> None:
        raise Conflict("refused by the caller")

    cmd = ApplyPayment(company.id, juana.id, "1000", PaymentMethod.CASH, "bank-1", channel="bank")
    with pytest.raises(Conflict, match="refused by the caller"):
        apply_payment(uow, cmd, actor=admin, clock=clock, before_commit=refuse)
    with uow:
        counts = [
            uow.session.scalar(select(func.count()).select_from(t))
            for t in (Payment, OutboxEvent, WebhookDelivery)
        ]
    assert counts == [0, 0, 0]
