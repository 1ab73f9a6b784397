"""The audit trail: who changed what, when, from which value to which."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from recaudo.adapters.db.tables import AuditEvent
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.context import Actor, Clock


def jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Make before/after snapshots JSON-safe: Decimals and dates as strings."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Decimal | date | datetime):
            out[key] = value.isoformat() if not isinstance(value, Decimal) else str(value)
        elif isinstance(value, Enum):
            out[key] = value.value
        else:
            out[key] = value
    return out


def record(
    uow: UnitOfWork,
    *,
    actor: Actor,
    clock: Clock,
    company_id: int | None,
    action: str,
    entity_type: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        company_id=company_id,
        occurred_at=clock(),
        actor=actor.label,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=jsonable(before),
        after=jsonable(after),
    )
    uow.session.add(event)
    return event
