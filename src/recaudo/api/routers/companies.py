"""The caller's company. Companies themselves are created from the command line."""

from __future__ import annotations

from fastapi import APIRouter, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.schemas import CompanyOut, Page
from recaudo.domain.errors import PermissionDenied
from recaudo.services import queries

router = APIRouter(tags=["companies"], responses=problem_responses(400, 401, 403))

CREATION_REFUSED = (
    "API keys are bound to one company and cannot create companies; "
    "create them with `recaudo company create`"
)


@router.get("/company", summary="The caller's company")
def get_own_company(actor: ActorDep, container: ContainerDep) -> CompanyOut:
    with container.uow(write=False) as uow:
        return CompanyOut.of(queries.company_view(queries.get_company(uow, company_id_of(actor))))


@router.get(
    "/companies",
    summary="Companies the caller can see",
    description="An API key is bound to one company, so this lists exactly that company.",
)
def list_companies(actor: ActorDep, container: ContainerDep) -> Page[CompanyOut]:
    with container.uow(write=False) as uow:
        views = queries.list_companies(uow, company_id_of(actor))
    return Page(
        items=[CompanyOut.of(v) for v in views],
        total=len(views),
        page=1,
        page_size=max(1, len(views)),
    )


@router.post(
    "/companies",
    summary="Create a company (not through API keys)",
    description=(
        "Always answers 403 in this version: every API key is bound to one company, and "
        "only an unbound administrator may create companies. Create them with "
        "`recaudo company create`."
    ),
    responses=problem_responses(403),
    status_code=403,
    response_class=Response,
)
def create_company(actor: ActorDep) -> None:
    # Refused at the edge rather than by the service (which answers 409 to a bound
    # actor): for a client this is a question of permission, not of state.
    raise PermissionDenied(CREATION_REFUSED)
