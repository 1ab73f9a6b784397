"""File exchanges of the caller's company: inboxes Recaudo polls for debts files and
outboxes where it drops the day's payments file.

`admin` keys configure and remove exchanges; `operator` keys may also run one now;
`auditor` keys only read. Each inbox file is listed with its status and import report.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, time
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page, Strict, UtcDatetime
from recaudo.services import file_exchange as fx
from recaudo.services.file_exchange import Direction, FileStatus
from recaudo.services.imports import ImportMode

router = APIRouter(tags=["file exchange"], responses=problem_responses(400, 401, 403, 422))

ExchangeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The exchange's id.")]
FileId = Annotated[int, Path(ge=1, le=MAX_ID, description="The file's id.")]


class ExchangeIn(Strict):
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        examples=["deudas-diarias"],
        description="Unique in the company: letters, digits, '.', '_' or '-'.",
    )
    direction: Direction = Field(
        description="`inbox`: the company drops debts files; `outbox`: Recaudo drops the "
        "day's payments file."
    )
    target_id: int = Field(
        ge=1,
        le=MAX_ID,
        description="The delivery target: `sftp` or `local` for an inbox (the directory "
        "polled); `sftp`, `local` or `email` for an outbox.",
    )
    import_mode: ImportMode | None = Field(
        default=None, description="Inbox: `upsert` (default) or `replace`."
    )
    file_format: str = Field(
        default="csv",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Outbox: `csv`, `xlsx` or a shipped fixed-width layout's name.",
    )
    report_recipients: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Inbox: who gets each file's import report by e-mail.",
    )
    poll_seconds: int = Field(default=300, ge=10, le=86_400, description="Inbox: poll period.")
    write_time: time | None = Field(
        default=None,
        description="Outbox: company local time the day's file is written (default 23:30).",
    )
    enabled: bool = True


class ExchangeChangesIn(Strict):
    import_mode: ImportMode | None = Field(default=None, description="Inbox only.")
    file_format: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Outbox only: `csv`, `xlsx` or a shipped layout's name.",
    )
    report_recipients: list[str] | None = Field(
        default=None, max_length=20, description="Inbox only; `[]` stops the e-mails."
    )
    poll_seconds: int | None = Field(default=None, ge=10, le=86_400, description="Inbox only.")
    write_time: time | None = Field(default=None, description="Outbox only.")
    enabled: bool | None = None


class ExchangeOut(BaseModel):
    id: int
    name: str
    direction: Direction
    target_id: int
    target_name: str
    target_kind: str
    import_mode: str | None
    file_format: str
    report_recipients: list[str]
    poll_seconds: int
    # "HH:MM", as agreements show their cut-off: a bare `time` would be published as
    # format "time", which JSON Schema defines with a UTC offset this local time has not.
    write_time: str | None = Field(description="Outbox: HH:MM, the company's local time.")
    enabled: bool
    last_run_at: UtcDatetime | None
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: fx.ExchangeView) -> Self:
        return cls(
            id=v.id,
            name=v.name,
            direction=v.direction,
            target_id=v.target_id,
            target_name=v.target_name,
            target_kind=v.target_kind,
            import_mode=v.import_mode,
            file_format=v.file_format,
            report_recipients=list(v.report_recipients),
            poll_seconds=v.poll_seconds,
            write_time=None if v.write_time is None else v.write_time.strftime("%H:%M"),
            enabled=v.enabled,
            last_run_at=v.last_run_at,
            created_at=v.created_at,
        )


class ImportCountsOut(BaseModel):
    rows_total: int
    added: int
    updated: int
    unchanged: int
    cancelled: int
    conflicts: int
    rejected: int


class ExchangeFileOut(BaseModel):
    id: int
    exchange_id: int
    file_name: str
    sha256: str
    status: FileStatus = Field(
        description="Inbox: `processing`, `imported`, `duplicate` (same content as an earlier "
        "import) or `rejected`; outbox: `written`."
    )
    detail: str | None
    processed_at: UtcDatetime
    debt_import_id: int | None = Field(description="Inbox: the debts import it produced.")
    report: ImportCountsOut | None = Field(description="Inbox: the import's counts.")
    accounting_date: date | None = Field(description="Outbox: the day the file covers.")
    delivery_status: str | None = Field(description="Outbox: the delivery's state.")

    @classmethod
    def of(cls, v: fx.ExchangeFileView) -> Self:
        counts = v.counts
        return cls(
            id=v.id,
            exchange_id=v.exchange_id,
            file_name=v.file_name,
            sha256=v.sha256,
            status=v.status,
            detail=v.detail,
            processed_at=v.processed_at,
            debt_import_id=v.debt_import_id,
            report=None
            if counts is None
            else ImportCountsOut(
                rows_total=counts.rows_total,
                added=counts.added,
                updated=counts.updated,
                unchanged=counts.unchanged,
                cancelled=counts.cancelled,
                conflicts=counts.conflicts,
                rejected=counts.rejected,
            ),
            accounting_date=v.accounting_date,
            delivery_status=v.delivery_status,
        )


class RunIn(Strict):
    date: dt.date | None = Field(
        default=None,
        description="Outbox only: write this day's file (if it is not written yet). "
        "Without it an outbox writes its due days and an inbox is polled.",
    )


class RunOut(BaseModel):
    exchange_id: int
    direction: Direction
    files: list[ExchangeFileOut] = Field(description="Files imported, rejected or written now.")
    skipped: int = Field(description="Inbox files left for a later poll (still being written).")


@router.post(
    "/exchanges",
    summary="Configure an inbox or an outbox (admin)",
    status_code=201,
    responses=problem_responses(404, 409),
)
def create_exchange(body: ExchangeIn, actor: ActorDep, container: ContainerDep) -> ExchangeOut:
    spec = fx.ExchangeSpec(
        name=body.name,
        direction=body.direction,
        target=body.target_id,
        import_mode=body.import_mode,
        file_format=body.file_format,
        report_recipients=body.report_recipients,
        poll_seconds=body.poll_seconds,
        write_time=body.write_time,
        enabled=body.enabled,
    )
    view = fx.create_exchange(
        container.uow(), company_id_of(actor), spec, actor=actor, clock=container.clock
    )
    return ExchangeOut.of(view)


@router.get("/exchanges", summary="The company's inboxes and outboxes")
def list_exchanges(actor: ActorDep, container: ContainerDep) -> list[ExchangeOut]:
    with container.uow(write=False) as uow:
        return [ExchangeOut.of(v) for v in fx.list_exchanges(uow, company_id_of(actor))]


@router.get("/exchanges/{exchange_id}", summary="One exchange", responses=problem_responses(404))
def get_exchange(exchange_id: ExchangeId, actor: ActorDep, container: ContainerDep) -> ExchangeOut:
    with container.uow(write=False) as uow:
        return ExchangeOut.of(fx.get_exchange(uow, company_id_of(actor), exchange_id))


@router.patch(
    "/exchanges/{exchange_id}",
    summary="Change an exchange or enable/disable it (admin)",
    description="Only the fields given change. Inbox fields on an outbox (or the reverse) are 422.",
    responses=problem_responses(404),
)
def update_exchange(
    exchange_id: ExchangeId, body: ExchangeChangesIn, actor: ActorDep, container: ContainerDep
) -> ExchangeOut:
    changes = fx.ExchangeChanges(
        import_mode=body.import_mode,
        file_format=body.file_format,
        report_recipients=body.report_recipients,
        poll_seconds=body.poll_seconds,
        write_time=body.write_time,
        enabled=body.enabled,
    )
    view = fx.update_exchange(
        container.uow(),
        company_id_of(actor),
        exchange_id,
        changes,
        actor=actor,
        clock=container.clock,
    )
    return ExchangeOut.of(view)


@router.delete(
    "/exchanges/{exchange_id}",
    summary="Remove an exchange and its file records (admin)",
    description="Deliveries already queued are still sent.",
    responses=problem_responses(404),
)
def remove_exchange(
    exchange_id: ExchangeId, actor: ActorDep, container: ContainerDep
) -> ExchangeOut:
    view = fx.remove_exchange(
        container.uow(), company_id_of(actor), exchange_id, actor=actor, clock=container.clock
    )
    return ExchangeOut.of(view)


@router.post(
    "/exchanges/{exchange_id}/run",
    summary="Run an exchange now (operator or admin)",
    description="Polls an inbox at once, or writes an outbox's due files (or the given "
    "day's). An inbox that cannot be reached is 409.",
    responses=problem_responses(404, 409),
)
def run_exchange(
    exchange_id: ExchangeId,
    actor: ActorDep,
    container: ContainerDep,
    body: RunIn | None = None,
) -> RunOut:
    result = fx.run_exchange(
        container.uow(),
        company_id_of(actor),
        exchange_id,
        settings=container.settings,
        actor=actor,
        clock=container.clock,
        day=None if body is None else body.date,
    )
    return RunOut(
        exchange_id=result.exchange_id,
        direction=result.direction,
        files=[ExchangeFileOut.of(f) for f in result.files],
        skipped=result.skipped,
    )


@router.get(
    "/exchanges/{exchange_id}/files",
    summary="Files an exchange processed or wrote, newest first",
    responses=problem_responses(404),
)
def list_files(
    exchange_id: ExchangeId,
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: FileStatus | None = None,
) -> Page[ExchangeFileOut]:
    with container.uow(write=False) as uow:
        files, total = fx.list_files(
            uow,
            company_id_of(actor),
            exchange_id,
            status=status,
            offset=p.offset,
            limit=p.page_size,
        )
    return paged(request, response, [ExchangeFileOut.of(f) for f in files], total, p)


@router.get(
    "/exchanges/{exchange_id}/files/{file_id}",
    summary="One file with its status and report counts",
    responses=problem_responses(404),
)
def get_file(
    exchange_id: ExchangeId, file_id: FileId, actor: ActorDep, container: ContainerDep
) -> ExchangeFileOut:
    with container.uow(write=False) as uow:
        return ExchangeFileOut.of(fx.get_file(uow, company_id_of(actor), exchange_id, file_id))


@router.get(
    "/exchanges/{exchange_id}/files/{file_id}/report",
    summary="An inbox file's report",
    description="The rejected rows as CSV (the file's own columns, then row_number, column, "
    "reason) when the import rejected rows; otherwise a text page with the outcome.",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "text/plain": {}}},
        **problem_responses(404),
    },
)
def get_report(
    exchange_id: ExchangeId,
    file_id: FileId,
    actor: ActorDep,
    container: ContainerDep,
    disposition: Annotated[
        Literal["attachment", "inline"], Query(description="How a browser shows it.")
    ] = "attachment",
) -> Response:
    name, data = fx.file_report(
        container.uow(write=False), company_id_of(actor), exchange_id, file_id
    )
    media = "text/csv; charset=utf-8" if name.endswith(".csv") else "text/plain; charset=utf-8"
    safe = name.encode("ascii", "replace").decode().replace('"', "_")
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'{disposition}; filename="{safe}"'}
    )
