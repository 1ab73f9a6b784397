"""The company's holidays: the country's national ones plus its own (which it manages).

Accounting days skip both; a company adds its own closing days (a local holiday, an
inventory day) and removes them again.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.schemas import Strict, Text100
from recaudo.domain.errors import ValidationFailed
from recaudo.services import calendar, queries

router = APIRouter(tags=["holidays"], responses=problem_responses(400, 401, 403, 422))

MIN_YEAR, MAX_YEAR = 1970, 2100


class HolidayIn(Strict):
    day: date = Field(examples=["2026-06-29"])
    name: Text100 = Field(min_length=1, examples=["Aniversario de la empresa"])


class HolidayOut(BaseModel):
    day: date
    name: str
    source: Literal["national", "company"] = Field(
        description="`national`: the country's calendar; `company`: added by the company."
    )


@router.get("/holidays", summary="Holidays of a year: national and the company's own")
def list_holidays(
    actor: ActorDep,
    container: ContainerDep,
    year: Annotated[
        int | None,
        Query(ge=MIN_YEAR, le=MAX_YEAR, description="Default: the current year (UTC)."),
    ] = None,
) -> list[HolidayOut]:
    year = year or container.clock().year
    with container.uow(write=False) as uow:
        company = queries.get_company(uow, company_id_of(actor))
        rows = calendar.list_holidays(uow, company, year)
    return [
        HolidayOut(day=day, name=name, source="company" if own else "national")
        for day, name, own in rows
    ]


@router.post(
    "/holidays",
    summary="Add a company holiday",
    status_code=201,
    responses=problem_responses(409),
)
def add_holiday(body: HolidayIn, actor: ActorDep, container: ContainerDep) -> HolidayOut:
    if not MIN_YEAR <= body.day.year <= MAX_YEAR:
        raise ValidationFailed(f"a holiday must be in {MIN_YEAR} to {MAX_YEAR}", field="day")
    holiday = calendar.add_holiday(
        container.uow(),
        company_id_of(actor),
        body.day,
        body.name,
        actor=actor,
        clock=container.clock,
    )
    return HolidayOut(day=holiday.day, name=holiday.name, source="company")


@router.delete(
    "/holidays/{day}",
    summary="Remove a company holiday",
    description="Only the company's own holidays can be removed; national ones are 404.",
    status_code=204,
    responses=problem_responses(404),
)
def remove_holiday(
    day: Annotated[date, Path(description="ISO date, e.g. 2026-06-29.")],
    actor: ActorDep,
    container: ContainerDep,
) -> Response:
    calendar.remove_holiday(
        container.uow(), company_id_of(actor), day, actor=actor, clock=container.clock
    )
    return Response(status_code=204)
