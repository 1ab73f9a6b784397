"""Settlement files: run one for an agreement and accounting date, list them, download them."""

from __future__ import annotations

from datetime import date
from datetime import time as LocalTime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page, Strict, UtcDatetime, amount
from recaudo.services import settlements

router = APIRouter(tags=["settlement files"], responses=problem_responses(400, 401, 403, 422))

SettlementId = Annotated[int, Path(ge=1, le=MAX_ID, description="The settlement file's id.")]
AgreementId = Annotated[int, Path(ge=1, le=MAX_ID, description="The channel agreement's id.")]


class SettlementRunIn(Strict):
    agreement_id: int = Field(ge=1, le=MAX_ID, description="The channel agreement.")
    accounting_date: date = Field(description="The accounting date to settle (a business day).")


class SettlementOut(BaseModel):
    id: int
    agreement_id: int
    accounting_date: date
    version: int = Field(description="1, then one more each time the day's content changed.")
    layout: str = Field(description="The layout written: a layout's name or path, csv or xlsx.")
    file_name: str
    media_type: str
    sha256: str
    size_bytes: int
    payment_count: int
    record_count: int = Field(description="Detail records: one per debt paid.")
    total: str = Field(description="Sum of the detail records' amounts.")
    currency: str
    status: str = Field(description="generated, delivered or delivery_failed.")
    generated_by: str
    generated_at: UtcDatetime
    deleted_at: UtcDatetime | None = Field(description="When retention removed the bytes.")

    @classmethod
    def of(cls, v: settlements.SettlementView) -> SettlementOut:
        return cls(
            id=v.id,
            agreement_id=v.agreement_id,
            accounting_date=v.accounting_date,
            version=v.version,
            layout=v.layout,
            file_name=v.file_name,
            media_type=v.media_type,
            sha256=v.sha256,
            size_bytes=v.size_bytes,
            payment_count=v.payment_count,
            record_count=v.record_count,
            total=amount(v.total),
            currency=v.currency,
            status=v.status,
            generated_by=v.generated_by,
            generated_at=v.generated_at,
            deleted_at=v.deleted_at,
        )


class SettlementRunOut(SettlementOut):
    created: bool = Field(
        description="False when the latest version already had exactly these bytes."
    )


@router.post(
    "/settlements",
    summary="Write an agreement's settlement file for one accounting date (admin, operator)",
    description=(
        "Idempotent: when the day's content is unchanged the latest version is answered "
        "(`created: false`, 200); a change produces the next version (`created: true`, 201)."
    ),
    status_code=201,
    responses=problem_responses(404, 409),
)
def run_settlement(
    body: SettlementRunIn, response: Response, actor: ActorDep, container: ContainerDep
) -> SettlementRunOut:
    company_id_of(actor)  # API credentials always speak for one company
    run = settlements.generate_settlement(
        container.uow(),
        body.agreement_id,
        body.accounting_date,
        data_dir=container.settings.data_dir,
        actor=actor,
        clock=container.clock,
    )
    if not run.created:
        response.status_code = 200
    return SettlementRunOut(**SettlementOut.of(run.file).model_dump(), created=run.created)


@router.get("/settlements", summary="Settlement files, newest accounting date first")
def list_settlements(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    agreement_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    accounting_date: Annotated[date | None, Query()] = None,
) -> Page[SettlementOut]:
    with container.uow(write=False) as uow:
        page = settlements.list_settlements(
            uow,
            company_id_of(actor),
            agreement_id=agreement_id,
            accounting_date=accounting_date,
            paging=p,
        )
    return paged(request, response, [SettlementOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/settlements/{settlement_id}",
    summary="One settlement file's details",
    responses=problem_responses(404),
)
def get_settlement(
    settlement_id: SettlementId, actor: ActorDep, container: ContainerDep
) -> SettlementOut:
    with container.uow(write=False) as uow:
        view = settlements.get_settlement(uow, company_id_of(actor), settlement_id)
    return SettlementOut.of(view)


@router.get(
    "/settlements/{settlement_id}/file",
    summary="The settlement file's bytes, exactly as stored",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {},
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        },
        **problem_responses(404, 409),
    },
)
def download_settlement(
    settlement_id: SettlementId, actor: ActorDep, container: ContainerDep
) -> Response:
    with container.uow(write=False) as uow:
        view, data = settlements.read_settlement(
            uow, company_id_of(actor), settlement_id, data_dir=container.settings.data_dir
        )
    return Response(
        content=data,
        media_type=view.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{view.file_name}"',
            "ETag": f'"{view.sha256}"',
        },
    )


class SettlementConfigIn(Strict):
    layout: str | None = Field(
        None,
        max_length=255,
        description="A shipped layout (`bancoestado-rendicion`, `asobancaria-2001`), `csv` "
        "or `xlsx`. Layout files are set with the command line.",
    )
    time: LocalTime | None = Field(None, description="Local time the daily job writes the file.")
    enabled: bool | None = Field(None, description="Whether the daily job writes the file.")
    control_record: bool | None = Field(None, description="Write the optional control record.")


class SettlementConfigOut(BaseModel):
    agreement_id: int
    layout: str
    time: str = Field(description="HH:MM, the company's local time.")
    enabled: bool
    control_record: bool

    @classmethod
    def of(cls, c: settlements.SettlementConfig) -> SettlementConfigOut:
        return cls(
            agreement_id=c.agreement_id,
            layout=c.layout,
            time=c.local_time.strftime("%H:%M"),
            enabled=c.enabled,
            control_record=c.control_record,
        )


@router.get(
    "/agreements/{agreement_id}/settlement",
    summary="An agreement's settlement settings",
    responses=problem_responses(404),
)
def get_settlement_config(
    agreement_id: AgreementId, actor: ActorDep, container: ContainerDep
) -> SettlementConfigOut:
    company_id_of(actor)
    with container.uow(write=False) as uow:
        config = settlements.get_settlement_config(uow, agreement_id, actor=actor)
    return SettlementConfigOut.of(config)


@router.put(
    "/agreements/{agreement_id}/settlement",
    summary="Change an agreement's settlement settings (admin)",
    description="Members left out keep their value.",
    responses=problem_responses(404),
)
def put_settlement_config(
    agreement_id: AgreementId, body: SettlementConfigIn, actor: ActorDep, container: ContainerDep
) -> SettlementConfigOut:
    company_id_of(actor)
    config = settlements.configure_settlement(
        container.uow(),
        agreement_id,
        settlements.SettlementSettings(
            layout=body.layout,
            local_time=body.time,
            enabled=body.enabled,
            control_record=body.control_record,
        ),
        actor=actor,
        clock=container.clock,
    )
    return SettlementConfigOut.of(config)
