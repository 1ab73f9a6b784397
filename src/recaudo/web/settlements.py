"""Rendiciones: the settlement files of each channel agreement — list, generate for an
accounting date, download the stored bytes, deliver again to the agreement's targets.

Same services as the API: `services.settlements`, `services.deliveries`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import Response

from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import agreements, deliveries, queries, settlements
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


SettlementId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50

STATUSES = {
    "generated": "Generada",
    "delivered": "Entregada",
    "delivery_failed": "Entrega fallida",
}
DELIVERY_STATUSES = {"pending": "Pendiente", "delivered": "Entregada", "failed": "Fallida"}
CHANNELS = {"caja-vecina": "Caja Vecina", "internet": "Internet"}


def _agreement_names(ctx: WebContext) -> dict[int, str]:
    with ctx.container.uow(write=False) as uow:
        rows = agreements.list_agreements(uow, ctx.company_id)
        return {a.id: f"{CHANNELS.get(a.channel, a.channel)} (convenio {a.convenio})" for a in rows}


def _parse_date(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"la fecha {text!r} no es válida (aaaa-mm-dd)", field=field
        ) from None


def _list_page(
    request: Request,
    ctx: WebContext,
    *,
    convenio: int | None,
    fecha: str,
    page: int,
    error: str | None = None,
    chosen: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    names = _agreement_names(ctx)
    filter_error = None
    try:
        day = _parse_date(fecha, "fecha")
    except ValidationFailed as exc:
        day, filter_error = None, exc.message
    with ctx.container.uow(write=False) as uow:
        result = settlements.list_settlements(
            uow,
            ctx.company_id,
            agreement_id=convenio,
            accounting_date=day,
            paging=Paging(page, PAGE_SIZE),
        )
    return render(
        request,
        "settlements/list.html",
        status_code=status_code if filter_error is None else 422,
        page=_page(result),
        agreements=names,
        convenio=convenio,
        fecha=fecha,
        statuses=STATUSES,
        can_write=ctx.role in WRITE_ROLES,
        error=error or filter_error,
        chosen=chosen or {},
    )


@router.get("/rendiciones", name="settlements")
def settlements_page(
    request: Request,
    ctx: Reader,
    convenio: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    fecha: Annotated[str, Query(max_length=10)] = "",
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    return _list_page(request, ctx, convenio=convenio, fecha=fecha, page=pagina)


@router.post("/rendiciones", name="settlement_generate")
def generate(
    request: Request,
    ctx: Writer,
    agreement_id: Annotated[str, Form(max_length=20)] = "",
    accounting_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    raw_agreement, raw_date = agreement_id.strip(), accounting_date.strip()
    chosen = {"agreement_id": raw_agreement, "accounting_date": raw_date}
    try:
        if not raw_agreement.isdigit():
            raise ValidationFailed("elija el convenio")
        day = _parse_date(raw_date, "accounting_date")
        if day is None:
            raise ValidationFailed("indique la fecha contable")
        run = settlements.generate_settlement(
            ctx.container.uow(),
            int(raw_agreement),
            day,
            data_dir=ctx.container.settings.data_dir,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except (ValidationFailed, NotFound) as exc:
        return _list_page(
            request, ctx, convenio=None, fecha="", page=1, error=exc.message,
            chosen=chosen, status_code=422,
        )  # fmt: skip
    except Conflict as exc:
        return _list_page(
            request, ctx, convenio=None, fecha="", page=1, error=exc.message,
            chosen=chosen, status_code=409,
        )  # fmt: skip
    view = run.file
    if run.created:
        ctx.flash(
            f"Rendición generada: {view.file_name} (versión {view.version}, "
            f"{view.payment_count} pago(s)).",
            "ok",
        )
    else:
        ctx.flash(
            f"Sin cambios desde la versión {view.version}: se conserva {view.file_name}.",
            "info",
        )
    return redirect(request, f"/rendiciones/{view.id}")


def _detail(
    request: Request,
    ctx: WebContext,
    settlement_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with ctx.container.uow(write=False) as uow:
        view = settlements.get_settlement(uow, ctx.company_id, settlement_id)
        sent = deliveries.list_deliveries(
            uow,
            ctx.company_id,
            settlement_file_id=settlement_id,
            paging=queries.Paging(1, 100),
        )
    return render(
        request,
        "settlements/detail.html",
        item=view,
        agreement=_agreement_names(ctx).get(view.agreement_id, str(view.agreement_id)),
        deliveries=sent.items,
        statuses=STATUSES,
        delivery_statuses=DELIVERY_STATUSES,
        can_write=ctx.role in WRITE_ROLES,
        error=error,
        status_code=status_code,
    )


@router.get("/rendiciones/{settlement_id}", name="settlement")
def settlement_page(
    request: Request,
    settlement_id: SettlementId,
    ctx: Reader,
) -> Response:
    return _detail(request, ctx, settlement_id)


@router.get("/rendiciones/{settlement_id}/archivo", name="settlement_file")
def download(settlement_id: SettlementId, ctx: Reader) -> Response:
    with ctx.container.uow(write=False) as uow:
        view, data = settlements.read_settlement(
            uow,
            ctx.company_id,
            settlement_id,
            data_dir=ctx.container.settings.data_dir,
        )
    return Response(
        content=data,
        media_type=view.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{view.file_name}"',
            "ETag": f'"{view.sha256}"',
        },
    )


@router.post("/rendiciones/{settlement_id}/reenviar", name="settlement_redeliver")
def redeliver(
    request: Request,
    settlement_id: SettlementId,
    ctx: Writer,
) -> Response:
    try:
        views = deliveries.redeliver(
            ctx.container.uow(),
            ctx.company_id,
            settlement_file_id=settlement_id,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except Conflict as exc:
        return _detail(request, ctx, settlement_id, error=exc.message, status_code=409)
    names = ", ".join(v.target_name for v in views)
    ctx.flash(f"Reenvío programado a: {names}.", "ok")
    return redirect(request, f"/rendiciones/{settlement_id}")
