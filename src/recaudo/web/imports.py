"""Importaciones: upload a debts file, follow its progress, read the report, download the
rejected rows. The same service the API and `recaudo import` call (`services.imports`).

Imports are synchronous (one transaction): the page shows the upload's real progress
(bytes sent, from the browser) and then an indeterminate "procesando" state until the
server answers; without JavaScript the form posts normally and lands on the report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path as FilePath
from pathlib import PurePosixPath
from typing import IO, Annotated

from fastapi import Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from recaudo.api.uploads import ReceivedFile, ReceivedForm, receive_form
from recaudo.domain.errors import Conflict, ValidationFailed
from recaudo.services import imports, queries
from recaudo.services.imports import ImportMode, ImportReport
from recaudo.web.common import (
    CSRF_HEADER,
    READ_ROLES,
    WRITE_ROLES,
    WebContext,
    redirect,
    render,
    require_role,
    web_router,
)

router = web_router()

Reader = Annotated[WebContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[WebContext, Depends(require_role(*WRITE_ROLES))]

ImportId = Annotated[int, Path(ge=1, le=2**63 - 1)]
RECENT = 20
CHUNK = 64 * 1024

STATUS = {
    "completed": "Completada",
    "rejected": "Rechazada: no se importó nada",
    "duplicate": "Archivo ya importado",
}
MODES = {
    "upsert": "Agregar y actualizar",
    "replace": "Reemplazar la cartera",
}
KINDS = {"rejected": "Fila rechazada", "conflict": "Conflicto"}


def _recent(request: Request, ctx: WebContext) -> list[dict[str, object]]:
    """The company's latest imports, newest first, from the audit trail (every import,
    completed or rejected, writes one audit row with its counts)."""
    container = ctx.container
    with container.uow(write=False) as uow:
        probe = queries.list_audit_events(
            uow,
            ctx.company_id,
            queries.AuditFilter(entity_type="debt_import"),
            paging=queries.Paging(1, 1),
        )
        last_page = max(1, -(-probe.total // RECENT))
        items = list(
            queries.list_audit_events(
                uow,
                ctx.company_id,
                queries.AuditFilter(entity_type="debt_import"),
                paging=queries.Paging(last_page, RECENT),
            ).items
        )
        if last_page > 1 and len(items) < RECENT:
            earlier = queries.list_audit_events(
                uow,
                ctx.company_id,
                queries.AuditFilter(entity_type="debt_import"),
                paging=queries.Paging(last_page - 1, RECENT),
            ).items
            items = list(earlier) + items
    rows = []
    for event in reversed(items[-RECENT:]):
        after = event.after or {}
        rows.append(
            {
                "id": int(event.entity_id),
                "at": event.occurred_at,
                "actor": event.actor,
                "file_name": after.get("file_name", ""),
                "mode": MODES.get(str(after.get("mode")), after.get("mode")),
                "status": after.get("status"),
                "status_label": STATUS.get(str(after.get("status")), after.get("status")),
                "rows_total": after.get("rows_total", 0),
                "added": after.get("added", 0),
                "updated": after.get("updated", 0),
                "cancelled": after.get("cancelled", 0),
                "conflicts": after.get("conflicts", 0),
                "rejected": after.get("rejected", 0),
            }
        )
    return rows


def _form_page(
    request: Request, ctx: WebContext, *, error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "imports/index.html",
        status_code=status_code,
        recent=_recent(request, ctx),
        modes=MODES,
        can_upload=ctx.role in WRITE_ROLES,
        error=error,
    )


@router.get("/importaciones", name="imports")
def imports_page(request: Request, ctx: Reader) -> Response:
    return _form_page(request, ctx)


@asynccontextmanager
async def received_upload(request: Request, directory: FilePath) -> AsyncIterator[ReceivedForm]:
    """The multipart form of an upload, its files on disk under `directory` until the block
    ends.

    htmx posts send the CSRF token as a header: the body is then still unread and is
    streamed to disk as it arrives (`api.uploads.receive_form`, as the API does). A plain
    form post carries the token as a field, so `require_role` has already parsed the form
    to check it (Starlette keeps files over 1 MB in a temporary file, never in memory); the
    parsed form is cached on the request and its files are copied under `directory`.
    """
    if request.headers.get(CSRF_HEADER) is not None:
        async with receive_form(request, directory) as streamed:
            yield streamed
        return
    parsed = await request.form()
    form = ReceivedForm()
    try:
        for key, value in parsed.multi_items():
            if isinstance(value, str):
                form.fields[key] = value
                continue
            fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
            received = ReceivedFile(key, _base_name(value.filename), FilePath(name))
            form.files.append(received)
            with os.fdopen(fd, "wb") as out:
                await value.seek(0)
                await run_in_threadpool(shutil.copyfileobj, value.file, out, CHUNK)
                received.size = out.tell()
        yield form
    finally:
        for received in form.files:
            with suppress(FileNotFoundError):
                received.path.unlink()
        await parsed.close()


def _base_name(raw: str | None) -> str | None:
    # Shown in reports only, never used to build a path.
    name = PurePosixPath((raw or "").replace("\\", "/")).name.replace("\x00", "").strip()
    return name[:255] or None


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


@router.post("/importaciones", name="imports_upload")
async def upload(request: Request, ctx: Writer) -> Response:
    container = ctx.container
    directory = container.settings.data_dir / "uploads"
    await run_in_threadpool(directory.mkdir, parents=True, exist_ok=True)
    # htmx swaps only 2xx answers: a refused file is shown in place with 200 there, and
    # with its real status to a plain form post.
    refused = 200 if _is_htmx(request) else 422
    try:
        async with received_upload(request, directory) as form:
            files = [f for f in form.files if f.field == "file"]
            if len(files) != 1 or len(form.files) != 1 or not files[0].size:
                raise ValidationFailed("elija un archivo de deudas (CSV o Excel) que no esté vacío")
            try:
                mode = ImportMode(form.fields.get("mode", "").strip().lower())
            except ValueError:
                raise ValidationFailed(
                    "elija el modo: agregar y actualizar, o reemplazar la cartera"
                ) from None
            skip_invalid = form.fields.get("skip_invalid", "") in ("1", "on", "true")
            report = await run_in_threadpool(
                lambda: imports.import_debts(
                    container.uow(),
                    ctx.company_id,
                    files[0].path,
                    mode=mode,
                    actor=ctx.actor,
                    clock=container.clock,
                    file_name=files[0].file_name,
                    skip_invalid=skip_invalid,
                )
            )
    except ValidationFailed as exc:
        return _form_page(request, ctx, error=exc.message, status_code=refused)
    except Conflict as exc:
        return _form_page(
            request, ctx, error=exc.message, status_code=200 if refused == 200 else 409
        )
    return _after_import(request, ctx, report)


def _after_import(request: Request, ctx: WebContext, report: ImportReport) -> Response:
    if report.status == "duplicate":
        ctx.flash(
            f"Este archivo ya se importó (importación {report.duplicate_of}); no cambió nada.",
            "info",
        )
        return redirect(request, f"/importaciones/{report.duplicate_of}")
    if report.status == "rejected":
        ctx.flash(
            f"{report.rejected} de {report.rows_total} filas tienen errores: no se importó "
            "nada. Corrija las filas rechazadas y vuelva a subir el archivo.",
            "error",
        )
    else:
        ctx.flash(f"Importación {report.import_id} completada.", "ok")
    return redirect(request, f"/importaciones/{report.import_id}")


@router.get("/importaciones/{import_id}", name="import_report")
def report_page(request: Request, import_id: ImportId, ctx: Reader) -> Response:
    report = imports.get_import(ctx.container.uow(write=False), ctx.company_id, import_id)
    return render(
        request,
        "imports/report.html",
        report=report,
        status_label=STATUS.get(report.status, report.status),
        mode_label=MODES.get(report.mode, report.mode),
        kinds=KINDS,
    )


def _stream(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


@router.get("/importaciones/{import_id}/rechazadas.csv", name="import_rejected")
def rejected_rows(import_id: ImportId, ctx: Reader) -> StreamingResponse:
    container = ctx.container
    directory = container.settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by _stream)
    try:
        imports.write_rejected_rows(container.uow(write=False), ctx.company_id, import_id, spool)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _stream(spool),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="importacion-{import_id}-rechazadas.csv"'
        },
    )
