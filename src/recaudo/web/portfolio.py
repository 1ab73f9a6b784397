"""Cartera: find a customer by national id (any formatting) or name, the customer's page
(debts, payments with their allocations, credit balance, commitments, negotiations), and
the debt list with filters and CSV/XLSX export.

Same services as the API: `services.queries` (customer search), `services.portfolio`
(the customer page, debt search and export), `services.negotiations` (list).
"""

from __future__ import annotations

from typing import Annotated, Any, BinaryIO
from urllib.parse import urlencode

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response

from recaudo.domain.errors import ValidationFailed
from recaudo.services import negotiations, portfolio, queries
from recaudo.services.context import OFFICE_PAYMENT_ROLES
from recaudo.services.queries import Paging
from recaudo.web.common import (
    ALL_ROLES,
    READ_ROLES,
    Page,
    WebContext,
    page_number,
    render,
    require_role,
    web_router,
)
from recaudo.web.payments import (
    DEBT_STATUS_NAMES,
    export_response,
    filter_status,
    names,
    parse_date,
    service_page,
    spanish,
)

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]
Anyone = Annotated[WebContext, Depends(require_role(*ALL_ROLES))]
CustomerId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50

NEGOTIATION_STATES = {
    "proposed": "Propuesta",
    "accepted": "Aceptada",
    "active": "Activa",
    "fulfilled": "Cumplida",
    "broken": "Incumplida",
}
STRATEGY_NAMES = {
    "CNTL": "Cancelación total",
    "PDIA": "Puesta al día",
    "PDDA": "Puesta al día con diferido",
    "PPPL": "Plan de pagos a plazo",
    "PPPA": "Plan de pagos con condonación",
    "PPPS": "Preaprobado",
    "PRERM": "Preaprobado reestructuración",
    "REDIF": "Rediferido",
}
COMMITMENT_KIND_NAMES = {
    "fee": "Cuota",
    "donation": "Donación",
    "in_kind": "En especie",
    "services": "Servicios",
}
PERIODICITY_NAMES = {
    "one_off": "Único",
    "monthly": "Mensual",
    "bimonthly": "Bimestral",
    "quarterly": "Trimestral",
    "semiannual": "Semestral",
    "annual": "Anual",
}


def _looks_like_id(text: str) -> bool:
    """A national id has digits (RUT, NIT, DNI); a name does not."""
    return sum(ch.isdigit() for ch in text) >= 6


@router.get("/cartera", name="portfolio")
def search_page(
    request: Request,
    ctx: Anyone,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    text = q.strip()
    page: Page[Any] | None = None
    error = None
    if text:
        paging = Paging(page_number(request), PAGE_SIZE)
        with ctx.uow(write=False) as uow:
            try:
                if _looks_like_id(text):
                    try:
                        result = queries.list_customers(
                            uow, ctx.company_id, national_id=text, paging=paging
                        )
                    except ValidationFailed:
                        # Not a valid id: maybe part of one, or a name with digits.
                        result = queries.list_customers(uow, ctx.company_id, q=text, paging=paging)
                else:
                    result = queries.list_customers(uow, ctx.company_id, q=text, paging=paging)
                page = service_page(result)
            except ValidationFailed as exc:
                error = spanish(exc)
    return render(
        request,
        "portfolio/search.html",
        status_code=filter_status(request, error),
        q=text,
        page=page,
        error=error,
        can_list_debts=ctx.role in READ_ROLES,
        **names(),
    )


@router.get("/cartera/clientes/{customer_id}", name="customer")
def customer_page(request: Request, customer_id: CustomerId, ctx: Anyone) -> Response:
    with ctx.uow(write=False) as uow:
        view = portfolio.customer_page(uow, ctx.company_id, customer_id)
    plans: list[Any] = []
    if ctx.role in READ_ROLES:
        plans = negotiations.list_negotiations(
            ctx.uow(write=False),
            ctx.company_id,
            actor=ctx.actor,
            customer_id=customer_id,
            paging=Paging(1, 50),
        ).items
    return render(
        request,
        "portfolio/customer.html",
        view=view,
        customer=view.customer,
        negotiations=plans,
        negotiation_states=NEGOTIATION_STATES,
        strategy_names=STRATEGY_NAMES,
        commitment_kinds=COMMITMENT_KIND_NAMES,
        periodicities=PERIODICITY_NAMES,
        can_register=ctx.role in OFFICE_PAYMENT_ROLES,
        can_see_payments=ctx.role in READ_ROLES,
        **names(),
    )


FILTERS = ("estado", "vence_desde", "vence_hasta", "monto_min", "monto_max")
STATUS_CHOICES = {"payable": "Pendientes (abiertas y en pago)", **DEBT_STATUS_NAMES}


def _search(values: dict[str, str]) -> portfolio.DebtSearch:
    return portfolio.DebtSearch(
        status=values["estado"].strip() or None,
        due_from=parse_date(values["vence_desde"], "due_from", "Vence desde"),
        due_to=parse_date(values["vence_hasta"], "due_to", "Vence hasta"),
        amount_min=values["monto_min"].strip() or None,
        amount_max=values["monto_max"].strip() or None,
    )


def _values(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "")[:100] for k in FILTERS}


@router.get("/cartera/deudas", name="debts")
def debts_page(request: Request, ctx: Reader) -> Response:
    values = _values(request)
    page: Page[Any] = Page([], 0, 1, PAGE_SIZE)
    error = None
    try:
        search = _search(values)
        with ctx.uow(write=False) as uow:
            page = service_page(
                portfolio.search_debts(
                    uow, ctx.company_id, search, paging=Paging(page_number(request), PAGE_SIZE)
                )
            )
    except ValidationFailed as exc:
        error = spanish(exc)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k in FILTERS])
    return render(
        request,
        "portfolio/debts.html",
        status_code=filter_status(request, error),
        page=page,
        values=values,
        error=error,
        statuses=STATUS_CHOICES,
        export_query=query,
        **names(),
    )


@router.get("/cartera/deudas/exportar", name="debts_export")
def export_debts(
    request: Request,
    ctx: Reader,
    formato: Annotated[str, Query(max_length=8)] = "csv",
) -> Response:
    search = _search(_values(request))

    def write(out: BinaryIO) -> None:
        with ctx.uow(write=False) as uow:
            portfolio.write_export(uow, ctx.company_id, search, formato, out)

    return export_response(ctx, formato, "deudas", write)
