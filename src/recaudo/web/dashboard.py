"""Inicio: the dashboard. What was collected today, this week and this month per channel
and method; the last 30 accounting days by channel (stacked bars); the portfolio's ageing
(bars and totals); open exceptions and recent incidents with links.

Figures from `services.dashboard.build_dashboard`; charts drawn here as SVG
(`web/charts.py`), each followed by its data table.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from recaudo.services.dashboard import Dashboard, build_dashboard
from recaudo.web import charts
from recaudo.web.common import (
    READ_ROLES,
    WebContext,
    format_date,
    format_money,
    render,
    require_role,
    web_router,
)
from recaudo.web.exceptions import INCIDENT_KINDS, REASONS
from recaudo.web.payments import channel_name, names

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]

PERIOD_NAMES = {"today": "Hoy", "week": "Esta semana", "month": "Este mes"}
AGEING_NAMES = {
    "current": "Al día",
    "1-30": "1 a 30 días",
    "31-60": "31 a 60 días",
    "61-90": "61 a 90 días",
    "90+": "Más de 90 días",
}


def _short(day: date) -> str:
    return format_date(day)[:5]  # dd-mm


def charts_of(board: Dashboard) -> tuple[str, str]:
    """The two SVG charts of the dashboard."""

    def fmt(value: Decimal) -> str:
        return format_money(value, board.currency)

    daily = board.daily
    series = [
        charts.Series(channel_name(c), daily.amounts[c], charts.PALETTE[i % len(charts.PALETTE)])
        for i, c in enumerate(daily.channels)
    ]
    first, last = daily.days[0], daily.days[-1]
    total = sum((daily.day_total(i) for i in range(len(daily.days))), Decimal(0))
    collected = charts.stacked_bars(
        chart_id="grafico-recaudacion",
        title="Recaudación de los últimos 30 días contables por canal",
        desc=(
            f"Barras apiladas por canal, del {format_date(first)} al {format_date(last)}. "
            f"Total del período: {fmt(total)}. Los datos están en la tabla siguiente."
        ),
        labels=[_short(d) for d in daily.days],
        series=series,
        fmt=fmt,
    )
    ageing = charts.horizontal_bars(
        chart_id="grafico-antiguedad",
        title="Antigüedad de la cartera pendiente",
        desc=(
            f"Saldo pendiente por días de mora. Total: {fmt(board.ageing_total)} en "
            f"{board.ageing_count} deudas. Los datos están en la tabla siguiente."
        ),
        labels=[AGEING_NAMES[b.key] for b in board.ageing],
        values=[b.amount for b in board.ageing],
        colours=charts.AGEING_COLOURS,
        fmt=fmt,
    )
    return collected, ageing


@router.get("/", name="dashboard")
def dashboard_page(request: Request, ctx: Reader) -> Response:
    with ctx.uow(write=False) as uow:
        board = build_dashboard(uow, ctx.company_id, ctx.clock)
    collected_chart, ageing_chart = charts_of(board)
    legend = [
        (channel_name(c), charts.PALETTE[i % len(charts.PALETTE)])
        for i, c in enumerate(board.daily.channels)
    ]
    return render(
        request,
        "dashboard/index.html",
        board=board,
        collected_chart=collected_chart,
        ageing_chart=ageing_chart,
        legend=legend,
        period_names=PERIOD_NAMES,
        ageing_names=AGEING_NAMES,
        ageing_colours=charts.AGEING_COLOURS,
        reasons=REASONS,
        incident_kinds=INCIDENT_KINDS,
        can_resolve=ctx.role in READ_ROLES,
        **names(),
    )
