"""Webhook endpoints of the caller's company and the deliveries of its payment events.

Endpoints are managed by `admin` keys; the signing secret is answered once, at creation.
`operator` keys may replay deliveries; `auditor` keys only read.
"""

from __future__ import annotations

from typing import Annotated, Self

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import MAX_ID, Page, Strict, Text64, UtcDatetime
from recaudo.services import webhooks
from recaudo.services.webhooks import DeliveryStatus

router = APIRouter(tags=["webhooks"], responses=problem_responses(400, 401, 403, 422))

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="The endpoint's id.")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id.")]


class WebhookEndpointIn(Strict):
    url: str = Field(
        min_length=1,
        max_length=500,
        examples=["https://billing.example.cl/recaudo/webhooks"],
        description="http:// or https:// URL that receives signed JSON POSTs.",
    )


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    enabled: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: webhooks.EndpointView) -> Self:
        return cls(id=v.id, url=v.url, enabled=v.enabled, created_at=v.created_at)


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(
        description="The HMAC-SHA256 signing secret. Shown only in this answer: keep it."
    )


class WebhookAttemptOut(BaseModel):
    id: int
    attempted_at: UtcDatetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    id: int
    event_id: int
    event_type: str
    endpoint_id: int
    url: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts since the delivery was created or replayed.")
    next_attempt_at: UtcDatetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: UtcDatetime | None
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: webhooks.DeliveryView) -> Self:
        return cls(
            id=v.id,
            event_id=v.event_id,
            event_type=v.event_type,
            endpoint_id=v.endpoint_id,
            url=v.url,
            status=v.status,
            attempts=v.attempts,
            next_attempt_at=v.next_attempt_at,
            last_status_code=v.last_status_code,
            last_error=v.last_error,
            delivered_at=v.delivered_at,
            created_at=v.created_at,
        )


class WebhookDeliveryDetail(WebhookDeliveryOut):
    attempt_log: list[WebhookAttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def detail(cls, v: webhooks.DeliveryView) -> Self:
        base = WebhookDeliveryOut.of(v).model_dump()
        log = [
            WebhookAttemptOut(
                id=a.id,
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in v.attempt_log
        ]
        return cls(**base, attempt_log=log)


@router.post(
    "/webhooks",
    summary="Register a webhook endpoint (admin)",
    description="Answers the signing secret once; it is never shown again.",
    status_code=201,
)
def create_webhook(
    body: WebhookEndpointIn, actor: ActorDep, container: ContainerDep
) -> WebhookEndpointCreated:
    created = webhooks.create_endpoint(
        container.uow(),
        company_id_of(actor),
        body.url,
        actor=actor,
        clock=container.clock,
        allow_private=container.settings.webhook_allow_private_targets,
    )
    out = WebhookEndpointOut.of(created.endpoint)
    return WebhookEndpointCreated(**out.model_dump(), secret=created.secret)


@router.get("/webhooks", summary="Webhook endpoints of the company")
def list_webhooks(actor: ActorDep, container: ContainerDep) -> list[WebhookEndpointOut]:
    with container.uow(write=False) as uow:
        return [
            WebhookEndpointOut.of(v) for v in webhooks.list_endpoints(uow, company_id_of(actor))
        ]


@router.delete(
    "/webhooks/{endpoint_id}",
    summary="Disable a webhook endpoint (admin)",
    description="Nothing is deleted: the endpoint and its deliveries stay, no longer sent.",
    responses=problem_responses(404),
)
def disable_webhook(
    endpoint_id: EndpointId, actor: ActorDep, container: ContainerDep
) -> WebhookEndpointOut:
    view = webhooks.disable_endpoint(
        container.uow(), company_id_of(actor), endpoint_id, actor=actor, clock=container.clock
    )
    return WebhookEndpointOut.of(view)


@router.get("/webhook-deliveries", summary="Webhook deliveries, newest first")
def list_deliveries(
    request: Request,
    response: Response,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
    status: DeliveryStatus | None = None,
    event_type: Annotated[Text64 | None, Query(examples=["payment.applied"])] = None,
) -> Page[WebhookDeliveryOut]:
    with container.uow(write=False) as uow:
        page = webhooks.list_deliveries(
            uow, company_id_of(actor), status=status, event_type=event_type, paging=p
        )
    return paged(request, response, [WebhookDeliveryOut.of(v) for v in page.items], page.total, p)


@router.get(
    "/webhook-deliveries/{delivery_id}",
    summary="One delivery with its attempts",
    responses=problem_responses(404),
)
def get_delivery(
    delivery_id: DeliveryId, actor: ActorDep, container: ContainerDep
) -> WebhookDeliveryDetail:
    with container.uow(write=False) as uow:
        view = webhooks.get_delivery(uow, company_id_of(actor), delivery_id)
    return WebhookDeliveryDetail.detail(view)


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    summary="Send a delivery again (operator or admin)",
    description="Due at once with a fresh attempt budget, even if it was delivered; "
    "a delivery of a disabled endpoint is 409.",
    responses=problem_responses(404, 409),
)
def replay_delivery(
    delivery_id: DeliveryId, actor: ActorDep, container: ContainerDep
) -> WebhookDeliveryDetail:
    view = webhooks.replay_delivery(
        container.uow(), company_id_of(actor), delivery_id, actor=actor, clock=container.clock
    )
    return WebhookDeliveryDetail.detail(view)
