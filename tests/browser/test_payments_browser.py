"""Pagos in Chromium: an operator registers an office payment for a customer found by a
RUT typed with dots, sees its receipt, reverses it with a reason and finds it in the
monitoring list with filters. Screenshots of the receipt and of the list."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.domain.payments import PaymentMethod
from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.test_web_payments import at, pay, world

Shot = Callable[[Page, str], Path | None]


def test_register_and_reverse_a_payment(
    as_role: Callable[..., Page], api: Api, screenshot: Shot
) -> None:
    ids = world(api)
    ana = ids["ana"].id
    pay(api, api.acme, ana, "2000", "caja-previa", paid_at=at(11))
    pay(api, api.acme, ana, "800", "cheque-previo", method=PaymentMethod.CHEQUE, paid_at=at(12))
    page = as_role(Role.OPERATOR, name="Olga Díaz")
    page.get_by_role("link", name="Pagos", exact=True).click()
    page.get_by_role("link", name="Registrar pago en oficina").click()
    page.get_by_label("RUT o documento del cliente").fill("12.345.678-5")
    page.get_by_role("button", name="Buscar cliente").click()
    expect(page.get_by_role("heading", name="Ana Lagos")).to_be_visible()
    page.get_by_label("Monto recibido (CLP)").fill("5000")
    page.get_by_label("Cheque").check()
    page.get_by_label(re.compile("^A-2")).check()
    page.get_by_role("button", name="Registrar pago").click()

    expect(page).to_have_url(re.compile(r"/pagos/\d+/recibo$"))
    payment_id = page.url.rstrip("/").split("/")[-2]
    expect(page.get_by_text(f"Pago N° {payment_id} registrado.")).to_be_visible()
    expect(page.locator("#monto-recibo")).to_have_text("$ 5.000")
    lines = page.locator("#receipt-lines tbody tr")
    expect(lines).to_have_count(1)
    expect(lines.first).to_contain_text("A-2")
    expect(page.get_by_role("button", name="Imprimir comprobante")).to_be_visible()
    screenshot(page, "payment-receipt")
    # The print style hides the navigation and the buttons.
    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Imprimir comprobante")).to_be_hidden()
    page.emulate_media(media="screen")

    page.get_by_role("link", name="Ver detalle del pago").click()
    expect(page.locator("#estado-pago")).to_have_text("Aplicado")
    page.get_by_label("Motivo de la reversa").fill("Cheque sin fondos")
    page.get_by_role("button", name="Reversar pago").click()
    expect(page.get_by_text(f"Pago N° {payment_id} reversado.")).to_be_visible()
    expect(page.locator("#estado-pago")).to_have_text("Reversado")
    trail = page.locator("#audit-table tbody tr")
    expect(trail).to_have_count(4)  # A-2 paid, payment applied, A-2 reopened, reversed
    expect(trail.nth(2)).to_contain_text("Cambio de estado de deuda A-2")
    expect(page.get_by_role("button", name="Reversar pago")).to_have_count(0)

    page.get_by_role("link", name="Volver a pagos").click()
    rows = page.locator("#payments-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Reversado")
    screenshot(page, "payments")
    page.get_by_label("Medio").select_option("cheque")
    page.get_by_label("Estado").select_option("applied")
    page.get_by_role("button", name="Filtrar").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cheque-previo")
