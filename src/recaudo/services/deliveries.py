"""Delivery targets of a company and the delivery of stored files to them.

A target is an SFTP directory, a mailbox (SMTP) or a local directory. Files (settlement
files, file-exchange outbox files) are queued as `Delivery` rows and sent by
`deliver_due` the way webhook deliveries are (see `services.webhooks`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from recaudo.adapters.db.tables import Delivery, DeliveryTarget, SettlementFile
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import NotFound
from recaudo.services import audit
from recaudo.services.context import Actor, Clock

logger = logging.getLogger("recaudo.deliveries")

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def _new_delivery(
    uow: UnitOfWork,
    *,
    company_id: int,
    target_id: int,
    file_name: str,
    storage_path: str,
    actor: Actor,
    clock: Clock,
    settlement_file_id: int | None = None,
    exchange_file_id: int | None = None,
) -> Delivery:
    now = clock()
    delivery = Delivery(
        company_id=company_id,
        target_id=target_id,
        settlement_file_id=settlement_file_id,
        exchange_file_id=exchange_file_id,
        file_name=file_name,
        storage_path=storage_path,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        requested_by=actor.label,
        created_at=now,
    )
    uow.session.add(delivery)
    uow.session.flush()
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=company_id,
        action="delivery.enqueued",
        entity_type="delivery",
        entity_id=delivery.id,
        after={"target_id": target_id, "file_name": file_name},
    )
    return delivery


def enqueue_settlement_file(
    uow: UnitOfWork, settlement_file: SettlementFile, *, actor: Actor, clock: Clock
) -> list[Delivery]:
    """Queue one pending delivery of `settlement_file` per enabled target of its agreement.

    Runs inside the caller's open unit of work and does not commit: the deliveries exist
    only if the settlement file does.
    """
    targets = uow.session.scalars(
        select(DeliveryTarget)
        .where(
            DeliveryTarget.company_id == settlement_file.company_id,
            DeliveryTarget.agreement_id == settlement_file.agreement_id,
            DeliveryTarget.enabled.is_(True),
        )
        .order_by(DeliveryTarget.id)
    ).all()
    return [
        _new_delivery(
            uow,
            company_id=settlement_file.company_id,
            target_id=target.id,
            file_name=settlement_file.file_name,
            storage_path=settlement_file.storage_path,
            actor=actor,
            clock=clock,
            settlement_file_id=settlement_file.id,
        )
        for target in targets
    ]


def enqueue_file(
    uow: UnitOfWork,
    *,
    company_id: int,
    target_id: int,
    file_name: str,
    storage_path: str,
    actor: Actor,
    clock: Clock,
    exchange_file_id: int | None = None,
) -> Delivery:
    """Queue one pending delivery of a stored file (`storage_path`, relative to the data
    directory) to one of the company's targets. Inside the caller's unit of work, no commit.
    """
    target = uow.session.get(DeliveryTarget, target_id)
    if target is None or target.company_id != company_id:
        raise NotFound(f"no delivery target {target_id}")
    return _new_delivery(
        uow,
        company_id=company_id,
        target_id=target_id,
        file_name=file_name,
        storage_path=storage_path,
        actor=actor,
        clock=clock,
        exchange_file_id=exchange_file_id,
    )
