"""Authentication and roles through the real server: 401 problems, read-only auditors, companies."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from recaudo.adapters.db.tables import ApiKey
from recaudo.services.companies import revoke_api_key
from tests.e2e.conftest import ROOT_ACTOR, TIMESTAMP, Api, assert_problem


def _unauthenticated(response: httpx.Response, detail: str) -> None:
    assert_problem(response, 401, "unauthenticated", detail)
    assert response.headers["www-authenticate"] == "Bearer"


def test_missing_header_is_401(api: Api) -> None:
    response = api.client(None).get("/customers")
    _unauthenticated(response, "missing Authorization header with a bearer API key")
    assert response.json()["instance"] == "/api/v1/customers"


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Token rk_abc_def", "rk_1_2"]
)
def test_not_a_bearer_header_is_401(api: Api, authorization: str) -> None:
    response = api.client(None, Authorization=authorization).get("/customers")
    _unauthenticated(response, "the Authorization header must be `Bearer <api key>`")


@pytest.mark.parametrize("token", ["not-a-key", "rk_short", "xx_0123456789ab_secret"])
def test_malformed_key_is_401(api: Api, token: str) -> None:
    response = api.client(None, Authorization=f"Bearer {token}").get("/customers")
    _unauthenticated(response, "malformed API key")


def test_unknown_key_is_401(api: Api) -> None:
    prefix = api.keys["acme_admin"].split("_")[1]
    forged = f"rk_{prefix}_{'A' * 43}"  # a real prefix with a wrong secret
    for token in (forged, "rk_0123456789ab_" + "B" * 43):
        response = api.client(None, Authorization=f"Bearer {token}").get("/customers")
        _unauthenticated(response, "unknown or revoked API key")


def test_revoked_key_is_401(api: Api) -> None:
    client = api.client("acme_operator")
    assert client.get("/company").status_code == 200
    with api.uow:
        key_id = api.uow.session.scalars(select(ApiKey.id).where(ApiKey.role == "operator")).one()
    revoke_api_key(api.uow, key_id, actor=ROOT_ACTOR, clock=api.clock)
    _unauthenticated(client.get("/company"), "unknown or revoked API key")


def test_auditor_reads_but_never_writes(api: Api) -> None:
    auditor = api.client("acme_auditor")
    assert auditor.get("/customers").status_code == 200
    assert auditor.get("/audit-events").status_code == 200
    body = {"customer_id": 1, "amount": "1000", "method": "cash", "idempotency_key": "k-1"}
    denied = "role auditor may not do this (needs admin, operator)"
    assert_problem(auditor.post("/payments", json=body), 403, "permission_denied", denied)
    assert_problem(
        auditor.post("/payments/1/reverse", json={"reason": "x"}), 403, "permission_denied", denied
    )
    files = {"file": ("debts.csv", b"a,b\n", "text/csv")}
    assert_problem(
        auditor.post("/imports", files=files, data={"mode": "upsert"}),
        403,
        "permission_denied",
        denied,
    )


def test_operator_can_write(api: Api) -> None:
    customer = api.customer(api.acme, "12.345.678-5", "Juan Pérez")
    body = {"customer_id": customer.id, "amount": "1000", "method": "cash"}
    response = api.client("acme_operator").post(
        "/payments", json=body, headers={"Idempotency-Key": "op-1"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["recorded_by"].startswith("api_key:")


def test_own_company(api: Api) -> None:
    client = api.client("acme_auditor")
    expected = {
        "id": api.acme.id,
        "slug": "acme",
        "legal_name": "Acme Telecomunicaciones SpA",
        "tax_id": None,
        "country": "CL",
        "currency": "CLP",
        "timezone": "America/Santiago",
        "created_at": TIMESTAMP,
    }
    response = client.get("/company")
    assert response.status_code == 200
    assert response.json() == expected
    listing = client.get("/companies")
    assert listing.status_code == 200
    assert listing.json() == {"items": [expected], "total": 1, "page": 1, "page_size": 1}
    beta = api.client("beta_admin").get("/companies").json()
    assert [c["slug"] for c in beta["items"]] == ["beta"]


def test_companies_are_not_created_through_api_keys(api: Api) -> None:
    response = api.client("acme_admin").post(
        "/companies", json={"slug": "gamma", "legal_name": "Gamma", "country": "CL"}
    )
    assert_problem(
        response,
        403,
        "permission_denied",
        "API keys are bound to one company and cannot create companies; "
        "create them with `recaudo company create`",
    )
    assert_problem(api.client(None).post("/companies"), 401, "unauthenticated")
    assert [c["slug"] for c in api.client().get("/companies").json()["items"]] == ["acme"]


def test_health_root_and_docs_need_no_key(api: Api) -> None:
    with httpx.Client(base_url=api.url) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok"}
        root = client.get("/", follow_redirects=False)  # the back office: sign in first
        assert root.status_code == 303
        assert root.headers["location"] == "/ingresar"
        assert client.get("/api/docs").status_code == 200
        schema = client.get("/api/openapi.json").json()
        assert schema["info"]["title"] == "Recaudo admin API"
        assert "/api/v1/payments/{payment_id}/reverse" in schema["paths"]
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert (
            "recaudo company create" in schema["paths"]["/api/v1/companies"]["post"]["description"]
        )
