"""A debt's breakdown by concept, and what is still open of each concept.

`balance` rows say what a debt is made of (capital, current interest, late interest,
insurance, fees, other charges: `domain.negotiation.Concept`; the labels shown are the
company's); a debt without them is all capital. `written_off` rows are what a
negotiation condoned. What is OPEN of each concept is the breakdown less what payments
covered, imputed in the usual order: other charges, fees, insurance, late interest,
current interest, and capital last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy import delete, select

from recaudo.adapters.db.tables import Company, Debt, DebtComponent
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Concept, parse_concept
from recaudo.services import audit
from recaudo.services.context import Actor, Clock

BALANCE = "balance"
WRITTEN_OFF = "written_off"

# Payments cover these first; capital last.
IMPUTATION_ORDER: tuple[Concept, ...] = (
    Concept.OTHER_CHARGES,
    Concept.FEES,
    Concept.INSURANCE,
    Concept.LATE_INTEREST,
    Concept.CURRENT_INTEREST,
    Concept.CAPITAL,
)


def breakdowns(uow: UnitOfWork, debt_ids: Iterable[int]) -> dict[int, dict[Concept, int]]:
    """The `balance` rows of each debt (minor units by concept); debts without rows absent."""
    ids = list(debt_ids)
    out: dict[int, dict[Concept, int]] = {}
    if not ids:
        return out
    rows = uow.session.execute(
        select(DebtComponent.debt_id, DebtComponent.concept, DebtComponent.amount_minor)
        .where(DebtComponent.debt_id.in_(ids), DebtComponent.kind == BALANCE)
        .order_by(DebtComponent.id)
    )
    for debt_id, concept, amount in rows:
        by = out.setdefault(debt_id, {})
        key = Concept(concept)
        by[key] = by.get(key, 0) + amount
    return out


def open_components(
    amount_minor: int, paid_minor: int, breakdown: Mapping[Concept, int] | None
) -> dict[Concept, int]:
    """What is open of each concept once `paid_minor` is imputed (see IMPUTATION_ORDER)."""
    parts = dict(breakdown) if breakdown else {Concept.CAPITAL: amount_minor}
    left = max(0, paid_minor)
    for concept in IMPUTATION_ORDER:
        if concept in parts and left:
            taken = min(parts[concept], left)
            parts[concept] -= taken
            left -= taken
    return {c: v for c, v in parts.items() if v > 0}


def set_components(
    uow: UnitOfWork,
    company_id: int,
    debt_ref: str,
    components: Mapping[str, Decimal | str | int],
    *,
    actor: Actor,
    clock: Clock,
) -> dict[str, Decimal]:
    """Replace a debt's breakdown; the amounts must add up to the debt's amount exactly."""
    actor.require_write()
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    if not components:
        raise ValidationFailed("give at least one concept", field="components")
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        debt = uow.session.scalar(
            select(Debt)
            .where(Debt.company_id == company_id, Debt.external_id == debt_ref)
            .with_for_update()
        )
        if debt is None:
            raise NotFound(f"no debt {debt_ref!r}", field="debt")
        if debt.status not in ("open", "in_payment"):
            raise Conflict(f"debt {debt_ref!r} is {debt.status}: its breakdown is history")
        parsed: dict[Concept, int] = {}
        for key, raw in components.items():
            concept = parse_concept(key)
            minor = money.to_minor(money.parse_amount(raw, debt.currency), debt.currency)
            parsed[concept] = parsed.get(concept, 0) + minor
        total = sum(parsed.values())
        if total != debt.amount_minor:
            raise ValidationFailed(
                f"the concepts add up to {money.from_minor(total, debt.currency)}, the debt is "
                f"{money.from_minor(debt.amount_minor, debt.currency)}",
                field="components",
            )
        before = {
            c.value: str(Money(v, debt.currency).amount)
            for c, v in breakdowns(uow, [debt.id]).get(debt.id, {}).items()
        }
        uow.session.execute(
            delete(DebtComponent).where(
                DebtComponent.debt_id == debt.id, DebtComponent.kind == BALANCE
            )
        )
        now = clock()
        for concept, minor in parsed.items():
            if minor:
                uow.session.add(
                    DebtComponent(
                        company_id=company_id,
                        debt_id=debt.id,
                        concept=concept.value,
                        kind=BALANCE,
                        amount_minor=minor,
                        created_at=now,
                    )
                )
        after = {c.value: str(Money(v, debt.currency).amount) for c, v in parsed.items() if v}
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="debt.components_set",
            entity_type="debt",
            entity_id=debt.id,
            before=before or None,
            after=after,
        )
        uow.commit()
        return {k: Decimal(v) for k, v in after.items()}
