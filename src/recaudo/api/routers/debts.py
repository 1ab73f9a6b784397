"""Debts: listing with filters, and one debt with what it has received."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, DebtOut, Page
from recaudo.domain.debts import DebtStatus
from recaudo.services import queries

router = APIRouter(tags=["debts"], responses=problem_responses(400, 401, 403, 422))


@router.get("/debts", summary="Debts, oldest due first")
def list_debts(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: DebtStatus | None = None,
    due_before: Annotated[
        date | None, Query(description="Only debts due strictly before this date.")
    ] = None,
) -> Page[DebtOut]:
    with container.uow(write=False) as uow:
        page = queries.list_debts(
            uow,
            company_id_of(actor),
            customer_id=customer_id,
            status=status,
            due_before=due_before,
            paging=p,
        )
    return paged(request, response, [DebtOut.of(d) for d in page.items], page.total, p)


@router.get("/debts/{debt_id}", summary="One debt", responses=problem_responses(404))
def get_debt(
    debt_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The debt's id in this API.")],
    actor: ActorDep,
    container: ContainerDep,
) -> DebtOut:
    with container.uow(write=False) as uow:
        return DebtOut.of(queries.get_debt(uow, company_id_of(actor), debt_id))
