"""Remittances: create, fill, validate, generate (pain.008 / pain.001), mark sent, charge
(cards), download the XML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from recaudo.adapters import card_gateway
from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.remittance_schemas import (
    AddPaymentsIn,
    AddPaymentsOut,
    ChargeOut,
    FindingOut,
    Kind,
    RemittanceIn,
    RemittanceOut,
    ValidationOut,
)
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page
from recaudo.services import remittances as service
from recaudo.services.remittances import NewRemittance, PaymentFilter

router = APIRouter(tags=["remittances"], responses=problem_responses(400, 401, 403, 422))

RemittanceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The remittance's id.")]
PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The commitment payment's id.")]
XML = "application/xml"


@router.post(
    "/remittances",
    summary="Create an open remittance (admin, operator)",
    status_code=201,
    responses=problem_responses(404, 409),
)
def create_remittance(
    body: RemittanceIn, actor: ActorDep, container: ContainerDep
) -> RemittanceOut:
    view = service.create_remittance(
        container.uow(),
        company_id_of(actor),
        NewRemittance(body.name, body.kind, body.charge_date, body.creditor_account_id),
        actor=actor,
        clock=container.clock,
    )
    return RemittanceOut.of(view)


@router.get("/remittances", summary="Remittances, newest first")
def list_remittances(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    state: Annotated[str | None, Query(max_length=12, description="open, generated, sent")] = None,
    kind: Annotated[Kind | None, Query()] = None,
) -> Page[RemittanceOut]:
    with container.uow(write=False) as uow:
        page = service.list_remittances(uow, company_id_of(actor), state=state, kind=kind, paging=p)
    return paged(request, response, [RemittanceOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/remittances/{remittance_id}",
    summary="One remittance, with the errors and warnings of its last validation",
    responses=problem_responses(404),
)
def get_remittance(
    remittance_id: RemittanceId, actor: ActorDep, container: ContainerDep
) -> RemittanceOut:
    with container.uow(write=False) as uow:
        view = service.get_remittance(uow, company_id_of(actor), remittance_id)
    return RemittanceOut.of(view)


@router.post(
    "/remittances/{remittance_id}/payments",
    summary="Add one payment, or every payment a filter selects (one statement)",
    description=(
        '`{"payment_id": 7}` adds one payment; `{"filter": {"status": "not_remitted", '
        '"due_month": "2026-03"}}` adds every payment of the remittance kind\'s method in '
        "an addable state (not_remitted or to_recover; pending for transfers) that is in no "
        "other open remittance."
    ),
    responses=problem_responses(404, 409),
)
def add_payments(
    remittance_id: RemittanceId, body: AddPaymentsIn, actor: ActorDep, container: ContainerDep
) -> AddPaymentsOut:
    company_id = company_id_of(actor)
    if body.payment_id is not None:
        view = service.add_payment(
            container.uow(), company_id, remittance_id, body.payment_id,
            actor=actor, clock=container.clock,
        )  # fmt: skip
        return AddPaymentsOut(added=1, remittance=RemittanceOut.of(view))
    assert body.filter is not None
    where = PaymentFilter(
        status=body.filter.status, method=body.filter.method, due_month=body.filter.due_month
    )
    bulk = service.add_payments(
        container.uow(), company_id, remittance_id, where, actor=actor, clock=container.clock
    )
    return AddPaymentsOut(added=bulk.added, remittance=RemittanceOut.of(bulk.remittance))


@router.delete(
    "/remittances/{remittance_id}/payments/{payment_id}",
    summary="Take a payment out of an open remittance",
    responses=problem_responses(404, 409),
)
def remove_payment(
    remittance_id: RemittanceId, payment_id: PaymentId, actor: ActorDep, container: ContainerDep
) -> RemittanceOut:
    view = service.remove_payment(
        container.uow(), company_id_of(actor), remittance_id, payment_id,
        actor=actor, clock=container.clock,
    )  # fmt: skip
    return RemittanceOut.of(view)


@router.post(
    "/remittances/{remittance_id}/validate",
    summary="Check an open remittance: every blocking error and warning, kept on it",
    responses=problem_responses(404, 409),
)
def validate_remittance(
    remittance_id: RemittanceId, actor: ActorDep, container: ContainerDep
) -> ValidationOut:
    report = service.validate_remittance(
        container.uow(), company_id_of(actor), remittance_id, actor=actor, clock=container.clock
    )
    return ValidationOut(
        ok=report.ok,
        error_count=report.error_count,
        warning_count=report.warning_count,
        errors=[FindingOut.of(f) for f in report.errors],
        warnings=[FindingOut.of(f) for f in report.warnings],
        remittance=RemittanceOut.of(report.remittance),
    )


@router.post(
    "/remittances/{remittance_id}/generate",
    summary="Write the SEPA file (pain.008 or pain.001) and move the payments to remitted",
    description=(
        "Refused with 422 `remittance_invalid` when the remittance has blocking errors "
        "(they are then listed in its `errors`); nothing else changes."
    ),
    responses=problem_responses(404, 409),
)
def generate_remittance(
    remittance_id: RemittanceId, actor: ActorDep, container: ContainerDep
) -> RemittanceOut:
    result = service.generate_remittance(
        container.uow(),
        company_id_of(actor),
        remittance_id,
        data_dir=container.settings.data_dir,
        actor=actor,
        clock=container.clock,
    )
    return RemittanceOut.of(result.remittance)


@router.post(
    "/remittances/{remittance_id}/sent",
    summary="The bank has the file: its payments are paid",
    responses=problem_responses(404, 409),
)
def mark_sent(
    remittance_id: RemittanceId, actor: ActorDep, container: ContainerDep
) -> RemittanceOut:
    view = service.mark_sent(
        container.uow(), company_id_of(actor), remittance_id, actor=actor, clock=container.clock
    )
    return RemittanceOut.of(view)


@router.post(
    "/remittances/{remittance_id}/charge",
    summary="Charge a card remittance through the card gateway, payment by payment",
    description=(
        "Each payment is charged and recorded on its own (`paid` or `card_rejected`); an "
        "expired card ends the commitment and e-mails its responsible user. Running it "
        "again after an interruption charges only what is left, never a payment twice."
    ),
    responses=problem_responses(404, 409),
)
def charge_remittance(
    remittance_id: RemittanceId, actor: ActorDep, container: ContainerDep
) -> ChargeOut:
    company_id = company_id_of(actor)
    with card_gateway.from_settings(container.settings) as gateway:
        run = service.charge_card_remittance(
            container.uow(),
            company_id,
            remittance_id,
            gateway=gateway,
            actor=actor,
            clock=container.clock,
            settings=container.settings,
        )
    return ChargeOut.of(run)


@router.get(
    "/remittances/{remittance_id}/file",
    summary="The generated SEPA XML, exactly as stored",
    response_class=Response,
    responses={
        200: {"content": {XML: {}}},
        304: {"description": "Not Modified (If-None-Match matched the ETag)"},
        **problem_responses(404, 409),
    },
)
async def download_file(
    remittance_id: RemittanceId,
    actor: ActorDep,
    container: ContainerDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    def read() -> tuple[service.RemittanceView, bytes]:
        with container.uow(write=False) as uow:
            return service.read_remittance_file(
                uow, company_id_of(actor), remittance_id, data_dir=container.settings.data_dir
            )

    view, data = await run_in_threadpool(read)
    etag = f'"{view.sha256}"'
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        content=data,
        media_type=XML,
        headers={
            "Content-Disposition": f'attachment; filename="{view.file_name}"',
            "ETag": etag,
        },
    )
