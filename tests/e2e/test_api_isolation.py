"""A key of one company never reads nor writes another's data: 404s, and lists without it."""

from __future__ import annotations

from datetime import date

from tests.e2e.conftest import Api, assert_problem
from tests.e2e.test_api_imports import GOOD, upload


def test_company_b_is_invisible_to_company_a(api: Api) -> None:
    # Beta has a customer, a debt, a payment and an import; the same person is also
    # Acme's customer, so searching by that national id must find only Acme's record.
    beta = api.client("beta_admin")
    beta_juan = api.customer(api.beta, "12.345.678-5", "Juan Pérez")
    api.debt(api.beta, beta_juan, "B-1", "5000", date(2026, 1, 5))
    paid = beta.post(
        "/payments",
        json={"customer_id": beta_juan.id, "amount": "5000", "method": "cash"},
        headers={"Idempotency-Key": "same-key"},
    )
    assert paid.status_code == 201, paid.text
    beta_payment = paid.json()["id"]
    imported = upload(beta, "deudas.csv", GOOD)
    assert imported.status_code == 201, imported.text
    beta_import = imported.json()["import_id"]
    beta_debt = beta.get("/debts", params={"customer_id": beta_juan.id}).json()["items"][0]["id"]

    acme_juan = api.customer(api.acme, "12345678-5", "Juan Pérez")
    acme = api.client("acme_admin")
    for path, detail in [
        (f"/customers/{beta_juan.id}", f"no customer {beta_juan.id}"),
        (f"/customers/{beta_juan.id}/debts", f"no customer {beta_juan.id}"),
        (f"/customers/{beta_juan.id}/payments", f"no customer {beta_juan.id}"),
        (f"/debts/{beta_debt}", f"no debt {beta_debt}"),
        (f"/payments/{beta_payment}", f"no payment {beta_payment}"),
        (f"/imports/{beta_import}", f"no import {beta_import}"),
        (f"/imports/{beta_import}/rejected.csv", f"no import {beta_import}"),
    ]:
        assert_problem(acme.get(path), 404, "not_found", detail)
    assert_problem(
        acme.post(f"/payments/{beta_payment}/reverse", json={"reason": "no es mío"}),
        404,
        "not_found",
        f"no payment {beta_payment}",
    )
    # Paying Beta's customer or Beta's debt by id from Acme is a 404 too.
    assert_problem(
        acme.post(
            "/payments",
            json={"customer_id": beta_juan.id, "amount": "1", "method": "cash"},
            headers={"Idempotency-Key": "x-1"},
        ),
        404,
        "not_found",
        f"no customer {beta_juan.id}",
    )
    assert_problem(
        acme.post(
            "/payments",
            json={
                "customer_id": acme_juan.id,
                "amount": "1",
                "method": "cash",
                "debt_ids": ["B-1"],
            },
            headers={"Idempotency-Key": "x-2"},
        ),
        404,
        "not_found",
        "no debt 'B-1'",
    )

    # Lists: only Acme's own records, whatever the filters.
    customers = acme.get("/customers", params={"national_id": "12.345.678-5"}).json()
    assert [c["id"] for c in customers["items"]] == [acme_juan.id]
    assert acme.get("/customers").json()["total"] == 1
    assert acme.get("/debts").json()["total"] == 0
    assert acme.get("/debts", params={"customer_id": beta_juan.id}).json()["total"] == 0
    assert acme.get("/payments").json()["total"] == 0
    assert acme.get("/payments", params={"external_id": "same-key"}).json()["total"] == 0
    events = acme.get("/audit-events").json()["items"]
    assert {e["actor"] for e in events} <= {"test:root", "test:setup"}
    assert not any(e["entity_type"] in ("payment", "debt_import") for e in events)

    # The same idempotency key is free in another company: keys are per company.
    mine = acme.post(
        "/payments",
        json={"customer_id": acme_juan.id, "amount": "700", "method": "cash"},
        headers={"Idempotency-Key": "same-key"},
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["credit"] == "700"
    # And Beta still sees only its own.
    assert [p["id"] for p in beta.get("/payments").json()["items"]] == [beta_payment]
