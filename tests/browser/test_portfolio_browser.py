"""Cartera in Chromium: a cashier finds a customer by a RUT typed with dots, opens the
customer page (debts, payments, credit), and cannot reach another company's customer by
URL. Screenshots of the search and of the customer page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.test_web_payments import pay, world

Shot = Callable[[Page, str], Path | None]


def test_find_a_customer_by_rut_with_dots_and_open_the_page(
    as_role: Callable[..., Page], api: Api, screenshot: Shot
) -> None:
    ids = world(api)
    ana = ids["ana"]
    api.debt(api.acme, ana, "A-3", "7990", date(2026, 3, 10))
    api.customer(api.acme, "9.876.543-3", "Pedro Rojas")
    pay(api, api.acme, ana.id, "10500", "caja-1")  # A-1 paid, 500 to A-2
    page = as_role(Role.CASHIER, name="Carla Caja")
    expect(page).to_have_url(re.compile(r"/cartera$"))  # a cashier lands on the search
    page.get_by_label("Buscar cliente por RUT, documento o nombre").fill("12.345.678-5")
    with page.expect_response(
        lambda r: "/cartera?q=" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.get_by_role("button", name="Buscar", exact=True).click()
    rows = page.locator("#customers-table tbody tr")
    expect(rows).to_have_count(1)
    # htmx swapped the results in and put the search in the address bar.
    expect(page).to_have_url(re.compile(r"/cartera\?q=12\.345\.678-5$"))
    expect(rows.first).to_contain_text("12.345.678-5")
    expect(rows.first).to_contain_text("Ana Lagos")
    expect(rows.first).to_contain_text("$ 12.490")
    screenshot(page, "portfolio-search")

    page.get_by_role("link", name="Ana Lagos").click()
    expect(page.get_by_role("heading", name="Ana Lagos", level=1)).to_be_visible()
    expect(page.locator("#deuda-pendiente")).to_have_text("$ 12.490")
    expect(page.locator("#saldo-favor")).to_have_text("$ 0")
    open_rows = page.locator("#open-debts tbody tr")
    expect(open_rows).to_have_count(2)
    expect(open_rows.nth(0)).to_contain_text("A-2")
    expect(open_rows.nth(0)).to_contain_text("$ 4.500")
    expect(page.locator("#closed-debts tbody tr")).to_have_count(1)
    expect(page.locator("#customer-payments tbody tr").first).to_contain_text("A-1: $ 10.000")
    expect(page.get_by_role("link", name="Registrar pago")).to_be_visible()
    screenshot(page, "customer")

    # beta's customer with the same RUT: not reachable by its URL.
    page.goto(f"/cartera/clientes/{ids['beto'].id}")
    expect(page.get_by_role("heading", name="No encontrado")).to_be_visible()
    expect(page.get_by_text("Beto Beta")).to_have_count(0)
