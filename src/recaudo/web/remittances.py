"""Remesas y devoluciones: the SEPA remittance workflow (create, add payments one by one or
by a filter, validate — each error shown next to its payment —, generate, download the
XML, mark sent) and the bank's return files (load one, see what happened to each payment).

Same services as the API: `services.remittances`, `services.returns`,
`services.commitments` (the payments), `services.creditor_accounts`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import commitments, creditor_accounts, remittances, returns
from recaudo.services.queries import Paging
from recaudo.services.remittances import NewRemittance, PaymentFilter, RemittanceView
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
from recaudo.web.imports import received_upload

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[WebContext, Depends(require_role(*WRITE_ROLES))]


def _page(result: Any) -> Page[Any]:
    """A service's page as the templates' pager wants it."""
    return Page(result.items, result.total, result.page, result.page_size)


Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50
PAYMENTS_PAGE = 200

STATES = {"open": "Abierta", "generated": "Generada", "sent": "Enviada"}
KINDS = {
    "direct_debit": "Adeudo directo (pain.008)",
    "transfer": "Transferencias (pain.001)",
    "card": "Tarjeta",
}
PAYMENT_STATUSES = {
    "not_remitted": "Sin remesar",
    "pending": "Pendiente",
    "remitted": "Remesado",
    "paid": "Pagado",
    "unpaid": "Impagado",
    "to_recover": "A recuperar",
    "card_rejected": "Tarjeta rechazada",
    "cancelled": "Anulado",
    "duplicate": "Duplicado",
}
FINDINGS = {
    "creditor_identifier_missing": "Falta el identificador de acreedor",
    "invalid_creditor_identifier": "Identificador de acreedor inválido",
    "invalid_creditor_iban": "IBAN de la cuenta acreedora inválido",
    "invalid_creditor_bic": "BIC de la cuenta acreedora inválido",
    "charge_date_too_early": "Fecha de cargo demasiado próxima",
    "empty": "La remesa no tiene pagos",
    "wrong_method": "Medio de pago distinto al de la remesa",
    "wrong_status": "Estado del pago no admitido",
    "wrong_currency": "El pago no está en euros",
    "amount_not_positive": "Monto cero o negativo",
    "iban_missing": "Falta el IBAN",
    "invalid_iban": "IBAN inválido",
    "mandate_missing": "Falta el mandato",
    "mandate_invalid": "Mandato invalidado",
    "invalid_name": "Nombre con caracteres no admitidos en SEPA",
    "invalid_concept": "Concepto con caracteres no admitidos en SEPA",
    "card_missing": "Falta la tarjeta",
    "bic_mismatch": "El BIC no corresponde al banco del IBAN",
    "debtor_without_address": "Deudores sin dirección postal",
}
OUTCOMES = {
    "unpaid": "Impagado",
    "to_recover": "A recuperar (se puede volver a remesar)",
    "commitment_ended": "Compromiso terminado",
    "mandate_invalid": "Mandato invalidado",
    "refund_requested": "Devolución solicitada por el deudor",
    "unknown_payment": "Pago desconocido",
    "not_returnable": "Pago que no se podía devolver",
}
RETURN_KINDS = {"pain.002": "pain.002", "camt.054": "camt.054", "camt.053": "camt.053"}


# --------------------------------------------------------------------------- list, create


def _accounts(ctx: WebContext) -> list[creditor_accounts.CreditorAccountView]:
    with ctx.container.uow(write=False) as uow:
        return creditor_accounts.list_accounts(uow, ctx.company_id, active=True)


def _list_page(
    request: Request,
    ctx: WebContext,
    *,
    estado: str = "",
    tipo: str = "",
    page: int = 1,
    error: str | None = None,
    chosen: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    state = estado if estado in STATES else None
    kind = tipo if tipo in KINDS else None
    with ctx.container.uow(write=False) as uow:
        result = remittances.list_remittances(
            uow, ctx.company_id, state=state, kind=kind, paging=Paging(page, PAGE_SIZE)
        )
    return render(
        request,
        "remittances/list.html",
        status_code=status_code,
        page=_page(result),
        estado=state or "",
        tipo=kind or "",
        states=STATES,
        kinds=KINDS,
        accounts=_accounts(ctx),
        can_write=ctx.role in WRITE_ROLES,
        error=error,
        chosen=chosen or {},
    )


@router.get("/remesas", name="remittances")
def remittances_page(
    request: Request,
    ctx: Reader,
    estado: Annotated[str, Query(max_length=12)] = "",
    tipo: Annotated[str, Query(max_length=16)] = "",
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    return _list_page(request, ctx, estado=estado, tipo=tipo, page=pagina)


@router.post("/remesas", name="remittance_create")
def create(
    request: Request,
    ctx: Writer,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    charge_date: Annotated[str, Form(max_length=10)] = "",
    account: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    chosen = {
        "name": name.strip(),
        "kind": kind.strip(),
        "charge_date": charge_date.strip(),
        "account": account.strip(),
    }
    try:
        try:
            charge = date.fromisoformat(chosen["charge_date"])
        except ValueError:
            raise ValidationFailed("indique la fecha de cargo (aaaa-mm-dd)") from None
        if not chosen["account"].isdigit():
            raise ValidationFailed("elija la cuenta acreedora")
        view = remittances.create_remittance(
            ctx.container.uow(),
            ctx.company_id,
            NewRemittance(chosen["name"], chosen["kind"], charge, int(chosen["account"])),
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except (ValidationFailed, NotFound) as exc:
        return _list_page(request, ctx, error=exc.message, chosen=chosen, status_code=422)
    except Conflict as exc:
        return _list_page(request, ctx, error=exc.message, chosen=chosen, status_code=409)
    ctx.flash(f"Remesa «{view.name}» creada. Agregue sus pagos.", "ok")
    return redirect(request, f"/remesas/{view.id}")


# --------------------------------------------------------------------------- one remittance


def _findings_by_payment(view: RemittanceView) -> dict[int, list[dict[str, Any]]]:
    by_payment: dict[int, list[dict[str, Any]]] = {}
    for finding in [*view.errors, *view.warnings]:
        pid = finding.get("payment_id")
        if pid is not None:
            by_payment.setdefault(int(pid), []).append(finding)
    return by_payment


def _detail(
    request: Request,
    ctx: WebContext,
    remittance_id: int,
    *,
    page: int = 1,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with ctx.container.uow(write=False) as uow:
        view = remittances.get_remittance(uow, ctx.company_id, remittance_id)
        payments = commitments.list_payments(
            uow,
            ctx.company_id,
            commitments.PaymentFilter(remittance_id=remittance_id),
            paging=Paging(page, PAYMENTS_PAGE),
        )
        account = creditor_accounts.get_account(uow, ctx.company_id, view.creditor_account_id)
        loaded = returns.list_return_files(
            uow, ctx.company_id, remittance_id=remittance_id, paging=Paging(1, 50)
        )
    by_payment = _findings_by_payment(view)
    shown = {p.id for p in payments.items}
    general = [f for f in [*view.errors, *view.warnings] if f.get("payment_id") is None]
    elsewhere = sum(1 for pid in by_payment if pid not in shown)
    return render(
        request,
        "remittances/detail.html",
        status_code=status_code,
        item=view,
        account=account,
        payments=_page(payments),
        by_payment=by_payment,
        general=general,
        elsewhere=elsewhere,
        validated=bool(view.errors or view.warnings),
        return_files=loaded.items,
        states=STATES,
        kinds=KINDS,
        payment_statuses=PAYMENT_STATUSES,
        findings=FINDINGS,
        can_write=ctx.role in WRITE_ROLES,
        addable=remittances.ADDABLE[view.kind],
        error=error,
    )


@router.get("/remesas/{remittance_id}", name="remittance")
def remittance_page(
    request: Request,
    remittance_id: Id,
    ctx: Reader,
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    return _detail(request, ctx, remittance_id, page=pagina)


@router.post("/remesas/{remittance_id}/pagos", name="remittance_add")
def add_payments(
    request: Request,
    remittance_id: Id,
    ctx: Writer,
    how: Annotated[str, Form(max_length=10)] = "",
    payment_id: Annotated[str, Form(max_length=20)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    due_month: Annotated[str, Form(max_length=7)] = "",
) -> Response:
    uow, clock, cid = ctx.container.uow(), ctx.container.clock, ctx.company_id
    try:
        if how == "one":
            raw = payment_id.strip()
            if not raw.isdigit():
                raise ValidationFailed("indique el número del pago")
            remittances.add_payment(uow, cid, remittance_id, int(raw), actor=ctx.actor, clock=clock)
            ctx.flash(f"Pago {raw} agregado.", "ok")
        else:
            where = PaymentFilter(
                status=status.strip() or None,
                due_month=due_month.strip() or None,
            )
            bulk = remittances.add_payments(
                uow, cid, remittance_id, where, actor=ctx.actor, clock=clock
            )
            ctx.flash(f"{bulk.added} pago(s) agregado(s).", "ok")
    except (ValidationFailed, NotFound) as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=422)
    except Conflict as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=409)
    return redirect(request, f"/remesas/{remittance_id}")


@router.post("/remesas/{remittance_id}/pagos/{payment_id}/quitar", name="remittance_remove")
def remove_payment(
    request: Request,
    remittance_id: Id,
    payment_id: Id,
    ctx: Writer,
) -> Response:
    try:
        remittances.remove_payment(
            ctx.container.uow(),
            ctx.company_id,
            remittance_id,
            payment_id,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except NotFound as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=404)
    except Conflict as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=409)
    ctx.flash(f"Pago {payment_id} quitado de la remesa.", "ok")
    return redirect(request, f"/remesas/{remittance_id}")


@router.post("/remesas/{remittance_id}/validar", name="remittance_validate")
def validate(request: Request, remittance_id: Id, ctx: Writer) -> Response:
    try:
        report = remittances.validate_remittance(
            ctx.container.uow(),
            ctx.company_id,
            remittance_id,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except Conflict as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=409)
    if report.ok:
        ctx.flash(
            f"Validación correcta: sin errores, {report.warning_count} advertencia(s). "
            "Ya puede generar el archivo.",
            "ok",
        )
    else:
        ctx.flash(
            f"La remesa tiene {report.error_count} error(es) que impiden generarla y "
            f"{report.warning_count} advertencia(s): se muestran junto a cada pago.",
            "error",
        )
    return redirect(request, f"/remesas/{remittance_id}")


@router.post("/remesas/{remittance_id}/generar", name="remittance_generate")
def generate(request: Request, remittance_id: Id, ctx: Writer) -> Response:
    try:
        result = remittances.generate_remittance(
            ctx.container.uow(),
            ctx.company_id,
            remittance_id,
            data_dir=ctx.container.settings.data_dir,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except ValidationFailed as exc:
        # Refused for blocking errors: they are now stored on the remittance and shown
        # next to each payment.
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=422)
    except Conflict as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=409)
    view = result.remittance
    ctx.flash(
        f"Archivo {view.file_name} generado: {view.transaction_count} pago(s) remesado(s).",
        "ok",
    )
    return redirect(request, f"/remesas/{remittance_id}")


@router.post("/remesas/{remittance_id}/enviada", name="remittance_sent")
def mark_sent(request: Request, remittance_id: Id, ctx: Writer) -> Response:
    try:
        remittances.mark_sent(
            ctx.container.uow(),
            ctx.company_id,
            remittance_id,
            actor=ctx.actor,
            clock=ctx.container.clock,
        )
    except Conflict as exc:
        return _detail(request, ctx, remittance_id, error=exc.message, status_code=409)
    ctx.flash("Remesa marcada como enviada al banco: sus pagos quedan pagados.", "ok")
    return redirect(request, f"/remesas/{remittance_id}")


@router.get("/remesas/{remittance_id}/archivo", name="remittance_file")
def download(remittance_id: Id, ctx: Reader) -> Response:
    with ctx.container.uow(write=False) as uow:
        view, data = remittances.read_remittance_file(
            uow, ctx.company_id, remittance_id, data_dir=ctx.container.settings.data_dir
        )
    return Response(
        content=data,
        media_type="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="{view.file_name}"',
            "ETag": f'"{view.sha256}"',
        },
    )


# --------------------------------------------------------------------------- returns


def _returns_page(
    request: Request,
    ctx: WebContext,
    *,
    page: int = 1,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with ctx.container.uow(write=False) as uow:
        result = returns.list_return_files(uow, ctx.company_id, paging=Paging(page, PAGE_SIZE))
    return render(
        request,
        "remittances/returns.html",
        status_code=status_code,
        page=_page(result),
        can_write=ctx.role in WRITE_ROLES,
        error=error,
    )


@router.get("/devoluciones", name="returns")
def returns_page(
    request: Request,
    ctx: Reader,
    pagina: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> Response:
    return _returns_page(request, ctx, page=pagina)


@router.post("/devoluciones", name="returns_load")
async def load_return(request: Request, ctx: Writer) -> Response:
    container = ctx.container
    directory = container.settings.data_dir / "uploads"
    await run_in_threadpool(directory.mkdir, parents=True, exist_ok=True)
    try:
        async with received_upload(request, directory) as form:
            files = [f for f in form.files if f.field == "file"]
            if len(files) != 1 or len(form.files) != 1 or not files[0].size:
                raise ValidationFailed("elija el archivo de devoluciones del banco (XML)")
            data = await run_in_threadpool(files[0].path.read_bytes)
            name = files[0].file_name or "devoluciones.xml"
        load = await run_in_threadpool(
            lambda: returns.load_return_file(
                container.uow(),
                ctx.company_id,
                data,
                name,
                actor=ctx.actor,
                clock=container.clock,
                settings=container.settings,
            )
        )
    except ValidationFailed as exc:
        return _returns_page(request, ctx, error=exc.message, status_code=422)
    if load.created:
        ctx.flash(
            f"Archivo {load.file.file_name} cargado: "
            f"{load.file.returned_count} pago(s) devuelto(s).",
            "ok",
        )
    else:
        ctx.flash("Este archivo ya se había cargado: no cambió nada.", "info")
    return redirect(request, f"/devoluciones/{load.file.id}")


@router.get("/devoluciones/{file_id}", name="return_file")
def return_page(request: Request, file_id: Id, ctx: Reader) -> Response:
    with ctx.container.uow(write=False) as uow:
        view = returns.get_return_file(uow, ctx.company_id, file_id)
    return render(
        request,
        "remittances/return.html",
        item=view,
        outcomes=OUTCOMES,
        payment_statuses=PAYMENT_STATUSES,
    )
