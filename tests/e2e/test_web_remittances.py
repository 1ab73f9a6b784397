"""Remesas and devoluciones pages through the real server, on both backends: create, add
payments by filter and one by one, validation errors next to each payment, generation
refused then done, the XML download, marking sent, loading a return file; roles, other
companies and CSRF."""

from __future__ import annotations

import hashlib
import re

from recaudo.adapters.db.tables import Company
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.e2e.test_web_imports import cells, web_client
from tests.e2e.webauth import WebClient
from tests.integration.test_remittances import IBAN_A, IBAN_B, add_account, commit_to, payment_of
from tests.integration.test_returns import pain002


def spanish_company(api: Api) -> Company:
    return create_company(
        api.uow, NewCompany("ong", "Fundación Ejemplo", "ES"), actor=ROOT_ACTOR, clock=api.clock
    )


class Books:
    """A Spanish company with a creditor account and three March payments by direct debit,
    one of them for a debtor whose name cannot be written in SEPA's character set."""

    def __init__(self, api: Api) -> None:
        self.ong = spanish_company(api)
        self.account = add_account(api.uow, self.ong, api.clock)
        ana = api.customer(self.ong, "12345678Z", "Ana Núñez")
        bruno = api.customer(self.ong, "11111111H", "Bruno Díaz")
        emoji = api.customer(self.ong, "33333333P", "Dani 😀 Ruiz")
        self.ana = payment_of(
            api.uow,
            commit_to(api.uow, self.ong, ana.id, "10.00", api.clock, ROOT_ACTOR, iban=IBAN_A),
        )
        self.bruno = payment_of(
            api.uow,
            commit_to(api.uow, self.ong, bruno.id, "25.50", api.clock, ROOT_ACTOR, iban=IBAN_B),
        )
        self.dani = payment_of(
            api.uow,
            commit_to(api.uow, self.ong, emoji.id, "14.00", api.clock, ROOT_ACTOR, iban=IBAN_B),
        )


def create(client: WebClient, account: int, name: str = "Cuotas marzo") -> str:
    client.get("/remesas")
    created = client.post(
        "/remesas",
        {
            "name": name,
            "kind": "direct_debit",
            "charge_date": "2026-03-06",
            "account": str(account),
        },
    )
    assert created.status_code == 303, created.text
    location: str = created.headers["location"]
    return location


def row_of(html: str, payment_id: int) -> str:
    found = re.search(rf'<tr id="payment-{payment_id}".*?</tr>', html, re.S)
    assert found is not None, f"no row for payment {payment_id}"
    return found.group(0)


def test_remittance_workflow(api: Api) -> None:
    books = Books(api)
    operator = web_client(api, Role.OPERATOR, books.ong)

    listing = operator.get("/remesas")
    assert listing.status_code == 200
    assert "No hay remesas." in listing.text
    assert f'<option value="{books.account}"' in listing.text

    url = create(operator, books.account)
    assert url == "/remesas/1"
    detail = operator.get(url)
    assert "Remesa «Cuotas marzo» creada. Agregue sus pagos." in detail.text
    assert 'id="remittance-state">Abierta<' in detail.text
    assert "La remesa todavía no tiene pagos." in detail.text

    # By filter: every March payment of the kind's method that is free.
    added = operator.post(url + "/pagos", {"how": "filter", "due_month": "2026-03"})
    assert added.status_code == 303
    detail = operator.get(url)
    assert "3 pago(s) agregado(s)." in detail.text
    assert 'id="remittance-count">3<' in detail.text
    assert 'id="remittance-total">49,50 €<' in detail.text

    # One by one: already in it.
    again = operator.post(url + "/pagos", {"how": "one", "payment_id": str(books.ana.id)})
    assert again.status_code == 409
    assert f"payment {books.ana.id} is already in remittance 1" in again.text
    unknown = operator.post(url + "/pagos", {"how": "one", "payment_id": "999"})
    assert unknown.status_code == 422
    assert "no commitment payment 999" in unknown.text

    # Validation: the error is on the payment's own row; the warning about addresses,
    # which names no payment, is above the table.
    checked = operator.post(url + "/validar")
    assert checked.status_code == 303
    detail = operator.get(url)
    assert (
        "La remesa tiene 1 error(es) que impiden generarla y 1 advertencia(s): se muestran "
        "junto a cada pago." in detail.text
    )
    bad_row = row_of(detail.text, books.dani.id)
    assert 'class="has-error"' in bad_row
    assert 'data-code="invalid_name"' in bad_row
    assert "Error: Nombre con caracteres no admitidos en SEPA." in bad_row
    assert f"payment {books.dani.id}: " in bad_row
    for good in (books.ana, books.bruno):
        assert "finding" not in row_of(detail.text, good.id)
    general = re.search(r'<ul class="findings" id="general-findings">.*?</ul>', detail.text, re.S)
    assert general is not None
    assert 'data-code="debtor_without_address"' in general.group(0)

    # Generation is refused while the error stands, and the page says why.
    refused = operator.post(url + "/generar")
    assert refused.status_code == 422
    assert "has 1 blocking error" in refused.text
    assert 'data-code="invalid_name"' in row_of(refused.text, books.dani.id)
    assert operator.get(url + "/archivo").status_code == 409

    # Out with it, validate again, generate.
    removed = operator.post(f"{url}/pagos/{books.dani.id}/quitar")
    assert removed.status_code == 303
    assert operator.post(url + "/validar").status_code == 303
    detail = operator.get(url)
    assert "Validación correcta: sin errores, 1 advertencia(s)." in detail.text
    api.clock.advance(minutes=5)
    generated = operator.post(url + "/generar")
    assert generated.status_code == 303, generated.text
    detail = operator.get(url)
    message_id = "RCD-1-20260302130500"
    assert f"Archivo {message_id}.xml generado: 2 pago(s) remesado(s)." in detail.text
    assert 'id="remittance-state">Generada<' in detail.text
    assert [row[5] for row in cells(detail.text, "remittance-payments")] == ["Remesado"] * 2

    download = operator.get(url + "/archivo")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/xml"
    assert download.headers["content-disposition"] == f'attachment; filename="{message_id}.xml"'
    assert download.headers["etag"] == f'"{hashlib.sha256(download.content).hexdigest()}"'
    assert download.content.startswith(b"<?xml")
    assert f"<MsgId>{message_id}</MsgId>".encode() in download.content
    assert b"<NbOfTxs>2</NbOfTxs>" in download.content

    sent = operator.post(url + "/enviada")
    assert sent.status_code == 303
    detail = operator.get(url)
    assert "Remesa marcada como enviada al banco: sus pagos quedan pagados." in detail.text
    assert 'id="remittance-state">Enviada<' in detail.text
    assert operator.post(url + "/enviada").status_code == 409

    # The bank returns Ana's debit: the return file's page says what happened to it.
    operator.get("/devoluciones")
    data = pain002(message_id, [(books.ana.end_to_end_id, "AM04", "10.00")])
    loaded = operator._send(
        "POST",
        "/devoluciones",
        data={"csrf_token": operator.csrf or ""},
        files={"file": ("rechazos.xml", data, "application/xml")},
    )
    assert loaded.status_code == 303, loaded.text
    assert loaded.headers["location"] == "/devoluciones/1"
    outcome = operator.get("/devoluciones/1")
    assert "Archivo rechazos.xml cargado: 1 pago(s) devuelto(s)." in outcome.text
    assert cells(outcome.text, "return-items") == [
        [
            books.ana.end_to_end_id,
            str(books.ana.id),
            "AM04: Saldo insuficiente",
            "10,00 €",
            "A recuperar (se puede volver a remesar)",
            "A recuperar",
        ]
    ]
    # The same bytes again change nothing.
    twice = operator._send(
        "POST",
        "/devoluciones",
        data={"csrf_token": operator.csrf or ""},
        files={"file": ("otra-vez.xml", data, "application/xml")},
    )
    assert twice.headers["location"] == "/devoluciones/1"
    shown = operator.get("/devoluciones/1").text
    assert "Este archivo ya se había cargado: no cambió nada." in shown
    garbage = operator._send(
        "POST",
        "/devoluciones",
        data={"csrf_token": operator.csrf or ""},
        files={"file": ("basura.xml", b"<nada/>", "application/xml")},
    )
    assert garbage.status_code == 422
    assert "No se pudo cargar el archivo: the return file was refused" in garbage.text


def test_remittance_roles_companies_and_csrf(api: Api) -> None:
    books = Books(api)
    operator = web_client(api, Role.OPERATOR, books.ong)
    url = create(operator, books.account)

    auditor = web_client(api, Role.AUDITOR, books.ong)
    page = auditor.get(url)
    assert page.status_code == 200
    assert 'id="validate-button"' not in page.text
    assert "Agregar pagos" not in page.text
    for action in ("/validar", "/generar", "/enviada", "/pagos"):
        assert auditor.post(url + action, {"how": "filter"}).status_code == 403, action
    assert auditor.post("/remesas", {"name": "x"}).status_code == 403

    cashier = web_client(api, Role.CASHIER, books.ong)
    for path in ("/remesas", url, "/devoluciones"):
        assert cashier.get(path).status_code == 403, path

    # Acme's administrator does not see Ong's remittance.
    acme = web_client(api, Role.ADMIN)
    assert acme.get(url).status_code == 404
    assert acme.post(url + "/validar").status_code == 404
    assert acme.get(url + "/archivo").status_code == 404

    # Without the CSRF token nothing changes.
    refused = operator.post(url + "/pagos", {"how": "filter"}, csrf=False)
    assert refused.status_code == 403
    assert 'id="remittance-count">0<' in operator.get(url).text
    assert operator.post("/remesas", {"name": "x"}, csrf=False).status_code == 403

    # The form's own mistakes.
    bad = operator.post(
        "/remesas",
        {"name": "", "kind": "direct_debit", "charge_date": "2026-03-06", "account": "1"},
    )
    assert bad.status_code == 422
    assert "No se pudo crear la remesa: the name must have 1 to 100 characters" in bad.text
    no_date = operator.post("/remesas", {"name": "x", "kind": "direct_debit", "account": "1"})
    assert no_date.status_code == 422
    assert "indique la fecha de cargo (aaaa-mm-dd)" in no_date.text
