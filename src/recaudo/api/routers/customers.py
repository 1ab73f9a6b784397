"""Customers: search by national id or name; one customer with balances, debts, payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import (
    MAX_ID,
    CustomerOut,
    DebtOut,
    NationalIdText,
    Page,
    PaymentOut,
    Text100,
)
from recaudo.domain.debts import DebtStatus
from recaudo.domain.payments import PaymentStatus
from recaudo.services import queries

router = APIRouter(tags=["customers"], responses=problem_responses(400, 401, 403, 422))

CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="The customer's id in this API.")]


@router.get("/customers", summary="Find customers")
def list_customers(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    national_id: Annotated[
        NationalIdText | None,
        Query(
            description="Any formatting (`12.345.678-5`, `12345678-5`, `123456785`).",
        ),
    ] = None,
    q: Annotated[Text100 | None, Query(description="Words of the name or national id.")] = None,
) -> Page[CustomerOut]:
    with container.uow(write=False) as uow:
        page = queries.list_customers(
            uow, company_id_of(actor), national_id=national_id, q=q, paging=p
        )
    return paged(request, response, [CustomerOut.of(c) for c in page.items], page.total, p)


@router.get(
    "/customers/{customer_id}",
    summary="One customer, with open total and credit balance",
    responses=problem_responses(404),
)
def get_customer(customer_id: CustomerId, actor: ActorDep, container: ContainerDep) -> CustomerOut:
    with container.uow(write=False) as uow:
        return CustomerOut.of(queries.get_customer(uow, company_id_of(actor), customer_id))


@router.get(
    "/customers/{customer_id}/debts",
    summary="A customer's debts, oldest due first",
    responses=problem_responses(404),
)
def list_customer_debts(
    request: Request,
    response: Response,
    customer_id: CustomerId,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: DebtStatus | None = None,
) -> Page[DebtOut]:
    company_id = company_id_of(actor)
    with container.uow(write=False) as uow:
        # A customer of another company (or none) is a 404, not an empty list.
        queries.get_customer(uow, company_id, customer_id)
        page = queries.list_debts(uow, company_id, customer_id=customer_id, status=status, paging=p)
    return paged(request, response, [DebtOut.of(d) for d in page.items], page.total, p)


@router.get(
    "/customers/{customer_id}/payments",
    summary="A customer's payments, newest first",
    responses=problem_responses(404),
)
def list_customer_payments(
    request: Request,
    response: Response,
    customer_id: CustomerId,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: PaymentStatus | None = None,
) -> Page[PaymentOut]:
    company_id = company_id_of(actor)
    filters = queries.PaymentFilter(customer_id=customer_id, status=status)
    with container.uow(write=False) as uow:
        queries.get_customer(uow, company_id, customer_id)
        page = queries.list_payments(uow, company_id, filters, paging=p)
    return paged(request, response, [PaymentOut.of(v) for v in page.items], page.total, p)
