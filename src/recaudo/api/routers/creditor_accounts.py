"""The company's creditor accounts (for SEPA files) and its commitment settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.commitment_schemas import (
    CreditorAccountIn,
    CreditorAccountOut,
    CreditorAccountPatch,
    SettingsOut,
    SettingsPatch,
)
from recaudo.api.errors import problem_responses
from recaudo.api.schemas import MAX_ID
from recaudo.services import creditor_accounts as accounts

router = APIRouter(tags=["creditor accounts"], responses=problem_responses(400, 401, 403, 422))

AccountId = Annotated[int, Path(ge=1, le=MAX_ID, description="The creditor account's id.")]


@router.post(
    "/creditor-accounts",
    summary="Register a creditor account (admin)",
    description="The IBAN, BIC and SEPA creditor identifier (AT-02 check digits) are checked.",
    status_code=201,
    responses=problem_responses(409),
)
def register_account(
    body: CreditorAccountIn, actor: ActorDep, container: ContainerDep
) -> CreditorAccountOut:
    view = accounts.register_account(
        container.uow(), company_id_of(actor), body.to_service(), actor=actor, clock=container.clock
    )
    return CreditorAccountOut.of(view)


@router.get("/creditor-accounts", summary="The company's creditor accounts")
def list_accounts(
    actor: ActorDep,
    container: ContainerDep,
    active: Annotated[bool | None, Query()] = None,
) -> list[CreditorAccountOut]:
    with container.uow(write=False) as uow:
        views = accounts.list_accounts(uow, company_id_of(actor), active=active)
    return [CreditorAccountOut.of(v) for v in views]


@router.get(
    "/creditor-accounts/{account_id}",
    summary="One creditor account",
    responses=problem_responses(404),
)
def get_account(
    account_id: AccountId, actor: ActorDep, container: ContainerDep
) -> CreditorAccountOut:
    with container.uow(write=False) as uow:
        return CreditorAccountOut.of(accounts.get_account(uow, company_id_of(actor), account_id))


@router.patch(
    "/creditor-accounts/{account_id}",
    summary="Change a creditor account (admin)",
    responses=problem_responses(404, 409),
)
def update_account(
    account_id: AccountId, body: CreditorAccountPatch, actor: ActorDep, container: ContainerDep
) -> CreditorAccountOut:
    view = accounts.update_account(
        container.uow(),
        company_id_of(actor),
        account_id,
        body.to_service(),
        actor=actor,
        clock=container.clock,
    )
    return CreditorAccountOut.of(view)


@router.get("/commitment-settings", summary="When the monthly payment generation runs")
def get_settings(actor: ActorDep, container: ContainerDep) -> SettingsOut:
    with container.uow(write=False) as uow:
        return SettingsOut.of(accounts.get_settings(uow, company_id_of(actor)))


@router.patch(
    "/commitment-settings",
    summary="Change when the monthly generation runs and which month it generates (admin)",
)
def update_settings(body: SettingsPatch, actor: ActorDep, container: ContainerDep) -> SettingsOut:
    view = accounts.update_settings(
        container.uow(), company_id_of(actor), body.to_service(), actor=actor, clock=container.clock
    )
    return SettingsOut.of(view)
