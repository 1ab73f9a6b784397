"""Checkout through the real server and the simulated provider (a real local HTTP service):
the admin API, the hosted page for each outcome (approve, decline, fail, never answer), and
the company-application API with its signed confirmation received by a real HTTP server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from recaudo.adapters.db.tables import Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.payment_provider import HttpPaymentProvider
from recaudo.adapters.payment_provider_sim import ProviderSimulator
from recaudo.adapters.webhooks import HttpSender, verify_signature
from recaudo.bootstrap import Container
from recaudo.services import checkout_payments as pay
from recaudo.services.companies import NewCompany, create_company, issue_api_key
from recaudo.services.context import Actor, Role
from tests.conftest import FrozenClock
from tests.e2e.conftest import Server
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import running_receiver

ROOT = Actor("test:root", Role.ADMIN)


@dataclass
class Checkout:
    url: str
    sim: ProviderSimulator
    provider: HttpPaymentProvider
    api: httpx.Client
    browser: httpx.Client
    uow: UnitOfWork
    clock: FrozenClock
    company_id: int
    company: Company


@pytest.fixture
def co(
    serve: Callable[[Callable[[FastAPI], None] | None], tuple[Server, Container]],
    uow: UnitOfWork,
    clock: FrozenClock,
) -> Iterator[Checkout]:
    sim = ProviderSimulator()
    sim.start()
    provider = HttpPaymentProvider(sim.url, timeout_s=2)

    def hook(app: FastAPI) -> None:
        app.state.checkout_provider = provider

    company = create_company(
        uow, NewCompany("uni", "Universidad Ejemplo", "CO"), actor=ROOT, clock=clock
    )
    key = issue_api_key(uow, "uni", Role.ADMIN, actor=ROOT, clock=clock).secret
    server, _ = serve(hook)
    api = httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    browser = httpx.Client(base_url=server.url, timeout=30)
    yield Checkout(server.url, sim, provider, api, browser, uow, clock, company.id, company)
    api.close()
    browser.close()
    sim.stop()


def _setup_service(co: Checkout, **params: object) -> dict[str, object]:
    ids = []
    for body in (
        {"title": "Tipo", "kind": "customer_id_type"},
        {"title": "Documento", "kind": "customer_id", "help_text": "Sin puntos"},
        {"title": "Periodo", "kind": "integer"},
    ):
        r = co.api.post("/checkout/fields", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    body = {"code": "MAT", "name": "Matrícula", "section": "Matrículas", **params}
    r = co.api.post("/checkout/services", json=body)
    assert r.status_code == 201, r.text
    r = co.api.put(
        "/checkout/services/MAT/fields",
        json=[
            {"field_id": ids[0], "required": True, "fixed_value": "CC", "read_only": True},
            {"field_id": ids[1], "required": True, "double_payment_control": True},
            {"field_id": ids[2], "required": True, "forced_length": "6"},
        ],
    )
    assert r.status_code == 200, r.text
    service: dict[str, object] = r.json()
    return service


def test_admin_api(co: Checkout) -> None:
    service = _setup_service(
        co, price_kind="fixed", fixed_price="150000.00", vat_percent="19", max_retries=3
    )
    assert {
        k: service[k] for k in ("code", "section", "price_kind", "fixed_price", "vat_percent")
    } == {
        "code": "MAT",
        "section": "Matrículas",
        "price_kind": "fixed",
        "fixed_price": "150000.00",
        "vat_percent": "19.00",
    }
    assert [f["field"]["title"] for f in service["fields"]] == ["Tipo", "Documento", "Periodo"]  # type: ignore[attr-defined,index]
    r = co.api.patch("/checkout/services/MAT", json={"double_payment": "refuse", "overdue_days": 5})
    assert (r.status_code, r.json()["double_payment"], r.json()["overdue_days"]) == (
        200,
        "refuse",
        5,
    )
    r = co.api.post("/checkout/services/MAT/pins", json={"pins": ["P1", "P2"]})
    assert (r.json()["pins_total"], r.json()["pins_free"]) == (2, 2)
    r = co.api.put("/checkout/services/MAT/fields", json=[{"field_id": 1, "forced_length": "7-3"}])
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"
    r = co.api.post("/checkout/services", json={"code": "MAT", "name": "Otra"})
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    r = co.api.get("/checkout/services/NOPE")
    assert r.status_code == 404
    assert [s["code"] for s in co.api.get("/checkout/services").json()] == ["MAT"]


def _pay_through_page(co: Checkout, outcome: str, doc: str = "1020304050") -> str:
    """Form -> ticket page -> provider -> back; answers the ticket page's token."""
    page = co.browser.get("/pagar/uni")
    assert page.status_code == 200 and 'href="/pagar/uni/MAT"' in page.text
    form = co.browser.get("/pagar/uni/MAT")
    assert form.status_code == 200 and "Documento *" in form.text and "Sin puntos" in form.text
    r = co.browser.post(
        "/pagar/uni/MAT",
        data={"ref0": "XX", "ref1": doc, "ref2": "202601", "payer_email": "ana@example.co"},
    )
    assert r.status_code == 303, r.text
    token = r.headers["location"].rsplit("/", 1)[1]
    ticket = co.browser.get(f"/pagar/t/{token}")
    assert ticket.status_code == 200
    assert '<option value="1007">BANCOLOMBIA</option>' in ticket.text
    r = co.browser.post(f"/pagar/t/{token}", data={"means": "PSE", "bank": "1007"})
    assert r.status_code == 303
    bank_url = r.headers["location"]
    assert bank_url.startswith(co.sim.url + "/pse/")
    bank = httpx.get(bank_url)
    assert "Banco simulado" in bank.text
    r = httpx.post(bank_url, data={"outcome": outcome})
    if outcome == "abandon":
        assert r.status_code == 200
        return token
    assert r.status_code == 303 and r.headers["location"] == f"{co.url}/pagar/t/{token}/retorno"
    back = co.browser.get(r.headers["location"])
    assert back.status_code == 303 and back.headers["location"] == f"/pagar/t/{token}"
    return token


@pytest.mark.parametrize(
    ("outcome", "state", "shown"),
    [
        ("approve", "OK", "Aprobada"),
        ("decline", "NOT_AUTHORIZED", "Rechazada"),
        ("fail", "FAILED", "Fallida"),
    ],
)
def test_hosted_page_each_outcome(co: Checkout, outcome: str, state: str, shown: str) -> None:
    _setup_service(
        co, price_kind="fixed", fixed_price="150000.00", vat_percent="19", assigns_pins=True
    )
    co.api.post("/checkout/services/MAT/pins", json={"pins": ["PIN-0001"]})
    token = _pay_through_page(co, outcome)
    receipt = co.browser.get(f"/pagar/t/{token}")
    assert f'<dd id="estado">{shown}</dd>' in receipt.text
    view = pay.by_token(co.uow, token)
    assert (view.state, view.amount_minor, view.vat_minor, view.references) == (
        state,
        178_500_00,
        28_500_00,
        (("Tipo", "CC"), ("Documento", "1020304050"), ("Periodo", "202601")),
    )
    if state == "OK":
        assert view.trace_code is not None and re.fullmatch(r"1007\d{20}", view.trace_code)
        assert f'<dd id="cus">{view.trace_code}</dd>' in receipt.text
        assert '<dd id="pin">PIN-0001</dd>' in receipt.text
        assert view.bank == "BANCOLOMBIA"
    else:
        assert "Reintentar el pago" in receipt.text
        r = co.browser.post(f"/pagar/t/{token}/reintentar")
        assert r.status_code == 303
        retry = pay.by_token(co.uow, r.headers["location"].rsplit("/", 1)[1])
        assert (retry.state, retry.attempt) == ("CREATED", 2)


def test_provider_never_answers_ends_failed_or_expired(co: Checkout) -> None:
    _setup_service(co, price_kind="open", timeout_minutes=20)
    r = co.browser.post(
        "/pagar/uni/MAT", data={"ref1": "1020304050", "ref2": "202601", "amount": "5000"}
    )
    abandoned_before_bank = r.headers["location"].rsplit("/", 1)[1]
    token = _pay_through_page_open(co)
    assert pay.by_token(co.uow, token).state == "PENDING"
    co.clock.advance(minutes=21)
    report = pay.expire_due(co.uow, co.provider, clock=co.clock)
    assert report == pay.ExpiryReport(expired=1, settled=0, failed=1)
    assert pay.by_token(co.uow, token).state == "FAILED"
    assert pay.by_token(co.uow, abandoned_before_bank).state == "EXPIRED"
    # And when the provider's status endpoint itself hangs: FAILED too, within its timeout.
    token2 = _pay_through_page_open(co, doc="1020304051")
    co.sim.state.hang_status = True
    co.clock.advance(minutes=21)
    assert pay.expire_due(co.uow, co.provider, clock=co.clock) == pay.ExpiryReport(0, 0, 1)
    assert pay.by_token(co.uow, token2).state == "FAILED"


def _pay_through_page_open(co: Checkout, doc: str = "1020304050") -> str:
    r = co.browser.post("/pagar/uni/MAT", data={"ref1": doc, "ref2": "202601", "amount": "5000,50"})
    assert r.status_code == 303, r.text
    token = r.headers["location"].rsplit("/", 1)[1]
    assert pay.by_token(co.uow, token).amount_minor == 5000_50
    r = co.browser.post(f"/pagar/t/{token}", data={"means": "PSE", "bank": "1051"})
    assert httpx.post(r.headers["location"], data={"outcome": "abandon"}).status_code == 200
    return token


def test_form_errors_are_shown_next_to_each_field(co: Checkout) -> None:
    _setup_service(co, price_kind="open", min_amount="1000")
    r = co.browser.post(
        "/pagar/uni/MAT",
        data={"ref1": "12a", "ref2": "2026", "amount": "500", "payer_email": "x"},
    )
    assert r.status_code == 422
    assert "Documento: un documento CC tiene solo dígitos" in r.text
    assert "Periodo: debe tener exactamente 6 caracteres" in r.text
    assert 'value="12a"' in r.text  # what was typed stays
    r = co.browser.post(
        "/pagar/uni/MAT", data={"ref1": "1020304050", "ref2": "202601", "amount": "500"}
    )
    assert r.status_code == 422 and "el valor es menor que el mínimo" in r.text
    r = co.browser.post(
        "/pagar/uni/MAT",
        data={"ref1": "1020304050", "ref2": "202601", "amount": "5000", "payer_email": "x@"},
    )
    assert r.status_code == 422 and "Correo del pagador: debe ser un correo válido" in r.text


def test_company_application_api_with_signed_confirmation(co: Checkout) -> None:
    _setup_service(co, price_kind="fixed", fixed_price="150000.00", vat_percent="19")
    secret = co.api.get("/checkout/services/MAT/confirmation-secret").json()["secret"]
    with running_receiver() as receiver:
        r = co.api.post(
            "/checkout/transactions",
            json={
                "service_code": "MAT",
                "references": ["CC", "12a", "2026"],
                "currency": "COP",
            },
        )
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "references[1]", "message": "Documento: un documento CC tiene solo dígitos"},
            {"field": "references[2]", "message": "Periodo: debe tener exactamente 6 caracteres"},
        ]
        r = co.api.post(
            "/checkout/transactions",
            json={
                "service_code": "MAT",
                "references": ["CC", "1020304050", "202601"],
                "amount": "150000.00",
                "vat": "1.00",
                "currency": "COP",
            },
        )
        assert (r.status_code, r.json()["errors"]) == (
            422,
            [{"field": "vat", "message": "impuesto incorrecto"}],
        )
        r = co.api.post(
            "/checkout/transactions",
            json={
                "service_code": "MAT",
                "references": ["CC", "1020304050", "202601"],
                "amount": "150000.00",
                "vat": "28500.00",
                "currency": "COP",
                "redirect_url": "https://app.example.co/vuelta",
                "confirmation_url": receiver.url + "/confirmacion",
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        token = body["payment_url"].rsplit("/", 1)[1]
        assert body == {
            "return_code": "OK",
            "ticket_id": 1,
            "state": "CREATED",
            "payment_url": f"{co.url}/pagar/t/{token}",
            "service_code": "MAT",
            "references": ["CC", "1020304050", "202601"],
            "amount": "178500.00",
            "vat": "28500.00",
            "currency": "COP",
            "means": None,
            "bank": None,
            "trace_code": None,
            "pin": None,
            "created_at": body["created_at"],
            "finished_at": None,
        }
        r = co.browser.post(f"/pagar/t/{token}", data={"means": "CARD"})
        r = httpx.post(r.headers["location"], data={"outcome": "approve"})
        co.browser.get(r.headers["location"])
        receipt = co.browser.get(f"/pagar/t/{token}")
        assert 'href="https://app.example.co/vuelta"' in receipt.text
        state = co.api.get("/checkout/transactions/1").json()
        assert (state["state"], state["means"]) == ("OK", "CARD")
        receiver.fail_next = 1
        sender = HttpSender(allow_private=True, timeout_s=5)
        first = pay.deliver_confirmations(co.uow, sender, clock=co.clock)
        assert first == pay.ConfirmationReport(0, 1, 0)
        co.clock.advance(seconds=11)
        assert pay.deliver_confirmations(co.uow, sender, clock=co.clock) == pay.ConfirmationReport(
            1, 0, 0
        )
        posts = receiver.posts
        assert len(posts) == 2 and posts[1].path == "/confirmacion"
        got = posts[1]
        assert verify_signature(
            secret, got.headers["Recaudo-Signature"], got.body, now=co.clock.now.timestamp()
        )
        assert got.headers["Recaudo-Event"] == "checkout.transaction.final"
        assert b'"ticket_id":1,"state":"OK"' in got.body
    assert co.api.get("/checkout/transactions/2").status_code == 404


def test_portfolio_service_shows_the_debts_it_pays(co: Checkout) -> None:
    _setup_service(co, price_kind="portfolio", partial_payment=True)
    company = co.company
    customer = add_customer(co.uow, company, "1020304050", "Ana Gómez", co.clock)
    add_debt(co.uow, company, customer, "CUOTA-1", "80000.00", date(2026, 3, 10), co.clock)
    add_debt(co.uow, company, customer, "CUOTA-2", "80000.00", date(2026, 4, 10), co.clock)
    r = co.browser.post("/pagar/uni/MAT", data={"ref1": "1020304050", "ref2": "202601"})
    assert r.status_code == 303, r.text
    page = co.browser.get(r.headers["location"])
    assert '<dd id="deudas">CUOTA-1, CUOTA-2</dd>' in page.text
    assert "<dt>Valor</dt><dd>$ 160.000,00</dd>" in page.text
    partial = co.browser.post(
        "/pagar/uni/MAT", data={"ref1": "1020304050", "ref2": "202601", "amount": "50000"}
    )
    token = partial.headers["location"].rsplit("/", 1)[1]
    assert pay.by_token(co.uow, token).amount_minor == 50_000_00
    unknown = co.browser.post("/pagar/uni/MAT", data={"ref1": "99999999", "ref2": "202601"})
    assert unknown.status_code == 422
    assert "No encontramos deudas pendientes con estas referencias." in unknown.text
