"""Webhook endpoints of a company, their deliveries, and the sending of due deliveries.

Events come from the outbox (`services.outbox`). A delivery is tried by `deliver_due`
in three short steps, never holding a transaction during the HTTP call:

1. **claim**: in one transaction, pick the oldest due delivery (PostgreSQL: `FOR UPDATE
   SKIP LOCKED`, so concurrent workers take different rows; SQLite has one writer) and
   push its `next_attempt_at` a lease ahead, so no other worker sees it as due; commit;
2. **send** the signed request (the sender's own timeout, 10 s, is shorter than the lease);
3. **record** the attempt and the outcome in another transaction: `delivered` on 2xx,
   else a retry at 10 s·2^(n-1) (capped at 6 h), and `failed` after `max_attempts`.

If a worker dies between claim and record, the lease expires and the delivery is tried
again: delivery is at least once, so receivers deduplicate on the event id.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import Select, func, select

from recaudo.adapters import netguard
from recaudo.adapters.db.tables import (
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.queries import Paging
from recaudo.services.views import Page

logger = logging.getLogger("recaudo.webhooks")

MAX_ATTEMPTS = 15
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=6)
# Longer than the sender's timeout: while it runs, no other worker takes the delivery.
LEASE = timedelta(seconds=60)
MAX_ERROR_CHARS = 500


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP attempt got: a status code, or an error and no code."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    def send(
        self,
        url: str,
        secret: str,
        *,
        event_type: str,
        delivery_id: int,
        body: bytes,
        timestamp: int,
    ) -> SendResult: ...


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: int
    company_id: int
    url: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: EndpointView
    secret: str  # shown once, never again


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    event_id: int
    event_type: str
    endpoint_id: int
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: tuple[AttemptView, ...] = ()


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 10 s, 20 s, 40 s, ... at most 6 h."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 32)), MAX_RETRY)


def _endpoint_view(e: WebhookEndpoint) -> EndpointView:
    return EndpointView(e.id, e.company_id, e.url, e.enabled, e.created_at)


def validate_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > 500:
        raise ValidationFailed("a webhook URL has 1 to 500 characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationFailed("not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("a webhook URL must be http:// or https:// with a host", field="url")
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("a webhook URL may not carry credentials", field="url")
    if (
        parts.fragment
        or port == 0
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)
        or not url.isascii()
    ):
        raise ValidationFailed("not a valid URL", field="url")
    return url


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is, or resolves to, an address Recaudo must not call
    (loopback, private, link-local, ...: `adapters.netguard`)."""
    try:
        netguard.check_url(url, allow_private=allow_private)
    except netguard.TargetRefused as exc:
        raise ValidationFailed(
            f"{exc}: webhook URLs must reach a public internet address", field="url"
        ) from None


def create_endpoint(
    uow: UnitOfWork,
    company_id: int,
    url: str,
    *,
    actor: Actor,
    clock: Clock,
    allow_private: bool = False,
) -> CreatedEndpoint:
    """Register a URL for the company's events; the signing secret is returned only here.

    `allow_private` (setting `webhook_allow_private_targets`) lets the URL reach loopback
    and private addresses; every delivery checks the address again."""
    actor.require(Role.ADMIN)
    url = validate_url(url)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    check_target(url, allow_private=allow_private)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    with uow:
        endpoint = WebhookEndpoint(
            company_id=company_id, url=url, secret=secret, enabled=True, created_at=clock()
        )
        uow.session.add(endpoint)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="webhook_endpoint.created",
            entity_type="webhook_endpoint",
            entity_id=endpoint.id,
            after={"url": url},  # never the secret
        )
        uow.commit()
        return CreatedEndpoint(_endpoint_view(endpoint), secret)


def list_endpoints(uow: UnitOfWork, company_id: int | None) -> list[EndpointView]:
    """A company's endpoints (all companies' when `company_id` is None: the CLI)."""
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if company_id is not None:
        stmt = stmt.where(WebhookEndpoint.company_id == company_id)
    return [_endpoint_view(e) for e in uow.session.scalars(stmt)]


def disable_endpoint(
    uow: UnitOfWork, company_id: int, endpoint_id: int, *, actor: Actor, clock: Clock
) -> EndpointView:
    """Stop sending to an endpoint; it and its deliveries are kept. Idempotent."""
    actor.require(Role.ADMIN)
    with uow:
        endpoint = uow.session.scalar(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.company_id == company_id
            )
        )
        if endpoint is None or not actor.can_see(company_id):
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        if endpoint.enabled:
            endpoint.enabled = False
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="webhook_endpoint.disabled",
                entity_type="webhook_endpoint",
                entity_id=endpoint.id,
                before={"enabled": True},
                after={"enabled": False},
            )
        uow.commit()
        return _endpoint_view(endpoint)


def _delivery_query() -> Select[WebhookDelivery, str, str]:
    return (
        select(WebhookDelivery, OutboxEvent.event_type, WebhookEndpoint.url)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    )


def _delivery_view(
    d: WebhookDelivery, event_type: str, url: str, attempts: Sequence[WebhookAttempt] = ()
) -> DeliveryView:
    return DeliveryView(
        id=d.id,
        event_id=d.event_id,
        event_type=event_type,
        endpoint_id=d.endpoint_id,
        url=url,
        status=DeliveryStatus(d.status),
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
        attempt_log=tuple(
            AttemptView(a.id, a.attempted_at, a.status_code, a.error, a.duration_ms)
            for a in attempts
        ),
    )


def list_deliveries(
    uow: UnitOfWork,
    company_id: int,
    *,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
    paging: Paging | None = None,
) -> Page[DeliveryView]:
    """The company's deliveries, newest first."""
    paging = paging or Paging()
    stmt = _delivery_query().where(WebhookDelivery.company_id == company_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status.value)
    if event_type is not None:
        stmt = stmt.where(OutboxEvent.event_type == event_type)
    total = int(
        uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )
    rows = uow.session.execute(
        stmt.order_by(WebhookDelivery.id.desc()).offset(paging.offset).limit(paging.page_size)
    ).all()
    items = [_delivery_view(d, event_type_, url) for d, event_type_, url in rows]
    return Page(items, total, paging.page, paging.page_size)


def get_delivery(uow: UnitOfWork, company_id: int | None, delivery_id: int) -> DeliveryView:
    """One delivery with every attempt, oldest first (any company's when `company_id` is
    None: the CLI's unbound administrator)."""
    stmt = _delivery_query().where(WebhookDelivery.id == delivery_id)
    if company_id is not None:
        stmt = stmt.where(WebhookDelivery.company_id == company_id)
    row = uow.session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    delivery, event_type, url = row
    attempts = uow.session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.id)
    ).all()
    return _delivery_view(delivery, event_type, url, attempts)


def replay_delivery(
    uow: UnitOfWork, company_id: int | None, delivery_id: int, *, actor: Actor, clock: Clock
) -> DeliveryView:
    """Send a delivery again, even a delivered or failed one: due now, with a fresh
    attempt budget (`attempts` restarts at 0; the attempt log keeps the history)."""
    actor.require_write()
    with uow:
        delivery = uow.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        if (
            delivery is None
            or (company_id is not None and delivery.company_id != company_id)
            or not actor.can_see(delivery.company_id)
        ):
            raise NotFound(f"no webhook delivery {delivery_id}")
        endpoint = uow.session.get(WebhookEndpoint, delivery.endpoint_id)
        assert endpoint is not None
        if not endpoint.enabled:
            raise Conflict(f"webhook endpoint {endpoint.id} is disabled")
        before = {"status": delivery.status, "attempts": delivery.attempts}
        delivery.status = DeliveryStatus.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = clock()
        delivery.delivered_at = None
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=delivery.company_id,
            action="webhook_delivery.replayed",
            entity_type="webhook_delivery",
            entity_id=delivery.id,
            before=before,
            after={"status": delivery.status},
        )
        uow.commit()
    with uow:
        return get_delivery(uow, delivery.company_id, delivery_id)


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: int
    lease_until: datetime
    url: str
    secret: str
    event_type: str
    body: bytes


def event_body(event: OutboxEvent) -> bytes:
    """The JSON every delivery of `event` sends: the same bytes on every attempt."""
    document = {
        "id": event.id,
        "type": event.event_type,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _due(now: datetime) -> Select[WebhookDelivery]:
    return (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )


def _claim(uow: UnitOfWork, clock: Clock) -> _Claim | None:
    # Look first without a write transaction: an idle runner polling every second must
    # not take SQLite's write lock (nor a PostgreSQL row lock) when nothing is due.
    with UnitOfWork(uow.engine, write=False) as reader:
        if reader.session.scalar(_due(clock()).with_only_columns(WebhookDelivery.id)) is None:
            return None
    with uow:
        now = clock()
        delivery = uow.session.scalar(
            _due(now).with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        if delivery is None:
            return None
        endpoint = uow.session.get(WebhookEndpoint, delivery.endpoint_id)
        event = uow.session.get(OutboxEvent, delivery.event_id)
        assert endpoint is not None and event is not None
        lease_until = now + LEASE
        delivery.next_attempt_at = lease_until
        claim = _Claim(
            delivery.id,
            lease_until,
            endpoint.url,
            endpoint.secret,
            event.event_type,
            event_body(event),
        )
        uow.commit()
        return claim


def _record(
    uow: UnitOfWork,
    claim: _Claim,
    result: SendResult,
    attempted_at: datetime,
    *,
    clock: Clock,
    max_attempts: int,
) -> None:
    error = None if result.error is None else result.error[:MAX_ERROR_CHARS]
    with uow:
        uow.session.add(
            WebhookAttempt(
                delivery_id=claim.delivery_id,
                attempted_at=attempted_at,
                status_code=result.status_code,
                error=error,
                duration_ms=result.duration_ms,
            )
        )
        delivery = uow.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == claim.delivery_id).with_for_update()
        )
        assert delivery is not None
        # Replayed (or re-claimed after the lease ran out) meanwhile: the attempt is logged
        # but the newer state of the delivery stands.
        ours = (
            delivery.status == DeliveryStatus.PENDING.value
            and delivery.next_attempt_at == claim.lease_until
        )
        if ours:
            now = clock()
            delivery.attempts += 1
            delivery.last_status_code = result.status_code
            delivery.last_error = error
            if result.ok:
                delivery.status = DeliveryStatus.DELIVERED.value
                delivery.delivered_at = now
                delivery.next_attempt_at = None
            elif delivery.attempts >= max_attempts:
                delivery.status = DeliveryStatus.FAILED.value
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts)
        uow.commit()
    logger.info(
        "webhook delivery %s attempt: %s%s",
        claim.delivery_id,
        result.status_code if result.status_code is not None else result.error,
        "" if ours else " (superseded)",
    )


def deliver_due(
    uow: UnitOfWork,
    sender: WebhookSender,
    clock: Clock,
    limit: int = 100,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Try up to `limit` due deliveries, one at a time; returns how many were tried."""
    tried = 0
    while tried < limit:
        claim = _claim(uow, clock)
        if claim is None:
            break
        attempted_at = clock()
        result = sender.send(
            claim.url,
            claim.secret,
            event_type=claim.event_type,
            delivery_id=claim.delivery_id,
            body=claim.body,
            timestamp=int(attempted_at.timestamp()),
        )
        _record(uow, claim, result, attempted_at, clock=clock, max_attempts=max_attempts)
        tried += 1
    return tried
