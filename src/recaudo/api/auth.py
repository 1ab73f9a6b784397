"""Who is calling: `Authorization: Bearer <api key>` to an `Actor` bound to one company.

The key itself is never logged nor kept beyond this function; the actor's label
(`api_key:<id>`) is what the audit trail records.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recaudo.bootstrap import Container
from recaudo.domain.errors import PermissionDenied, Unauthenticated
from recaudo.services import companies
from recaudo.services.context import Actor

# Methods that only read: an auditor key may use these and nothing else.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="rk_<prefix>_<secret>",
    description=(
        "An API key issued with `recaudo apikey create`. Each key is bound to one company "
        "and one role: `admin`, `operator` or `auditor` (read-only)."
    ),
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def authenticated_actor(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller, or `Unauthenticated`; write methods also need a writing role."""
    if credentials is None:
        if "authorization" in request.headers:
            raise Unauthenticated("the Authorization header must be `Bearer <api key>`")
        raise Unauthenticated("missing Authorization header with a bearer API key")
    with container.uow(write=False) as uow:
        actor = companies.authenticate(uow, credentials.credentials.strip())
    if request.method not in SAFE_METHODS:
        actor.require_write()
    return actor


ActorDep = Annotated[Actor, Depends(authenticated_actor)]


def company_id_of(actor: Actor) -> int:
    """The company every request of this actor is scoped to."""
    if actor.company_id is None:
        # API keys are always bound; an unbound actor has no business in this API.
        raise PermissionDenied("this credential is not bound to a company")
    return actor.company_id
