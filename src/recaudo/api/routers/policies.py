"""Viability policies (rules as data) and the exceptions admins grant to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.negotiation_schemas import (
    ExceptionIn,
    ExceptionOut,
    PolicyIn,
    PolicyOut,
    PolicyPatch,
)
from recaudo.api.schemas import MAX_ID
from recaudo.services import policies

router = APIRouter(tags=["negotiation policies"], responses=problem_responses(400, 401, 403, 422))

PolicyId = Annotated[int, Path(ge=1, le=MAX_ID, description="The policy's id.")]

RULE_HELP = (
    "A rule is a `rule-engine` expression over the facts `"
    + "`, `".join(policies.FACTS)
    + "` (amounts in currency units; `months_since_last_negotiation` is null for a customer "
    "never negotiated). Any other name, attribute access or `$` built-in is refused (422)."
)


@router.post(
    "/negotiation-policies",
    summary="Add a viability rule to a strategy (admin)",
    description=RULE_HELP,
    status_code=201,
    responses=problem_responses(409),
)
def add_policy(body: PolicyIn, actor: ActorDep, container: ContainerDep) -> PolicyOut:
    view = policies.add_policy(
        container.uow(),
        company_id_of(actor),
        policies.NewPolicy(
            name=body.name,
            strategy=body.strategy,
            rule=body.rule,
            cause=body.cause,
            message=body.message,
            exception_name=body.exception_name,
            parameters=body.parameters,
            active=body.active,
        ),
        actor=actor,
        clock=container.clock,
    )
    return PolicyOut.of(view)


@router.get("/negotiation-policies", summary="The company's viability policies")
def list_policies(
    actor: ActorDep,
    container: ContainerDep,
    strategy: Annotated[str | None, Query(max_length=8)] = None,
    active: bool | None = None,
) -> list[PolicyOut]:
    views = policies.list_policies(
        container.uow(write=False),
        company_id_of(actor),
        actor=actor,
        strategy=strategy,
        active=active,
    )
    return [PolicyOut.of(v) for v in views]


@router.get(
    "/negotiation-policies/{policy_id}",
    summary="One viability policy",
    responses=problem_responses(404),
)
def get_policy(policy_id: PolicyId, actor: ActorDep, container: ContainerDep) -> PolicyOut:
    view = policies.get_policy(
        container.uow(write=False), company_id_of(actor), policy_id, actor=actor
    )
    return PolicyOut.of(view)


@router.patch(
    "/negotiation-policies/{policy_id}",
    summary="Change a policy's rule, cause, message, parameters or state (admin)",
    description=RULE_HELP,
    responses=problem_responses(404),
)
def update_policy(
    policy_id: PolicyId, body: PolicyPatch, actor: ActorDep, container: ContainerDep
) -> PolicyOut:
    view = policies.update_policy(
        container.uow(),
        company_id_of(actor),
        policy_id,
        policies.PolicyChanges(
            rule=body.rule,
            cause=body.cause,
            message=body.message,
            exception_name=body.exception_name,
            parameters=body.parameters,
            active=body.active,
        ),
        actor=actor,
        clock=container.clock,
    )
    return PolicyOut.of(view)


@router.delete(
    "/negotiation-policies/{policy_id}",
    summary="Disable a policy (admin); it is kept for the exceptions and the audit trail",
    responses=problem_responses(404),
)
def disable_policy(policy_id: PolicyId, actor: ActorDep, container: ContainerDep) -> PolicyOut:
    view = policies.disable_policy(
        container.uow(), company_id_of(actor), policy_id, actor=actor, clock=container.clock
    )
    return PolicyOut.of(view)


@router.post(
    "/negotiation-policies/{policy_id}/exceptions",
    summary="Grant an exception to a policy for one customer (admin only)",
    description=(
        "The rule no longer blocks this customer's (or this debt's) offers until "
        "`valid_until`; the first negotiation that relies on it uses it up. The reason and "
        "the admin are recorded and audited. Operators get 403."
    ),
    status_code=201,
    responses=problem_responses(404, 409),
)
def grant_exception(
    policy_id: PolicyId, body: ExceptionIn, actor: ActorDep, container: ContainerDep
) -> ExceptionOut:
    view = policies.grant_exception(
        container.uow(),
        company_id_of(actor),
        policies.NewException(
            customer_id=body.customer_id,
            policy_id=policy_id,
            reason=body.reason,
            valid_until=body.valid_until,
            debt=body.debt,
        ),
        actor=actor,
        clock=container.clock,
    )
    return ExceptionOut.of(view)


@router.get("/policy-exceptions", summary="Exceptions granted, oldest first")
def list_exceptions(
    actor: ActorDep,
    container: ContainerDep,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[ExceptionOut]:
    views = policies.list_exceptions(
        container.uow(write=False), company_id_of(actor), actor=actor, customer_id=customer_id
    )
    return [ExceptionOut.of(v) for v in views]
