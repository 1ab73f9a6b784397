"""Reconciliations: upload a bank's settlement file for an agreement, read the outcome."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem, problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page, UtcDatetime, amount
from recaudo.api.uploads import ReceivedFile, ReceivedForm, receive_form
from recaudo.domain.errors import ValidationFailed
from recaudo.formats import fixedwidth
from recaudo.formats.tabular import TableFormat
from recaudo.services import reconciliation as service
from recaudo.services.reconciliation import FileRefused, ItemView, Kind, ReconciliationView

router = APIRouter(tags=["reconciliations"], responses=problem_responses(400, 401, 403, 422))

AgreementId = Annotated[int, Path(ge=1, le=MAX_ID, description="The channel agreement's id.")]
ReconciliationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The reconciliation's id.")]
CHUNK = 64 * 1024
MEDIA = {
    TableFormat.CSV: "text/csv; charset=utf-8",
    TableFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ReconciliationOut(BaseModel):
    id: int
    agreement_id: int
    accounting_date: date
    file_name: str
    file_sha256: str
    layout: str
    matched: int
    only_bank: int
    only_recaudo: int
    amount_differs: int
    duplicated: int
    bank_total: str = Field(description="Sum of the file's detail records.")
    recaudo_total: str = Field(
        description="Payments Recaudo held for the agreement and date when it started."
    )
    currency: str
    created_by: str
    created_at: UtcDatetime
    recorded_payments: list[int] = Field(
        description="Payments this request recorded from the file (only on creation)."
    )

    @classmethod
    def of(cls, v: ReconciliationView) -> ReconciliationOut:
        return cls(
            id=v.id,
            agreement_id=v.agreement_id,
            accounting_date=v.accounting_date,
            file_name=v.file_name,
            file_sha256=v.file_sha256,
            layout=v.layout,
            matched=v.matched,
            only_bank=v.only_bank,
            only_recaudo=v.only_recaudo,
            amount_differs=v.amount_differs,
            duplicated=v.duplicated,
            bank_total=amount(v.bank_total),
            recaudo_total=amount(v.recaudo_total),
            currency=v.currency,
            created_by=v.created_by,
            created_at=v.created_at,
            recorded_payments=list(v.recorded_payments),
        )


class ItemOut(BaseModel):
    id: int
    kind: str
    payment_id: int | None
    transaction_id: str | None
    reference: str | None
    bank_amount: str | None
    recaudo_amount: str | None
    paid_on: date | None
    line_no: int | None
    detail: str

    @classmethod
    def of(cls, v: ItemView) -> ItemOut:
        return cls(
            id=v.id,
            kind=v.kind,
            payment_id=v.payment_id,
            transaction_id=v.transaction_id,
            reference=v.reference,
            bank_amount=None if v.bank_amount is None else amount(v.bank_amount),
            recaudo_amount=None if v.recaudo_amount is None else amount(v.recaudo_amount),
            paid_on=v.paid_on,
            line_no=v.line_no,
            detail=v.detail,
        )


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The bank's settlement file.",
                        },
                        "accounting_date": {
                            "type": "string",
                            "format": "date",
                            "description": "Default: the accounting date the file states.",
                        },
                        "layout": {
                            "type": "string",
                            "description": "A shipped layout's name (default: the "
                            "agreement's reconciliation layout, else its settlement layout).",
                        },
                    },
                }
            }
        },
    }
}


def _form_values(form: ReceivedForm) -> tuple[ReceivedFile, date | None, str | None]:
    files = [f for f in form.files if f.field == "file"]
    if len(files) != 1 or len(form.files) != 1:
        raise ValidationFailed("send exactly one file, in the `file` field", field="file")
    raw_date = form.fields.get("accounting_date", "").strip()
    day: date | None = None
    if raw_date:
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            raise ValidationFailed(
                "accounting_date must be YYYY-MM-DD", field="accounting_date"
            ) from None
    layout = form.fields.get("layout", "").strip() or None
    # A client names shipped layouts only: a path would read the server's files.
    if layout is not None and layout not in fixedwidth.available_layouts():
        known = ", ".join(fixedwidth.available_layouts())
        raise ValidationFailed(f"unknown layout {layout!r} (one of {known})", field="layout")
    return files[0], day, layout


def _refused(request: Request, exc: FileRefused) -> JSONResponse:
    return problem(
        request,
        422,
        exc.code,
        exc.message,
        errors=[{"field": "file", "message": str(p)} for p in exc.problems],
        extra={
            "file_errors": [
                {
                    "line": p.line_no,
                    "record": p.record,
                    "field": p.field,
                    "start": p.start,
                    "end": p.end,
                    "message": p.message,
                }
                for p in exc.problems
            ]
        },
    )


@router.post(
    "/agreements/{agreement_id}/reconciliations",
    summary="Reconcile a bank's settlement file",
    description=(
        "Reads the file with the agreement's layout and matches it against the payments "
        "Recaudo recorded for that accounting date. Payments only in the bank's file are "
        "recorded, each with a `not_notified` exception; sending the same file again "
        "records nothing twice. A file that does not conform to its layout is refused "
        "(422 `file_refused`, every error listed in `errors` and `file_errors`)."
    ),
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=problem_responses(404, 413, 415),
    response_model=ReconciliationOut,
)
async def create_reconciliation(
    agreement_id: AgreementId, request: Request, actor: ActorDep, container: ContainerDep
) -> ReconciliationOut | JSONResponse:
    company_id_of(actor)
    directory = container.settings.data_dir / "uploads"
    await run_in_threadpool(directory.mkdir, parents=True, exist_ok=True)
    async with receive_form(request, directory) as form:
        received, day, layout = _form_values(form)
        data = await run_in_threadpool(received.path.read_bytes)
    try:
        view = await run_in_threadpool(
            service.reconcile,
            container.uow(),
            agreement_id,
            data,
            file_name=received.file_name or "bank-file",
            accounting_date=day,
            layout=layout,
            actor=actor,
            clock=container.clock,
        )
    except FileRefused as exc:
        return _refused(request, exc)
    return ReconciliationOut.of(view)


@router.get("/reconciliations", summary="Reconciliations, newest first")
def list_reconciliations(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    agreement_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[ReconciliationOut]:
    with container.uow(write=False) as uow:
        page = service.list_reconciliations(
            uow, company_id_of(actor), agreement_id=agreement_id, paging=p
        )
    items = [ReconciliationOut.of(v) for v in page.items]
    return paged(request, response, items, page.total, p)


@router.get(
    "/reconciliations/{reconciliation_id}",
    summary="One reconciliation's summary",
    responses=problem_responses(404),
)
def get_reconciliation(
    reconciliation_id: ReconciliationId, actor: ActorDep, container: ContainerDep
) -> ReconciliationOut:
    with container.uow(write=False) as uow:
        view = service.get_reconciliation(uow, company_id_of(actor), reconciliation_id)
    return ReconciliationOut.of(view)


@router.get(
    "/reconciliations/{reconciliation_id}/items",
    summary="A reconciliation's items, in file order",
    responses=problem_responses(404),
)
def list_items(
    reconciliation_id: ReconciliationId,
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    kind: Kind | None = None,
) -> Page[ItemOut]:
    with container.uow(write=False) as uow:
        page = service.list_items(
            uow,
            company_id_of(actor),
            reconciliation_id,
            kind=kind.value if kind else None,
            paging=p,
        )
    return paged(request, response, [ItemOut.of(i) for i in page.items], page.total, p)


def _stream(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


@router.get(
    "/reconciliations/{reconciliation_id}/export",
    summary="A reconciliation's items as CSV or XLSX (Spanish column titles)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {MEDIA[TableFormat.CSV]: {}, MEDIA[TableFormat.XLSX]: {}}},
        **problem_responses(404),
    },
)
def export_items(
    reconciliation_id: ReconciliationId,
    actor: ActorDep,
    container: ContainerDep,
    fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
    kind: Kind | None = None,
) -> StreamingResponse:
    table_format = TableFormat(fmt)
    directory = container.settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    # Written whole before the response starts, so a failure is still a clean problem.
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by _stream)
    try:
        with container.uow(write=False) as uow:
            service.write_export(
                uow,
                company_id_of(actor),
                reconciliation_id,
                table_format,
                spool,
                kind=kind.value if kind else None,
            )
    except BaseException:
        spool.close()
        raise
    name = f"reconciliation-{reconciliation_id}.{table_format.value}"
    return StreamingResponse(
        _stream(spool),
        media_type=MEDIA[table_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class LayoutIn(BaseModel):
    layout: str | None = Field(
        max_length=255,
        description="A shipped layout's name; null: read with the settlement layout.",
    )


class LayoutOut(BaseModel):
    agreement_id: int
    reconciliation_layout: str | None
    layout_in_use: str


@router.put(
    "/agreements/{agreement_id}/reconciliation-layout",
    summary="Choose the layout an agreement's bank files are read with",
    description="Admin only. Layout files are set with `recaudo reconciliation layout`.",
    responses=problem_responses(404),
)
def set_layout(
    agreement_id: AgreementId, body: LayoutIn, actor: ActorDep, container: ContainerDep
) -> LayoutOut:
    company_id_of(actor)
    in_use = service.set_reconciliation_layout(
        container.uow(), agreement_id, body.layout, actor=actor, clock=container.clock
    )
    stored = body.layout.strip() if body.layout is not None else None
    return LayoutOut(agreement_id=agreement_id, reconciliation_layout=stored, layout_in_use=in_use)
