"""Bank channel agreements (convenios) of the caller's company."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.channel_schemas import (
    AgreementCreated,
    AgreementIn,
    AgreementOut,
    AgreementSettingsIn,
)
from recaudo.api.errors import problem_responses
from recaudo.api.schemas import MAX_ID
from recaudo.services import agreements, queries

router = APIRouter(tags=["channel agreements"], responses=problem_responses(400, 401, 403, 422))

AgreementId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _settings(body: AgreementSettingsIn) -> agreements.AgreementSettings:
    return agreements.AgreementSettings(
        voucher_name=body.voucher_name,
        cutoff=body.cutoff,
        enabled=body.enabled,
        allow_query_token=body.allow_query_token,
        ip_allowlist=None if body.ip_allowlist is None else tuple(body.ip_allowlist),
        errors_as_http_200=body.errors_as_http_200,
        quote_ttl_seconds=body.quote_ttl_seconds,
        passthrough_url=body.passthrough_url,
        passthrough_timeout_ms=body.passthrough_timeout_ms,
    )


@router.get("/agreements", summary="The company's bank channel agreements")
def list_agreements(actor: ActorDep, container: ContainerDep) -> list[AgreementOut]:
    with container.uow(write=False) as uow:
        return [AgreementOut.of(a) for a in agreements.list_agreements(uow, company_id_of(actor))]


@router.post(
    "/agreements",
    summary="Enable a bank channel (admin)",
    description="Answers the agreement with its `secret`, shown this once and stored hashed.",
    status_code=201,
    responses=problem_responses(409),
)
def create_agreement(
    body: AgreementIn, actor: ActorDep, container: ContainerDep
) -> AgreementCreated:
    with container.uow(write=False) as uow:
        slug = queries.get_company(uow, company_id_of(actor)).slug
    issued = agreements.create_agreement(
        container.uow(),
        slug,
        body.channel,
        body.convenio,
        _settings(body),
        actor=actor,
        clock=container.clock,
        allow_private_targets=container.settings.webhook_allow_private_targets,
    )
    return AgreementCreated(**AgreementOut.of(issued.agreement).model_dump(), secret=issued.secret)


@router.patch(
    "/agreements/{agreement_id}",
    summary="Change an agreement's settings (admin)",
    responses=problem_responses(404),
)
def update_agreement(
    agreement_id: AgreementId, body: AgreementSettingsIn, actor: ActorDep, container: ContainerDep
) -> AgreementOut:
    agreement = agreements.update_agreement(
        container.uow(),
        company_id_of(actor),
        agreement_id,
        _settings(body),
        actor=actor,
        clock=container.clock,
        allow_private_targets=container.settings.webhook_allow_private_targets,
    )
    return AgreementOut.of(agreement)
