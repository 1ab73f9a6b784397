"""Pagos: transaction monitoring (filters, pages, CSV/XLSX export), a payment's detail with
its allocations and audit trail, office payments (cash or cheque) with their printable
receipt, and reversals with a reason.

Same services as the API: `services.monitoring` (the read side), `services.payments`
(`apply_payment`, `reverse_payment`), `services.queries` (one payment, the audit trail).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Annotated, Any, BinaryIO
from urllib.parse import urlencode

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from recaudo.domain.errors import Conflict, NotFound, RecaudoError, ValidationFailed
from recaudo.domain.payments import OFFICE_CHANNEL, PaymentMethod
from recaudo.formats.tabular import TableFormat
from recaudo.services import agreements, monitoring, queries
from recaudo.services.context import OFFICE_PAYMENT_ROLES, Role
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment
from recaudo.services.queries import Paging
from recaudo.web.common import (
    ALL_ROLES,
    READ_ROLES,
    WRITE_ROLES,
    Page,
    WebContext,
    page_number,
    redirect,
    render,
    require_role,
    web_router,
)

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[WebContext, Depends(require_role(*WRITE_ROLES))]
Counter = Annotated[WebContext, Depends(require_role(*sorted(OFFICE_PAYMENT_ROLES)))]
Anyone = Annotated[WebContext, Depends(require_role(*ALL_ROLES))]
PaymentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50

# --- Spanish names shared by the dashboard, portfolio and payment pages ----------------------

CHANNEL_NAMES = {
    "office": "Oficina",
    "bancoestado": "BancoEstado",
    "caja-vecina": "Caja Vecina",
    "internet": "Internet",
    "api": "API",
}
METHOD_NAMES = {
    "cash": "Efectivo",
    "cheque": "Cheque",
    "transfer": "Transferencia",
    "card": "Tarjeta",
    "direct_debit": "Domiciliación",
    "bank_debit": "Débito bancario",
    "bizum": "Bizum",
    "paypal": "PayPal",
    "other": "Otro",
}
PAYMENT_STATUS_NAMES = {"applied": "Aplicado", "reversed": "Reversado", "exception": "Excepción"}
DEBT_STATUS_NAMES = {
    "open": "Abierta",
    "in_payment": "En pago",
    "paid": "Pagada",
    "cancelled": "Anulada",
    "written_off": "Castigada",
    "replaced": "Reemplazada por un plan",
}
AUDIT_ACTION_NAMES = {
    "payment.applied": "Pago aplicado",
    "payment.reversed": "Pago reversado",
    "payment.exception": "Pago en excepción",
    "payment_exception.raised": "Excepción registrada",
    "payment_exception.resolved": "Excepción resuelta",
    "debt.status_changed": "Cambio de estado de deuda",
}
COUNTER_METHODS = (PaymentMethod.CASH, PaymentMethod.CHEQUE)


def channel_name(key: str | None) -> str:
    """`bancoestado/caja-vecina` → "BancoEstado · Caja Vecina"; unknown parts as they are."""
    if not key:
        return ""
    return " · ".join(CHANNEL_NAMES.get(part, part) for part in key.split("/"))


def names() -> dict[str, Any]:
    """What templates need to show codes as words."""
    return {
        "channel_name": channel_name,
        "method_names": METHOD_NAMES,
        "payment_status_names": PAYMENT_STATUS_NAMES,
        "debt_status_names": DEBT_STATUS_NAMES,
        "audit_action_names": AUDIT_ACTION_NAMES,
    }


def filter_status(request: Request, error: str | None) -> int:
    """422 for a bad filter; 200 to htmx, which swaps only successful answers in."""
    if error is None or request.headers.get("HX-Request") == "true":
        return 200
    return 422


def service_page(result: Any) -> Page[Any]:
    return Page(result.items, result.total, result.page, result.page_size)


# --- parsing the filters --------------------------------------------------------------------


def parse_date(text: str, field: str, label: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{label}: la fecha debe tener el formato aaaa-mm-dd", field=field
        ) from None


def parse_id(text: str, field: str, label: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise ValidationFailed(f"{label}: debe ser un número", field=field)
    return int(text)


AMOUNT_ERROR = "el monto debe ser un número positivo, sin separador de miles (p. ej. 15000 o 12,50)"


def spanish(error: RecaudoError) -> str:
    """A service error as the forms show it (amounts and dates get a Spanish sentence)."""
    field = str(error.details.get("field", ""))
    if field in ("amount", "amount_min", "amount_max") or error.code == "invalid_amount":
        if "above" in error.message:
            return "El monto mínimo es mayor que el máximo."
        return "Monto no válido: " + AMOUNT_ERROR + "."
    if field in ("date_to", "due_to"):
        return "El rango de fechas termina antes de comenzar."
    if field == "national_id":
        return "El RUT o documento no es válido."
    return error.message


# --- export -----------------------------------------------------------------------------------

MEDIA = {
    TableFormat.CSV: "text/csv; charset=utf-8",
    TableFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK = 64 * 1024


def _stream(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


def export_response(
    ctx: WebContext, fmt: str, name: str, write: Callable[[BinaryIO], object]
) -> Response:
    """Write the whole file first (an error is still a clean page), then stream it."""
    try:
        table_format = TableFormat(fmt)
    except ValueError:
        raise ValidationFailed("el formato debe ser csv o xlsx", field="formato") from None
    directory = ctx.container.settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by _stream)
    try:
        write(spool)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _stream(spool),
        media_type=MEDIA[table_format],
        headers={"Content-Disposition": f'attachment; filename="{name}.{table_format.value}"'},
    )


# --- the list -----------------------------------------------------------------------------------

FILTERS = (
    "desde",
    "hasta",
    "canal",
    "medio",
    "estado",
    "convenio",
    "monto_min",
    "monto_max",
    "transaccion",
)


def _search(request: Request) -> tuple[dict[str, str], monitoring.PaymentSearch]:
    values = {k: request.query_params.get(k, "")[:100] for k in FILTERS}
    search = monitoring.PaymentSearch(
        date_from=parse_date(values["desde"], "date_from", "Desde"),
        date_to=parse_date(values["hasta"], "date_to", "Hasta"),
        channel=values["canal"].strip() or None,
        method=values["medio"].strip() or None,
        status=values["estado"].strip() or None,
        agreement_id=parse_id(values["convenio"], "agreement_id", "Convenio"),
        amount_min=values["monto_min"].strip() or None,
        amount_max=values["monto_max"].strip() or None,
        external_id=values["transaccion"].strip() or None,
    )
    return values, search


@router.get("/pagos", name="payments")
def payments_page(request: Request, ctx: Anyone) -> Response:
    if ctx.role is Role.CASHIER:  # a cashier registers payments; the list is not theirs
        return redirect(request, "/pagos/nuevo")
    values = {k: request.query_params.get(k, "")[:100] for k in FILTERS}
    error = None
    page: Page[Any] = Page([], 0, 1, PAGE_SIZE)
    with ctx.uow(write=False) as uow:
        channels = monitoring.channels_in_use(uow, ctx.company_id)
        agreement_rows = [
            (a.id, f"{channel_name(a.channel)} · convenio {a.convenio}")
            for a in agreements.list_agreements(uow, ctx.company_id)
        ]
        try:
            values, search = _search(request)
            page = service_page(
                monitoring.search_payments(
                    uow, ctx.company_id, search, paging=Paging(page_number(request), PAGE_SIZE)
                )
            )
        except ValidationFailed as exc:
            error = spanish(exc)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k in FILTERS])
    return render(
        request,
        "payments/list.html",
        status_code=filter_status(request, error),
        page=page,
        values=values,
        error=error,
        channels=channels,
        agreements=agreement_rows,
        methods=METHOD_NAMES,
        statuses=PAYMENT_STATUS_NAMES,
        export_query=query,
        can_register=ctx.role in OFFICE_PAYMENT_ROLES,
        **names(),
    )


@router.get("/pagos/exportar", name="payments_export")
def export_payments(
    request: Request,
    ctx: Reader,
    formato: Annotated[str, Query(max_length=8)] = "csv",
) -> Response:
    _values, search = _search(request)

    def write(out: BinaryIO) -> None:
        with ctx.uow(write=False) as uow:
            monitoring.write_export(uow, ctx.company_id, search, formato, out)

    return export_response(ctx, formato, "pagos", write)


# --- registering an office payment ------------------------------------------------------------


def _customer_and_debts(ctx: WebContext, customer_id: int) -> tuple[Any, list[Any]]:
    with ctx.uow(write=False) as uow:
        customer = queries.get_customer(uow, ctx.company_id, customer_id)
        debts = queries.list_debts(
            uow, ctx.company_id, customer_id=customer_id, paging=Paging(1, 500)
        ).items
    payable = [d for d in debts if d.status in ("open", "in_payment") and d.open_amount > 0]
    return customer, payable


def _new_form(
    request: Request,
    ctx: WebContext,
    *,
    customer_id: int | None,
    rut: str = "",
    error: str | None = None,
    chosen: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    customer: Any = None
    debts: list[Any] = []
    if customer_id is not None:
        customer, debts = _customer_and_debts(ctx, customer_id)
    return render(
        request,
        "payments/new.html",
        status_code=status_code,
        customer=customer,
        debts=debts,
        rut=rut,
        error=error,
        chosen=chosen or {"key": uuid.uuid4().hex, "method": "cash", "debts": ()},
        methods=[(m.value, METHOD_NAMES[m.value]) for m in COUNTER_METHODS],
        **names(),
    )


@router.get("/pagos/nuevo", name="payment_new")
def new_payment(
    request: Request,
    ctx: Counter,
    cliente: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    rut: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    if cliente is None and rut.strip():
        with ctx.uow(write=False) as uow:
            try:
                found = queries.list_customers(uow, ctx.company_id, national_id=rut.strip())
            except ValidationFailed:
                found = None
        if found is None or found.total != 1:
            message = (
                "El RUT o documento no es válido."
                if found is None
                else "No hay ningún cliente con ese RUT o documento."
            )
            return _new_form(
                request, ctx, customer_id=None, rut=rut, error=message, status_code=422
            )
        cliente = found.items[0].id
    return _new_form(request, ctx, customer_id=cliente, rut=rut)


@router.post("/pagos/nuevo", name="payment_register")
def register_payment(
    request: Request,
    ctx: Counter,
    cliente: Annotated[int, Form(ge=1, le=2**63 - 1)],
    monto: Annotated[str, Form(max_length=40)] = "",
    medio: Annotated[str, Form(max_length=20)] = "",
    clave: Annotated[str, Form(max_length=100)] = "",
    deudas: Annotated[list[str] | None, Form()] = None,
) -> Response:
    named = tuple(d.strip() for d in deudas or () if d.strip())
    chosen = {"key": clave or uuid.uuid4().hex, "amount": monto, "method": medio, "debts": named}
    try:
        if medio not in {m.value for m in COUNTER_METHODS}:
            raise ValidationFailed("Elija el medio de pago: efectivo o cheque.", field="method")
        if not clave.strip():
            raise ValidationFailed("Falta la clave del formulario; vuelva a cargarlo.")
        cmd = ApplyPayment(
            company_id=ctx.company_id,
            customer_id=cliente,
            amount=monto.strip(),
            method=PaymentMethod(medio),
            external_id=f"web-{clave.strip()}",
            channel=OFFICE_CHANNEL,
            debts=named,
            strict=True,
        )
        applied = apply_payment(ctx.uow(), cmd, actor=ctx.actor, clock=ctx.clock)
    except ValidationFailed as exc:
        return _new_form(
            request, ctx, customer_id=cliente, error=spanish(exc), chosen=chosen, status_code=422
        )
    except Conflict as exc:
        if exc.code == "debt_not_payable":
            message = "Una de las deudas elegidas ya no admite pagos."
        elif "already used" in exc.message:
            message = (
                "Este formulario ya registró otro pago; ábralo de nuevo para registrar uno nuevo."
            )
            chosen["key"] = uuid.uuid4().hex
        else:
            message = exc.message
        return _new_form(
            request, ctx, customer_id=cliente, error=message, chosen=chosen, status_code=409
        )
    payment = applied.payment
    if not applied.replayed:
        ctx.flash(f"Pago N° {payment.id} registrado.", "ok")
    return redirect(request, f"/pagos/{payment.id}/recibo")


# --- one payment ------------------------------------------------------------------------------


def _payment_and_customer(ctx: WebContext, payment_id: int) -> tuple[Any, Any]:
    with ctx.uow(write=False) as uow:
        payment = queries.get_payment(uow, ctx.company_id, payment_id)
        customer = (
            queries.get_customer(uow, ctx.company_id, payment.customer_id)
            if payment.customer_id is not None
            else None
        )
    return payment, customer


@router.get("/pagos/{payment_id}", name="payment")
def payment_page(request: Request, payment_id: PaymentId, ctx: Reader) -> Response:
    payment, customer = _payment_and_customer(ctx, payment_id)
    with ctx.uow(write=False) as uow:
        trail = monitoring.payment_trail(uow, ctx.company_id, payment_id)
    return render(
        request,
        "payments/detail.html",
        payment=payment,
        customer=customer,
        trail=trail,
        debt_refs={str(a.debt): a.debt_id for a in payment.allocations},
        can_reverse=ctx.role in WRITE_ROLES and payment.status != "reversed",
        **names(),
    )


@router.get("/pagos/{payment_id}/recibo", name="payment_receipt")
def receipt_page(request: Request, payment_id: PaymentId, ctx: Anyone) -> Response:
    payment, customer = _payment_and_customer(ctx, payment_id)
    if ctx.role is Role.CASHIER and payment.channel != OFFICE_CHANNEL:
        raise NotFound(f"no payment {payment_id}")  # a cashier prints office receipts only
    return render(
        request,
        "payments/receipt.html",
        payment=payment,
        customer=customer,
        can_see_detail=ctx.role in READ_ROLES,
        **names(),
    )


@router.post("/pagos/{payment_id}/reversar", name="payment_reverse")
def reverse(
    request: Request,
    payment_id: PaymentId,
    ctx: Writer,
    motivo: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        reverse_payment(
            ctx.uow(), ctx.company_id, payment_id, motivo, actor=ctx.actor, clock=ctx.clock
        )
    except ValidationFailed:
        ctx.flash("Indique el motivo de la reversa (hasta 500 caracteres).", "error")
        return redirect(request, f"/pagos/{payment_id}")
    except Conflict as exc:
        text = "El pago ya estaba reversado." if exc.code == "already_reversed" else exc.message
        ctx.flash(text, "error")
        return redirect(request, f"/pagos/{payment_id}")
    ctx.flash(f"Pago N° {payment_id} reversado.", "ok")
    return redirect(request, f"/pagos/{payment_id}")
