"""The dashboard through the real server, on both backends: the figures per period,
channel and method; both SVG charts (bar counts, titles, descriptions) with their data
tables; ageing totals; open exceptions and incidents with links; role refusals."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from recaudo.domain.payments import PaymentMethod
from recaudo.services import exceptions, incidents
from recaudo.services.context import Role
from recaudo.services.payments import ApplyPayment, Settled, apply_payment
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.e2e.test_web_payments import cells, pay, web_client, world


def svg(html: str, chart_id: str) -> str:
    found = re.search(rf'<svg[^>]* id="{chart_id}".*?</svg>', html, re.S)
    assert found is not None, f"no chart {chart_id}"
    return found.group(0)


def test_dashboard_figures_and_charts(api: Api) -> None:
    # The clock: Monday 02-03-2026 10:00 in Santiago.
    ids = world(api)
    ana = ids["ana"].id
    pay(api, api.acme, ana, "3000", "hoy")
    pay(api, api.acme, ana, "1500", "cheque-hoy", method=PaymentMethod.CHEQUE)
    # Friday 27-02 at 12:00 local: last week, this chart.
    pay(api, api.acme, ana, "700", "viernes", paid_at=datetime(2026, 2, 27, 15, tzinfo=UTC))
    pay(api, api.beta, ids["beto"].id, "999", "beta")  # another company: never shown

    def hook(uow, settled: Settled) -> None:  # type: ignore[no-untyped-def]
        exceptions.raise_exception(
            uow, settled.payment, exceptions.Reason.AMOUNT_MISMATCH, "monto distinto",
            actor=ROOT_ACTOR, clock=api.clock,
        )  # fmt: skip

    cmd = ApplyPayment(api.acme.id, ana, "100", PaymentMethod.TRANSFER, "exc-1", strict=False)
    apply_payment(api.uow, cmd, actor=ROOT_ACTOR, clock=api.clock, before_commit=hook)
    incidents.record_incident(api.uow, api.acme.id, None, "unavailable", "mantención", api.clock)

    admin = web_client(api, Role.ADMIN)
    page = admin.get("/")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Fecha contable de hoy: <strong>02-03-2026</strong>" in html
    today = re.search(r'id="periodo-today">(.*?)</div>', html, re.S)
    assert today is not None
    assert '<p class="value">$ 4.600</p>' in today.group(1)
    assert "3 pago(s) · 02-03-2026" in today.group(1)
    month = re.search(r'id="periodo-month">(.*?)</div>', html, re.S)
    assert month is not None and '<p class="value">$ 4.600</p>' in month.group(1)

    chart = svg(html, "grafico-recaudacion")
    assert 'role="img"' in chart
    assert 'aria-labelledby="grafico-recaudacion-title grafico-recaudacion-desc"' in chart
    assert (
        '<title id="grafico-recaudacion-title">Recaudación de los últimos 30 días contables '
        "por canal</title>"
    ) in chart
    assert "del 20-01-2026 al 02-03-2026. Total del período: $ 5.300." in chart
    assert chart.count('<g class="bar"') == 30
    assert chart.count("<rect") == 2  # Friday and today, one channel each
    assert '<g class="bar" data-label="02-03" data-total="4600">' in chart
    assert "<title>02-03 · Oficina: $ 4.600</title>" in chart
    assert "<title>27-02 · Oficina: $ 700</title>" in chart
    table = cells(html, "tabla-recaudacion")
    assert len(table) == 30
    assert table[-1] == ["02-03-2026", "$ 4.600", "$ 4.600"]
    assert table[-2] == ["27-02-2026", "$ 700", "$ 700"]

    ageing = svg(html, "grafico-antiguedad")
    assert ageing.count('<g class="bar"') == 5
    # Ana: A-1 (10.000, due 10-01, 51 days overdue) got 5.300 (every payment went to the
    # oldest debt); A-2 (5.000, due 10-02, 20 days overdue) untouched.
    assert cells(html, "tabla-antiguedad") == [
        ["Al día", "0", "$ 0"],
        ["1 a 30 días", "1", "$ 5.000"],
        ["31 a 60 días", "1", "$ 4.700"],
        ["61 a 90 días", "0", "$ 0"],
        ["Más de 90 días", "0", "$ 0"],
    ]
    assert '<td class="num" id="total-cartera">$ 9.700</td>' in html

    assert '<span id="n-excepciones">1</span>' in html
    assert re.search(r'<a href="/excepciones/\d+">N° \d+</a>', html)
    assert '<span id="n-incidentes">1</span>' in html
    assert "Empresa no disponible: mantención" in html
    assert 'href="/incidentes"' in html


def test_dashboard_roles(api: Api) -> None:
    for role in (Role.OPERATOR, Role.AUDITOR):
        assert web_client(api, role).get("/").status_code == 200
    assert web_client(api, Role.CASHIER).get("/").status_code == 403


def test_an_empty_company(api: Api) -> None:
    page = web_client(api, Role.ADMIN, api.beta).get("/")
    assert page.status_code == 200
    chart = svg(page.text, "grafico-recaudacion")
    assert chart.count('<g class="bar"') == 30 and "<rect" not in chart
    assert "Sin pagos en estos 30 días." in page.text
    assert "No hay excepciones abiertas." in page.text
    assert "Sin incidentes recientes." in page.text
    assert date(2026, 3, 2).strftime("%d-%m-%Y") in page.text
