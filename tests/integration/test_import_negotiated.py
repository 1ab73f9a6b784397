"""A debts file in replace mode never cancels what a negotiation made (plan installments)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from recaudo.adapters.db.tables import Company, Debt
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services import negotiations as neg
from recaudo.services import policies
from recaudo.services.context import Actor
from recaudo.services.imports import ImportMode, import_debts
from recaudo.services.negotiations import NewNegotiation
from recaudo.services.policies import NewPolicy
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt


def test_replace_import_keeps_plan_installments(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    lucia = add_customer(uow, company_es, "12345678Z", "Lucía García", clock)
    add_debt(uow, company_es, lucia, "F-1", "300.00", date(2026, 1, 1), clock)
    add_debt(uow, company_es, lucia, "F-2", "40.00", date(2026, 4, 1), clock)
    policies.add_policy(
        uow,
        company_es.id,
        NewPolicy(
            "pppl",
            "PPPL",
            "days_past_due >= 30",
            "causalDeNoViabilidad",
            "30 days past due",
            parameters={"term": 3, "annual_rate": "0"},
        ),
        actor=admin,
        clock=clock,
    )
    proposal = neg.create_negotiation(
        uow, company_es.id, NewNegotiation(lucia.id, "PPPL", ("F-1",)), actor=admin, clock=clock
    )
    neg.accept_negotiation(uow, company_es.id, proposal.id, actor=admin, clock=clock)

    # The company's next daily file still lists its own debts only: F-1 (now replaced by
    # the plan) and F-2. The plan's installments are not in it.
    daily = tmp_path / "daily.csv"
    daily.write_text(
        "national_id,name,debt_id,amount,due_date\n"
        "12345678Z,Lucía García,F-1,300.00,2026-01-01\n"
        "12345678Z,Lucía García,F-2,40.00,2026-04-01\n",
        encoding="utf-8",
    )
    report = import_debts(
        uow, company_es.id, daily, mode=ImportMode.REPLACE, actor=admin, clock=clock
    )
    assert report.cancelled == 0
    with uow:
        rows = uow.session.execute(
            select(Debt.external_id, Debt.status, Debt.amount_minor).order_by(Debt.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("F-1", "replaced", 30000),
        ("F-2", "open", 4000),
        ("NEG1-001", "open", 10000),
        ("NEG1-002", "open", 10000),
        ("NEG1-003", "open", 10000),
    ]
