"""Excepciones and incidentes pages through the real server, on both backends: the queue,
an exception's page with the customer's payable debts, each resolution (apply to chosen
debts, keep as credit, refunded) with its comment, the form's mistakes, the incidents list;
roles, other companies and CSRF."""

from __future__ import annotations

from datetime import date

import pytest

from recaudo.services import incidents
from recaudo.services.context import Role
from tests.e2e.bank import (  # noqa: F401 (the fixture)
    JUANA_RUT,
    OK,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.test_web_imports import cells, web_client


def overpaid(bank: Bank) -> None:
    """A payment of 5250 for a quote of 4000: exception 1, credit 1250."""
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, total="5250")).json() == OK


def test_queue_and_apply_to_chosen_debts(bank: Bank) -> None:
    api = bank.api
    overpaid(bank)
    api.debt(api.acme, bank.people["juana"], "134373", "1000", date(2026, 4, 10))
    api.debt(api.acme, bank.people["juana"], "134374", "800", date(2026, 5, 10))
    operator = web_client(api, Role.OPERATOR)

    queue = operator.get("/excepciones")
    assert queue.status_code == 200
    [row] = cells(queue.text, "exceptions-table")
    assert row[0] == "1"
    assert row[3:] == ["El monto no coincide", "$ 5.250", "$ 1.250", "Abierta"]
    assert (
        "No hay excepciones resueltas."
        in operator.get("/excepciones", params={"estado": "resolved"}).text
    )

    page = operator.get("/excepciones/1")
    assert page.status_code == 200
    assert 'id="exception-credit">$ 1.250<' in page.text
    assert "paid 5250 but the quote was for 4000; credited 1250" in page.text
    # The customer's payable debts, in due-date order, to choose from.
    assert page.text.index('value="134373"') < page.text.index('value="134374"')
    assert 'value="134372"' not in page.text  # paid by this very payment

    no_comment = operator.post("/excepciones/1/resolver", {"resolution": "credit", "comment": "  "})
    assert no_comment.status_code == 422
    assert "No se pudo resolver: a resolution needs a comment of 1 to 500 characters" in (
        no_comment.text
    )
    no_debts = operator.post("/excepciones/1/resolver", {"resolution": "applied", "comment": "x"})
    assert no_debts.status_code == 422
    assert "name the debts to apply the credit to" in no_debts.text
    paid_debt = operator.post(
        "/excepciones/1/resolver",
        {"resolution": "applied", "comment": "x", "debt_ids": "134372"},
    )
    assert paid_debt.status_code == 409
    assert "debt &#39;134372&#39; cannot take payments" in paid_debt.text
    nobody = operator.post("/excepciones/1/resolver", {"resolution": "nada", "comment": "x"})
    assert nobody.status_code == 422

    done = operator._send(
        "POST",
        "/excepciones/1/resolver",
        data={
            "csrf_token": operator.csrf or "",
            "resolution": "applied",
            "comment": "cliente pidió abonar",
            "debt_ids": ["134374", "134373"],
        },
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/excepciones/1"
    page = operator.get("/excepciones/1")
    assert "Excepción 1 resuelta: Aplicar a deudas elegidas." in page.text
    assert 'id="exception-status">Resuelta: Aplicar a deudas elegidas<' in page.text
    assert 'id="exception-credit">$ 0<' in page.text
    assert 'id="exception-comment">cliente pidió abonar<' in page.text
    assert 'action="/excepciones/1/resolver"' not in page.text
    debts = {
        d["debt_id"]: (d["status"], d["open_amount"])
        for d in api.client().get("/debts", params={"page_size": 100}).json()["items"]
    }
    assert (debts["134374"], debts["134373"]) == (("paid", "0"), ("open", "550"))

    again = operator.post("/excepciones/1/resolver", {"resolution": "credit", "comment": "x"})
    assert again.status_code == 409
    assert "exception 1 is already resolved" in again.text
    assert "No hay excepciones abiertas." in operator.get("/excepciones").text


@pytest.mark.parametrize(("resolution", "credit"), [("credit", "$ 1.250"), ("refunded", "$ 0")])
def test_keep_as_credit_or_refunded(bank: Bank, resolution: str, credit: str) -> None:
    overpaid(bank)
    operator = web_client(bank.api, Role.OPERATOR)
    operator.get("/excepciones/1")
    done = operator.post("/excepciones/1/resolver", {"resolution": resolution, "comment": "ok"})
    assert done.status_code == 303
    page = operator.get("/excepciones/1")
    assert f'id="exception-credit">{credit}<' in page.text


def test_incidents_roles_and_csrf(bank: Bank) -> None:
    api = bank.api
    overpaid(bank)
    incidents.record_incident(
        api.uow, api.acme.id, None, "unavailable", "company marked unavailable", api.clock
    )
    incidents.record_incident(api.uow, api.acme.id, None, "internal_error", "boom", api.clock)
    auditor = web_client(api, Role.AUDITOR)
    listing = auditor.get("/incidentes")
    assert listing.status_code == 200
    assert [row[1:] for row in cells(listing.text, "incidents-table")] == [
        ["Error interno", "—", "boom"],
        ["Empresa no disponible", "—", "company marked unavailable"],
    ]
    only = auditor.get("/incidentes", params={"tipo": "internal_error"})
    assert [row[1] for row in cells(only.text, "incidents-table")] == ["Error interno"]

    # The auditor reads, and may not resolve.
    page = auditor.get("/excepciones/1")
    assert page.status_code == 200
    assert 'action="/excepciones/1/resolver"' not in page.text
    refused = auditor.post("/excepciones/1/resolver", {"resolution": "credit", "comment": "x"})
    assert refused.status_code == 403

    cashier = web_client(api, Role.CASHIER)
    for path in ("/excepciones", "/excepciones/1", "/incidentes"):
        assert cashier.get(path).status_code == 403, path

    beta = web_client(api, Role.ADMIN, api.beta)
    assert beta.get("/excepciones/1").status_code == 404
    assert (
        beta.post("/excepciones/1/resolver", {"resolution": "credit", "comment": "x"}).status_code
        == 404
    )
    assert "No hay incidentes." in beta.get("/incidentes").text

    operator = web_client(api, Role.OPERATOR)
    operator.get("/excepciones/1")
    no_token = operator.post(
        "/excepciones/1/resolver", {"resolution": "credit", "comment": "x"}, csrf=False
    )
    assert no_token.status_code == 403
    assert 'id="exception-status">Abierta<' in operator.get("/excepciones/1").text
