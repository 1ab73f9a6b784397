"""The in-process job runner sends webhook deliveries in the background and stops cleanly."""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import Engine

from recaudo.adapters.db.tables import Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import verify_signature
from recaudo.bootstrap import Container
from recaudo.config import Settings
from recaudo.domain.payments import PaymentMethod
from recaudo.jobs import Runner
from recaudo.services import webhooks
from recaudo.services.context import Actor
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import running_receiver


def wait_for(condition, timeout_s: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_runner_delivers_in_the_background(
    engine: Engine, db_url: str, uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    container = Container(
        # The receiver is on 127.0.0.1: the runner's sender must be let reach loopback.
        settings=Settings(
            database_url=db_url, webhook_max_attempts=2, webhook_allow_private_targets=True
        ),
        engine=engine,
        clock=clock,
    )
    with running_receiver() as receiver:
        created = webhooks.create_endpoint(
            uow, company.id, receiver.url, actor=admin, clock=clock, allow_private=True
        )
        customer = add_customer(uow, company, "12.345.678-5", "Juana Pérez", clock)
        add_debt(uow, company, customer, "B-1", "1000", date(2026, 1, 10), clock)
        runner = Runner(container, interval_s=0.05)
        runner.start()
        try:
            assert runner.running
            for n in range(3):
                cmd = ApplyPayment(company.id, customer.id, "100", PaymentMethod.CASH, f"c-{n}")
                apply_payment(uow, cmd, actor=admin, clock=clock)
            assert wait_for(lambda: len(receiver.posts) == 3)
        finally:
            runner.stop()
        assert not runner.running
        for request in receiver.posts:
            header = request.headers["Recaudo-Signature"]
            assert verify_signature(created.secret, header, request.body, now=clock.now.timestamp())
        # Stopped: a new payment is not sent any more.
        cmd = ApplyPayment(company.id, customer.id, "100", PaymentMethod.CASH, "c-late")
        apply_payment(uow, cmd, actor=admin, clock=clock)
        time.sleep(0.2)
        assert len(receiver.posts) == 3
        # The runner's give-up threshold comes from the settings (here 2 attempts).
        receiver.fail_next = 10
        again = Runner(container)
        try:
            assert again.run_once() == 1
            clock.advance(minutes=1)
            assert again.run_once() == 1
        finally:
            again.stop()
        with uow:
            statuses = sorted(
                d.status.value for d in webhooks.list_deliveries(uow, company.id).items
            )
        assert statuses == ["delivered", "delivered", "delivered", "failed"]


def test_runner_survives_a_failing_pass(engine: Engine, db_url: str, clock: FrozenClock) -> None:
    calls: list[int] = []

    class Exploding:
        def send(self, *args: object, **kwargs: object) -> webhooks.SendResult:
            raise AssertionError("never called: nothing is due")

    container = Container(settings=Settings(database_url=db_url), engine=engine, clock=clock)
    runner = Runner(container, interval_s=0.01, sender=Exploding())
    real = runner.run_once

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real()

    runner.run_once = flaky  # type: ignore[method-assign]
    runner.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
    finally:
        runner.stop()
    assert not runner.running


def test_checkpoint_job_copies_the_log_into_the_database(
    engine: Engine, db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock
) -> None:
    from recaudo.jobs.checkpoint import checkpoint

    container = Container(Settings(database_url=db_url), engine, clock=clock)
    customer = add_customer(uow, company, "12.345.678-5", "Ana Rojas", clock)
    add_debt(uow, company, customer, "F-1", "1000", date(2026, 1, 10), clock)
    copied = checkpoint(container)
    if engine.dialect.name != "sqlite":
        assert copied == 0
        return
    assert copied > 0
    with engine.connect() as conn:  # nothing left to copy: the log was fully checkpointed
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert (busy, log == done, autocheckpoint) == (0, True, 10_000)
