"""The bank notification's short way writes exactly what the general path writes.

`OnlineChannel.notify` applies the bank's normal payment (the quote paid as offered) in
one raw-driver transaction; anything else goes to `notify_payment`. Two customers with
identical debts pay identical quotes, one each way; every row the payment left behind
(payment, allocations, debts, audit trail, outbox event, webhook deliveries) must be the
same once each customer's identifiers are replaced by placeholders. On both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, NoReturn

import pytest
from sqlalchemy import select

from recaudo.adapters.db.channel_store import PostgresChannelStore
from recaudo.adapters.db.tables import (
    Allocation,
    AuditEvent,
    Company,
    Customer,
    Debt,
    OutboxEvent,
    Payment,
    WebhookDelivery,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids
from recaudo.domain.payments import PaymentMethod
from recaudo.services import collections_online as online
from recaudo.services.agreements import create_agreement
from recaudo.services.context import Actor
from recaudo.services.payments import ApplyPayment, apply_payment, request_fingerprint
from recaudo.services.webhooks import create_endpoint
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

ANA, BETO = "12.345.678-5", "7.654.321-6"


@pytest.fixture
def channel(uow: UnitOfWork, clock: FrozenClock) -> Iterator[online.OnlineChannel]:
    loop = asyncio.new_event_loop()
    channel = online.OnlineChannel(uow.engine, clock)
    channel.loop = loop  # type: ignore[attr-defined]
    yield channel
    loop.run_until_complete(channel.close())
    loop.close()


def run(channel: online.OnlineChannel, work: Any) -> Any:
    return channel.loop.run_until_complete(work)  # type: ignore[attr-defined]


@pytest.fixture
def caller(uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock) -> online.Caller:
    create_agreement(uow, "acme", "caja-vecina", "9", actor=admin, clock=clock)
    create_endpoint(
        uow, company.id, "https://hooks.example.com/a", actor=admin, clock=clock,
        allow_private=True,
    )  # fmt: skip
    create_endpoint(
        uow, company.id, "https://hooks.example.com/b", actor=admin, clock=clock,
        allow_private=True,
    )  # fmt: skip
    with uow:
        lookup = online.find_agreement(uow, "acme", "caja-vecina", None)
    assert lookup.caller is not None
    return lookup.caller


def twin(uow: UnitOfWork, company: Company, rut: str, tag: str, clock: FrozenClock) -> Customer:
    """A customer with two debts, the first half paid at the office, the second `in_payment`."""
    customer = add_customer(uow, company, rut, f"Cliente {tag}", clock)
    first = add_debt(uow, company, customer, f"{tag}-1", "1000", date(2026, 1, 10), clock)
    add_debt(uow, company, customer, f"{tag}-2", "700", date(2026, 2, 10), clock)
    with uow:
        uow.session.get(Debt, first.id)
        debt = uow.session.scalar(select(Debt).where(Debt.external_id == f"{tag}-2"))
        assert debt is not None
        debt.status = "in_payment"
        uow.commit()
    apply_payment(
        uow,
        ApplyPayment(company.id, customer.id, "400", PaymentMethod.CASH, f"office-{tag}",
                     debts=(f"{tag}-1",)),
        actor=Actor("test:office"),
        clock=clock,
    )  # fmt: skip
    return customer


def note(quoted: online.Quoted, rut: str) -> online.Notification:
    return online.Notification(
        quoted.transaction_id,
        rut,
        datetime(2026, 3, 2, 10, 15),
        str(quoted.total),
        tuple(d.debt_id for d in quoted.debts),
    )


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("the general path was used")


def rows_of(uow: UnitOfWork, customer: Customer) -> dict[str, Any]:
    """Everything the customer's bank payment wrote, with its identifiers replaced."""
    with uow:
        payment = uow.session.scalar(
            select(Payment).where(
                Payment.customer_id == customer.id, Payment.channel == "bancoestado"
            )
        )
        assert payment is not None
        debts = {
            d.id: d
            for d in uow.session.scalars(select(Debt).where(Debt.customer_id == customer.id))
        }
        tag = next(iter(debts.values())).external_id.split("-")[0]

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {plain(k): plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            if value == payment.id or value == str(payment.id):
                return "<payment>"
            if isinstance(value, str):
                for text, placeholder in (
                    (payment.external_id, "<transaction>"),
                    (ids.format_national_id(ids.IdType.RUT, customer.national_id), "<rut>"),
                    (customer.national_id, "<rut>"),
                    (customer.name, "<name>"),
                    (f"{tag}-", "<debt>-"),
                ):
                    value = value.replace(text, placeholder)
            return value

        by_debt = {str(i): f"<debt {d.external_id[-1]}>" for i, d in debts.items()}
        audit = [
            (
                a.action,
                a.entity_type,
                by_debt[a.entity_id] if a.entity_type == "debt" else plain(a.entity_id),
                a.actor,
                plain(a.before),
                plain(a.after),
            )
            for a in uow.session.scalars(
                select(AuditEvent)
                .where(
                    (AuditEvent.entity_id == str(payment.id))
                    & (AuditEvent.entity_type == "payment")
                    | AuditEvent.entity_id.in_([str(i) for i in debts])
                    & (AuditEvent.entity_type == "debt")
                    & (AuditEvent.occurred_at >= payment.created_at)
                )
                .order_by(AuditEvent.id)
            )
        ]
        events = uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.id.in_(
                select(WebhookDelivery.event_id)
            )).order_by(OutboxEvent.id)
        ).all()  # fmt: skip
        mine = [e for e in events if e.payload.get("payment_id") == payment.id]
        assert len(mine) == 1
        deliveries = uow.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == mine[0].id)
            .order_by(WebhookDelivery.id)
        ).all()  # fmt: skip
        allocations = uow.session.scalars(
            select(Allocation).where(Allocation.payment_id == payment.id).order_by(Allocation.id)
        ).all()
        return {
            "payment": (
                payment.channel,
                payment.method,
                payment.amount_minor,
                payment.currency,
                payment.paid_at,
                payment.status,
                payment.exception_reason,
                payment.recorded_by,
                payment.agreement_id,
                payment.accounting_date,
                payment.reversal_reason,
                payment.reversed_at,
                payment.request_fingerprint
                == request_fingerprint(
                    customer.id,
                    payment.amount_minor,
                    PaymentMethod(payment.method),
                    tuple(sorted(d.external_id for d in debts.values())),
                ),
            ),
            "allocations": [(by_debt[str(a.debt_id)], a.amount_minor) for a in allocations],
            "debts": sorted((by_debt[str(i)], d.status) for i, d in debts.items()),
            "audit": audit,
            "event": (mine[0].event_type, plain(mine[0].payload)),
            "deliveries": [(d.endpoint_id, d.status, d.attempts) for d in deliveries],
        }


def test_short_way_writes_what_the_general_path_writes(
    uow: UnitOfWork,
    company: Company,
    caller: online.Caller,
    channel: online.OnlineChannel,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ana = twin(uow, company, ANA, "A", clock)
    beto = twin(uow, company, BETO, "B", clock)
    quote_a = run(channel, channel.quote(caller, ANA))
    quote_b = run(channel, channel.quote(caller, BETO))
    assert (quote_a.total, quote_b.total) == (1300, 1300)  # 600 left on the first, 700

    with monkeypatch.context() as patched:
        patched.setattr(online, "notify_payment", _refuse)
        run(channel, channel.notify(caller, note(quote_a, ANA)))
    online.notify_payment(uow, caller, note(quote_b, BETO), clock=clock)

    short, general = rows_of(uow, ana), rows_of(uow, beto)
    assert short["audit"] == general["audit"]
    assert short == general
    assert short["allocations"] == [("<debt 1>", 600), ("<debt 2>", 700)]
    assert short["debts"] == [("<debt 1>", "paid"), ("<debt 2>", "paid")]
    assert [a[0] for a in short["audit"]] == [
        "debt.status_changed", "debt.status_changed", "payment.applied",
    ]  # fmt: skip
    assert short["payment"][5:7] == ("applied", None) and short["payment"][-1] is True
    assert short["event"][1]["allocations"] == [
        {"debt_id": "<debt>-1", "amount": "600"}, {"debt_id": "<debt>-2", "amount": "700"},
    ]  # fmt: skip
    assert len(short["deliveries"]) == 2


Change = Callable[[UnitOfWork, Company, Customer, FrozenClock], None]


def _pay_one_debt_meanwhile(
    uow: UnitOfWork, company: Company, customer: Customer, clock: FrozenClock
) -> None:
    apply_payment(
        uow,
        ApplyPayment(company.id, customer.id, "700", PaymentMethod.CASH, "office-late",
                     debts=("A-2",)),
        actor=Actor("test:office"),
        clock=clock,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "total", "reason"),
    [
        (None, "1200", "amount_mismatch"),  # paid less than quoted
        (_pay_one_debt_meanwhile, None, "debts_not_payable"),  # a debt was paid meanwhile
    ],
)
def test_anything_else_takes_the_general_path(
    uow: UnitOfWork,
    company: Company,
    caller: online.Caller,
    channel: online.OnlineChannel,
    clock: FrozenClock,
    change: Change | None,
    total: str | None,
    reason: str,
) -> None:
    ana = twin(uow, company, ANA, "A", clock)
    quoted = run(channel, channel.quote(caller, ANA))
    if change is not None:
        change(uow, company, ana, clock)
    paid = note(quoted, ANA)
    if total is not None:
        paid = online.Notification(paid.transaction_id, ANA, paid.paid_at_local, total, paid.debts)
    run(channel, channel.notify(caller, paid))
    run(channel, channel.notify(caller, paid))  # the bank's retry: replayed, nothing added
    with uow:
        payments = uow.session.execute(
            select(Payment.status, Payment.exception_reason).where(
                Payment.external_id == quoted.transaction_id
            )
        ).all()
    assert [tuple(p) for p in payments] == [("applied", reason)]  # money applied, flagged


@pytest.mark.postgres_only
def test_payments_wait_for_the_wal_flush_even_where_quotes_do_not(
    uow: UnitOfWork,
    company: Company,
    caller: online.Caller,
    channel: online.OnlineChannel,
    clock: FrozenClock,
) -> None:
    """The channel's pool commits quote batches without waiting for the WAL flush; a
    payment's transaction turns that back on for itself (the store refuses to commit a
    payment otherwise, so applying one proves it)."""
    twin(uow, company, ANA, "A", clock)
    quoted = run(channel, channel.quote(caller, ANA))
    store = channel.store
    assert isinstance(store, PostgresChannelStore)
    pool = run(channel, store._get_pool())

    async def setting() -> str:
        async with pool.acquire() as conn:
            return str(await conn.fetchval("SHOW synchronous_commit"))

    assert run(channel, setting()) == "off"
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(online, "notify_payment", _refuse)
        run(channel, channel.notify(caller, note(quoted, ANA)))
    with uow:
        statuses = uow.session.scalars(
            select(Payment.status).where(Payment.external_id == quoted.transaction_id)
        ).all()
    assert statuses == ["applied"]
