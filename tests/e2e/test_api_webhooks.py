"""Webhook endpoints and deliveries through the real HTTP server, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender, verify_signature
from recaudo.services import webhooks
from tests.e2e.conftest import TIMESTAMP, Api, assert_problem
from tests.integration.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def deliver(api: Api) -> int:
    sender = HttpSender(timeout_s=5, allow_private=True)  # the receiver is on 127.0.0.1
    try:
        return webhooks.deliver_due(UnitOfWork(api.container.engine), sender, api.clock)
    finally:
        sender.close()


def office_payment(api: Api, key: str = "caja-1") -> int:
    juan = api.customer(api.acme, "12.345.678-5", "Juan Pérez")
    api.debt(api.acme, juan, "B-1", "5000", date(2026, 1, 5))
    paid = api.client("acme_operator").post(
        "/payments",
        json={"customer_id": juan.id, "amount": "5000", "method": "cash"},
        headers={"Idempotency-Key": key},
    )
    assert paid.status_code == 201, paid.text
    payment_id: int = paid.json()["id"]
    return payment_id


def test_endpoint_lifecycle_and_signed_delivery(api: Api, receiver: Receiver) -> None:
    admin = api.client("acme_admin")
    created = admin.post("/webhooks", json={"url": f"{receiver.url}/recaudo"})
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_")
    endpoint_id = body["id"]
    assert body == {
        "id": endpoint_id,
        "url": f"{receiver.url}/recaudo",
        "enabled": True,
        "created_at": TIMESTAMP,
    }
    listed = admin.get("/webhooks")
    assert listed.status_code == 200
    assert listed.json() == [body]  # the secret is never answered again
    assert secret not in listed.text

    payment_id = office_payment(api)
    page = api.client("acme_auditor").get("/webhook-deliveries")
    assert page.status_code == 200
    [item] = page.json()["items"]
    assert item == {
        "id": item["id"],
        "event_id": item["event_id"],
        "event_type": "payment.applied",
        "endpoint_id": endpoint_id,
        "url": f"{receiver.url}/recaudo",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": TIMESTAMP,
        "last_status_code": None,
        "last_error": None,
        "delivered_at": None,
        "created_at": TIMESTAMP,
    }
    assert deliver(api) == 1
    [request] = receiver.posts
    header = request.headers["Recaudo-Signature"]
    assert verify_signature(secret, header, request.body, now=api.clock.now.timestamp())
    assert json.loads(request.body)["data"]["payment_id"] == payment_id

    detail = api.client("acme_auditor").get(f"/webhook-deliveries/{item['id']}")
    assert detail.status_code == 200
    got = detail.json()
    assert (got["status"], got["attempts"], got["last_status_code"]) == ("delivered", 1, 200)
    assert got["attempt_log"] == [
        {
            "id": got["attempt_log"][0]["id"],
            "attempted_at": TIMESTAMP,
            "status_code": 200,
            "error": None,
            "duration_ms": got["attempt_log"][0]["duration_ms"],
        }
    ]
    filtered = admin.get("/webhook-deliveries", params={"status": "pending"})
    assert filtered.json()["total"] == 0
    by_type = admin.get("/webhook-deliveries", params={"event_type": "payment.reversed"})
    assert by_type.json()["items"] == []

    replayed = api.client("acme_operator").post(f"/webhook-deliveries/{item['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)
    assert len(replayed.json()["attempt_log"]) == 1
    assert deliver(api) == 1
    assert len(receiver.posts) == 2

    disabled = admin.delete(f"/webhooks/{endpoint_id}")
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert admin.get("/webhooks").json()[0]["enabled"] is False
    assert_problem(
        api.client("acme_operator").post(f"/webhook-deliveries/{item['id']}/replay"),
        409,
        "conflict",
        f"webhook endpoint {endpoint_id} is disabled",
    )


def test_roles(api: Api) -> None:
    url = {"url": "https://billing.example.cl/hooks"}
    assert_problem(
        api.client("acme_operator").post("/webhooks", json=url),
        403,
        "permission_denied",
        "role operator may not do this (needs admin)",
    )
    assert_problem(
        api.client("acme_auditor").post("/webhooks", json=url),
        403,
        "permission_denied",
    )
    endpoint_id = api.client("acme_admin").post("/webhooks", json=url).json()["id"]
    assert_problem(
        api.client("acme_operator").delete(f"/webhooks/{endpoint_id}"),
        403,
        "permission_denied",
        "role operator may not do this (needs admin)",
    )
    assert api.client("acme_auditor").get("/webhooks").status_code == 200
    assert_problem(
        api.client("acme_auditor").post("/webhook-deliveries/1/replay"), 403, "permission_denied"
    )


def test_other_companies_see_nothing(api: Api, receiver: Receiver) -> None:
    endpoint_id = (
        api.client("acme_admin").post("/webhooks", json={"url": receiver.url}).json()["id"]
    )
    office_payment(api)
    delivery_id = api.client("acme_admin").get("/webhook-deliveries").json()["items"][0]["id"]
    beta = api.client("beta_admin")
    assert beta.get("/webhooks").json() == []
    assert beta.get("/webhook-deliveries").json()["total"] == 0
    assert_problem(
        beta.get(f"/webhook-deliveries/{delivery_id}"),
        404,
        "not_found",
        f"no webhook delivery {delivery_id}",
    )
    assert_problem(
        beta.post(f"/webhook-deliveries/{delivery_id}/replay"),
        404,
        "not_found",
        f"no webhook delivery {delivery_id}",
    )
    assert_problem(
        beta.delete(f"/webhooks/{endpoint_id}"),
        404,
        "not_found",
        f"no webhook endpoint {endpoint_id}",
    )
    assert api.client("acme_admin").get("/webhooks").json()[0]["enabled"] is True


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "ftp://example.com/"}, "validation_failed", "url"),
        ({"url": "https://user:pw@example.com/"}, "validation_failed", "url"),
        ({"url": ""}, "invalid_request", "url"),
        ({"url": "https://example.com/", "secret": "mine"}, "invalid_request", "secret"),
        ({}, "invalid_request", "url"),
    ],
)
def test_bad_endpoint_bodies_are_422(api: Api, body: dict[str, str], code: str, field: str) -> None:
    problem = assert_problem(api.client().post("/webhooks", json=body), 422, code)
    assert [e["field"] for e in problem["errors"]] == [field]


def test_bad_delivery_filters_are_422(api: Api) -> None:
    assert_problem(
        api.client().get("/webhook-deliveries", params={"status": "lost"}), 422, "invalid_request"
    )
