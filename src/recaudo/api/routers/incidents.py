"""Incidents (every "not available" answer and internal failure) and company availability."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.channel_schemas import AvailabilityIn, AvailabilityOut, IncidentOut
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import Page, Text32
from recaudo.services import incidents

router = APIRouter(tags=["incidents"], responses=problem_responses(400, 401, 403, 422))


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    kind: Annotated[Text32 | None, Query(examples=["unavailable"])] = None,
) -> Page[IncidentOut]:
    with container.uow(write=False) as uow:
        page = incidents.list_incidents(uow, company_id_of(actor), kind=kind, paging=p)
    return paged(request, response, [IncidentOut.of(v) for v in page.items], page.total, p)


@router.get("/company/availability", summary="Whether channels may query the company")
def get_availability(actor: ActorDep, container: ContainerDep) -> AvailabilityOut:
    with container.uow(write=False) as uow:
        return AvailabilityOut.of(incidents.get_availability(uow, company_id_of(actor)))


@router.put(
    "/company/availability",
    summary="Mark the company available or unavailable (maintenance)",
    description="While unavailable, debt queries answer 1002 and each is an incident.",
)
def put_availability(
    body: AvailabilityIn, actor: ActorDep, container: ContainerDep
) -> AvailabilityOut:
    view = incidents.set_availability(
        container.uow(),
        company_id_of(actor),
        body.available,
        body.reason,
        actor=actor,
        clock=container.clock,
    )
    return AvailabilityOut.of(view)
