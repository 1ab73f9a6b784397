"""Excepciones e incidentes: the queue of collected payments that could not be applied as
the channel said (online channels and reconciliation), each resolved by a person with a
comment; and the incidents (every "not available" answer and internal failure).

Same services as the API: `services.exceptions`, `services.incidents`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import Response

from recaudo.domain.debts import PAYABLE, DebtStatus
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import exceptions, incidents, queries
from recaudo.services.exceptions import Resolution
from recaudo.services.queries import Paging
from recaudo.web.common import (
    READ_ROLES,
    WRITE_ROLES,
    Page,
    WebContext,
    redirect,
    render,
    require_role,
    web_router,
)

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[WebContext, Depends(require_role(*WRITE_ROLES))]


def _page(result: Any) -> Page[Any]:
    """A service's page as the templates' pager wants it."""
    return Page(result.items, result.total, result.page, result.page_size)


ExceptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50
# Debts offered to apply a payment's credit to: the customer's payable ones.
DEBTS_SHOWN = 200

REASONS = {
    "unknown_transaction": "Transacción desconocida",
    "unknown_customer": "Cliente desconocido",
    "debts_not_payable": "Deudas que ya no se pueden pagar",
    "amount_mismatch": "El monto no coincide",
    "customer_mismatch": "El cliente no coincide",
    "debts_changed": "Las deudas cambiaron",
    "not_notified": "En la rendición del banco pero nunca notificado",
}
RESOLUTIONS = {
    "applied": "Aplicar a deudas elegidas",
    "credit": "Dejar como saldo a favor",
    "refunded": "Marcar como devuelto",
}
STATUSES = {"open": "Abierta", "resolved": "Resuelta"}
INCIDENT_KINDS = {
    "unavailable": "Empresa no disponible",
    "agreement_disabled": "Convenio deshabilitado",
    "internal_error": "Error interno",
    "passthrough_down": "Sistema de la empresa sin respuesta",
    "commitment_notification": "Aviso de compromiso no enviado",
}


@router.get("/excepciones", name="exceptions")
def exceptions_page(
    request: Request,
    ctx: Reader,
    estado: Annotated[str, Query(max_length=10)] = "open",
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    status = estado if estado in STATUSES else None
    paging = Paging(pagina, PAGE_SIZE)
    with ctx.container.uow(write=False) as uow:
        result = exceptions.list_exceptions(uow, ctx.company_id, status=status, paging=paging)
    return render(
        request,
        "exceptions/list.html",
        page=_page(result),
        estado=estado if status else "all",
        reasons=REASONS,
        statuses=STATUSES,
        resolutions=RESOLUTIONS,
    )


def _detail(
    request: Request,
    ctx: WebContext,
    exception_id: int,
    *,
    error: str | None = None,
    chosen: dict[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    with ctx.container.uow(write=False) as uow:
        view = exceptions.get_exception(uow, ctx.company_id, exception_id)
        customer = None
        debts = []
        if view.customer_id is not None:
            customer = queries.get_customer(uow, ctx.company_id, view.customer_id)
            listed = queries.list_debts(
                uow,
                ctx.company_id,
                customer_id=view.customer_id,
                paging=queries.Paging(1, DEBTS_SHOWN),
            ).items
            debts = [d for d in listed if DebtStatus(d.status) in PAYABLE and d.open_amount > 0]
    return render(
        request,
        "exceptions/detail.html",
        status_code=status_code,
        item=view,
        customer=customer,
        debts=debts,
        reasons=REASONS,
        resolutions=RESOLUTIONS,
        statuses=STATUSES,
        can_resolve=ctx.role in WRITE_ROLES and view.status == "open",
        error=error,
        chosen=chosen or {},
    )


@router.get("/excepciones/{exception_id}", name="exception")
def exception_page(
    request: Request,
    exception_id: ExceptionId,
    ctx: Reader,
) -> Response:
    return _detail(request, ctx, exception_id)


@router.post("/excepciones/{exception_id}/resolver", name="exception_resolve")
def resolve(
    request: Request,
    exception_id: ExceptionId,
    ctx: Writer,
    resolution: Annotated[str, Form(max_length=20)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    debt_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    raw = resolution
    debt_refs = tuple(v.strip() for v in debt_ids or () if v.strip())
    chosen: dict[str, object] = {"resolution": raw, "comment": comment, "debt_ids": debt_refs}
    try:
        try:
            chosen_resolution = Resolution(raw)
        except ValueError:
            raise ValidationFailed(
                "elija cómo resolverla: aplicar a deudas, saldo a favor o devuelto"
            ) from None
        exceptions.resolve_exception(
            ctx.container.uow(),
            ctx.company_id,
            exception_id,
            chosen_resolution,
            comment,
            debts=debt_refs,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except (ValidationFailed, NotFound) as exc:
        # A debt that is not the customer's is a mistake in the form; an exception that
        # does not exist makes `_detail` answer 404.
        return _detail(
            request, ctx, exception_id, error=exc.message, chosen=chosen, status_code=422
        )
    except Conflict as exc:
        return _detail(
            request, ctx, exception_id, error=exc.message, chosen=chosen, status_code=409
        )
    ctx.flash(f"Excepción {exception_id} resuelta: {RESOLUTIONS[chosen_resolution.value]}.", "ok")
    return redirect(request, f"/excepciones/{exception_id}")


@router.get("/incidentes", name="incidents")
def incidents_page(
    request: Request,
    ctx: Reader,
    tipo: Annotated[str, Query(max_length=32)] = "",
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    paging = Paging(pagina, PAGE_SIZE)
    with ctx.container.uow(write=False) as uow:
        result = incidents.list_incidents(uow, ctx.company_id, kind=tipo or None, paging=paging)
    return render(
        request,
        "exceptions/incidents.html",
        page=_page(result),
        tipo=tipo,
        kinds=INCIDENT_KINDS,
    )
