"""Remesas in Chromium: create a direct-debit remittance, add the month's payments by a
filter, validate — the error is shown in the row of the payment it is about —, take that
payment out, generate and download the XML. Screenshot of the remittance page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.services.context import Role
from tests.browser.conftest import sign_in
from tests.e2e.conftest import Api
from tests.e2e.test_web_remittances import Books
from tests.e2e.webauth import add_user

Shot = Callable[[Page, str], Path | None]


def test_validation_errors_next_to_each_payment(
    page: Page, api: Api, screenshot: Shot, tmp_path: Path
) -> None:
    books = Books(api)
    add_user(api.uow, api.clock, books.ong, Role.OPERATOR, "olga@ong.es", name="Olga Díaz")
    sign_in(page, "olga@ong.es")
    page.get_by_role("link", name="Remesas").click()
    expect(page.get_by_role("heading", name="Remesas", exact=True)).to_be_visible()

    new = page.get_by_role("region", name="Nueva remesa")
    new.get_by_label("Nombre").fill("Cuotas marzo")
    new.get_by_label("Tipo").select_option("direct_debit")
    new.get_by_label("Fecha de cargo").fill("2026-03-06")
    new.get_by_role("button", name="Crear remesa").click()
    expect(page).to_have_url(re.compile(r"/remesas/1$"))
    expect(page.get_by_role("heading", name="Remesa 1: Cuotas marzo")).to_be_visible()

    page.get_by_label("Mes de vencimiento").fill("2026-03")
    page.get_by_role("button", name="Agregar todos los que cumplen el filtro").click()
    expect(page.get_by_text("3 pago(s) agregado(s).")).to_be_visible()
    expect(page.locator("#remittance-total")).to_have_text("49,50 €")

    page.get_by_role("button", name="Validar").click()
    expect(page.locator("#validation-summary")).to_contain_text(
        "1 error(es) que impiden generar el archivo y 1 advertencia(s)."
    )
    bad = page.locator(f"#payment-{books.dani.id}")
    expect(bad).to_have_class("has-error")
    expect(bad.get_by_role("list", name=f"Observaciones del pago {books.dani.id}")).to_contain_text(
        "Error: Nombre con caracteres no admitidos en SEPA."
    )
    for good in (books.ana, books.bruno):
        expect(page.locator(f"#payment-{good.id} .finding")).to_have_count(0)
    expect(page.locator("#general-findings")).to_contain_text("Deudores sin dirección postal")
    page.locator("#validation-title").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('validation-title').scrollIntoView()")
    screenshot(page, "remittance-validation")

    # Generation is refused while the error stands.
    page.get_by_role("button", name="Generar el archivo XML").click()
    expect(page.locator("#remittance-error")).to_contain_text("has 1 blocking error")
    expect(page.locator(f"#payment-{books.dani.id} .finding-error")).to_have_count(1)

    page.get_by_role("button", name=f"Quitar el pago {books.dani.id}").click()
    expect(page.get_by_text(f"Pago {books.dani.id} quitado de la remesa.")).to_be_visible()
    page.get_by_role("button", name="Validar").click()
    expect(page.get_by_text("Validación correcta: sin errores, 1 advertencia(s).")).to_be_visible()
    page.get_by_role("button", name="Generar el archivo XML").click()
    expect(page.locator("#remittance-state")).to_have_text("Generada")

    with page.expect_download() as info:
        page.locator("#remittance-file").click()
    saved = tmp_path / "remesa.xml"
    info.value.save_as(saved)
    xml = saved.read_bytes()
    assert xml.startswith(b"<?xml")
    assert b"<NbOfTxs>2</NbOfTxs>" in xml
    assert b"<CtrlSum>35.50</CtrlSum>" in xml

    page.get_by_role("button", name="Marcar como enviada al banco").click()
    expect(page.locator("#remittance-state")).to_have_text("Enviada")
