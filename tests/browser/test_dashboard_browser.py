"""The dashboard in Chromium: both SVG charts render (30 accounting days, 5 ageing bars),
with titles and descriptions for screen readers and their data tables. Screenshot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.domain.payments import PaymentMethod
from recaudo.services import agreements
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.e2e.test_web_payments import pay, world

Shot = Callable[[Page, str], Path | None]


def seed(api: Api) -> None:
    """A month of payments through the office and two BancoEstado channels."""
    ids = world(api)
    ana, beto = ids["ana"], ids["beto"]
    for i, due in enumerate([date(2025, 11, 20), date(2025, 12, 20), date(2026, 2, 20)]):
        api.debt(api.acme, ana, f"A-{10 + i}", str(20000 + 5000 * i), due)
    api.debt(api.acme, ana, "A-20", "30000", date(2026, 3, 20))
    del beto
    caja = agreements.create_agreement(
        api.uow, "acme", "caja-vecina", "11223", actor=ROOT_ACTOR, clock=api.clock
    ).agreement
    web = agreements.create_agreement(
        api.uow, "acme", "internet", "11224", actor=ROOT_ACTOR, clock=api.clock
    ).agreement
    day = date(2026, 3, 2)
    n = 0
    while n < 22:
        if day.weekday() < 5:
            for agreement, amount in ((caja, 12000 + 370 * n), (web, 18000 + 530 * (n % 7))):
                pay(
                    api, api.acme, ana.id, str(amount), f"be-{agreement.id}-{n}",
                    channel="bancoestado", agreement_id=agreement.id,
                    method=PaymentMethod.TRANSFER, accounting_date=day,
                )  # fmt: skip
            n += 1
        day -= timedelta(days=1)
    pay(api, api.acme, ana.id, "25000", "caja-hoy")


def test_dashboard_charts_render(as_role: Callable[..., Page], api: Api, screenshot: Shot) -> None:
    seed(api)
    page = as_role(Role.ADMIN, name="Ana Admin")
    expect(page.get_by_role("heading", name="Panel de recaudación")).to_be_visible()
    chart = page.locator("svg#grafico-recaudacion")
    expect(chart).to_be_visible()
    expect(chart.locator("g.bar")).to_have_count(30)
    # 22 days with two bank channels, today also the office.
    expect(chart.locator("rect")).to_have_count(45)
    expect(chart.locator("title").first).to_have_text(
        "Recaudación de los últimos 30 días contables por canal"
    )
    expect(
        page.get_by_role("img", name="Recaudación de los últimos 30 días contables por canal")
    ).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 200
    legend = page.locator(".legend li")
    expect(legend).to_have_text(["BancoEstado · Caja Vecina", "BancoEstado · Internet", "Oficina"])
    ageing = page.locator("svg#grafico-antiguedad")
    expect(ageing).to_be_visible()
    expect(ageing.locator("g.bar")).to_have_count(5)
    expect(page.locator("#tabla-antiguedad tfoot")).to_contain_text("Total")

    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "dashboard")
    page.locator("#ultimos-dias").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('ultimos-dias').scrollIntoView()")
    screenshot(page, "dashboard-charts")

    table = page.locator("#tabla-recaudacion")
    expect(table).to_be_hidden()  # inside a closed <details>
    page.get_by_text("Ver los datos del gráfico en una tabla").click()
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(30)
