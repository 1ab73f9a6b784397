"""Payment exceptions: collected money that did not match, listed and resolved by people."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.channel_schemas import ExceptionOut, ResolveIn
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page
from recaudo.services import exceptions

router = APIRouter(tags=["payment exceptions"], responses=problem_responses(400, 401, 403, 422))

ExceptionId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/exceptions", summary="Payment exceptions, newest first")
def list_exceptions(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: Literal["open", "resolved"] | None = None,
) -> Page[ExceptionOut]:
    with container.uow(write=False) as uow:
        page = exceptions.list_exceptions(uow, company_id_of(actor), status=status, paging=p)
    return paged(request, response, [ExceptionOut.of(v) for v in page.items], page.total, p)


@router.get("/exceptions/{exception_id}", summary="One exception", responses=problem_responses(404))
def get_exception(
    exception_id: ExceptionId, actor: ActorDep, container: ContainerDep
) -> ExceptionOut:
    with container.uow(write=False) as uow:
        return ExceptionOut.of(exceptions.get_exception(uow, company_id_of(actor), exception_id))


@router.post(
    "/exceptions/{exception_id}/resolve",
    summary="Resolve an exception",
    description=(
        "`applied`: the payment's credit pays `debt_ids` in order; `credit`: it stays the "
        "customer's credit; `refunded`: the credit was given back. A comment is required; "
        "resolving twice is 409."
    ),
    responses=problem_responses(404, 409),
)
def resolve_exception(
    exception_id: ExceptionId, body: ResolveIn, actor: ActorDep, container: ContainerDep
) -> ExceptionOut:
    view = exceptions.resolve_exception(
        container.uow(),
        company_id_of(actor),
        exception_id,
        body.resolution,
        body.comment,
        debts=tuple(body.debt_ids),
        actor=actor,
        clock=container.clock,
    )
    return ExceptionOut.of(view)
