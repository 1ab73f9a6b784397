"""Negotiations of late debts: simulate offers, propose, accept, follow; profiles and settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.negotiation_schemas import (
    ComponentsIn,
    ComponentsOut,
    NegotiationIn,
    NegotiationOut,
    NegotiationSummaryOut,
    ProfileIn,
    ProfileOut,
    SettingsIn,
    SettingsOut,
    SimulateIn,
    SimulationOut,
)
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Key, Page, amount
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.services import debt_components
from recaudo.services import negotiations as neg

router = APIRouter(tags=["negotiations"], responses=problem_responses(400, 401, 403, 422))

NegotiationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The negotiation's id.")]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="The customer's id.")]


@router.post(
    "/negotiations/simulate",
    summary="The offers a customer's obligations get (admin, operator)",
    description=(
        "For each obligation (the named debts, or all the customer's payable debts) and each "
        "strategy the company has policies for: the offer computed exactly (payment today, "
        "installments, term, rate, condoned amounts), whether the policies allow it or the "
        "named causes why not, and whether it fits the customer's declared payment capacity. "
        "`parameters` recalculates a strategy with other terms. Nothing is written."
    ),
    responses=problem_responses(404),
)
def simulate(body: SimulateIn, actor: ActorDep, container: ContainerDep) -> SimulationOut:
    result = neg.simulate(
        container.uow(write=False),
        company_id_of(actor),
        neg.Simulate(
            body.customer_id, tuple(body.debts), tuple(body.strategies), dict(body.parameters)
        ),
        actor=actor,
        clock=container.clock,
    )
    return SimulationOut.of(result)


@router.post(
    "/negotiations",
    summary="Propose a negotiation (admin, operator)",
    description=(
        "Records a proposal (`proposed`) with its offer, commitments (zero or more `P`, then "
        "exactly one `T`, the last) and the exceptions it uses. A strategy the policies do not "
        "allow is 409 `not_viable` with the cause. With an idempotency key (header or body) a "
        "replay answers the first proposal (200)."
    ),
    status_code=201,
    responses={200: {"description": "A replay of the same key."}, **problem_responses(404, 409)},
)
def create_negotiation(
    body: NegotiationIn,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    idempotency_key: Annotated[Key | None, Header(alias="Idempotency-Key")] = None,
) -> NegotiationOut:
    if body.idempotency_key and idempotency_key and body.idempotency_key != idempotency_key:
        raise ValidationFailed(
            "the Idempotency-Key header and idempotency_key differ", field="idempotency_key"
        )
    key = body.idempotency_key or idempotency_key
    company_id = company_id_of(actor)
    if key is not None and neg.negotiation_by_key(
        container.uow(write=False), company_id, key, actor=actor
    ):
        response.status_code = 200  # a replay (or 409 below if the body differs)
    view = neg.create_negotiation(
        container.uow(),
        company_id,
        neg.NewNegotiation(
            customer_id=body.customer_id,
            strategy=body.strategy,
            debts=tuple(body.debts),
            parameters=body.parameters,
            commitments=tuple(
                neg.CommitmentSpec(c.kind, c.amount, c.due_date, c.rate) for c in body.commitments
            ),
            adviser=body.adviser,
            office=body.office,
            mark_start=body.mark_start,
            mark_end=body.mark_end,
            channel="api",
            external_id=key,
        ),
        actor=actor,
        clock=container.clock,
    )
    return NegotiationOut.of(view)


@router.get("/negotiations", summary="Negotiations, newest first")
def list_negotiations(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    strategy: Annotated[str | None, Query(max_length=8)] = None,
) -> Page[NegotiationSummaryOut]:
    page = neg.list_negotiations(
        container.uow(write=False),
        company_id_of(actor),
        actor=actor,
        state=state,
        customer_id=customer_id,
        strategy=strategy,
        paging=p,
    )
    items = [NegotiationSummaryOut.of(s) for s in page.items]
    return paged(request, response, items, page.total, p)


@router.get(
    "/negotiations/settings",
    summary="The company's negotiation settings",
)
def get_settings(actor: ActorDep, container: ContainerDep) -> SettingsOut:
    return SettingsOut.of(
        neg.get_settings(container.uow(write=False), company_id_of(actor), actor=actor)
    )


@router.patch(
    "/negotiations/settings",
    summary="Change concept labels, break days, reinstatement, capacity ratio (admin)",
)
def update_settings(body: SettingsIn, actor: ActorDep, container: ContainerDep) -> SettingsOut:
    view = neg.update_settings(
        container.uow(),
        company_id_of(actor),
        neg.SettingsChanges(
            concept_labels=body.concept_labels,
            break_after_days=body.break_after_days,
            reinstate_on_break=body.reinstate_on_break,
            capacity_ratio=body.capacity_ratio,
        ),
        actor=actor,
        clock=container.clock,
    )
    return SettingsOut.of(view)


@router.post(
    "/negotiations/profiles",
    summary="Record what a customer declares: income, expenses (admin, operator)",
    status_code=201,
    responses=problem_responses(404),
)
def record_profile(body: ProfileIn, actor: ActorDep, container: ContainerDep) -> ProfileOut:
    view = neg.record_profile(
        container.uow(),
        company_id_of(actor),
        neg.NewProfile(
            customer_id=body.customer_id,
            income=body.income,
            other_income=body.other_income,
            personal_expenses=body.personal_expenses,
            self_employed=body.self_employed,
            sales=body.sales,
            operating_costs=body.operating_costs,
            cash_today=body.cash_today,
        ),
        actor=actor,
        clock=container.clock,
    )
    return ProfileOut.of(view)


@router.get(
    "/negotiations/profiles/{customer_id}",
    summary="A customer's latest declared profile and payment capacity",
    responses=problem_responses(404),
)
def latest_profile(customer_id: CustomerId, actor: ActorDep, container: ContainerDep) -> ProfileOut:
    view = neg.latest_profile(
        container.uow(write=False), company_id_of(actor), customer_id, actor=actor
    )
    if view is None:
        raise NotFound(f"customer {customer_id} declared no profile")
    return ProfileOut.of(view)


@router.put(
    "/debt-components/{debt_id}",
    summary="Set a debt's breakdown by concept (admin, operator)",
    responses=problem_responses(404, 409),
)
def set_components(
    debt_id: Annotated[
        str, Path(min_length=1, max_length=64, description="The company's debt id.")
    ],
    body: ComponentsIn,
    actor: ActorDep,
    container: ContainerDep,
) -> ComponentsOut:
    parts: dict[str, Decimal] = debt_components.set_components(
        container.uow(),
        company_id_of(actor),
        debt_id,
        dict(body.components),
        actor=actor,
        clock=container.clock,
    )
    return ComponentsOut(debt=debt_id, components={k: amount(v) for k, v in parts.items()})


@router.get(
    "/negotiations/{negotiation_id}",
    summary="One negotiation: debts, plan, commitments, state",
    responses=problem_responses(404),
)
def get_negotiation(
    negotiation_id: NegotiationId, actor: ActorDep, container: ContainerDep
) -> NegotiationOut:
    view = neg.get_negotiation(
        container.uow(write=False), company_id_of(actor), negotiation_id, actor=actor
    )
    return NegotiationOut.of(view)


@router.post(
    "/negotiations/{negotiation_id}/accept",
    summary="Accept a proposal: its debts are replaced by the plan (admin, operator)",
    description=(
        "One transaction: the negotiated debts become `replaced`, the payment today and each "
        "installment become new debts (`NEG{id}-000`, `NEG{id}-001`, ...) that every channel "
        "collects, condoned amounts are written off by concept. A proposal accepted already, "
        "or whose debts changed since, is 409."
    ),
    responses=problem_responses(404, 409),
)
def accept_negotiation(
    negotiation_id: NegotiationId, actor: ActorDep, container: ContainerDep
) -> NegotiationOut:
    view = neg.accept_negotiation(
        container.uow(), company_id_of(actor), negotiation_id, actor=actor, clock=container.clock
    )
    return NegotiationOut.of(view)
