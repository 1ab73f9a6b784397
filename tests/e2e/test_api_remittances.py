"""Remittances and returns through the real HTTP server, on both backends."""

from __future__ import annotations

import hashlib
import re
from datetime import date

from lxml import etree
from pydantic import SecretStr

from recaudo.adapters.card_gateway_sim import SimulatorServer
from recaudo.adapters.db.tables import Company
from recaudo.formats import sepa_write
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, Api, assert_problem
from tests.integration.test_remittances import (
    CREDITOR_ID,
    IBAN_A,
    IBAN_B,
    add_account,
    commit_to,
    payment_of,
)
from tests.integration.test_returns import pain002


def spanish_company(api: Api) -> Company:
    ong = create_company(
        api.uow, NewCompany("ong", "Fundación Ejemplo", "ES"), actor=ROOT_ACTOR, clock=api.clock
    )
    api.issue(ong, Role.ADMIN, "ong_admin")
    api.issue(ong, Role.OPERATOR, "ong_operator")
    api.issue(ong, Role.AUDITOR, "ong_auditor")
    return ong


def test_direct_debit_remittance_over_http(api: Api) -> None:
    ong = spanish_company(api)
    account = add_account(api.uow, ong, api.clock)
    ana = api.customer(ong, "12345678Z", "Ana Núñez")
    bruno = api.customer(ong, "11111111H", "Bruno Díaz")
    first = commit_to(api.uow, ong, ana.id, "10.00", api.clock, ROOT_ACTOR, iban=IBAN_A)
    second = commit_to(api.uow, ong, bruno.id, "25.50", api.clock, ROOT_ACTOR, iban=IBAN_B)
    operator = api.client("ong_operator")

    created = operator.post(
        "/remittances",
        json={
            "name": "Cuotas marzo",
            "kind": "direct_debit",
            "charge_date": "2026-03-06",
            "creditor_account_id": account,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    rid = body["id"]
    assert body == {
        "id": rid,
        "name": "Cuotas marzo",
        "kind": "direct_debit",
        "state": "open",
        "charge_date": "2026-03-06",
        "creditor_account_id": account,
        "currency": "EUR",
        "payment_count": 0,
        "payments_total": "0.00",
        "message_id": None,
        "file_version": None,
        "file_name": None,
        "sha256": None,
        "transaction_count": 0,
        "control_sum": "0.00",
        "errors": [],
        "warnings": [],
        "generated_at": None,
        "sent_at": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }

    added = operator.post(f"/remittances/{rid}/payments", json={"filter": {"due_month": "2026-03"}})
    assert added.status_code == 200, added.text
    assert (added.json()["added"], added.json()["remittance"]["payments_total"]) == (2, "35.50")
    both = operator.post(f"/remittances/{rid}/payments", json={"payment_id": 1, "filter": {}})
    assert_problem(both, 422, "invalid_request")

    checked = operator.post(f"/remittances/{rid}/validate")
    assert checked.status_code == 200, checked.text
    warning = {
        "severity": "warning",
        "code": "debtor_without_address",
        "message": "2 debtor(s) have no postal address: the file carries none (banks outside "
        "the EEA need it)",
        "payment_id": None,
    }
    assert {k: v for k, v in checked.json().items() if k != "remittance"} == {
        "ok": True,
        "error_count": 0,
        "warning_count": 1,
        "errors": [],
        "warnings": [warning],
    }

    # Read-only keys and other companies.
    auditor = api.client("ong_auditor")
    assert_problem(auditor.post(f"/remittances/{rid}/generate"), 403, "permission_denied")
    assert_problem(api.client("acme_admin").get(f"/remittances/{rid}"), 404, "not_found")
    assert_problem(operator.get(f"/remittances/{rid}/file"), 409, "conflict")

    api.clock.advance(minutes=5)
    generated = operator.post(f"/remittances/{rid}/generate")
    assert generated.status_code == 200, generated.text
    out = generated.json()
    message_id = f"RCD-{rid}-20260302130500"
    assert out == {
        **body,
        "state": "generated",
        "payment_count": 2,
        "payments_total": "35.50",
        "message_id": message_id,
        "file_version": "pain.008.001.08",
        "file_name": f"{message_id}.xml",
        "sha256": out["sha256"],
        "transaction_count": 2,
        "control_sum": "35.50",
        "warnings": [warning],
        "generated_at": out["generated_at"],
        "updated_at": out["updated_at"],
    }
    # The frozen clock ticks a microsecond per reading.
    assert re.fullmatch(r"2026-03-02T13:05:00\.\d{6}Z", out["generated_at"])
    assert auditor.get(f"/remittances/{rid}").json() == out

    download = auditor.get(f"/remittances/{rid}/file")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/xml"
    assert download.headers["content-disposition"] == f'attachment; filename="{message_id}.xml"'
    assert download.headers["etag"] == f'"{out["sha256"]}"'
    assert hashlib.sha256(download.content).hexdigest() == out["sha256"]
    sepa_write.validate_xml(download.content, "pain.008.001.08")
    doc = etree.fromstring(download.content)
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}
    assert doc.findtext(".//p:CdtrSchmeId//p:Othr/p:Id", namespaces=ns) == CREDITOR_ID
    assert [e.text for e in doc.iterfind(".//p:InstdAmt", ns)] == ["10.00", "25.50"]
    cached = auditor.get(
        f"/remittances/{rid}/file", headers={"If-None-Match": download.headers["etag"]}
    )
    assert (cached.status_code, cached.content) == (304, b"")

    sent = operator.post(f"/remittances/{rid}/sent")
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "sent"
    assert_problem(operator.post(f"/remittances/{rid}/sent"), 409, "conflict")

    listing = auditor.get("/remittances", params={"state": "sent"})
    assert [r["id"] for r in listing.json()["items"]] == [rid]
    assert auditor.get("/remittances", params={"state": "open"}).json()["total"] == 0

    # A return file about it: raw XML, then again (nothing changes), then multipart.
    p1, p2 = payment_of(api.uow, first), payment_of(api.uow, second)
    data = pain002(message_id, [(p1.end_to_end_id, "AM04", "10.00")])
    loaded = operator.post(
        "/returns",
        content=data,
        headers={"Content-Type": "application/xml"},
        params={"file_name": "rechazos.xml"},
    )
    assert loaded.status_code == 201, loaded.text
    result = loaded.json()
    assert result == {
        "id": result["id"],
        "kind": "pain.002",
        "message_id": "RPT-1",
        "file_name": "rechazos.xml",
        "sha256": hashlib.sha256(data).hexdigest(),
        "remittance_id": rid,
        "returned_count": 1,
        "loaded_at": result["loaded_at"],
        "loaded_by": api.label("ong_operator"),
        "items": [
            {
                "end_to_end_id": p1.end_to_end_id,
                "payment_id": p1.id,
                "reason_code": "AM04",
                "reason": "Saldo insuficiente",
                "amount": "10.00",
                "currency": "EUR",
                "outcome": "to_recover",
                "status": "to_recover",
            }
        ],
        "created": True,
    }
    again = operator.post("/returns", files={"file": ("otra.xml", data, "application/xml")})
    assert again.status_code == 200, again.text
    assert again.json() == {**result, "created": False}
    assert payment_of(api.uow, second).status == "paid"
    assert p2.status == "paid"

    detail = auditor.get(f"/returns/{result['id']}")
    assert detail.json() == {k: v for k, v in result.items() if k != "created"}
    assert [f["id"] for f in auditor.get("/returns").json()["items"]] == [result["id"]]
    assert_problem(api.client("acme_admin").get(f"/returns/{result['id']}"), 404, "not_found")

    bad = operator.post(
        "/returns", content=b"<Document/>", headers={"Content-Type": "application/xml"}
    )
    problem = assert_problem(bad, 422, "return_file_refused")
    assert problem["detail"].startswith("the return file was refused: ")
    assert_problem(
        operator.post("/returns", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_blocking_errors_and_card_charge_over_http(api: Api) -> None:
    ong = spanish_company(api)
    account = add_account(api.uow, ong, api.clock)
    ana = api.customer(ong, "12345678Z", "Ana Núñez")
    commit_to(api.uow, ong, ana.id, "10.00", api.clock, ROOT_ACTOR, iban=IBAN_A)
    card = commit_to(
        api.uow, ong, ana.id, "7.00", api.clock, ROOT_ACTOR, method="card",
        card_token="tok_visa_ana", concept="Cuota tarjeta",
    )  # fmt: skip
    admin = api.client("ong_admin")
    early = admin.post(
        "/remittances",
        json={
            "name": "Demasiado pronto",
            "kind": "direct_debit",
            "charge_date": "2026-03-03",
            "creditor_account_id": account,
        },
    ).json()
    admin.post(f"/remittances/{early['id']}/payments", json={"filter": {}})
    refused = admin.post(f"/remittances/{early['id']}/generate")
    problem = assert_problem(
        refused,
        422,
        "remittance_invalid",
        f"remittance {early['id']} has 1 blocking error(s): charge date 2026-03-03 is too "
        "early: with 2 TARGET2 business day(s) of lead time the earliest is 2026-03-04",
    )
    assert problem["error_count"] == 1
    shown = admin.get(f"/remittances/{early['id']}").json()
    assert (shown["state"], [e["code"] for e in shown["errors"]]) == (
        "open",
        ["charge_date_too_early"],
    )

    cards = admin.post(
        "/remittances",
        json={
            "name": "Tarjetas",
            "kind": "card",
            "charge_date": date(2026, 3, 2).isoformat(),
            "creditor_account_id": account,
        },
    ).json()
    assert (
        admin.post(f"/remittances/{cards['id']}/payments", json={"filter": {}}).json()["added"] == 1
    )
    assert_problem(
        admin.post(f"/remittances/{cards['id']}/charge"),
        409,
        "conflict",
        "no card gateway is configured (RECAUDO_CARD_GATEWAY_URL): card remittances cannot "
        "be charged",
    )
    sim = SimulatorServer(api_key="k")
    sim.start()
    try:
        api.container.settings.card_gateway_url = sim.url
        api.container.settings.card_gateway_key = SecretStr("k")
        charged = admin.post(f"/remittances/{cards['id']}/charge")
    finally:
        sim.stop()
    assert charged.status_code == 200, charged.text
    paid = payment_of(api.uow, card)
    reference = (
        "sim_" + hashlib.sha256(f"{paid.end_to_end_id}-R{cards['id']}".encode()).hexdigest()[:24]
    )
    result = charged.json()
    assert {k: v for k, v in result.items() if k != "remittance"} == {
        "paid": 1,
        "rejected": 0,
        "expired": 0,
        "lines": [
            {
                "payment_id": paid.id,
                "end_to_end_id": paid.end_to_end_id,
                "amount": "7.00",
                "status": "paid",
                "gateway_reference": reference,
                "gateway_message": "Autorizada",
                "commitment_ended": False,
            }
        ],
    }
    assert (result["remittance"]["state"], result["remittance"]["control_sum"]) == ("sent", "7.00")
    assert paid.gateway_reference == reference
