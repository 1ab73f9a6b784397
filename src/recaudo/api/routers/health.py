"""Liveness and readiness for load balancers: no authentication, one round trip to the database."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from recaudo.api.auth import ContainerDep
from recaudo.api.errors import describe, problem, problem_responses
from recaudo.api.schemas import Health

router = APIRouter(tags=["health"])
logger = logging.getLogger("recaudo.api")


@router.get(
    "/healthz",
    summary="Is the server up and its database reachable?",
    responses=problem_responses(503),
    response_model=Health,
)
def healthz(request: Request, container: ContainerDep) -> Health | JSONResponse:
    try:
        with container.uow(write=False) as uow:
            uow.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        logger.warning("health check: database unreachable: %s", describe(exc))
        return problem(request, 503, "unavailable", "the database is not reachable")
    return Health(status="ok", database="ok")
