"""Commitments, commitment payments, creditor accounts and settings through the real HTTP
server, on both backends, with exact JSON."""

from __future__ import annotations

from typing import Any

import pytest

from recaudo.adapters.db.tables import Company
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, TIMESTAMP, Api, assert_problem

IBAN = "ES9121000418450200051332"
IBAN2 = "ES7921000813610123456789"


@pytest.fixture
def ong(api: Api) -> Company:
    company = create_company(
        api.uow, NewCompany("ong", "Fundación Ejemplo", "ES"), actor=ROOT_ACTOR, clock=api.clock
    )
    api.issue(company, Role.ADMIN, "ong_admin")
    api.issue(company, Role.OPERATOR, "ong_operator")
    api.issue(company, Role.AUDITOR, "ong_auditor")
    return company


def commitment_body(payer: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payer_customer_id": payer,
        "kind": "fee",
        "method": "direct_debit",
        "periodicity": "monthly",
        "amount": "10.00",
        "first_payment_on": "2026-01-31",
        "concept": "Cuota socio",
        "iban": "ES91 2100 0418 4502 0005 1332",
        "channel_label": "web",
    }
    body.update(overrides)
    return body


def test_commitment_lifecycle(api: Api, ong: Company) -> None:
    ana = api.customer(ong, "12345678Z", "Ana García")
    operator = api.client("ong_operator")

    created = operator.post("/commitments", json=commitment_body(ana.id))
    assert created.status_code == 201, created.text
    body = created.json()
    cid = body["id"]
    mandate_id = body["mandate"]["id"]
    assert body == {
        "id": cid,
        "payer_customer_id": ana.id,
        "beneficiary_customer_id": None,
        "beneficiary_label": None,
        "kind": "fee",
        "method": "direct_debit",
        "periodicity": "monthly",
        "amount": "10.00",
        "currency": "EUR",
        "first_payment_on": "2026-01-31",
        "ends_on": None,
        "concept": "Cuota socio",
        "direction": "income",
        "channel_label": "web",
        "campaign_label": None,
        "iban": IBAN,
        "bic": None,
        "mandate": {
            "id": mandate_id,
            "commitment_id": cid,
            "reference": f"ONG-{cid:08d}-01",
            "iban": IBAN,
            "bic": None,
            "scheme": "CORE",
            "signed_on": "2026-03-02",
            "status": "active",
            "invalid_reason": None,
            "first_collection_done": False,
            "created_at": TIMESTAMP,
        },
        "has_card_token": False,
        "card_expiry": None,
        "responsible_email": None,
        "active": True,
        "ended_reason": None,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "payments_created": 3,
    }

    auditor = api.client("ong_auditor")
    shown = auditor.get(f"/commitments/{cid}")
    assert shown.status_code == 200
    assert shown.json() == {k: v for k, v in body.items() if k != "payments_created"}

    listed = auditor.get("/commitment-payments", params={"commitment_id": cid})
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 50)
    first = page["items"][0]
    assert first == {
        "id": first["id"],
        "commitment_id": cid,
        "customer_id": ana.id,
        "period_start": "2026-01-01",
        "due_on": "2026-01-31",
        "amount": "10.00",
        "currency": "EUR",
        "method": "direct_debit",
        "iban": IBAN,
        "bic": None,
        "mandate_id": mandate_id,
        "sequence_type": None,
        "status": "not_remitted",
        "remittance_id": None,
        "end_to_end_id": f"RCD{cid:010d}20260101",
        "return_reason_code": None,
        "return_reason": None,
        "refund_requested": False,
        "gateway_reference": None,
        "gateway_message": None,
        "paid_at": None,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    assert [p["due_on"] for p in page["items"]] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    march = page["items"][2]["id"]

    feb = auditor.get("/commitment-payments", params={"due_month": "2026-02"}).json()
    assert [p["due_on"] for p in feb["items"]] == ["2026-02-28"]
    assert_problem(
        auditor.get("/commitment-payments", params={"due_month": "2026-13"}),
        422,
        "validation_failed",
        "due_month is YYYY-MM",
    )

    # Transitions: an invalid one is a 409 naming what is allowed; a valid one moves it.
    refused = operator.post(
        f"/commitment-payments/{first['id']}/transition", json={"status": "paid"}
    )
    problem = assert_problem(
        refused,
        409,
        "invalid_payment_transition",
        "a direct_debit payment cannot go from not_remitted to paid "
        "(from not_remitted it may go to: cancelled, duplicate, remitted)",
    )
    assert (problem["current"], problem["requested"]) == ("not_remitted", "paid")
    moved = operator.post(
        f"/commitment-payments/{first['id']}/transition",
        json={"status": "cancelled", "reason": "socio fundador"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json() == {**first, "status": "cancelled", "updated_at": TIMESTAMP}
    assert_problem(
        auditor.post(f"/commitment-payments/{first['id']}/transition", json={"status": "paid"}),
        403,
        "permission_denied",
    )

    # Edit: a new amount and IBAN reach March (due on the 31st), not February (past).
    edited = operator.patch(f"/commitments/{cid}", json={"amount": "12.50", "iban": IBAN2})
    assert edited.status_code == 200, edited.text
    changed = edited.json()
    assert (changed["amount"], changed["iban"], changed["mandate"]["reference"]) == (
        "12.50",
        IBAN2,
        f"ONG-{cid:08d}-02",
    )
    assert changed["payments_created"] == 0
    mandates = auditor.get(f"/commitments/{cid}/mandates").json()
    assert [(m["reference"], m["status"]) for m in mandates] == [
        (f"ONG-{cid:08d}-01", "replaced"),
        (f"ONG-{cid:08d}-02", "active"),
    ]
    items = auditor.get("/commitment-payments", params={"commitment_id": cid}).json()["items"]
    assert [(p["amount"], p["iban"], p["status"]) for p in items] == [
        ("10.00", IBAN, "cancelled"),
        ("10.00", IBAN, "not_remitted"),
        ("12.50", IBAN2, "not_remitted"),
    ]
    assert (
        auditor.get(f"/commitment-payments/{march}").json()["mandate_id"]
        == (changed["mandate"]["id"])
    )

    # End it at the end of February: March's payment is cancelled.
    ended = operator.post(
        f"/commitments/{cid}/end", json={"reason": "baja voluntaria", "ends_on": "2026-02-28"}
    )
    assert ended.status_code == 200, ended.text
    assert {k: ended.json()[k] for k in ("active", "ends_on", "ended_reason")} == {
        "active": False,
        "ends_on": "2026-02-28",
        "ended_reason": "baja voluntaria",
    }
    assert auditor.get(f"/commitment-payments/{march}").json()["status"] == "cancelled"
    inactive = auditor.get("/commitments", params={"active": "false"}).json()
    assert [c["id"] for c in inactive["items"]] == [cid]
    assert auditor.get("/commitments", params={"active": "true"}).json()["total"] == 0


def test_validation_roles_and_isolation(api: Api, ong: Company) -> None:
    ana = api.customer(ong, "12345678Z", "Ana García")
    operator = api.client("ong_operator")
    assert_problem(
        operator.post(
            "/commitments", json=commitment_body(ana.id, iban="ES9121000418450200051333")
        ),
        422,
        "validation_failed",
    )
    body = assert_problem(
        operator.post("/commitments", json=commitment_body(ana.id, iban=None)),
        422,
        "validation_failed",
        "a direct debit needs the payer's IBAN",
    )
    assert body["errors"] == [{"field": "iban", "message": "a direct debit needs the payer's IBAN"}]
    assert_problem(
        operator.post("/commitments", json=commitment_body(ana.id, periodicity="weekly")),
        422,
        "invalid_request",
    )
    assert_problem(
        operator.post("/commitments", json=commitment_body(ana.id, first_payment_on="1990-01-01")),
        422,
        "validation_failed",
        "first_payment_on must be between 2016-03-02 and 2036-03-02",
    )
    assert_problem(
        operator.post("/commitments", json={**commitment_body(ana.id), "colour": "red"}),
        422,
        "invalid_request",
    )
    assert_problem(
        api.client("ong_auditor").post("/commitments", json=commitment_body(ana.id)),
        403,
        "permission_denied",
    )
    created = operator.post("/commitments", json=commitment_body(ana.id)).json()
    assert_problem(
        operator.patch(f"/commitments/{created['id']}", json={"amount": None}),
        422,
        "validation_failed",
        "amount cannot be emptied",
    )
    cleared = operator.patch(
        f"/commitments/{created['id']}", json={"channel_label": None, "ends_on": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["channel_label"], cleared.json()["ends_on"]) == (None, None)
    # Another company's key sees nothing of it, and cannot use its customers.
    beta = api.client("beta_admin")
    assert_problem(beta.get(f"/commitments/{created['id']}"), 404, "not_found")
    assert beta.get("/commitments").json()["total"] == 0
    assert beta.get("/commitment-payments").json()["total"] == 0
    assert_problem(
        beta.post("/commitments", json=commitment_body(ana.id)),
        422,
        "validation_failed",
        f"no customer {ana.id} in this company",
    )
    assert_problem(
        beta.post(f"/commitments/{created['id']}/end", json={"reason": "x"}), 404, "not_found"
    )


def test_generate_on_demand_is_idempotent(api: Api, ong: Company) -> None:
    ana = api.customer(ong, "12345678Z", "Ana García")
    operator = api.client("ong_operator")
    cid = operator.post("/commitments", json=commitment_body(ana.id)).json()["id"]
    first = operator.post("/commitment-payments/generate", json={"month": "2026-05-10"})
    assert first.status_code == 200, first.text
    assert first.json() == {"month": "2026-05-01", "commitments": 1, "created": 2}
    again = operator.post("/commitment-payments/generate", json={"month": "2026-05-10"})
    assert again.json() == {"month": "2026-05-01", "commitments": 1, "created": 0}
    assert operator.post("/commitment-payments/generate", json={}).json() == {
        "month": "2026-03-01",
        "commitments": 1,
        "created": 0,
    }
    listed = operator.get("/commitment-payments", params={"commitment_id": cid}).json()
    assert listed["total"] == 5


def test_creditor_accounts_and_settings(api: Api, ong: Company) -> None:
    admin = api.client("ong_admin")
    created = admin.post(
        "/creditor-accounts",
        json={
            "name": "Principal",
            "iban": IBAN,
            "bic": "CAIXESBBXXX",
            "creditor_identifier": "ES38ZZZX1234567B",
            "creditor_name": "Fundacion Ejemplo",
            "town": "Madrid",
            "country": "ES",
        },
    )
    assert created.status_code == 201, created.text
    account = created.json()
    assert account == {
        "id": account["id"],
        "name": "Principal",
        "iban": IBAN,
        "bic": "CAIXESBBXXX",
        "creditor_identifier": "ES38ZZZX1234567B",
        "creditor_name": "Fundacion Ejemplo",
        "pain008_version": "pain.008.001.08",
        "pain001_version": "pain.001.001.09",
        "include_bic": False,
        "lead_days": 1,
        "street": None,
        "town": "Madrid",
        "postcode": None,
        "country": "ES",
        "active": True,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    duplicate = admin.post(
        "/creditor-accounts",
        json={
            "name": "Otra",
            "iban": IBAN,
            "creditor_identifier": "ES38ZZZX1234567B",
            "creditor_name": "F",
        },
    )
    assert_problem(
        duplicate, 409, "conflict", f"IBAN {IBAN} is already creditor account {account['id']}"
    )
    bad = admin.post(
        "/creditor-accounts",
        json={
            "name": "Otra",
            "iban": IBAN2,
            "creditor_identifier": "ES39ZZZX1234567B",
            "creditor_name": "F",
        },
    )
    problem = assert_problem(bad, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "creditor_identifier"
    operator = api.client("ong_operator")
    assert_problem(
        operator.patch(f"/creditor-accounts/{account['id']}", json={"lead_days": 3}),
        403,
        "permission_denied",
    )
    patched = admin.patch(
        f"/creditor-accounts/{account['id']}", json={"lead_days": 3, "bic": None, "town": None}
    )
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in ("lead_days", "bic", "town")} == {
        "lead_days": 3,
        "bic": None,
        "town": None,
    }
    assert_problem(
        admin.patch(f"/creditor-accounts/{account['id']}", json={"iban": None}),
        422,
        "validation_failed",
        "iban cannot be emptied",
    )
    assert [a["id"] for a in operator.get("/creditor-accounts").json()] == [account["id"]]
    assert_problem(
        api.client("beta_admin").get(f"/creditor-accounts/{account['id']}"), 404, "not_found"
    )

    assert api.client("ong_auditor").get("/commitment-settings").json() == {
        "generate_for": "current",
        "run_day": 1,
        "run_time": "00:30:00",
        "notify_email": None,
        "last_generated_month": None,
        "updated_at": None,
    }
    changed = admin.patch(
        "/commitment-settings",
        json={
            "generate_for": "next",
            "run_day": 3,
            "run_time": "06:15",
            "notify_email": "a@ong.es",
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "generate_for": "next",
        "run_day": 3,
        "run_time": "06:15:00",
        "notify_email": "a@ong.es",
        "last_generated_month": None,
        "updated_at": TIMESTAMP,
    }
    assert_problem(
        admin.patch("/commitment-settings", json={"run_day": 31}), 422, "invalid_request"
    )
    assert_problem(
        operator.patch("/commitment-settings", json={"run_day": 2}), 403, "permission_denied"
    )
