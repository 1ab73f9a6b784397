"""Following accepted plans: activation, fulfilment, breaking, reinstatement.

`review_negotiations` (the periodic job `negotiation-review`) looks at every accepted or
active plan with each company's local date: a plan becomes `active` with its first
payment, `fulfilled` when every new debt is paid, `broken` when one is more than the
company's `break_after_days` late. A broken plan brings back its condoned amounts as one
new debt (`NEG{id}-R`) as the company's `reinstate_on_break` says (`never`, `always`,
`proportional`; a PPPA condonation not yet earned always comes back). Unpaid
installments of a broken plan stay open: the customer still owes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from recaudo.adapters.db.tables import (
    Company,
    Debt,
    DebtComponent,
    Negotiation,
    NegotiationDebt,
    NegotiationInstallment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.debts import DebtStatus
from recaudo.domain.money import Money
from recaudo.domain.negotiation import (
    Concept,
    Condonation,
    InstallmentStatus,
    NegotiationState,
    breaking_installment,
    installments_paid_in_order,
    is_fulfilled,
    reinstatement,
    transition,
)
from recaudo.services import audit, outbox
from recaudo.services.balances import paid_of_debt
from recaudo.services.context import SYSTEM, Actor, Clock
from recaudo.services.debt_components import BALANCE
from recaudo.services.negotiation_settings import (
    SettingsView,
    local_today,
    settings_of,
)
from recaudo.services.negotiations import (
    FOLLOWED_STATES,
    NEGOTIATION_BROKEN,
    NEGOTIATION_FULFILLED,
    negotiation_document,
    new_debt,
)

# --- following the plan: the periodic review ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewReport:
    activated: int = 0
    fulfilled: int = 0
    broken: int = 0
    reinstated: int = 0  # broken plans whose condonation came back as a new debt

    def __add__(self, other: ReviewReport) -> ReviewReport:
        return ReviewReport(
            self.activated + other.activated,
            self.fulfilled + other.fulfilled,
            self.broken + other.broken,
            self.reinstated + other.reinstated,
        )

    @property
    def total(self) -> int:
        return self.activated + self.fulfilled + self.broken


def _statuses(uow: UnitOfWork, plans: Sequence[Negotiation]) -> dict[int, list[InstallmentStatus]]:
    """Where each plan's new debts stand, for a batch of plans in one statement."""
    ids = [n.id for n in plans]
    out: dict[int, list[InstallmentStatus]] = {i: [] for i in ids}
    if not ids:
        return out
    currency = {n.id: n.currency for n in plans}
    rows = uow.session.execute(
        select(
            NegotiationInstallment.negotiation_id,
            NegotiationInstallment.number,
            NegotiationInstallment.due_date,
            NegotiationInstallment.amount_minor,
            Debt.status,
            paid_of_debt(),
        )
        .join(Debt, Debt.id == NegotiationInstallment.debt_id)
        .where(NegotiationInstallment.negotiation_id.in_(ids))
        .order_by(NegotiationInstallment.negotiation_id, NegotiationInstallment.number)
    )
    for plan_id, number, due, amount_minor, status, paid in rows:
        done = amount_minor if status == DebtStatus.PAID.value else min(int(paid), amount_minor)
        cur = currency[plan_id]
        out[plan_id].append(
            InstallmentStatus(number, due, Money(amount_minor, cur), Money(done, cur))
        )
    return out


def _move(
    uow: UnitOfWork,
    n: Negotiation,
    target: NegotiationState,
    actor: Actor,
    clock: Clock,
    extra: Mapping[str, Any] | None = None,
) -> None:
    before = n.state
    n.state = transition(n.state, target).value
    now = clock()
    n.updated_at = now
    if target is NegotiationState.ACTIVE:
        n.activated_at = now
    if target in (NegotiationState.FULFILLED, NegotiationState.BROKEN):
        n.closed_at = now
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=n.company_id,
        action=f"negotiation.{target.value}",
        entity_type="negotiation",
        entity_id=n.id,
        before={"state": before},
        after={"state": n.state, **(extra or {})},
    )
    if target in (NegotiationState.FULFILLED, NegotiationState.BROKEN):
        uow.session.flush()
        event = (
            NEGOTIATION_FULFILLED if target is NegotiationState.FULFILLED else NEGOTIATION_BROKEN
        )
        outbox.add_event(uow, n.company_id, event, negotiation_document(uow, n), clock)


def _reinstate(
    uow: UnitOfWork,
    company: Company,
    n: Negotiation,
    statuses: Sequence[InstallmentStatus],
    policy: str,
    today: date,
    actor: Actor,
    clock: Clock,
) -> bool:
    originals = {
        d.external_id: d.id
        for d in uow.session.scalars(
            select(Debt)
            .join(NegotiationDebt, NegotiationDebt.debt_id == Debt.id)
            .where(NegotiationDebt.negotiation_id == n.id)
        )
    }
    condonations = [
        Condonation(
            originals[c["debt"]], Concept(c["concept"]), Money(c["amount_minor"], n.currency)
        )
        for c in n.offer["condonations"]
    ]
    if not condonations:
        return False
    scheduled = [s for s in statuses if s.number > 0]
    counted = scheduled or list(statuses)
    back = reinstatement(
        condonations,
        policy=policy,
        installments_total=len(counted),
        installments_paid=installments_paid_in_order(counted),
        condonation_at=n.offer.get("condonation_at"),
    )
    total = back.total(n.currency)
    if total.minor <= 0:
        return False
    now = clock()
    ref = f"NEG{n.id}-R"
    debt = new_debt(
        company,
        n.customer_id,
        ref,
        f"Negotiation {n.id} ({n.strategy}): condonation reinstated",
        total.minor,
        today,
        today,
        now,
    )
    uow.session.add(debt)
    uow.session.flush()
    by_concept: dict[Concept, int] = {}
    for c in back.condonations:
        by_concept[c.concept] = by_concept.get(c.concept, 0) + c.amount.minor
    for concept, minor in by_concept.items():
        uow.session.add(
            DebtComponent(
                company_id=company.id,
                debt_id=debt.id,
                concept=concept.value,
                kind=BALANCE,
                amount_minor=minor,
                negotiation_id=n.id,
                created_at=now,
            )
        )
    n.reinstated_debt_id = debt.id
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=company.id,
        action="debt.created",
        entity_type="debt",
        entity_id=debt.id,
        after={
            "debt_id": ref,
            "amount": total.amount,
            "due_date": today,
            "negotiation_id": n.id,
            "reason": "condonation reinstated",
            "policy": policy,
        },
    )
    return True


def review_negotiation(
    uow: UnitOfWork,
    company: Company,
    n: Negotiation,
    statuses: Sequence[InstallmentStatus],
    settings: SettingsView,
    *,
    today: date,
    actor: Actor,
    clock: Clock,
) -> ReviewReport:
    """One plan (locked by the caller, inside its unit of work): activate, fulfil, break."""
    activated = fulfilled = broken = reinstated = 0
    if n.state == NegotiationState.ACCEPTED.value and any(s.paid.minor > 0 for s in statuses):
        _move(uow, n, NegotiationState.ACTIVE, actor, clock)
        activated = 1
    if is_fulfilled(statuses):
        if n.state == NegotiationState.ACCEPTED.value:
            _move(uow, n, NegotiationState.ACTIVE, actor, clock)
            activated = 1
        _move(uow, n, NegotiationState.FULFILLED, actor, clock)
        return ReviewReport(activated, 1, 0, 0)
    late = breaking_installment(statuses, as_of=today, break_after_days=settings.break_after_days)
    if late is not None:
        days = (today - late.due_on).days
        n.break_reason = (
            f"installment {late.number} due {late.due_on.isoformat()} is {days} days late "
            f"(more than {settings.break_after_days})"
        )
        reinstated = int(
            _reinstate(uow, company, n, statuses, settings.reinstate_on_break, today, actor, clock)
        )
        _move(
            uow,
            n,
            NegotiationState.BROKEN,
            actor,
            clock,
            {"reason": n.break_reason, "reinstated": reinstated == 1},
        )
        broken = 1
    return ReviewReport(activated, fulfilled, broken, reinstated)


def review_negotiations(
    uow: UnitOfWork,
    *,
    clock: Clock,
    actor: Actor = SYSTEM,
    company_id: int | None = None,
    batch: int = 200,
) -> ReviewReport:
    """The periodic job: every accepted or active plan (of one company or all) reviewed,
    in batches of `batch` plans by id, each batch one transaction; safe to run twice (a
    plan moves once, under its lock; PostgreSQL skips plans another run holds)."""
    # A read-only look first, so that an idle run takes no write lock (SQLite).
    with UnitOfWork(uow.engine, write=False) as reader:
        stmt = select(Negotiation.company_id).where(Negotiation.state.in_(FOLLOWED_STATES))
        if company_id is not None:
            stmt = stmt.where(Negotiation.company_id == company_id)
        companies = sorted(set(reader.session.scalars(stmt.distinct())))
    report = ReviewReport()
    for cid in companies:
        after = 0
        while True:
            with uow:
                company = uow.session.get(Company, cid)
                if company is None:
                    break
                today = local_today(company, clock)
                settings = settings_of(uow, cid)
                due = (
                    select(Negotiation)
                    .where(
                        Negotiation.company_id == cid,
                        Negotiation.state.in_(FOLLOWED_STATES),
                        Negotiation.id > after,
                    )
                    .order_by(Negotiation.id)
                    .limit(batch)
                )
                if uow.dialect == "postgresql":
                    due = due.with_for_update(skip_locked=True)
                plans = list(uow.session.scalars(due))
                statuses = _statuses(uow, plans)
                for n in plans:
                    report = report + review_negotiation(
                        uow,
                        company,
                        n,
                        statuses[n.id],
                        settings,
                        today=today,
                        actor=actor,
                        clock=clock,
                    )
                uow.commit()
            if len(plans) < batch:
                break
            after = plans[-1].id
    return report
