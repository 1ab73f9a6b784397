"""Debt file imports: upload (streamed to disk), report, and the rejected rows as CSV."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem, problem_responses
from recaudo.api.schemas import MAX_ID, ImportReportOut
from recaudo.api.uploads import ReceivedFile, ReceivedForm, receive_form
from recaudo.domain.errors import ValidationFailed
from recaudo.services import imports
from recaudo.services.imports import ImportMode

router = APIRouter(tags=["imports"], responses=problem_responses(400, 401, 403, 422))

ImportId = Annotated[int, Path(ge=1, le=MAX_ID, description="The import's id.")]
TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off", ""})
CHUNK = 64 * 1024

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "mode"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The debts file (CSV or Excel).",
                        },
                        "mode": {
                            "type": "string",
                            "enum": [m.value for m in ImportMode],
                            "description": "`upsert` adds and updates; `replace` also "
                            "cancels open debts missing from the file (never debts in payment).",
                        },
                        "skip_invalid": {
                            "type": "boolean",
                            "default": False,
                            "description": "Import the valid rows and report the others, "
                            "instead of rejecting the whole file.",
                        },
                    },
                }
            }
        },
    }
}


def _form_values(form: ReceivedForm) -> tuple[ReceivedFile, ImportMode, bool]:
    files = [f for f in form.files if f.field == "file"]
    if len(files) != 1 or len(form.files) != 1:
        raise ValidationFailed("send exactly one file, in the `file` field", field="file")
    raw_mode = form.fields.get("mode", "").strip().lower()
    try:
        mode = ImportMode(raw_mode)
    except ValueError:
        known = ", ".join(m.value for m in ImportMode)
        raise ValidationFailed(f"mode must be one of {known}", field="mode") from None
    raw_skip = form.fields.get("skip_invalid", "").strip().lower()
    if raw_skip not in TRUE | FALSE:
        raise ValidationFailed("skip_invalid must be true or false", field="skip_invalid")
    return files[0], mode, raw_skip in TRUE


@router.post(
    "/imports",
    summary="Import a debts file",
    description=(
        "Runs the import in one transaction: 201 with the report; 200 with status "
        "`duplicate` when this exact file was already imported; 422 when rows are invalid "
        "and `skip_invalid` is false (nothing is imported; the problem carries the "
        "`import_id` and the `issues`, and `GET /imports/{id}/rejected.csv` has the rows)."
    ),
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses={
        200: {"description": "The file was already imported.", "model": ImportReportOut},
        **problem_responses(413, 415),
    },
    response_model=ImportReportOut,
)
async def create_import(
    request: Request, actor: ActorDep, container: ContainerDep
) -> ImportReportOut | JSONResponse:
    company_id = company_id_of(actor)
    directory = container.settings.data_dir / "uploads"
    await run_in_threadpool(directory.mkdir, parents=True, exist_ok=True)
    async with receive_form(request, directory) as form:
        received, mode, skip_invalid = _form_values(form)
        report = await run_in_threadpool(
            imports.import_debts,
            container.uow(),
            company_id,
            received.path,
            mode=mode,
            actor=actor,
            clock=container.clock,
            file_name=received.file_name,
            skip_invalid=skip_invalid,
        )
    body = ImportReportOut.of(report)
    if report.status == "rejected":
        return problem(
            request,
            422,
            "import_rejected",
            f"{report.rejected} of {report.rows_total} rows are invalid; nothing was imported",
            extra={
                "import_id": report.import_id,
                "rows_total": report.rows_total,
                "rejected": report.rejected,
                "issues": [i.model_dump() for i in body.issues],
            },
        )
    if report.status == "duplicate":
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    return body


@router.get(
    "/imports/{import_id}",
    summary="An import's report",
    response_model=ImportReportOut,
    responses=problem_responses(404),
)
def get_import(import_id: ImportId, actor: ActorDep, container: ContainerDep) -> ImportReportOut:
    # The import service opens its own unit of work for reading.
    report = imports.get_import(container.uow(write=False), company_id_of(actor), import_id)
    return ImportReportOut.of(report)


def _stream(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


@router.get(
    "/imports/{import_id}/rejected.csv",
    summary="The rows an import rejected, as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(404)},
)
def get_rejected_rows(
    import_id: ImportId, actor: ActorDep, container: ContainerDep
) -> StreamingResponse:
    # Written whole before the response starts, so that a failure is still a clean
    # problem response; to an unnamed file under the data directory, not to memory,
    # because a rejected file may be as large as the upload limit.
    directory = container.settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    # Not a `with` block: the file outlives this function, `_stream` closes it.
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
    try:
        imports.write_rejected_rows(
            container.uow(write=False), company_id_of(actor), import_id, spool
        )
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _stream(spool),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"'},
    )
