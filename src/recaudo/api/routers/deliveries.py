"""Delivery targets of the caller's company (SFTP, e-mail, local directory) and the
deliveries of its files to them.

`admin` keys manage targets; a target's password or private key is write-only: it is
accepted in `secret`, stored encrypted and never answered (`has_secret` tells whether one
is set). `operator` keys may also test a target and re-deliver; `auditor` keys only read.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, SecretStr

from recaudo.adapters.transfer import TransferError
from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page, Strict, UtcDatetime
from recaudo.domain.errors import ValidationFailed
from recaudo.services import deliveries
from recaudo.services.context import Role
from recaudo.services.deliveries import DeliveryStatus, TargetChanges, TargetSpec

router = APIRouter(tags=["deliveries"], responses=problem_responses(400, 401, 403, 422))

TargetId = Annotated[int, Path(ge=1, le=MAX_ID, description="The target's id.")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id.")]
FileId = Annotated[int, Path(ge=1, le=MAX_ID, description="The settlement file's id.")]

SETTINGS_HELP = (
    "`sftp`: host, port (22), username, auth (`password` | `key`), host_key (the server's "
    "public key, `ssh-ed25519 AAAA...`; any other key is refused), directory, timeout_s. "
    "`email`: host, port (587), security (`starttls` | `ssl` | `none`, loopback only), "
    "username, from, recipients, cafile, subject, timeout_s. `local`: directory (absolute). "
    "Never a password: that goes in `secret`."
)
SECRET_HELP = (
    "Write-only: the SFTP password or private key (OpenSSH/PEM, unencrypted), or the SMTP "  # noqa: S105
    "password. Stored encrypted, never answered."
)


class TargetIn(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["bancoestado-sftp"])
    kind: str = Field(
        pattern="^(sftp|email|local)$",
        description="sftp or email (local directories are set with the command line).",
    )
    agreement_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Deliver this agreement's settlement files here; omit for a target used "
        "by a file exchange.",
    )
    settings: dict[str, Any] = Field(description=SETTINGS_HELP)
    secret: SecretStr | None = Field(default=None, max_length=20_000, description=SECRET_HELP)
    retention_days: int = Field(
        default=deliveries.DEFAULT_RETENTION_DAYS,
        ge=1,
        le=3650,
        description="Delivered files are deleted from the target after this many days.",
    )
    enabled: bool = True


class TargetPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = Field(
        default=None, description="Merged key by key; a null value removes the key."
    )
    secret: SecretStr | None = Field(
        default=None,
        max_length=20_000,
        description=SECRET_HELP + ' Omit to keep it; "" removes it.',
    )
    agreement_id: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="0 detaches the target from its agreement."
    )
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    enabled: bool | None = None


class TargetOut(BaseModel):
    id: int
    agreement_id: int | None
    name: str
    kind: str
    settings: dict[str, Any]
    has_secret: bool = Field(description="Whether a password or key is set (never shown).")
    retention_days: int
    enabled: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, v: deliveries.TargetView) -> Self:
        return cls(
            id=v.id,
            agreement_id=v.agreement_id,
            name=v.name,
            kind=v.kind,
            settings=v.settings,
            has_secret=v.has_secret,
            retention_days=v.retention_days,
            enabled=v.enabled,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class TargetTestOut(BaseModel):
    ok: bool
    detail: str = Field(description="What was checked, or why it failed (no secrets).")


class AttemptOut(BaseModel):
    id: int
    attempted_at: UtcDatetime
    ok: bool
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    target_id: int
    target_name: str
    target_kind: str
    settlement_file_id: int | None
    exchange_file_id: int | None
    file_name: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts since the delivery was created or re-sent.")
    next_attempt_at: UtcDatetime | None
    last_error: str | None
    remote_path: str | None
    delivered_at: UtcDatetime | None
    removed_at: UtcDatetime | None = Field(description="Deleted from the target (retention).")
    requested_by: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: deliveries.DeliveryView) -> Self:
        return cls(
            id=v.id,
            target_id=v.target_id,
            target_name=v.target_name,
            target_kind=v.target_kind,
            settlement_file_id=v.settlement_file_id,
            exchange_file_id=v.exchange_file_id,
            file_name=v.file_name,
            status=v.status,
            attempts=v.attempts,
            next_attempt_at=v.next_attempt_at,
            last_error=v.last_error,
            remote_path=v.remote_path,
            delivered_at=v.delivered_at,
            removed_at=v.removed_at,
            requested_by=v.requested_by,
            created_at=v.created_at,
        )


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def detail(cls, v: deliveries.DeliveryView) -> Self:
        log = [
            AttemptOut(
                id=a.id,
                attempted_at=a.attempted_at,
                ok=a.ok,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in v.attempt_log
        ]
        return cls(**DeliveryOut.of(v).model_dump(), attempt_log=log)


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _refuse_server_directory() -> None:
    """A local target names a directory of the server itself: Recaudo writes there, and an
    inbox on it moves every file it finds. Only whoever runs the server may choose one
    (as with layout files): the API would let any company's admin reach any directory."""
    raise ValidationFailed(
        "local directory targets name the server's own directories: the server's operator "
        "sets them with `recaudo delivery target add --kind local`",
        field="kind",
    )


@router.post(
    "/delivery-targets",
    summary="Add a delivery target (admin)",
    status_code=201,
    responses=problem_responses(404, 409),
)
def create_target(body: TargetIn, actor: ActorDep, container: ContainerDep) -> TargetOut:
    if body.kind == "local":
        actor.require(Role.ADMIN)  # an auditor's attempt stays a 403
        _refuse_server_directory()
    spec = TargetSpec(
        name=body.name,
        kind=body.kind,
        settings=body.settings,
        secret=_secret(body.secret),
        agreement_id=body.agreement_id,
        retention_days=body.retention_days,
        enabled=body.enabled,
    )
    view = deliveries.create_target(
        container.uow(),
        company_id_of(actor),
        spec,
        settings=container.settings,
        actor=actor,
        clock=container.clock,
    )
    return TargetOut.of(view)


@router.get("/delivery-targets", summary="The company's delivery targets")
def list_targets(actor: ActorDep, container: ContainerDep) -> list[TargetOut]:
    with container.uow(write=False) as uow:
        return [TargetOut.of(v) for v in deliveries.list_targets(uow, company_id_of(actor))]


@router.get(
    "/delivery-targets/{target_id}", summary="One delivery target", responses=problem_responses(404)
)
def get_target(target_id: TargetId, actor: ActorDep, container: ContainerDep) -> TargetOut:
    with container.uow(write=False) as uow:
        return TargetOut.of(deliveries.get_target(uow, company_id_of(actor), target_id))


@router.patch(
    "/delivery-targets/{target_id}",
    summary="Change a delivery target (admin)",
    responses=problem_responses(404, 409),
)
def update_target(
    target_id: TargetId, body: TargetPatch, actor: ActorDep, container: ContainerDep
) -> TargetOut:
    if body.settings and "directory" in body.settings:
        with container.uow(write=False) as uow:
            kind = deliveries.get_target(uow, company_id_of(actor), target_id).kind
        if kind == "local":
            actor.require(Role.ADMIN)
            _refuse_server_directory()
    changes = TargetChanges(
        name=body.name,
        settings=body.settings,
        secret=_secret(body.secret),
        agreement_id=body.agreement_id,
        retention_days=body.retention_days,
        enabled=body.enabled,
    )
    view = deliveries.update_target(
        container.uow(),
        company_id_of(actor),
        target_id,
        changes,
        settings=container.settings,
        actor=actor,
        clock=container.clock,
    )
    return TargetOut.of(view)


@router.delete(
    "/delivery-targets/{target_id}",
    summary="Remove a delivery target never used (admin)",
    description="A target with deliveries or a file exchange is kept (409): disable it "
    "with PATCH `enabled: false`.",
    status_code=204,
    responses=problem_responses(404, 409),
)
def remove_target(target_id: TargetId, actor: ActorDep, container: ContainerDep) -> Response:
    deliveries.remove_target(
        container.uow(), company_id_of(actor), target_id, actor=actor, clock=container.clock
    )
    return Response(status_code=204)


@router.post(
    "/delivery-targets/{target_id}/test",
    summary="Connect to a target without delivering (operator or admin)",
    description="SFTP and local: list the directory; e-mail: connect, start TLS and log in, "
    "sending nothing. A failed connection is `ok: false` with the reason.",
    responses=problem_responses(404),
)
def test_target(target_id: TargetId, actor: ActorDep, container: ContainerDep) -> TargetTestOut:
    try:
        detail = deliveries.check_target(
            container.uow(),
            company_id_of(actor),
            target_id,
            settings=container.settings,
            actor=actor,
        )
    except TransferError as exc:
        return TargetTestOut(ok=False, detail=str(exc))
    return TargetTestOut(ok=True, detail=detail)


@router.get("/deliveries", summary="File deliveries, newest first")
def list_deliveries(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: DeliveryStatus | None = None,
    target_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    settlement_file_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[DeliveryOut]:
    with container.uow(write=False) as uow:
        page = deliveries.list_deliveries(
            uow,
            company_id_of(actor),
            status=status,
            target_id=target_id,
            settlement_file_id=settlement_file_id,
            paging=p,
        )
    return paged(request, response, [DeliveryOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/deliveries/{delivery_id}",
    summary="One delivery with its attempts",
    responses=problem_responses(404),
)
def get_delivery(
    delivery_id: DeliveryId, actor: ActorDep, container: ContainerDep
) -> DeliveryDetail:
    with container.uow(write=False) as uow:
        return DeliveryDetail.detail(
            deliveries.get_delivery(uow, company_id_of(actor), delivery_id)
        )


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    summary="Deliver again now (operator or admin)",
    description="Due at once with a fresh attempt budget, even if it was delivered; the "
    "attempt log keeps the history. 409 when the target is disabled or the file was "
    "removed by retention.",
    responses=problem_responses(404, 409),
)
def redeliver(delivery_id: DeliveryId, actor: ActorDep, container: ContainerDep) -> DeliveryDetail:
    [view] = deliveries.redeliver(
        container.uow(),
        company_id_of(actor),
        delivery_id=delivery_id,
        actor=actor,
        clock=container.clock,
    )
    return DeliveryDetail.detail(view)


@router.post(
    "/settlements/{settlement_file_id}/redeliver",
    summary="Deliver a settlement file again to its agreement's targets (operator or admin)",
    description="Every enabled target of the agreement: its latest delivery is sent again, "
    "and a target added since the file was made gets a new one.",
    responses=problem_responses(404, 409),
)
def redeliver_settlement(
    settlement_file_id: FileId, actor: ActorDep, container: ContainerDep
) -> list[DeliveryOut]:
    views = deliveries.redeliver(
        container.uow(),
        company_id_of(actor),
        settlement_file_id=settlement_file_id,
        actor=actor,
        clock=container.clock,
    )
    return [DeliveryOut.of(v) for v in views]
