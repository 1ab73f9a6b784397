"""Payments: listing, one payment with its allocations, office payments and reversals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import AwareDatetime

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import (
    MAX_ID,
    Key,
    Page,
    PaymentApplied,
    PaymentIn,
    PaymentOut,
    ReverseIn,
    Text32,
    Text100,
)
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.payments import OFFICE_CHANNEL, PaymentMethod, PaymentStatus
from recaudo.services import customers, queries
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment

router = APIRouter(tags=["payments"], responses=problem_responses(400, 401, 403, 422))

PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The payment's id in this API.")]
REPLAYED_HEADER = "Idempotent-Replayed"


@router.get("/payments", summary="Payments, newest first")
def list_payments(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: PaymentStatus | None = None,
    channel: Annotated[Text32 | None, Query()] = None,
    method: PaymentMethod | None = None,
    external_id: Annotated[Text100 | None, Query()] = None,
    paid_from: Annotated[
        AwareDatetime | None,
        Query(description="Paid at or after (ISO 8601 with offset; `+` encoded as %2B)."),
    ] = None,
    paid_to: Annotated[AwareDatetime | None, Query(description="Paid strictly before.")] = None,
) -> Page[PaymentOut]:
    filters = queries.PaymentFilter(
        customer_id=customer_id,
        status=status,
        channel=channel,
        method=method,
        external_id=external_id,
        paid_from=paid_from,
        paid_to=paid_to,
    )
    with container.uow(write=False) as uow:
        page = queries.list_payments(uow, company_id_of(actor), filters, paging=p)
    return paged(request, response, [PaymentOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/payments/{payment_id}",
    summary="One payment with its allocations",
    responses=problem_responses(404),
)
def get_payment(payment_id: PaymentId, actor: ActorDep, container: ContainerDep) -> PaymentOut:
    with container.uow(write=False) as uow:
        return PaymentOut.of(queries.get_payment(uow, company_id_of(actor), payment_id))


def _idempotency_key(body: PaymentIn, header: str | None) -> str:
    if body.idempotency_key and header and body.idempotency_key != header:
        raise ValidationFailed(
            "the Idempotency-Key header and idempotency_key differ", field="idempotency_key"
        )
    key = body.idempotency_key or header
    if not key:
        raise ValidationFailed(
            "an office payment needs an idempotency key (header or body)",
            field="idempotency_key",
        )
    return key


@router.post(
    "/payments",
    summary="Register an office payment",
    description=(
        "Applies money a cashier received: to the named debts in the given order, or to the "
        "customer's oldest due debts; what no debt can take becomes credit. Named debts that "
        "cannot take money are refused (409) so that the cash can be given back. One payment "
        "per idempotency key: a replay answers 200 with the first payment, `replayed: true` "
        "and the header `Idempotent-Replayed: true`; the same key with another body is 409."
    ),
    status_code=201,
    responses={
        200: {
            "description": "A replay: the payment this key already registered.",
            "model": PaymentApplied,
        },
        **problem_responses(404, 409),
    },
)
def create_payment(
    body: PaymentIn,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    idempotency_key: Annotated[
        Key | None,
        Header(alias="Idempotency-Key"),
    ] = None,
) -> PaymentApplied:
    company_id = company_id_of(actor)
    key = _idempotency_key(body, idempotency_key)
    customer_id = body.customer_id
    if customer_id is None:
        assert body.national_id is not None  # the schema requires one of the two
        with container.uow(write=False) as uow:
            company = queries.get_company(uow, company_id)
            customer_id = customers.find_customer(uow, company, body.national_id, body.id_type).id
    cmd = ApplyPayment(
        company_id=company_id,
        customer_id=customer_id,
        amount=body.amount,
        method=body.method,
        external_id=key,
        channel=OFFICE_CHANNEL,
        debts=tuple(body.debt_ids),
        paid_at=body.paid_at,
        strict=True,
    )
    applied = apply_payment(container.uow(), cmd, actor=actor, clock=container.clock)
    if applied.replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    return PaymentApplied.applied(applied.payment, replayed=applied.replayed)


@router.post(
    "/payments/{payment_id}/reverse",
    summary="Reverse a payment",
    description="Its debts get back what it paid them and its credit is withdrawn. "
    "Reversing a reversed payment is 409.",
    responses=problem_responses(404, 409),
)
def reverse(
    payment_id: PaymentId, body: ReverseIn, actor: ActorDep, container: ContainerDep
) -> PaymentOut:
    view = reverse_payment(
        container.uow(),
        company_id_of(actor),
        payment_id,
        body.reason,
        actor=actor,
        clock=container.clock,
    )
    return PaymentOut.of(view)
