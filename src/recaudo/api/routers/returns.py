"""Return files: load a bank's pain.002 / camt.054 / camt.053, list them, read one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.remittance_schemas import ReturnFileDetailOut, ReturnFileOut, ReturnLoadOut
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page
from recaudo.api.uploads import receive_form
from recaudo.domain.errors import ValidationFailed
from recaudo.services import returns as service

router = APIRouter(tags=["returns"], responses=problem_responses(400, 401, 403, 422))

ReturnFileId = Annotated[int, Path(ge=1, le=MAX_ID, description="The return file's id.")]
RAW_TYPES = (b"application/xml", b"text/xml", b"application/octet-stream")

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
                            "description": "The bank's pain.002, camt.054 or camt.053 file.",
                        }
                    },
                }
            },
            "application/xml": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/returns",
    summary="Load a bank's return file (pain.002, camt.054, camt.053)",
    description=(
        "The file is sent as multipart (`file`) or as the raw body (`application/xml`, "
        "with `?file_name=`). It must be about a remittance Recaudo generated. Each returned "
        "payment becomes `unpaid` with its reason code; AM04/MS03 go `to_recover`, "
        "AC01/AC04/MD07 end the commitment (and e-mail its responsible user), MD01/MD02 "
        "invalidate the mandate, MD06 sets the refund flag. The same bytes again change "
        "nothing and answer the first result (200, `created: false`); a malformed file is "
        "refused (422 `return_file_refused`) and changes nothing."
    ),
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=problem_responses(413, 415),
    response_model=ReturnLoadOut,
)
async def load_return_file(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    file_name: Annotated[str | None, Query(max_length=255)] = None,
) -> ReturnLoadOut:
    company_id = company_id_of(actor)
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    if content_type == b"multipart/form-data":
        directory = container.settings.data_dir / "uploads"
        await run_in_threadpool(directory.mkdir, parents=True, exist_ok=True)
        async with receive_form(request, directory) as form:
            files = [f for f in form.files if f.field == "file"]
            if len(files) != 1 or len(form.files) != 1:
                raise ValidationFailed("send exactly one file, in the `file` field", field="file")
            data = await run_in_threadpool(files[0].path.read_bytes)
            name = files[0].file_name or file_name or "return.xml"
    elif content_type in RAW_TYPES:
        data = await request.body()
        name = file_name or "return.xml"
    else:
        raise HTTPException(415, "send the file as multipart/form-data or application/xml")
    if not data:
        raise ValidationFailed("the file is empty", field="file")
    load = await run_in_threadpool(
        lambda: service.load_return_file(
            container.uow(),
            company_id,
            data,
            name,
            actor=actor,
            clock=container.clock,
            settings=container.settings,
        )
    )
    if not load.created:
        response.status_code = 200
    return ReturnLoadOut(**ReturnFileDetailOut.detail(load.file).model_dump(), created=load.created)


@router.get("/returns", summary="Loaded return files, newest first")
def list_return_files(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    remittance_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[ReturnFileOut]:
    with container.uow(write=False) as uow:
        page = service.list_return_files(
            uow, company_id_of(actor), remittance_id=remittance_id, paging=p
        )
    return paged(request, response, [ReturnFileOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/returns/{file_id}",
    summary="One return file, with what happened to each of its transactions",
    responses=problem_responses(404),
)
def get_return_file(
    file_id: ReturnFileId, actor: ActorDep, container: ContainerDep
) -> ReturnFileDetailOut:
    with container.uow(write=False) as uow:
        view = service.get_return_file(uow, company_id_of(actor), file_id)
    return ReturnFileDetailOut.detail(view)
