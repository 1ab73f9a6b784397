"""Negotiations and viability policies through the real HTTP server, on both backends."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.e2e.conftest import Api, assert_problem

POLICY = {
    "name": "plan 30+",
    "strategy": "PPPL",
    "rule": "days_past_due >= 30 and term <= 12",
    "cause": "causalDeNoViabilidadPuestaAlDia2",
    "message": "30 days past due and 12 installments at most",
    "exception_name": "EXC_PLAZO_NEGOCIACION",
    "parameters": {"term": 3, "annual_rate": "0"},
}


def _setup(api: Api) -> int:
    """Ana owes 600001 CLP due 2026-01-01: 60 days late on the clock's 2026-03-02."""
    customer = api.customer(api.acme, "123456785", "Ana Pérez")
    api.debt(api.acme, customer, "L-1", "600001", date(2026, 1, 1))
    return customer.id


def _policy(api: Api) -> dict[str, Any]:
    created = api.client("acme_admin").post("/negotiation-policies", json=POLICY)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_policies_crud_roles_and_unsafe_rules(api: Api) -> None:
    admin, operator = api.client("acme_admin"), api.client("acme_operator")
    body = _policy(api)
    assert body == {
        "id": body["id"],
        **POLICY,
        "active": True,
        "created_by": api.label("acme_admin"),
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    assert_problem(
        operator.post("/negotiation-policies", json={**POLICY, "name": "other"}),
        403,
        "permission_denied",
        "role operator may not do this (needs admin)",
    )
    refused = admin.post(
        "/negotiation-policies", json={**POLICY, "name": "evil", "rule": "product_type.__class__"}
    )
    problem = assert_problem(refused, 422, "validation_failed")
    assert problem["errors"] == [{"field": "rule", "message": problem["detail"]}]
    assert problem["detail"].startswith("a policy rule may not use attribute access ('__class__')")
    unknown = admin.post("/negotiation-policies", json={**POLICY, "name": "x", "rule": "foo.bar"})
    assert assert_problem(unknown, 422, "validation_failed")["detail"].startswith(
        "a policy rule may not name 'foo'"
    )
    assert_problem(
        admin.post("/negotiation-policies", json=POLICY),
        409,
        "conflict",
        "a policy named 'plan 30+' exists already",
    )
    changed = admin.patch(f"/negotiation-policies/{body['id']}", json={"rule": "term <= 6"})
    assert changed.status_code == 200 and changed.json()["rule"] == "term <= 6"
    disabled = admin.delete(f"/negotiation-policies/{body['id']}")
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    listing = api.client("acme_auditor").get("/negotiation-policies", params={"active": "false"})
    assert [p["id"] for p in listing.json()] == [body["id"]]
    assert_problem(
        api.client("beta_admin").get(f"/negotiation-policies/{body['id']}"), 404, "not_found"
    )
    malformed = admin.post(
        "/negotiation-policies",
        content=b'{"name": ',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(malformed, 422, "invalid_request")


def test_simulate_create_accept_and_read(api: Api) -> None:
    customer_id = _setup(api)
    _policy(api)
    operator = api.client("acme_operator")
    sim = operator.post("/negotiations/simulate", json={"customer_id": customer_id})
    assert sim.status_code == 200, sim.text
    # 600001 / 3 = 200000.33: 200000, 200000 and the last takes the rest, 200001.
    installments = [
        {
            "number": 1,
            "due_date": "2026-04-02",
            "amount": "200000",
            "principal": "200000",
            "interest": "0",
        },
        {
            "number": 2,
            "due_date": "2026-05-02",
            "amount": "200000",
            "principal": "200000",
            "interest": "0",
        },
        {
            "number": 3,
            "due_date": "2026-06-02",
            "amount": "200001",
            "principal": "200001",
            "interest": "0",
        },
    ]
    assert sim.json() == {
        "customer_id": customer_id,
        "currency": "CLP",
        "as_of": "2026-03-02",
        "capacity": None,
        "cash_today": None,
        "obligations": [
            {
                "debt": "L-1",
                "due_date": "2026-01-01",
                "balance": "600001",
                "overdue_amount": "600001",
                "days_past_due": 60,
                "components": {"capital": "600001"},
                "offers": [
                    {
                        "strategy": "PPPL",
                        "name": "Plan de pagos a plazo",
                        "viable": True,
                        "causes": [],
                        "exceptions": [],
                        "fits_capacity": None,
                        "parameters": {
                            "term": 3,
                            "annual_rate": "0",
                            "first_due": "2026-04-02",
                            "grace_months": 0,
                            "dead_months": 0,
                            "down_payment": None,
                            "condonation": {},
                            "condonation_at": None,
                        },
                        "terms": {
                            "currency": "CLP",
                            "debts": ["L-1"],
                            "kept_debts": [],
                            "balance": "600001",
                            "payment_today": "0",
                            "financed": "600001",
                            "new_installment": "200000",
                            "term": 3,
                            "grace_months": 0,
                            "annual_rate": "0",
                            "total_interest": "0",
                            "total_condoned": "0",
                            "condoned_by_concept": {},
                            "total_to_pay": "600001",
                            "condonation_at": None,
                            "installments": installments,
                        },
                    }
                ],
            }
        ],
    }
    # A recalculation over 24 installments breaks the rule: named cause.
    again = operator.post(
        "/negotiations/simulate",
        json={"customer_id": customer_id, "debts": ["L-1"], "parameters": {"PPPL": {"term": 24}}},
    )
    offer = again.json()["obligations"][0]["offers"][0]
    assert (offer["viable"], offer["causes"]) == (
        False,
        [
            {
                "policy": "plan 30+",
                "cause": "causalDeNoViabilidadPuestaAlDia2",
                "message": "30 days past due and 12 installments at most",
            }
        ],
    )
    not_viable = operator.post(
        "/negotiations",
        json={
            "customer_id": customer_id,
            "strategy": "PPPL",
            "debts": ["L-1"],
            "parameters": {"term": 24},
        },
    )
    assert_problem(
        not_viable,
        409,
        "not_viable",
        "PPPL is not viable: 30 days past due and 12 installments at most "
        "(causalDeNoViabilidadPuestaAlDia2)",
    )
    bad_commitments = operator.post(
        "/negotiations",
        json={
            "customer_id": customer_id,
            "strategy": "PPPL",
            "debts": ["L-1"],
            "commitments": [{"kind": "T", "amount": "1000"}, {"kind": "P", "amount": "1000"}],
        },
    )
    assert_problem(
        bad_commitments,
        422,
        "validation_failed",
        "commitment 1 of 2 is total ('T'): only the last commitment may be total, the ones "
        "before it must be partial ('P')",
    )

    body = {
        "customer_id": customer_id,
        "strategy": "PPPL",
        "debts": ["L-1"],
        "adviser": "ana.g",
        "office": "9999",
    }
    created = operator.post("/negotiations", json=body, headers={"Idempotency-Key": "neg-1"})
    assert created.status_code == 201, created.text
    proposal = created.json()
    plan = [
        {
            "number": i["number"],
            "debt": f"NEG1-00{i['number']}",
            "due_date": i["due_date"],
            "amount": i["amount"],
            "principal": i["principal"],
            "interest": "0",
            "paid": "0",
            "status": "proposed",
        }
        for i in installments
    ]
    assert proposal == {
        "id": 1,
        "customer_id": customer_id,
        "idempotency_key": "neg-1",
        "strategy": "PPPL",
        "strategy_name": "Plan de pagos a plazo",
        "state": "proposed",
        "parameters": offer["parameters"] | {"term": 3},
        "adviser": "ana.g",
        "office": "9999",
        "channel": "api",
        "mark_start": "2026-03-02",
        "mark_end": "2026-06-02",
        "currency": "CLP",
        "negotiated": "600001",
        "payment_today": "0",
        "installments_total": "600001",
        "condoned": "0",
        "condoned_by_concept": {},
        "annual_rate": "0",
        "term": 3,
        "exceptions_used": [],
        "debts": [
            {
                "debt": "L-1",
                "open_amount": "600001",
                "overdue_amount": "600001",
                "days_past_due": 60,
                "status": "open",
            }
        ],
        "plan": plan,
        "commitments": [
            {
                "position": 1,
                "kind": "P",
                "due_date": "2026-04-02",
                "amount": "200000",
                "rate": "100.00",
            },
            {
                "position": 2,
                "kind": "P",
                "due_date": "2026-05-02",
                "amount": "200000",
                "rate": "100.00",
            },
            {
                "position": 3,
                "kind": "T",
                "due_date": "2026-06-02",
                "amount": "200001",
                "rate": "100.00",
            },
        ],
        "break_reason": None,
        "reinstated_debt": None,
        "created_by": api.label("acme_operator"),
        "created_at": proposal["created_at"],
        "accepted_at": None,
        "activated_at": None,
        "closed_at": None,
    }
    replay = operator.post("/negotiations", json=body, headers={"Idempotency-Key": "neg-1"})
    assert (replay.status_code, replay.json()) == (200, proposal)
    other = operator.post(
        "/negotiations", json={**body, "strategy": "CNTL"}, headers={"Idempotency-Key": "neg-1"}
    )
    assert_problem(other, 409, "conflict", "key 'neg-1' was already used for another negotiation")

    assert_problem(
        api.client("acme_auditor").post("/negotiations/1/accept"), 403, "permission_denied"
    )
    accepted = operator.post("/negotiations/1/accept")
    assert accepted.status_code == 200, accepted.text
    view = accepted.json()
    assert view["state"] == "accepted"
    assert view["debts"][0]["status"] == "replaced"
    assert view["plan"] == [p | {"status": "open"} for p in plan]
    assert_problem(
        operator.post("/negotiations/1/accept"),
        409,
        "conflict",
        "a accepted negotiation cannot become accepted; allowed: active, broken",
    )
    # Every channel sees the installments as ordinary debts.
    debts = api.client("acme_auditor").get(f"/customers/{customer_id}/debts")
    assert debts.status_code == 200, debts.text
    assert [(d["debt_id"], d["amount"], d["status"]) for d in debts.json()["items"]] == [
        ("L-1", "600001", "replaced"),
        ("NEG1-001", "200000", "open"),
        ("NEG1-002", "200000", "open"),
        ("NEG1-003", "200001", "open"),
    ]

    listing = api.client("acme_auditor").get("/negotiations", params={"state": "accepted"})
    assert listing.status_code == 200
    assert listing.json() == {
        "items": [
            {
                "id": 1,
                "customer_id": customer_id,
                "strategy": "PPPL",
                "state": "accepted",
                "currency": "CLP",
                "negotiated": "600001",
                "payment_today": "0",
                "installments_total": "600001",
                "condoned": "0",
                "channel": "api",
                "created_at": proposal["created_at"],
            }
        ],
        "total": 1,
        "page": 1,
        "page_size": 50,
    }
    assert api.client("acme_auditor").get("/negotiations/1").json() == view
    assert_problem(
        api.client("beta_admin").get("/negotiations/1"), 404, "not_found", "no negotiation 1"
    )
    assert_problem(operator.get("/negotiations/2"), 404, "not_found", "no negotiation 2")
    assert_problem(
        operator.get("/negotiations", params={"state": "lost"}), 422, "validation_failed"
    )


def test_exceptions_need_an_admin(api: Api) -> None:
    customer_id = _setup(api)
    policy = _policy(api)
    grant = {"customer_id": customer_id, "reason": "committee 2026-03", "valid_until": "2026-03-31"}
    denied = api.client("acme_operator").post(
        f"/negotiation-policies/{policy['id']}/exceptions", json=grant
    )
    assert_problem(denied, 403, "permission_denied", "role operator may not do this (needs admin)")
    granted = api.client("acme_admin").post(
        f"/negotiation-policies/{policy['id']}/exceptions", json=grant
    )
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert body == {
        "id": body["id"],
        "customer_id": customer_id,
        "policy_id": policy["id"],
        "policy_name": "plan 30+",
        "exception_name": "EXC_PLAZO_NEGOCIACION",
        "debt": None,
        "reason": "committee 2026-03",
        "granted_by": api.label("acme_admin"),
        "granted_at": body["granted_at"],
        "valid_until": "2026-03-31",
        "negotiation_id": None,
    }
    # The term rule no longer blocks 24 installments for this customer.
    created = api.client("acme_operator").post(
        "/negotiations",
        json={
            "customer_id": customer_id,
            "strategy": "PPPL",
            "debts": ["L-1"],
            "parameters": {"term": 24},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["exceptions_used"] == ["plan 30+"]
    listing = api.client("acme_auditor").get(
        "/policy-exceptions", params={"customer_id": customer_id}
    )
    assert [e["negotiation_id"] for e in listing.json()] == [created.json()["id"]]


def test_profiles_settings_and_components(api: Api) -> None:
    customer_id = _setup(api)
    admin, operator = api.client("acme_admin"), api.client("acme_operator")
    profile = operator.post(
        "/negotiations/profiles",
        json={"customer_id": customer_id, "income": "900000", "personal_expenses": "400000"},
    )
    assert profile.status_code == 201, profile.text
    assert {k: profile.json()[k] for k in ("available_income", "capacity", "capacity_ratio")} == {
        "available_income": "500000",
        "capacity": "150000",
        "capacity_ratio": "0.30",
    }
    assert_problem(
        operator.patch("/negotiations/settings", json={"capacity_ratio": "0.5"}),
        403,
        "permission_denied",
    )
    settings = admin.patch(
        "/negotiations/settings", json={"capacity_ratio": "0.5", "reinstate_on_break": "never"}
    )
    assert settings.status_code == 200, settings.text
    assert settings.json() == {
        "concept_labels": {
            "capital": "Capital",
            "current_interest": "Interés corriente",
            "late_interest": "Interés de mora",
            "insurance": "Seguros",
            "fees": "Comisiones y gastos",
            "other_charges": "Otros cargos",
        },
        "break_after_days": 30,
        "reinstate_on_break": "never",
        "capacity_ratio": "0.5",
    }
    latest = api.client("acme_auditor").get(f"/negotiations/profiles/{customer_id}")
    assert latest.json()["capacity"] == "250000"
    components = operator.put(
        "/debt-components/L-1",
        json={"components": {"capital": "500000", "late_interest": "100001"}},
    )
    assert components.status_code == 200, components.text
    assert components.json() == {
        "debt": "L-1",
        "components": {"capital": "500000", "late_interest": "100001"},
    }
    wrong = operator.put("/debt-components/L-1", json={"components": {"capital": "1"}})
    assert_problem(wrong, 422, "validation_failed", "the concepts add up to 1, the debt is 600001")
    assert_problem(
        operator.put("/debt-components/L-1", json={"components": {"tips": "600001"}}),
        422,
        "validation_failed",
    )
