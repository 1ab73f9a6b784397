"""Commitments and the payments they generate: create, list, show, edit, end; list and show
payments, move one to another state, run the generation by hand."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.commitment_schemas import (
    CommitmentChangedOut,
    CommitmentEndIn,
    CommitmentIn,
    CommitmentOut,
    CommitmentPatch,
    CommitmentPaymentOut,
    GenerateIn,
    GenerationOut,
    Kind,
    MandateOut,
    Method,
    PaymentStatus,
    Periodicity,
    TransitionIn,
)
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page
from recaudo.domain.errors import ValidationFailed
from recaudo.services import commitments as svc

router = APIRouter(tags=["commitments"], responses=problem_responses(400, 401, 403, 422))

CommitmentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The commitment's id.")]
PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The payment's id.")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


@router.post(
    "/commitments",
    summary="Create a commitment (admin, operator)",
    description=(
        "Validates the payer (and beneficiary) customers and, for direct debits, the IBAN; "
        "creates the SEPA mandate of a direct debit and the payments due so far: the "
        "first one, and every period up to the month the company generates for."
    ),
    status_code=201,
)
def create_commitment(
    body: CommitmentIn, actor: ActorDep, container: ContainerDep
) -> CommitmentChangedOut:
    view = svc.create_commitment(
        container.uow(), company_id_of(actor), body.to_service(), actor=actor, clock=container.clock
    )
    return CommitmentChangedOut.of_change(view)


@router.get("/commitments", summary="Commitments, oldest first")
def list_commitments(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    active: Annotated[bool | None, Query()] = None,
    method: Annotated[Method | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    periodicity: Annotated[Periodicity | None, Query()] = None,
    customer_id: IdQuery = None,
) -> Page[CommitmentOut]:
    filters = svc.CommitmentFilter(active, method, kind, periodicity, customer_id)
    with container.uow(write=False) as uow:
        page = svc.list_commitments(uow, company_id_of(actor), filters, paging=p)
    return paged(request, response, [CommitmentOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/commitments/{commitment_id}",
    summary="One commitment, with its current mandate",
    responses=problem_responses(404),
)
def get_commitment(
    commitment_id: CommitmentId, actor: ActorDep, container: ContainerDep
) -> CommitmentOut:
    with container.uow(write=False) as uow:
        return CommitmentOut.of(svc.get_commitment(uow, company_id_of(actor), commitment_id))


@router.patch(
    "/commitments/{commitment_id}",
    summary="Edit a commitment (admin, operator)",
    description=(
        "Changes apply to the payments still open (not_remitted or pending) and due from "
        "the company's today on; paid and past payments never change. A new IBAN creates a "
        "new mandate and marks the previous one replaced."
    ),
    responses=problem_responses(404, 409),
)
def edit_commitment(
    commitment_id: CommitmentId, body: CommitmentPatch, actor: ActorDep, container: ContainerDep
) -> CommitmentChangedOut:
    view = svc.edit_commitment(
        container.uow(),
        company_id_of(actor),
        commitment_id,
        body.to_service(),
        actor=actor,
        clock=container.clock,
    )
    return CommitmentChangedOut.of_change(view)


@router.post(
    "/commitments/{commitment_id}/end",
    summary="End a commitment (admin, operator)",
    description="Open payments due after the end date are cancelled.",
    responses=problem_responses(404, 409),
)
def end_commitment(
    commitment_id: CommitmentId, body: CommitmentEndIn, actor: ActorDep, container: ContainerDep
) -> CommitmentOut:
    view = svc.end_commitment(
        container.uow(),
        company_id_of(actor),
        commitment_id,
        reason=body.reason,
        ends_on=body.ends_on,
        actor=actor,
        clock=container.clock,
    )
    return CommitmentOut.of(view)


@router.get(
    "/commitments/{commitment_id}/mandates",
    summary="A commitment's mandates, the replaced ones too",
    responses=problem_responses(404),
)
def list_mandates(
    commitment_id: CommitmentId, actor: ActorDep, container: ContainerDep
) -> list[MandateOut]:
    with container.uow(write=False) as uow:
        views = svc.list_mandates(uow, company_id_of(actor), commitment_id)
    return [MandateOut.of(v) for v in views]


def _month(text: str | None) -> date | None:
    if text is None:
        return None
    match = _MONTH.match(text)
    if match is None:
        raise ValidationFailed("due_month is YYYY-MM", field="due_month")
    return date(int(match[1]), int(match[2]), 1)


@router.get("/commitment-payments", summary="Commitment payments, by due date")
def list_payments(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: Annotated[PaymentStatus | None, Query()] = None,
    method: Annotated[Method | None, Query()] = None,
    due_month: Annotated[str | None, Query(max_length=7, examples=["2026-03"])] = None,
    commitment_id: IdQuery = None,
    customer_id: IdQuery = None,
    remittance_id: IdQuery = None,
) -> Page[CommitmentPaymentOut]:
    filters = svc.PaymentFilter(
        status, method, _month(due_month), commitment_id, customer_id, remittance_id
    )
    with container.uow(write=False) as uow:
        page = svc.list_payments(uow, company_id_of(actor), filters, paging=p)
    return paged(request, response, [CommitmentPaymentOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/commitment-payments/{payment_id}",
    summary="One commitment payment",
    responses=problem_responses(404),
)
def get_payment(
    payment_id: PaymentId, actor: ActorDep, container: ContainerDep
) -> CommitmentPaymentOut:
    with container.uow(write=False) as uow:
        return CommitmentPaymentOut.of(svc.get_payment(uow, company_id_of(actor), payment_id))


@router.post(
    "/commitment-payments/{payment_id}/transition",
    summary="Move a payment to another state (admin, operator)",
    description=(
        "Only the transitions of the payment method's table are allowed (see "
        "docs/commitments.md); any other answers 409 `invalid_payment_transition` "
        "naming the states the payment may go to."
    ),
    responses=problem_responses(404, 409),
)
def transition_payment(
    payment_id: PaymentId, body: TransitionIn, actor: ActorDep, container: ContainerDep
) -> CommitmentPaymentOut:
    view = svc.change_payment_status(
        container.uow(),
        company_id_of(actor),
        payment_id,
        body.status,
        actor=actor,
        clock=container.clock,
        reason=body.reason,
    )
    return CommitmentPaymentOut.of(view)


@router.post(
    "/commitment-payments/generate",
    summary="Generate the payments due up to a month now (admin, operator)",
    description=(
        "What the monthly job does, on demand. Idempotent: a payment is never created "
        "twice for one commitment and period."
    ),
)
def generate(body: GenerateIn, actor: ActorDep, container: ContainerDep) -> GenerationOut:
    run = svc.generate_payments(
        container.uow(), company_id_of(actor), month=body.month, clock=container.clock, actor=actor
    )
    return GenerationOut(month=run.month, commitments=run.commitments, created=run.created)
