"""`recaudo webhooks ...` and `recaudo holidays ...` against real databases and receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import WebhookEndpoint
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import verify_signature
from recaudo.domain.payments import PaymentMethod
from recaudo.services.companies import company_by_slug
from recaudo.services.context import Actor
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_cli import one_line_error, run


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def acme(db_url: str) -> str:
    result = run(
        db_url, "company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "CL"
    )
    assert result.exit_code == 0, result.output
    return "acme"


def test_webhooks_commands(db_url: str, acme: str, receiver: Receiver) -> None:
    created = run(db_url, "webhooks", "create", "--company", acme, "--url", f"{receiver.url}/h")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    assert "store the signing secret now" in created.stderr

    listed = run(db_url, "webhooks", "list")
    assert listed.exit_code == 0
    assert f"{receiver.url}/h" in listed.stdout and "acme" in listed.stdout
    assert secret not in listed.output

    engine = make_engine(db_url)
    uow, clock = UnitOfWork(engine), FrozenClock()
    try:
        with uow:
            company = company_by_slug(uow, acme)
            uow.commit()  # keeps the loaded attributes (expire_on_commit=False)
        customer = add_customer(uow, company, "12.345.678-5", "Ana Rojas", clock)
        add_debt(uow, company, customer, "F-1", "15000", date(2026, 3, 10), clock)
        apply_payment(
            uow,
            ApplyPayment(company.id, customer.id, "15000", PaymentMethod.CASH, "caja-1"),
            actor=Actor("test"),
            clock=clock,
        )
        with uow:
            endpoint_id = uow.session.scalar(select(WebhookEndpoint.id))
    finally:
        engine.dispose()

    pending = run(db_url, "webhooks", "deliveries", "--company", acme, "--status", "pending")
    assert pending.exit_code == 0
    assert "payment.applied" in pending.stdout and "pending" in pending.stdout

    sent = run(db_url, "webhooks", "deliver", "--once")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.strip() == "1 deliveries tried."
    [request] = receiver.posts
    assert verify_signature(secret, request.headers["Recaudo-Signature"], request.body)
    assert json.loads(request.body)["data"]["allocations"] == [
        {"debt_id": "F-1", "amount": "15000"}
    ]
    assert run(db_url, "webhooks", "deliver", "--once").stdout.strip() == "0 deliveries tried."

    delivered = run(db_url, "webhooks", "deliveries", "--company", acme)
    assert "delivered" in delivered.stdout and "200" in delivered.stdout
    none_failed = run(db_url, "webhooks", "deliveries", "--company", acme, "--status", "failed")
    assert none_failed.stdout.strip() == "No webhook deliveries."

    delivery_id = request.headers["Recaudo-Delivery"]
    replayed = run(db_url, "webhooks", "replay", delivery_id)
    assert replayed.exit_code == 0
    assert replayed.stdout.strip() == f"Delivery {delivery_id} (payment.applied) is pending again."
    assert run(db_url, "webhooks", "deliver", "--once").stdout.strip() == "1 deliveries tried."
    assert len(receiver.posts) == 2

    missing = run(db_url, "webhooks", "replay", "999")
    assert missing.exit_code == 1
    assert one_line_error(missing) == "Error: no webhook delivery 999"
    assert endpoint_id is not None


def test_webhooks_create_refuses_a_bad_url(db_url: str, acme: str) -> None:
    result = run(db_url, "webhooks", "create", "--company", acme, "--url", "ftp://x/")
    assert result.exit_code == 2
    assert one_line_error(result) == (
        "Error: a webhook URL must be http:// or https:// with a host"
    )
    assert result.stdout == ""


def test_holidays_commands(db_url: str, acme: str) -> None:
    added = run(db_url, "holidays", "add", "--company", acme, "2026-06-29", "Aniversario")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "2026-06-29 (Aniversario) is now a holiday of acme."
    again = run(db_url, "holidays", "add", "--company", acme, "2026-06-29", "Otra vez")
    assert again.exit_code == 1
    assert one_line_error(again) == "Error: 2026-06-29 is already a holiday of this company"

    listed = run(db_url, "holidays", "list", "--company", acme, "--year", "2026")
    assert listed.exit_code == 0
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert any(line[1:3] == ["2026-06-29", "│"] or "2026-06-29" in line for line in lines)
    assert "Aniversario" in listed.stdout and "company" in listed.stdout
    assert "2026-09-18" in listed.stdout and "national" in listed.stdout  # Fiestas Patrias

    removed = run(db_url, "holidays", "remove", "--company", acme, "2026-06-29")
    assert removed.exit_code == 0
    assert removed.stdout.strip() == "2026-06-29 is no longer a holiday of acme."
    assert (
        "Aniversario"
        not in run(db_url, "holidays", "list", "--company", acme, "--year", "2026").stdout
    )
    gone = run(db_url, "holidays", "remove", "--company", acme, "2026-06-29")
    assert gone.exit_code == 1
    assert one_line_error(gone) == "Error: 2026-06-29 is not a holiday of this company"
    bad = run(db_url, "holidays", "add", "--company", acme, "29-06-2026", "X")
    assert bad.exit_code == 2
