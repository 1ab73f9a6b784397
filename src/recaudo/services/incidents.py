"""Company availability and incidents: every time a channel was told "not available"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from recaudo.adapters.db.tables import Company, Incident
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.services import audit, channel_cache
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

FIRST_PAGE = Paging()

UNAVAILABLE = "unavailable"
AGREEMENT_DISABLED = "agreement_disabled"
INTERNAL_ERROR = "internal_error"
PASSTHROUGH_DOWN = "passthrough_down"


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    occurred_at: datetime
    agreement_id: int | None
    kind: str
    cause: str


@dataclass(frozen=True, slots=True)
class Availability:
    available: bool
    reason: str | None


def record_incident(
    uow: UnitOfWork, company_id: int, agreement_id: int | None, kind: str, cause: str, clock: Clock
) -> None:
    """Record an incident in its own transaction (the failed one may have rolled back)."""
    with uow:
        uow.session.add(
            Incident(
                company_id=company_id,
                agreement_id=agreement_id,
                occurred_at=clock(),
                kind=kind,
                cause=cause[:2000],
            )
        )
        uow.commit()


def set_availability(
    uow: UnitOfWork,
    company_id: int,
    available: bool,
    reason: str | None,
    *,
    actor: Actor,
    clock: Clock,
) -> Availability:
    actor.require(Role.ADMIN, Role.OPERATOR)
    text = " ".join((reason or "").split()) or None
    if not available and text is None:
        raise ValidationFailed("marking a company unavailable needs a reason", field="reason")
    if text is not None and len(text) > 500:
        raise ValidationFailed("reason is longer than 500 characters", field="reason")
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None or not actor.can_see(company_id):
            raise NotFound(f"no company {company_id}")
        before = {"available": company.available, "reason": company.unavailable_reason}
        company.available = available
        company.unavailable_reason = None if available else text
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="company.availability_changed",
            entity_type="company",
            entity_id=company_id,
            before=before,
            after={"available": available, "reason": company.unavailable_reason},
        )
        uow.after_commit(channel_cache.bump)
        uow.commit()
        return Availability(company.available, company.unavailable_reason)


def get_availability(uow: UnitOfWork, company_id: int) -> Availability:
    company = uow.session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}")
    return Availability(company.available, company.unavailable_reason)


def list_incidents(
    uow: UnitOfWork, company_id: int, *, kind: str | None = None, paging: Paging = FIRST_PAGE
) -> Page[IncidentView]:
    stmt = select(Incident).where(Incident.company_id == company_id)
    if kind:
        stmt = stmt.where(Incident.kind == kind)
    total = _count(uow.session, stmt.with_only_columns(Incident.id))
    rows = uow.session.scalars(
        stmt.order_by(Incident.occurred_at.desc(), Incident.id.desc())
        .offset(paging.offset)
        .limit(paging.page_size)
    )
    items = [IncidentView(i.id, i.occurred_at, i.agreement_id, i.kind, i.cause) for i in rows]
    return Page(items, total, paging.page, paging.page_size)
