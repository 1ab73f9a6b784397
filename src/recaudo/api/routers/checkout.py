"""Checkout: services and reference fields (admin), and the company-application API.

The company's own web application starts a payment with `POST /checkout/transactions`
(the service's references in order, the amount before tax and the tax, the currency, its
redirect and confirmation URLs) and sends the payer to the answered `payment_url`; when the
transaction is final Recaudo redirects the payer back and POSTs the final state to the
confirmation URL, signed with the service's secret (`Recaudo-Signature`, as webhooks) and
retried until it answers 2xx. `GET /checkout/transactions/{ticket_id}` answers the state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from recaudo.adapters.db.tables import Company
from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.checkout_schemas import (
    AttachIn,
    FieldIn,
    FieldOut,
    PinsIn,
    PriceIn,
    SecretOut,
    ServiceIn,
    ServiceOut,
    ServiceParams,
    TransactionIn,
    TransactionOut,
    to_minor,
)
from recaudo.api.errors import problem, problem_responses
from recaudo.domain.checkout import ListItem
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.services import checkout, checkout_payments
from recaudo.services.checkout import AttachField, FieldInput, PriceItemView, ServiceInput

router = APIRouter(
    prefix="/checkout",
    tags=["checkout"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)

Code = Annotated[
    str,
    Path(
        min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_-]+$", description="The service's code."
    ),
]
Ticket = Annotated[int, Path(ge=1, le=2**62, description="The ticket id.")]

EXAMPLE = """
**Worked example** (a tuition service `MAT` with references *Tipo*, *Documento*, *Periodo*
and a fixed price of 150000.00 COP + 19 % VAT):

```
POST /api/v1/checkout/transactions
{"service_code": "MAT", "references": ["CC", "1020304050", "202601"],
 "currency": "COP", "redirect_url": "https://app.example.co/vuelta",
 "confirmation_url": "https://app.example.co/confirmacion"}

201 {"return_code": "OK", "ticket_id": 17, "state": "CREATED",
     "payment_url": "https://recaudo.example/pagar/t/Xk3...", "amount": "178500.00",
     "vat": "28500.00", "currency": "COP", ...}
```

References or amounts that do not validate answer 422 with `code: validation_failed`
and one `errors` entry per reference (`references[1]`: "Documento: es obligatorio");
a service that refuses (closed, informative only, double payment, daily limits) answers
409 `code: conflict`. The confirmation POST carries `{"event": "checkout.transaction.final",
"ticket_id", "state", "references", "amount", "vat", "currency", "means", "bank",
"trace_code", "pin", "finished_at"}`.
"""


def _currency(container: Any, company_id: int) -> str:
    with container.uow(write=False) as uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        return str(company.currency)


# Parameters that may be emptied with null; the others need a value.
NULLABLE = frozenset(
    {
        "section",
        "category",
        "active_from",
        "active_until",
        "fixed_price",
        "min_amount",
        "overdue_days",
        "daily_attempt_limit",
        "company_email",
        "message_before",
        "message_after",
        "redirect_url",
        "confirmation_url",
    }
)


def _params(body: ServiceParams, currency: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(body.model_fields_set):
        value = getattr(body, name)
        if value is None and name not in NULLABLE:
            raise ValidationFailed(f"{name} cannot be null", field=name)
        if name == "fixed_price":
            out["fixed_price_minor"] = to_minor(value, currency)
        elif name == "min_amount":
            out["min_amount_minor"] = to_minor(value, currency)
        elif name == "vat_percent":
            out["vat_basis_points"] = int(Decimal(value) * 100) if value is not None else 0
        elif name == "daily_amount_limits":
            out[name] = {k: to_minor(v, currency) for k, v in (value or {}).items()}
        elif name == "accepted_means":
            out[name] = tuple(value) if value is not None else ("PSE", "CARD")
        elif name != "code":
            out[name] = value
    return out


def _fields_problem(request: Request, exc: ValidationFailed) -> JSONResponse:
    fields = exc.details.get("fields")
    errors = None
    if isinstance(fields, dict):
        errors = [
            {"field": f"references[{k}]" if k.isdigit() else k, "message": m}
            for k, m in fields.items()
        ]
    elif isinstance(exc.details.get("field"), str):
        errors = [{"field": exc.details["field"], "message": exc.message}]
    return problem(request, 422, exc.code, exc.message, errors=errors)


@router.post("/fields", summary="Define a reference field (admin, operator)", status_code=201)
def create_field(body: FieldIn, actor: ActorDep, container: ContainerDep) -> FieldOut:
    company_id = company_id_of(actor)
    currency = _currency(container, company_id)
    data = FieldInput(
        title=body.title,
        kind=body.kind,
        help_text=body.help_text,
        prefix=body.prefix,
        display_length=body.display_length,
        list_kind=body.list_kind,
        list_items=tuple(
            ListItem(i.code, i.label, to_minor(i.price, currency), i.parent)
            for i in body.list_items
        ),
    )
    view = checkout.create_field(
        container.uow(), company_id, data, actor=actor, clock=container.clock
    )
    return FieldOut.of(view, currency)


@router.get("/fields", summary="The company's reference fields, by title")
def list_fields(actor: ActorDep, container: ContainerDep) -> list[FieldOut]:
    company_id = company_id_of(actor)
    currency = _currency(container, company_id)
    views = checkout.list_fields(container.uow(write=False), company_id, actor=actor)
    return [FieldOut.of(v, currency) for v in views]


@router.post(
    "/services",
    summary="Create a payable service with its parameters (admin, operator)",
    status_code=201,
    responses=problem_responses(409),
)
def create_service(body: ServiceIn, actor: ActorDep, container: ContainerDep) -> ServiceOut:
    company_id = company_id_of(actor)
    params = _params(body, _currency(container, company_id))
    data = ServiceInput(code=body.code, **params)
    view = checkout.create_service(
        container.uow(), company_id, data, actor=actor, clock=container.clock
    )
    return ServiceOut.of(view)


@router.get("/services", summary="The company's services, by code")
def list_services(actor: ActorDep, container: ContainerDep) -> list[ServiceOut]:
    views = checkout.list_services(container.uow(write=False), company_id_of(actor), actor=actor)
    return [ServiceOut.of(v) for v in views]


@router.get("/services/{code}", summary="One service", responses=problem_responses(404))
def get_service(code: Code, actor: ActorDep, container: ContainerDep) -> ServiceOut:
    view = checkout.get_service(container.uow(write=False), company_id_of(actor), code, actor=actor)
    return ServiceOut.of(view)


@router.patch(
    "/services/{code}",
    summary="Change some of a service's parameters (admin, operator)",
    responses=problem_responses(404),
)
def update_service(
    code: Code, body: ServiceParams, actor: ActorDep, container: ContainerDep
) -> ServiceOut:
    company_id = company_id_of(actor)
    changes = _params(body, _currency(container, company_id))
    view = checkout.update_service(
        container.uow(), company_id, code, changes, actor=actor, clock=container.clock
    )
    return ServiceOut.of(view)


@router.put(
    "/services/{code}/fields",
    summary="Set the service's form: these reference fields, in this order",
    responses=problem_responses(404),
)
def set_fields(
    code: Code, body: list[AttachIn], actor: ActorDep, container: ContainerDep
) -> ServiceOut:
    attach = [AttachField(**item.model_dump()) for item in body]
    view = checkout.set_service_fields(
        container.uow(), company_id_of(actor), code, attach, actor=actor, clock=container.clock
    )
    return ServiceOut.of(view)


@router.put(
    "/services/{code}/prices",
    summary="Set the service's price list",
    responses=problem_responses(404),
)
def set_prices(
    code: Code, body: list[PriceIn], actor: ActorDep, container: ContainerDep
) -> ServiceOut:
    company_id = company_id_of(actor)
    currency = _currency(container, company_id)
    items = [PriceItemView(p.code, p.label, to_minor(p.amount, currency) or 0) for p in body]
    view = checkout.set_price_list(
        container.uow(), company_id, code, items, actor=actor, clock=container.clock
    )
    return ServiceOut.of(view)


@router.post(
    "/services/{code}/pins",
    summary="Append PINs to the service's list (in the order given)",
    responses=problem_responses(404, 409),
)
def load_pins(code: Code, body: PinsIn, actor: ActorDep, container: ContainerDep) -> ServiceOut:
    view = checkout.load_pins(
        container.uow(), company_id_of(actor), code, body.pins, actor=actor, clock=container.clock
    )
    return ServiceOut.of(view)


@router.get(
    "/services/{code}/confirmation-secret",
    summary="The secret that signs the service's confirmations (admin)",
    responses=problem_responses(404),
)
def confirmation_secret(code: Code, actor: ActorDep, container: ContainerDep) -> SecretOut:
    secret = checkout_payments.service_secret(
        container.uow(write=False), company_id_of(actor), code, actor=actor
    )
    return SecretOut(secret=secret)


@router.post(
    "/transactions",
    summary="Start a payment from the company's application (eCollect's web service)",
    description=EXAMPLE,
    status_code=201,
    response_model=TransactionOut,
    responses=problem_responses(404, 409),
)
def start_transaction(
    body: TransactionIn, request: Request, actor: ActorDep, container: ContainerDep
) -> Any:
    company_id = company_id_of(actor)
    currency = _currency(container, company_id)
    if body.currency != currency:
        raise ValidationFailed(f"the service collects in {currency}", field="currency")
    cmd = checkout_payments.StartTransaction(
        service_code=body.service_code,
        references=body.references,
        amount_minor=to_minor(body.amount, currency),
        vat_minor=to_minor(body.vat, currency),
        payer_email=body.payer_email,
        redirect_url=body.redirect_url,
        confirmation_url=body.confirmation_url,
        origin="api",
    )
    try:
        view = checkout_payments.start_transaction(
            container.uow(), company_id, cmd, actor=actor, clock=container.clock
        )
    except ValidationFailed as exc:
        return _fields_problem(request, exc)
    return TransactionOut.of(view, str(request.base_url))


@router.get(
    "/transactions/{ticket}",
    summary="A ticket's state",
    responses=problem_responses(404),
)
def get_transaction(
    ticket: Ticket, request: Request, actor: ActorDep, container: ContainerDep
) -> TransactionOut:
    view = checkout_payments.find_by_ticket(
        container.uow(write=False), company_id_of(actor), ticket, actor=actor
    )
    return TransactionOut.of(view, str(request.base_url))
