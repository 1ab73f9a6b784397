"""Admin API for the bank channel: agreements, exception resolution, incidents."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.e2e.bank import (  # noqa: F401 (the fixture)
    JUANA_RUT,
    OK,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.conftest import TIMESTAMP, assert_problem


def _overpaid(bank: Bank) -> dict[str, Any]:
    """A payment of 5250 for a quote of 4000: exception 1, credit 1250."""
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, total="5250")).json() == OK
    exc: dict[str, Any] = bank.api.client().get("/exceptions/1").json()
    assert (exc["status"], exc["credit"]) == ("open", "1250")
    return exc


def _credit(bank: Bank) -> str:
    customer = bank.api.client().get(f"/customers/{bank.people['juana'].id}").json()
    return str(customer["credit_balance"])


def test_resolve_by_applying_to_chosen_debts(bank: Bank) -> None:
    api = bank.api
    _overpaid(bank)
    api.debt(api.acme, bank.people["juana"], "134373", "1000", date(2026, 4, 10))
    api.debt(api.acme, bank.people["juana"], "134374", "800", date(2026, 5, 10))
    client = api.client("acme_operator")
    paid = client.post(
        "/exceptions/1/resolve",
        json={"resolution": "applied", "comment": "cliente pidió", "debt_ids": ["134372"]},
    )
    assert_problem(paid, 409, "debt_not_payable", "debt '134372' cannot take payments")
    response = client.post(
        "/exceptions/1/resolve",
        json={
            "resolution": "applied",
            "comment": "cliente pidió abonar",
            "debt_ids": ["134374", "134373"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": 1,
        "payment_id": 1,
        "customer_id": bank.people["juana"].id,
        "transaccion": response.json()["transaccion"],
        "amount": "5250",
        "credit": "0",
        "currency": "CLP",
        "reason": "amount_mismatch",
        "detail": "paid 5250 but the quote was for 4000; credited 1250",
        "status": "resolved",
        "resolution": "applied",
        "comment": "cliente pidió abonar",
        "resolved_by": api.label("acme_operator"),
        "resolved_at": TIMESTAMP,
        "created_at": TIMESTAMP,
    }
    debts = {
        d["debt_id"]: (d["status"], d["open_amount"])
        for d in api.client().get("/debts", params={"page_size": 100}).json()["items"]
    }
    assert (debts["134374"], debts["134373"]) == (("paid", "0"), ("open", "550"))
    payment = api.client().get("/payments/1").json()
    assert [a["debt_id"] for a in payment["allocations"]] == [
        "134371",
        "134372",
        "134374",
        "134373",
    ]
    assert payment["allocated"] == "5250"
    assert _credit(bank) == "0"
    audit = api.client().get("/audit-events", params={"action": "payment_exception.resolved"})
    [event] = audit.json()["items"]
    assert (event["actor"], event["before"], event["after"]) == (
        api.label("acme_operator"),
        {"status": "open", "credit": "1250"},
        {
            "status": "resolved",
            "resolution": "applied",
            "comment": "cliente pidió abonar",
            "applied": {"134374": "800", "134373": "450"},
        },
    )
    again = client.post("/exceptions/1/resolve", json={"resolution": "credit", "comment": "x"})
    assert_problem(again, 409, "conflict", "exception 1 is already resolved")


@pytest.mark.parametrize(("resolution", "credit"), [("credit", "1250"), ("refunded", "0")])
def test_resolve_keep_as_credit_or_refunded(bank: Bank, resolution: str, credit: str) -> None:
    _overpaid(bank)
    client = bank.api.client()
    response = client.post(
        "/exceptions/1/resolve", json={"resolution": resolution, "comment": "revisado"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["resolution"], body["credit"], body["comment"]) == (
        "resolved",
        resolution,
        credit,
        "revisado",
    )
    assert _credit(bank) == credit
    assert client.get("/exceptions", params={"status": "open"}).json()["total"] == 0
    assert client.get("/exceptions", params={"status": "resolved"}).json()["total"] == 1


def test_resolution_input_and_permissions(bank: Bank) -> None:
    _overpaid(bank)
    client = bank.api.client()
    no_comment = client.post("/exceptions/1/resolve", json={"resolution": "credit"})
    assert no_comment.status_code == 422
    no_debts = client.post("/exceptions/1/resolve", json={"resolution": "applied", "comment": "x"})
    assert_problem(no_debts, 422, "validation_failed", "name the debts to apply the credit to")
    auditor = bank.api.client("acme_auditor")
    assert auditor.get("/exceptions").json()["total"] == 1
    denied = auditor.post("/exceptions/1/resolve", json={"resolution": "credit", "comment": "x"})
    assert denied.status_code == 403
    other = bank.api.client("beta_admin")
    assert other.get("/exceptions").json()["total"] == 0
    assert_problem(other.get("/exceptions/1"), 404, "not_found")
    assert_problem(
        other.post("/exceptions/1/resolve", json={"resolution": "credit", "comment": "x"}),
        404,
        "not_found",
    )


def test_agreements_api(bank: Bank) -> None:
    api = bank.api
    beta = api.client("beta_admin")
    created = beta.post(
        "/agreements",
        json={"channel": "caja-vecina", "convenio": "99887", "voucher_name": "Beta Servicios"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("secret")
    assert secret.startswith("ca_")
    assert body == {
        "id": 3,
        "bank": "bancoestado",
        "channel": "caja-vecina",
        "convenio": "99887",
        "voucher_name": "Beta Servicios",
        "cutoff": "14:00",
        "enabled": True,
        "allow_query_token": False,
        "ip_allowlist": None,
        "errors_as_http_200": True,
        "quote_ttl_seconds": 3600,
        "passthrough_url": None,
        "passthrough_timeout_ms": 3000,
        "secret_prefix": secret.split("_")[1],
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    assert beta.get("/agreements").json() == [body]
    duplicate = beta.post("/agreements", json={"channel": "caja-vecina", "convenio": "1"})
    assert_problem(duplicate, 409, "conflict")
    # The new secret answers for beta, and acme's does not.
    url = "/consulta/caja-vecina/beta/"
    params = {"type": "String", "rut_cliente": JUANA_RUT}
    not_found = {"codigo_error": 1004, "mensaje_error": "RUT del cliente no encontrado."}
    invalid = {"codigo_error": 1003, "mensaje_error": "Consulta Invalida."}
    ok = bank.http.get(url, params=params, headers={"X-Api-Key": secret})
    assert ok.json() == not_found
    acme_secret = bank.auth()
    assert bank.http.get(url, params=params, headers=acme_secret).json() == invalid
    patched = beta.patch(
        "/agreements/3",
        json={"cutoff": "15:30", "ip_allowlist": ["10.1.0.0/16"], "errors_as_http_200": False},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["cutoff"], patched.json()["ip_allowlist"]) == ("15:30", ["10.1.0.0/16"])
    refused = bank.http.get(url, params=params, headers={"X-Api-Key": secret})
    assert (refused.status_code, refused.json()) == (400, invalid)
    assert_problem(beta.patch("/agreements/1", json={"enabled": False}), 404, "not_found")
    bad = beta.patch("/agreements/3", json={"ip_allowlist": ["not-an-ip"]})
    assert bad.status_code == 422
    operator = api.client("acme_operator")
    assert (
        operator.post("/agreements", json={"channel": "internet", "convenio": "1"}).status_code
        == 403
    )
    assert len(api.client("acme_auditor").get("/agreements").json()) == 2
