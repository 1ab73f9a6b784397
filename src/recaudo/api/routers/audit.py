"""The audit trail of the caller's company: who changed what, from which value to which."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import AuditEventOut, Page, Text32, Text64, Text100
from recaudo.services import queries

router = APIRouter(tags=["audit"], responses=problem_responses(400, 401, 403, 422))


@router.get("/audit-events", summary="Audit events, oldest first")
def list_audit_events(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    entity_type: Annotated[Text32 | None, Query(examples=["payment"])] = None,
    entity_id: Annotated[Text64 | None, Query()] = None,
    action: Annotated[Text64 | None, Query(examples=["payment.applied"])] = None,
    actor_label: Annotated[
        Text100 | None,
        Query(alias="actor", description="e.g. `api_key:3`, `cli:root`."),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="At or after (ISO 8601 with offset).")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Strictly before.")] = None,
) -> Page[AuditEventOut]:
    filters = queries.AuditFilter(
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor_label,
        since=since,
        until=until,
    )
    with container.uow(write=False) as uow:
        page = queries.list_audit_events(uow, company_id_of(actor), filters, paging=p)
    return paged(request, response, [AuditEventOut.of(e) for e in page.items], page.total, p)
