"""Canales (administrators only): the company's bank channel agreements (convenios), their
credential — the secret is shown ONCE, on the page that answers its creation, and never
again (only its hash is stored) —, their settings and settlement file settings, and the
company's availability to the channels.

Same services as the API: `services.agreements`, `services.settlements`,
`services.incidents`, `services.queries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Request
from fastapi.responses import Response

from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.formats import fixedwidth
from recaudo.services import agreements, incidents, queries, settlements
from recaudo.web.common import (
    ADMIN_ONLY,
    WebContext,
    redirect,
    render,
    require_role,
    web_router,
)

router = web_router()

Admin = Annotated[WebContext, Depends(require_role(*ADMIN_ONLY))]

AgreementId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CHANNELS = {"caja-vecina": "Caja Vecina", "internet": "Internet"}
TRUE = ("1", "on", "true")


@dataclass(frozen=True, slots=True)
class AgreementRow:
    id: int
    bank: str
    channel: str
    convenio: str
    voucher_name: str | None
    cutoff: str
    enabled: bool
    allow_query_token: bool
    ip_allowlist: list[str]
    errors_as_http_200: bool
    quote_ttl_seconds: int
    passthrough_url: str | None
    passthrough_timeout_ms: int
    secret_prefix: str
    created_at: datetime
    updated_at: datetime


def _row(a: Any) -> AgreementRow:
    return AgreementRow(
        id=a.id,
        bank=a.bank,
        channel=a.channel,
        convenio=a.convenio,
        voucher_name=a.voucher_name,
        cutoff=a.cutoff.strftime("%H:%M"),
        enabled=a.enabled,
        allow_query_token=a.allow_query_token,
        ip_allowlist=list(a.ip_allowlist or []),
        errors_as_http_200=a.errors_as_http_200,
        quote_ttl_seconds=a.quote_ttl_seconds,
        passthrough_url=a.passthrough_url,
        passthrough_timeout_ms=a.passthrough_timeout_ms,
        secret_prefix=a.secret_prefix,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def _rows(ctx: WebContext) -> list[AgreementRow]:
    with ctx.container.uow(write=False) as uow:
        return [_row(a) for a in agreements.list_agreements(uow, ctx.company_id)]


def _index(
    request: Request,
    ctx: WebContext,
    *,
    error: str | None = None,
    availability_error: str | None = None,
    chosen: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with ctx.container.uow(write=False) as uow:
        availability = incidents.get_availability(uow, ctx.company_id)
    return render(
        request,
        "channels/index.html",
        status_code=status_code,
        agreements=_rows(ctx),
        availability=availability,
        channels=CHANNELS,
        error=error,
        availability_error=availability_error,
        chosen=chosen or {},
    )


@router.get("/canales", name="channels")
def channels_page(request: Request, ctx: Admin) -> Response:
    return _index(request, ctx)


def _time(text: str, field: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"la hora {text!r} no es válida (hh:mm)", field=field) from None


def _int(text: str, field: str) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed(f"{text!r} no es un número entero", field=field)
    return int(text)


@router.post("/canales", name="channel_create")
def create(
    request: Request,
    ctx: Admin,
    channel: Annotated[str, Form(max_length=40)] = "",
    convenio: Annotated[str, Form(max_length=40)] = "",
    voucher_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    chosen = {
        "channel": channel.strip(),
        "convenio": convenio.strip(),
        "voucher_name": voucher_name.strip(),
    }
    try:
        with ctx.container.uow(write=False) as uow:
            slug = queries.get_company(uow, ctx.company_id).slug
        issued = agreements.create_agreement(
            ctx.container.uow(),
            slug,
            chosen["channel"],
            chosen["convenio"],
            agreements.AgreementSettings(voucher_name=chosen["voucher_name"] or None),
            actor=ctx.actor,
            clock=ctx.container.clock,
            allow_private_targets=ctx.container.settings.webhook_allow_private_targets,
        )
    except ValidationFailed as exc:
        return _index(request, ctx, error=exc.message, chosen=chosen, status_code=422)
    except Conflict as exc:
        return _index(request, ctx, error=exc.message, chosen=chosen, status_code=409)
    # The secret is in this one answer and nowhere else: never in a flash message, a
    # redirect or a cache.
    response = render(
        request,
        "channels/created.html",
        status_code=201,
        agreement=_row(issued.agreement),
        secret=issued.secret,
        channels=CHANNELS,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _edit_page(
    request: Request,
    ctx: WebContext,
    agreement_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = {a.id: a for a in _rows(ctx)}
    agreement = rows.get(agreement_id)
    if agreement is None:
        raise NotFound(f"no agreement {agreement_id}")
    with ctx.container.uow(write=False) as uow:
        config = settlements.get_settlement_config(uow, agreement_id, actor=ctx.actor)
    return render(
        request,
        "channels/edit.html",
        status_code=status_code,
        agreement=agreement,
        config=config,
        layouts=[*fixedwidth.available_layouts(), *settlements.TABULAR],
        channels=CHANNELS,
        error=error,
    )


@router.get("/canales/{agreement_id}", name="channel")
def channel_page(
    request: Request,
    agreement_id: AgreementId,
    ctx: Admin,
) -> Response:
    return _edit_page(request, ctx, agreement_id)


@router.post("/canales/{agreement_id}", name="channel_update")
def update(
    request: Request,
    agreement_id: AgreementId,
    ctx: Admin,
    voucher_name: Annotated[str, Form(max_length=200)] = "",
    cutoff: Annotated[str, Form(max_length=8)] = "",
    enabled: Annotated[str, Form(max_length=5)] = "",
    allow_query_token: Annotated[str, Form(max_length=5)] = "",
    ip_allowlist: Annotated[str, Form(max_length=4000)] = "",
    errors_as_http_200: Annotated[str, Form(max_length=5)] = "",
    quote_ttl_seconds: Annotated[str, Form(max_length=12)] = "",
    passthrough_url: Annotated[str, Form(max_length=600)] = "",
    passthrough_timeout_ms: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        changes = agreements.AgreementSettings(
            voucher_name=voucher_name.strip(),
            cutoff=_time(cutoff, "cutoff"),
            enabled=enabled in TRUE,
            allow_query_token=allow_query_token in TRUE,
            ip_allowlist=tuple(ip_allowlist.split()),
            errors_as_http_200=errors_as_http_200 in TRUE,
            quote_ttl_seconds=_int(quote_ttl_seconds, "quote_ttl_seconds"),
            passthrough_url=passthrough_url.strip(),
            passthrough_timeout_ms=_int(passthrough_timeout_ms, "passthrough_timeout_ms"),
        )
        agreements.update_agreement(
            ctx.container.uow(),
            ctx.company_id,
            agreement_id,
            changes,
            actor=ctx.actor,
            clock=ctx.container.clock,
            allow_private_targets=ctx.container.settings.webhook_allow_private_targets,
        )
    except ValidationFailed as exc:
        return _edit_page(request, ctx, agreement_id, error=exc.message, status_code=422)
    ctx.flash("Convenio actualizado.", "ok")
    return redirect(request, f"/canales/{agreement_id}")


@router.post("/canales/{agreement_id}/rendicion", name="channel_settlement")
def update_settlement(
    request: Request,
    agreement_id: AgreementId,
    ctx: Admin,
    settlement_layout: Annotated[str, Form(max_length=255)] = "",
    settlement_time: Annotated[str, Form(max_length=8)] = "",
    settlement_enabled: Annotated[str, Form(max_length=5)] = "",
    settlement_control_record: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        rows = {a.id for a in _rows(ctx)}
        if agreement_id not in rows:
            raise NotFound(f"no agreement {agreement_id}")
        settlements.configure_settlement(
            ctx.container.uow(),
            agreement_id,
            settlements.SettlementSettings(
                layout=settlement_layout.strip(),
                local_time=_time(settlement_time, "settlement_time"),
                enabled=settlement_enabled in TRUE,
                control_record=settlement_control_record in TRUE,
            ),
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except ValidationFailed as exc:
        return _edit_page(request, ctx, agreement_id, error=exc.message, status_code=422)
    ctx.flash("Configuración de la rendición actualizada.", "ok")
    return redirect(request, f"/canales/{agreement_id}")


@router.post("/canales-disponibilidad", name="channels_availability")
def availability(
    request: Request,
    ctx: Admin,
    available: Annotated[str, Form(max_length=5)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        incidents.set_availability(
            ctx.container.uow(),
            ctx.company_id,
            available in TRUE,
            reason.strip() or None,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except ValidationFailed as exc:
        return _index(request, ctx, availability_error=exc.message, status_code=422)
    if available in TRUE:
        ctx.flash("La empresa vuelve a estar disponible para los canales.", "ok")
    else:
        ctx.flash(
            "La empresa queda NO disponible: las consultas de los canales se responden como "
            "no disponibles y cada una queda como incidente.",
            "info",
        )
    return redirect(request, "/canales")
