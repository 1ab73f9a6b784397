"""Office payments end to end: allocations to the peso and the cent, replay, reversal, audit."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from recaudo.adapters.db.tables import Customer
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, TIMESTAMP, Api, assert_problem


@pytest.fixture
def juan(api: Api) -> Customer:
    """Juan owes three debts in CLP; ids 1, 2, 3 in creation order."""
    customer = api.customer(api.acme, "12.345.678-5", "Juan Pérez")
    api.debt(api.acme, customer, "B-100", "10000", date(2026, 1, 10))
    api.debt(api.acme, customer, "B-101", "5000", date(2026, 1, 5))
    api.debt(api.acme, customer, "B-102", "7000", date(2026, 2, 5))
    return customer


def _payment(
    api: Api, customer: Customer, pid: int, key: str, amount: str, **over: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": pid,
        "customer_id": customer.id,
        "channel": "office",
        "method": "cash",
        "external_id": key,
        "amount": amount,
        "currency": "CLP",
        "paid_at": TIMESTAMP,
        "status": "applied",
        "allocated": amount,
        "credit": "0",
        "exception_reason": None,
        "reversal_reason": None,
        "reversed_at": None,
        "recorded_by": api.label("acme_admin"),
        "created_at": TIMESTAMP,
        "allocations": [],
        "agreement_id": None,
        "agreement_channel": None,
        "transaccion": None,
        "accounting_date": None,
    }
    body.update(over)
    return body


def _debts(client: httpx.Client) -> dict[str, tuple[str, str, str]]:
    items = client.get("/debts").json()["items"]
    return {d["debt_id"]: (d["status"], d["paid"], d["open_amount"]) for d in items}


def test_office_payment_end_to_end(api: Api, juan: Customer) -> None:
    client = api.client()
    body = {
        "customer_id": juan.id,
        "amount": "12000",
        "method": "cash",
        "idempotency_key": "caja-1",
        "paid_at": "2026-03-02T10:15:00-03:00",
    }
    created = client.post("/payments", json=body)
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers
    first = _payment(
        api,
        juan,
        1,
        "caja-1",
        "12000",
        paid_at="2026-03-02T13:15:00Z",
        allocations=[
            {"debt": 2, "debt_id": "B-101", "amount": "5000"},
            {"debt": 1, "debt_id": "B-100", "amount": "7000"},
        ],
    )
    assert created.json() == {**first, "replayed": False}
    assert client.get("/payments/1").json() == first
    assert _debts(client) == {
        "B-101": ("paid", "5000", "0"),
        "B-100": ("open", "7000", "3000"),
        "B-102": ("open", "0", "7000"),
    }

    # The same request again: the first answer, nothing applied twice.
    replay = client.post("/payments", json=body)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {**first, "replayed": True}
    assert client.get("/payments").json()["total"] == 1

    # The same key for another payment is refused, and names the payment it belongs to.
    reused = client.post("/payments", json={**body, "amount": "12001"})
    problem = assert_problem(
        reused, 409, "conflict", "transaction id 'caja-1' was already used for a different payment"
    )
    assert problem["payment_id"] == 1

    # Key in the header, customer by national id in another formatting, over-payment.
    second = client.post(
        "/payments",
        json={"national_id": "12345678-5", "amount": "15000", "method": "transfer"},
        headers={"Idempotency-Key": "caja-2"},
    )
    assert second.status_code == 201, second.text
    assert second.json() == {
        **_payment(
            api,
            juan,
            2,
            "caja-2",
            "15000",
            method="transfer",
            allocated="10000",
            credit="5000",
            allocations=[
                {"debt": 1, "debt_id": "B-100", "amount": "3000"},
                {"debt": 3, "debt_id": "B-102", "amount": "7000"},
            ],
        ),
        "replayed": False,
    }
    customer = client.get(f"/customers/{juan.id}").json()
    assert (customer["open_total"], customer["credit_balance"]) == ("0", "5000")

    # Reversal: the debts get their money back, the credit is withdrawn.
    reversed_ = client.post("/payments/2/reverse", json={"reason": "cheque devuelto"})
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json() == _payment(
        api,
        juan,
        2,
        "caja-2",
        "15000",
        method="transfer",
        status="reversed",
        allocated="10000",
        credit="5000",
        reversal_reason="cheque devuelto",
        reversed_at=TIMESTAMP,
        allocations=[
            {"debt": 1, "debt_id": "B-100", "amount": "3000"},
            {"debt": 3, "debt_id": "B-102", "amount": "7000"},
        ],
    )
    customer = client.get(f"/customers/{juan.id}").json()
    assert (customer["open_total"], customer["credit_balance"]) == ("10000", "0")
    assert _debts(client) == {
        "B-101": ("paid", "5000", "0"),
        "B-100": ("open", "7000", "3000"),
        "B-102": ("open", "0", "7000"),
    }
    assert_problem(
        client.post("/payments/2/reverse", json={"reason": "otra vez"}),
        409,
        "already_reversed",
        "payment 2 is already reversed",
    )

    # The audit trail of the key, exactly.
    events = client.get("/audit-events", params={"actor": api.label("acme_admin")}).json()
    assert events["total"] == 8
    trail = [
        (e["action"], e["entity_type"], e["entity_id"], e["before"], e["after"])
        for e in events["items"]
    ]
    assert trail == [
        (
            "debt.status_changed",
            "debt",
            "2",
            {"status": "open"},
            {"status": "paid", "payment_id": 1},
        ),
        (
            "payment.applied",
            "payment",
            "1",
            None,
            {
                "amount": "12000",
                "currency": "CLP",
                "status": "applied",
                "allocations": {"B-101": "5000", "B-100": "7000"},
                "credit": "0",
            },
        ),
        (
            "debt.status_changed",
            "debt",
            "1",
            {"status": "open"},
            {"status": "paid", "payment_id": 2},
        ),
        (
            "debt.status_changed",
            "debt",
            "3",
            {"status": "open"},
            {"status": "paid", "payment_id": 2},
        ),
        (
            "payment.applied",
            "payment",
            "2",
            None,
            {
                "amount": "15000",
                "currency": "CLP",
                "status": "applied",
                "allocations": {"B-100": "3000", "B-102": "7000"},
                "credit": "5000",
            },
        ),
        (
            "debt.status_changed",
            "debt",
            "1",
            {"status": "paid"},
            {"status": "open", "reversed_payment_id": 2},
        ),
        (
            "debt.status_changed",
            "debt",
            "3",
            {"status": "paid"},
            {"status": "open", "reversed_payment_id": 2},
        ),
        (
            "payment.reversed",
            "payment",
            "2",
            {"status": "applied"},
            {"status": "reversed", "reason": "cheque devuelto"},
        ),
    ]
    assert all(e["actor"] == api.label("acme_admin") for e in events["items"])
    assert all(e["occurred_at"] == TIMESTAMP for e in events["items"])
    only_reversals = client.get("/audit-events", params={"action": "payment.reversed"}).json()
    assert [(e["entity_id"], e["action"]) for e in only_reversals["items"]] == [
        ("2", "payment.reversed")
    ]
    for_payment_1 = client.get(
        "/audit-events", params={"entity_type": "payment", "entity_id": "1"}
    ).json()
    assert [e["action"] for e in for_payment_1["items"]] == ["payment.applied"]


def test_named_debts_in_given_order(api: Api, juan: Customer) -> None:
    response = api.client().post(
        "/payments",
        json={
            "customer_id": juan.id,
            "amount": "8000",
            "method": "card",
            "debt_ids": ["B-102", "B-100"],
            "idempotency_key": "pos-7",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["allocations"] == [
        {"debt": 3, "debt_id": "B-102", "amount": "7000"},
        {"debt": 1, "debt_id": "B-100", "amount": "1000"},
    ]


def test_named_debt_that_cannot_take_money_is_refused(api: Api, juan: Customer) -> None:
    api.debt(api.acme, juan, "B-099", "3000", date(2025, 12, 1), status="cancelled")
    client = api.client()
    response = client.post(
        "/payments",
        json={
            "customer_id": juan.id,
            "amount": "3000",
            "method": "cash",
            "debt_ids": ["B-099"],
            "idempotency_key": "k-cancelled",
        },
    )
    body = assert_problem(response, 409, "debt_not_payable", "debt 'B-099' cannot take payments")
    assert body["errors"] == [{"field": "debts", "message": "debt 'B-099' cannot take payments"}]
    unknown = client.post(
        "/payments",
        json={
            "customer_id": juan.id,
            "amount": "3000",
            "method": "cash",
            "debt_ids": ["B-404"],
            "idempotency_key": "k-unknown",
        },
    )
    assert_problem(unknown, 404, "not_found", "no debt 'B-404'")
    assert client.get("/payments").json()["total"] == 0


def test_cents_in_euros(api: Api) -> None:
    ong = create_company(
        api.uow, NewCompany("ong", "Fundación Ejemplo", "ES"), actor=ROOT_ACTOR, clock=api.clock
    )
    api.issue(ong, Role.OPERATOR, "ong_operator")
    ana = api.customer(ong, "12345678Z", "Ana García")
    api.debt(ong, ana, "F-1", "100.50", date(2026, 1, 31))
    api.debt(ong, ana, "F-2", "0.99", date(2026, 2, 28))
    client = api.client("ong_operator")
    response = client.post(
        "/payments",
        json={"national_id": "12345678-z", "amount": "100,75", "method": "bizum"},
        headers={"Idempotency-Key": "bz-1"},
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert (payment["amount"], payment["currency"], payment["allocated"], payment["credit"]) == (
        "100.75",
        "EUR",
        "100.75",
        "0.00",
    )
    assert payment["allocations"] == [
        {"debt": 1, "debt_id": "F-1", "amount": "100.50"},
        {"debt": 2, "debt_id": "F-2", "amount": "0.25"},
    ]
    customer = client.get(f"/customers/{ana.id}").json()
    assert (customer["open_total"], customer["credit_balance"], customer["currency"]) == (
        "0.74",
        "0.00",
        "EUR",
    )
    too_precise = client.post(
        "/payments",
        json={"customer_id": ana.id, "amount": "1.005", "method": "cash"},
        headers={"Idempotency-Key": "bz-2"},
    )
    assert_problem(too_precise, 422, "invalid_amount", "'1.005' has more than 2 decimals for EUR")
    zero = client.post(
        "/payments",
        json={"customer_id": ana.id, "amount": "0.00", "method": "cash"},
        headers={"Idempotency-Key": "bz-3"},
    )
    body = assert_problem(zero, 422, "invalid_amount", "a payment amount must be greater than zero")
    assert body["errors"] == [
        {"field": "amount", "message": "a payment amount must be greater than zero"}
    ]


def test_customer_listings_of_debts_and_payments(api: Api, juan: Customer) -> None:
    client = api.client()
    client.post(
        "/payments",
        json={"customer_id": juan.id, "amount": "5000", "method": "cash"},
        headers={"Idempotency-Key": "c-1"},
    )
    debts = client.get(f"/customers/{juan.id}/debts").json()
    assert [(d["debt_id"], d["status"], d["due_date"]) for d in debts["items"]] == [
        ("B-101", "paid", "2026-01-05"),
        ("B-100", "open", "2026-01-10"),
        ("B-102", "open", "2026-02-05"),
    ]
    open_only = client.get(f"/customers/{juan.id}/debts", params={"status": "open"}).json()
    assert [d["debt_id"] for d in open_only["items"]] == ["B-100", "B-102"]
    payments = client.get(f"/customers/{juan.id}/payments").json()
    assert [(p["external_id"], p["amount"]) for p in payments["items"]] == [("c-1", "5000")]
    debt = client.get("/debts/2").json()
    assert debt == {
        "id": 2,
        "debt_id": "B-101",
        "customer_id": juan.id,
        "concept": "Servicio",
        "amount": "5000",
        "paid": "5000",
        "open_amount": "0",
        "currency": "CLP",
        "issue_date": None,
        "due_date": "2026-01-05",
        "status": "paid",
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    filtered = client.get("/debts", params={"status": "open", "due_before": "2026-02-01"}).json()
    assert [d["debt_id"] for d in filtered["items"]] == ["B-100"]
    by_method = client.get("/payments", params={"method": "cash", "status": "applied"}).json()
    assert by_method["total"] == 1
    none_yet = client.get("/payments", params={"paid_from": "2027-01-01T00:00:00Z"}).json()
    assert none_yet["total"] == 0
