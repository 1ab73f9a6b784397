"""The hosted payment page (public, Spanish, no sign-in): `/pagar/...`.

`/pagar/<company>` lists the services; `/pagar/<company>/<service>` is the service's form
(references validated by `domain.checkout.validate_references`, every problem shown next
to its field); the confirmed form is a CREATED ticket at `/pagar/t/<token>` (an
unguessable token: the payer's only key), where the payer chooses the means and bank and
goes to the provider; the provider sends the payer back to `/pagar/t/<token>/retorno` and
notifies `/pagar/notificacion`; both only make Recaudo ask the provider for the outcome.
The receipt shows ticket, trace code (CUS) and PIN, and goes back to the company's redirect
URL. The provider comes from `app.state.checkout_provider`, else from the
`RECAUDO_CHECKOUT_PROVIDER_URL` setting (the simulator's URL in development).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from recaudo.adapters.payment_provider import (
    PaymentProvider,
    ProviderUnavailable,
    configured_provider,
)
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, RecaudoError, ValidationFailed
from recaudo.services import checkout, checkout_payments
from recaudo.services.context import Actor, Role
from recaudo.web.common import container_of, form_value, templates, web_router

router = web_router()


def provider_of(request: Request) -> PaymentProvider:
    provider: PaymentProvider | None = getattr(request.app.state, "checkout_provider", None)
    if provider is None:
        provider = configured_provider(container_of(request).settings.checkout_provider_url)
        request.app.state.checkout_provider = provider
    return provider


def _page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(f"checkout/{template}").render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _company(request: Request, slug: str) -> checkout.PublicCompany:
    return checkout.public_company(container_of(request).uow(write=False), slug=slug)


def _tx_page(
    request: Request, tx: checkout_payments.TransactionView, error: str | None = None
) -> HTMLResponse:
    container = container_of(request)
    company_name = checkout.public_company(
        container.uow(write=False), company_id=tx.company_id
    ).legal_name
    service = checkout.public_service(container.uow(write=False), tx.company_id, tx.service_code)
    banks: list[tuple[str, str]] = []
    if tx.state == "CREATED" and "PSE" in service.accepted_means:
        try:
            banks = provider_of(request).banks()
        except (ProviderUnavailable, checkout_payments.ProviderDown):
            error = error or "El servicio de pagos no está disponible; intente más tarde."
    return _page(
        "transaction.html",
        status_code=200 if error is None else 409,
        company_name=company_name,
        tx=tx,
        means=service.accepted_means,
        banks=banks,
        message_after=service.message_after,
        error=error,
    )


@router.post("/pagar/notificacion")
async def notification(request: Request) -> Response:
    """The provider's server-to-server notice: Recaudo asks it for the outcome."""
    try:
        body = await request.json()
        session = str(body["session"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"ok": False, "error": 'body must be {"session": ...}'}, 422)
    container = container_of(request)
    try:
        tx = checkout_payments.by_session(container.uow(write=False), session)
    except NotFound:
        return JSONResponse({"ok": False, "error": "unknown session"}, 404)
    done = checkout_payments.settle(
        container.uow(), tx.token, provider_of(request), clock=container.clock
    )
    return JSONResponse({"ok": True, "state": done.state})


@router.get("/pagar/t/{token}")
def transaction_page(token: str, request: Request) -> HTMLResponse:
    tx = checkout_payments.by_token(container_of(request).uow(write=False), token)
    return _tx_page(request, tx)


@router.post("/pagar/t/{token}")
async def pay(token: str, request: Request) -> Response:
    container = container_of(request)
    form = await request.form()
    means, bank = form_value(form.multi_items(), "means"), form_value(form.multi_items(), "bank")
    base = str(request.base_url).rstrip("/")
    try:
        redirect = checkout_payments.begin_payment(
            container.uow(),
            token,
            means,
            bank or None,
            provider_of(request),
            return_url=f"{base}/pagar/t/{token}/retorno",
            callback_url=f"{base}/pagar/notificacion",
            clock=container.clock,
        )
    except (ValidationFailed, Conflict, checkout_payments.ProviderDown) as exc:
        tx = checkout_payments.by_token(container.uow(write=False), token)
        fields = exc.details.get("fields")
        message = (
            next(iter(fields.values())) if isinstance(fields, dict) and fields else exc.message
        )
        return _tx_page(request, tx, _spanish(message))
    return RedirectResponse(redirect, status_code=303)


@router.get("/pagar/t/{token}/retorno")
def back_from_bank(token: str, request: Request) -> Response:
    container = container_of(request)
    checkout_payments.settle(container.uow(), token, provider_of(request), clock=container.clock)
    return RedirectResponse(f"/pagar/t/{token}", status_code=303)


@router.post("/pagar/t/{token}/reintentar")
def retry(token: str, request: Request) -> Response:
    container = container_of(request)
    tx = checkout_payments.by_token(container.uow(write=False), token)
    cmd = checkout_payments.StartTransaction(
        service_code=tx.service_code,
        references=[value for _, value in tx.references],
        amount_minor=tx.amount_minor - tx.vat_minor,
        payer_email=tx.payer_email,
        redirect_url=tx.redirect_url,
        origin="page",
        retry_of=token,
    )
    try:
        new = _start(request, tx.company_id, cmd)
    except RecaudoError as exc:
        return _tx_page(request, tx, _spanish(exc.message))
    return RedirectResponse(f"/pagar/t/{new.token}", status_code=303)


def _start(
    request: Request, company_id: int, cmd: checkout_payments.StartTransaction
) -> checkout_payments.TransactionView:
    container = container_of(request)
    actor = Actor("checkout:page", Role.OPERATOR, company_id)
    return checkout_payments.start_transaction(
        container.uow(), company_id, cmd, actor=actor, clock=container.clock
    )


SPANISH = {
    "this service is informative only and takes no payment": "Este servicio es informativo.",
    "these references were already paid": "Ya existe un pago aprobado con estas referencias.",
    "this service is not active": "El servicio no está activo.",
}


def _spanish(message: str) -> str:
    if message in SPANISH:
        return SPANISH[message]
    if message.startswith("the daily limit"):
        return "Alcanzó el límite diario de intentos de pago."
    if message.startswith("the daily amount limit"):
        return "Supera el monto diario permitido para este medio de pago."
    if "retried" in message:
        return "Alcanzó el número máximo de reintentos."
    if "overdue" in message:
        return "La deuda está vencida más allá de lo que este servicio acepta."
    if message.startswith("no open debts") or message.startswith("no customer"):
        return "No encontramos deudas pendientes con estas referencias."
    if "provider" in message:
        return "El servicio de pagos no está disponible; intente más tarde."
    return message


@router.get("/pagar/{slug}")
def services_page(slug: str, request: Request) -> HTMLResponse:
    container = container_of(request)
    company = _company(request, slug)
    views = checkout.payable_services(container.uow(write=False), slug, container.clock().date())
    groups: dict[str, list[checkout.ServiceView]] = defaultdict(list)
    for view in views:
        groups[view.section or ""].append(view)
    return _page(
        "services.html", company_name=company.legal_name, slug=slug, groups=sorted(groups.items())
    )


def _service(
    request: Request, slug: str, code: str
) -> tuple[checkout.PublicCompany, checkout.ServiceView]:
    company = _company(request, slug)
    view = checkout.public_service(container_of(request).uow(write=False), company.id, code)
    if not view.active:
        raise NotFound("no such service")
    return company, view


@router.get("/pagar/{slug}/{code}")
def form_page(slug: str, code: str, request: Request) -> HTMLResponse:
    company, service = _service(request, slug, code)
    return _page(
        "form.html",
        company_name=company.legal_name,
        slug=slug,
        service=service,
        fields=service.fields,
        values={},
        errors={},
        error=None,
    )


@router.post("/pagar/{slug}/{code}")
async def submit_form(slug: str, code: str, request: Request) -> Response:
    company, service = _service(request, slug, code)
    form = (await request.form()).multi_items()
    values = {str(i): form_value(form, f"ref{i}") for i in range(len(service.fields))}
    values["amount"] = form_value(form, "amount").strip()
    values["payer_email"] = form_value(form, "payer_email").strip()
    errors: dict[str, str] = {}
    amount_minor = None
    if values["amount"]:
        try:
            amount_minor = money.to_minor(
                money.parse_amount(values["amount"], service.currency), service.currency
            )
        except ValidationFailed:
            errors["amount"] = "Escriba un valor como 150000 o 150000,50"
    error = None
    if not errors:
        cmd = checkout_payments.StartTransaction(
            service_code=code,
            references=[values[str(i)] for i in range(len(service.fields))],
            amount_minor=amount_minor,
            payer_email=values["payer_email"] or None,
            origin="page",
        )
        try:
            tx = _start(request, company.id, cmd)
        except ValidationFailed as exc:
            fields = exc.details.get("fields")
            if isinstance(fields, dict):
                errors.update({k: str(v) for k, v in fields.items()})
                if (
                    "0" in errors
                    and values["payer_email"]
                    and exc.message.startswith("the references do not validate: Correo del pagador")
                ):
                    errors = {"payer_email": errors.pop("0")}
            else:
                error = _spanish(exc.message)
        except (Conflict, NotFound) as exc:
            error = _spanish(exc.message)
        else:
            return RedirectResponse(f"/pagar/t/{tx.token}", status_code=303)
    return _page(
        "form.html",
        status_code=422,
        company_name=company.legal_name,
        slug=slug,
        service=service,
        fields=service.fields,
        values=values,
        errors=errors,
        error=error or ("Revise los datos marcados." if errors else None),
    )
