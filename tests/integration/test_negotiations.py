"""Negotiations on both backends: accept replaces debts by installments, commitments,
activation, fulfilment, breaking and reinstatement of condoned amounts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from recaudo.adapters.db.tables import (
    AuditEvent,
    Company,
    Customer,
    Debt,
    DebtComponent,
    Negotiation,
    NegotiationInstallment,
    OutboxEvent,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.cli import app
from recaudo.config import Settings
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.jobs import negotiations as negotiation_job
from recaudo.jobs.schedule import PERIODIC_JOBS
from recaudo.services import debt_components, policies
from recaudo.services import negotiation_review as review
from recaudo.services import negotiations as neg
from recaudo.services.context import Actor, Role
from recaudo.services.negotiations import CommitmentSpec, NewNegotiation, PlanDebt
from recaudo.services.payments import ApplyPayment, apply_payment
from recaudo.services.policies import NewPolicy
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

OPERATOR = Actor("test:operator", Role.OPERATOR)
E = Decimal


@pytest.fixture
def customer_id(uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock) -> int:
    """A Spanish customer with one debt of 1200.00 EUR due 2026-01-01 (60 days late on the
    clock's 2026-03-02), made of 1000.00 capital, 150.00 current and 50.00 late interest;
    and the policies: PPPA (late interest condoned at installment 2) and CNTL."""
    customer = add_customer(uow, company_es, "12345678Z", "Lucía García", clock)
    add_debt(uow, company_es, customer, "F-1", "1200.00", date(2026, 1, 1), clock)
    debt_components.set_components(
        uow,
        company_es.id,
        "F-1",
        {"capital": "1000.00", "current_interest": "150.00", "late_interest": "50.00"},
        actor=admin,
        clock=clock,
    )
    for new in (
        NewPolicy(
            "pppa",
            "PPPA",
            "days_past_due >= 30 and term <= 12",
            "causalDeNoViabilidadPuestaAlDia2",
            "30 days past due and 12 installments at most",
            parameters={
                "term": 3,
                "annual_rate": "0",
                "down_payment": "150.00",
                "condonation": {"late_interest": "100"},
                "condonation_at": 2,
            },
        ),
        NewPolicy(
            "cntl",
            "CNTL",
            "days_past_due >= 30",
            "causalDeNoViabilidadHerremienta1",
            "30 days past due",
            parameters={"condonation": {"late_interest": "50", "current_interest": "10"}},
        ),
    ):
        policies.add_policy(uow, company_es.id, new, actor=admin, clock=clock)
    return customer.id


def _debts(uow: UnitOfWork) -> list[tuple[str, str, str, date]]:
    with uow:
        rows = uow.session.scalars(select(Debt).order_by(Debt.id)).all()
        return [(d.external_id, str(E(d.amount_minor) / 100), d.status, d.due_date) for d in rows]


def _components(uow: UnitOfWork) -> list[tuple[str, str, str, int]]:
    with uow:
        rows = uow.session.execute(
            select(
                Debt.external_id,
                DebtComponent.concept,
                DebtComponent.kind,
                DebtComponent.amount_minor,
            )
            .join(Debt, Debt.id == DebtComponent.debt_id)
            .order_by(DebtComponent.id)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _pay(
    uow: UnitOfWork, company: Company, customer_id: int, ref: str, amount: str, clock: FrozenClock
) -> None:
    apply_payment(
        uow,
        ApplyPayment(
            company.id, customer_id, amount, PaymentMethod.CASH, f"pay-{ref}", debts=(ref,)
        ),
        actor=OPERATOR,
        clock=clock,
    )


def test_accept_replaces_the_debt_by_the_plan_to_the_cent(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    proposal = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPA", ("F-1",), adviser="ana.g", office="9999"),
        actor=OPERATOR,
        clock=clock,
    )
    # 1200.00 - 50.00 condoned - 150.00 today = 1000.00 over 3 at 0 %: 333.33, 333.33, 333.34
    assert (proposal.state, proposal.negotiated, proposal.payment_today) == (
        "proposed",
        E("1200.00"),
        E("150.00"),
    )
    assert (proposal.installments_total, proposal.condoned) == (E("1000.00"), E("50.00"))
    assert proposal.condoned_by_concept == {"late_interest": E("50.00")}
    assert proposal.mark_start == date(2026, 3, 2) and proposal.mark_end == date(2026, 6, 2)
    assert [(c.position, c.kind, c.due_date, c.amount) for c in proposal.commitments] == [
        (1, "P", date(2026, 3, 2), E("150.00")),
        (2, "P", date(2026, 4, 2), E("333.33")),
        (3, "P", date(2026, 5, 2), E("333.33")),
        (4, "T", date(2026, 6, 2), E("333.34")),
    ]
    assert _debts(uow) == [("F-1", "1200", "open", date(2026, 1, 1))]  # nothing moves yet

    accepted = neg.accept_negotiation(uow, company_es.id, proposal.id, actor=OPERATOR, clock=clock)
    assert accepted.state == "accepted"
    assert accepted.plan == (
        PlanDebt(
            0, "NEG1-000", date(2026, 3, 2), E("150.00"), E("150.00"), E("0.00"), E("0.00"), "open"
        ),
        PlanDebt(
            1, "NEG1-001", date(2026, 4, 2), E("333.33"), E("333.33"), E("0.00"), E("0.00"), "open"
        ),
        PlanDebt(
            2, "NEG1-002", date(2026, 5, 2), E("333.33"), E("333.33"), E("0.00"), E("0.00"), "open"
        ),
        PlanDebt(
            3, "NEG1-003", date(2026, 6, 2), E("333.34"), E("333.34"), E("0.00"), E("0.00"), "open"
        ),
    )
    assert [(d.debt, d.status, d.days_past_due) for d in accepted.debts] == [
        ("F-1", "replaced", 60)
    ]
    assert _debts(uow) == [
        ("F-1", "1200", "replaced", date(2026, 1, 1)),
        ("NEG1-000", "150", "open", date(2026, 3, 2)),
        ("NEG1-001", "333.33", "open", date(2026, 4, 2)),
        ("NEG1-002", "333.33", "open", date(2026, 5, 2)),
        ("NEG1-003", "333.34", "open", date(2026, 6, 2)),
    ]
    assert _components(uow)[3:5] == [
        ("F-1", "late_interest", "written_off", 5000),
        ("NEG1-000", "capital", "balance", 15000),
    ]
    # new debts + written off = the original, to the cent
    with uow:
        new_total = sum(
            uow.session.scalars(select(Debt.amount_minor).where(Debt.external_id.like("NEG1-%")))
        )
    assert new_total + 5000 == 120000
    with uow:
        (event,) = uow.session.scalars(select(OutboxEvent)).all()
        assert (event.event_type, event.payload) == (
            "negotiation.accepted",
            {
                "negotiation_id": 1,
                "company": "ong",
                "customer": {
                    "id_type": "NIF",
                    "national_id": "12345678Z",
                    "national_id_formatted": "12345678Z",
                    "name": "Lucía García",
                },
                "strategy": "PPPA",
                "state": "accepted",
                "currency": "EUR",
                "replaced": ["F-1"],
                "plan": [
                    {
                        "debt_id": "NEG1-000",
                        "number": 0,
                        "due_date": "2026-03-02",
                        "amount": "150.00",
                        "status": "open",
                    },
                    {
                        "debt_id": "NEG1-001",
                        "number": 1,
                        "due_date": "2026-04-02",
                        "amount": "333.33",
                        "status": "open",
                    },
                    {
                        "debt_id": "NEG1-002",
                        "number": 2,
                        "due_date": "2026-05-02",
                        "amount": "333.33",
                        "status": "open",
                    },
                    {
                        "debt_id": "NEG1-003",
                        "number": 3,
                        "due_date": "2026-06-02",
                        "amount": "333.34",
                        "status": "open",
                    },
                ],
                "condoned": {"late_interest": "50.00"},
                "break_reason": None,
                "reinstated": None,
            },
        )
    with pytest.raises(Conflict, match="a accepted negotiation cannot become accepted"):
        neg.accept_negotiation(uow, company_es.id, proposal.id, actor=OPERATOR, clock=clock)
    with uow:
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.company_id == company_es.id)
            .order_by(AuditEvent.id)
        ).all()
    assert actions[-6:] == [
        "debt.status_changed",
        "debt.created",
        "debt.created",
        "debt.created",
        "debt.created",
        "negotiation.accepted",
    ]


def test_commitments_follow_the_p_then_t_rule(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    def create(*kinds: str) -> neg.NegotiationView:
        specs = tuple(CommitmentSpec(k, "100.00", date(2026, 3, 10)) for k in kinds)
        return neg.create_negotiation(
            uow,
            company_es.id,
            NewNegotiation(customer_id, "CNTL", ("F-1",), commitments=specs),
            actor=OPERATOR,
            clock=clock,
        )

    for kinds, message in [
        (
            ("P", "P"),
            "the last commitment (2 of 2) is partial ('P'): a negotiation must end with exactly "
            "one total ('T') commitment",
        ),
        (
            ("T", "P", "T"),
            "commitment 1 of 3 is total ('T'): only the last commitment may be total, the ones "
            "before it must be partial ('P')",
        ),
        (("P", "X"), "commitment 2 has type 'X': it must be 'P' (partial) or 'T' (total)"),
    ]:
        with pytest.raises(ValidationFailed) as info:
            create(*kinds)
        assert info.value.message == message
    with uow:
        assert uow.session.scalars(select(Negotiation)).all() == []
    view = create("p", "P", "T")
    assert [c.kind for c in view.commitments] == ["P", "P", "T"]
    # The debt is now in an open negotiation: another one is refused.
    with pytest.raises(Conflict, match="debt 'F-1' is already in negotiation 1"):
        create("T")


def test_create_is_idempotent_on_its_key(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    new = NewNegotiation(customer_id, "CNTL", ("F-1",), external_id="req-1")
    first = neg.create_negotiation(uow, company_es.id, new, actor=OPERATOR, clock=clock)
    again = neg.create_negotiation(uow, company_es.id, new, actor=OPERATOR, clock=clock)
    assert again == first
    # CNTL: 1200.00 less 50 % of 50.00 and 10 % of 150.00 = 1200.00 - 25.00 - 15.00
    assert (first.payment_today, first.condoned) == (E("1160.00"), E("40.00"))
    with pytest.raises(Conflict, match="already used"):
        neg.create_negotiation(
            uow,
            company_es.id,
            NewNegotiation(customer_id, "PPPA", ("F-1",), external_id="req-1"),
            actor=OPERATOR,
            clock=clock,
        )


def test_plan_activates_on_first_payment_and_is_fulfilled(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPA", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport()
    _pay(uow, company_es, customer_id, "NEG1-000", "150.00", clock)
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(activated=1)
    assert neg.get_negotiation(uow, company_es.id, n.id, actor=OPERATOR).state == "active"
    for ref, amount in (("NEG1-001", "333.33"), ("NEG1-002", "333.33"), ("NEG1-003", "333.34")):
        _pay(uow, company_es, customer_id, ref, amount, clock)
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(fulfilled=1)
    view = neg.get_negotiation(uow, company_es.id, n.id, actor=OPERATOR)
    assert view.state == "fulfilled" and view.closed_at is not None
    assert [p.status for p in view.plan] == ["paid"] * 4
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport()


def test_break_reinstates_condonation_not_yet_earned(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPA", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    _pay(uow, company_es, customer_id, "NEG1-000", "150.00", clock)
    # Installment 1 is due 2026-04-02; on 2026-05-02 it is 30 days late: the plan holds.
    clock.advance(days=61)
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(activated=1)
    clock.advance(days=1)  # 2026-05-03: 31 days late, more than 30
    report = negotiation_job.run_review(uow, clock)
    assert report == review.ReviewReport(broken=1, reinstated=1)
    view = neg.get_negotiation(uow, company_es.id, n.id, actor=OPERATOR)
    assert view.state == "broken"
    assert view.break_reason == "installment 1 due 2026-04-02 is 31 days late (more than 30)"
    assert view.reinstated_debt == "NEG1-R"
    with uow:
        event = uow.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
        assert event is not None and event.event_type == "negotiation.broken"
        assert (event.payload["state"], event.payload["break_reason"]) == (
            "broken",
            "installment 1 due 2026-04-02 is 31 days late (more than 30)",
        )
        assert event.payload["reinstated"] == {
            "debt_id": "NEG1-R",
            "amount": "50.00",
            "due_date": "2026-05-03",
        }
    # PPPA condones late interest only when installment 2 is paid: all of it comes back.
    assert _debts(uow)[-1] == ("NEG1-R", "50", "open", date(2026, 5, 3))
    assert _components(uow)[-1] == ("NEG1-R", "late_interest", "balance", 5000)
    # The unpaid installments stay owed.
    assert [d[2] for d in _debts(uow)[1:5]] == ["paid", "open", "open", "open"]
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport()


def test_break_without_reinstatement_by_policy(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock, customer_id: int
) -> None:
    neg.update_settings(
        uow,
        company_es.id,
        neg.SettingsChanges(break_after_days=10, reinstate_on_break="never"),
        actor=admin,
        clock=clock,
    )
    with pytest.raises(Exception, match="needs admin"):
        neg.update_settings(
            uow, company_es.id, neg.SettingsChanges(break_after_days=1), actor=OPERATOR, clock=clock
        )
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "CNTL", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    clock.advance(days=11)  # the payment today (2026-03-02) is 11 days late
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(broken=1)
    view = neg.get_negotiation(uow, company_es.id, n.id, actor=OPERATOR)
    assert (view.state, view.reinstated_debt) == ("broken", None)
    assert [d[0] for d in _debts(uow)] == ["F-1", "NEG1-000"]


def test_accept_refuses_a_debt_that_changed(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPA", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    _pay(uow, company_es, customer_id, "F-1", "10.00", clock)
    with pytest.raises(Conflict) as info:
        neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    assert info.value.message == (
        "debt 'F-1' changed since the proposal (it is open, 1190.00 open): propose again"
    )
    assert _debts(uow)[0][2] == "open"
    assert neg.get_negotiation(uow, company_es.id, n.id, actor=OPERATOR).state == "proposed"


def test_cli_policy_and_negotiation_commands(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    """The commands run on the real clock: the debt is 60 days late today."""
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_DATA_DIR": str(tmp_path), "COLUMNS": "240"}

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    customer = add_customer(uow, company, "123456785", "Ana Pérez", clock)
    add_debt(uow, company, customer, "L-1", "90000", date.today() - timedelta(days=60), clock)
    code, output = run(
        "policy",
        "add",
        "--company",
        "acme",
        "--name",
        "plan",
        "--strategy",
        "PPPL",
        "--rule",
        "days_past_due >= 30 and term <= 6",
        "--cause",
        "causa1",
        "--message",
        "6 installments at most",
        "--param",
        "term=3",
        "--param",
        "annual_rate=0",
    )
    assert (code, output) == (0, "policy 1 (plan) for PPPL: days_past_due >= 30 and term <= 6\n")
    code, output = run(
        "policy",
        "add",
        "--company",
        "acme",
        "--name",
        "evil",
        "--strategy",
        "CNTL",
        "--rule",
        "foo.__class__",
        "--cause",
        "x",
        "--message",
        "x",
    )
    assert code == 2 and "may not name 'foo'" in output
    code, output = run("policy", "list", "--company", "acme")
    assert code == 0 and "days_past_due >= 30 and term <= 6" in output
    code, output = run(
        "negotiation",
        "simulate",
        "--company",
        "acme",
        "--customer",
        "12.345.678-5",
        "--param",
        "PPPL.term=12",
    )
    assert code == 0, output
    assert "6 installments at most" in output and "| no " in output.replace("│", "|")
    code, output = run(
        "negotiation",
        "create",
        "--company",
        "acme",
        "--customer",
        "12.345.678-5",
        "--strategy",
        "PPPL",
        "--debt",
        "L-1",
        "--commitment",
        "P:30000",
        "--commitment",
        "P:60000",
    )
    assert code == 2
    assert "the last commitment (2 of 2) is partial ('P')" in " ".join(output.split())
    code, output = run(
        "negotiation",
        "create",
        "--company",
        "acme",
        "--customer",
        "12.345.678-5",
        "--strategy",
        "PPPL",
        "--debt",
        "L-1",
    )
    assert code == 0, output
    assert output.splitlines()[0] == "negotiation 1: PPPL (Plan de pagos a plazo), proposed"
    code, output = run("negotiation", "accept", "--company", "acme", "1")
    assert code == 0, output
    assert output.splitlines()[0] == "negotiation 1: PPPL (Plan de pagos a plazo), accepted"
    assert "NEG1-001" in output and "30000" in output
    code, output = run("negotiation", "list", "--company", "acme", "--state", "accepted")
    assert code == 0 and "PPPL" in output
    code, output = run("negotiation", "show", "--company", "acme", "2")
    assert (code, output.strip()) == (1, "Error: no negotiation 2")
    code, output = run("negotiation", "review")
    assert (code, output) == (
        0,
        "activated 0, fulfilled 0, broken 0 (condonation reinstated in 0)\n",
    )
    code, output = run(
        "negotiation",
        "settings",
        "--company",
        "acme",
        "--break-after-days",
        "45",
        "--reinstate",
        "proportional",
        "--label",
        "late_interest=Mora",
    )
    assert code == 0, output
    assert output.splitlines()[:3] == [
        "break after days:    45",
        "reinstate on break:  proportional",
        "capacity ratio:      0.30",
    ]
    assert "label late_interest:     Mora" in output
    code, output = run("negotiation", "settings", "--company", "acme", "--reinstate", "maybe")
    assert code == 2 and "reinstate_on_break must be one of never, always, proportional" in output
    code, output = run("policy", "disable", "--company", "acme", "1")
    assert (code, output) == (0, "policy 1 (plan) disabled\n")


def test_bring_current_keeps_the_debts_not_yet_due(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock, customer_id: int
) -> None:
    with uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        uow.session.expunge(customer)
    add_debt(uow, company_es, customer, "F-2", "80.00", date(2026, 3, 20), clock)
    policies.add_policy(
        uow,
        company_es.id,
        NewPolicy("pdia", "PDIA", "customer_days_past_due >= 30", "c", "m"),
        actor=admin,
        clock=clock,
    )
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PDIA", ("F-1", "F-2")),
        actor=OPERATOR,
        clock=clock,
    )
    assert (n.negotiated, n.payment_today, n.installments_total) == (
        E("1280.00"),
        E("1200.00"),
        E("0.00"),
    )
    accepted = neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    assert [(d.debt, d.status) for d in accepted.debts] == [("F-1", "replaced"), ("F-2", "open")]
    assert [(p.debt, p.amount, p.due_date) for p in accepted.plan] == [
        ("NEG1-000", E("1200.00"), date(2026, 3, 2))
    ]
    assert [c.kind for c in accepted.commitments] == ["T"]


def test_proportional_reinstatement_and_the_acceptance_window(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock, customer_id: int
) -> None:
    neg.update_settings(
        uow,
        company_es.id,
        neg.SettingsChanges(reinstate_on_break="proportional"),
        actor=admin,
        clock=clock,
    )
    policies.add_policy(
        uow,
        company_es.id,
        NewPolicy(
            "ppps",
            "PPPS",
            "days_past_due >= 30",
            "c",
            "m",
            parameters={"term": 4, "annual_rate": "0", "condonation": {"current_interest": "20"}},
        ),
        actor=admin,
        clock=clock,
    )
    stale = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPS", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    clock.advance(days=8)  # 2026-03-10: more than a week after the proposal
    with pytest.raises(Conflict) as info:
        neg.accept_negotiation(uow, company_es.id, stale.id, actor=OPERATOR, clock=clock)
    assert info.value.message == (
        "the proposal of 2026-03-02 can no longer be accepted (more than 7 days): "
        "simulate and propose again"
    )
    # 1200.00 - 30.00 condoned (20 % of 150.00) = 1170.00 over 4 from 2026-04-10: 292.50 each
    with uow:
        uow.session.get(Negotiation, stale.id).state = "broken"  # type: ignore[union-attr]
        uow.commit()
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, "PPPS", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    accepted = neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    assert [(p.debt, p.amount, p.due_date) for p in accepted.plan] == [
        ("NEG2-001", E("292.50"), date(2026, 4, 10)),
        ("NEG2-002", E("292.50"), date(2026, 5, 10)),
        ("NEG2-003", E("292.50"), date(2026, 6, 10)),
        ("NEG2-004", E("292.50"), date(2026, 7, 10)),
    ]
    _pay(uow, company_es, customer_id, "NEG2-001", "292.50", clock)
    clock.advance(days=62)  # 2026-05-11 local: installment 2 is 1 day late, the plan is active
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(activated=1)
    clock.advance(days=30)  # 2026-06-10: installment 2 is 31 days late
    assert review.review_negotiations(uow, clock=clock) == review.ReviewReport(
        broken=1, reinstated=1
    )
    # 3 of 4 installments unpaid: 30.00 x 3/4 = 22.50 of current interest comes back.
    assert _debts(uow)[-1] == ("NEG2-R", "22.5", "open", date(2026, 6, 10))
    assert _components(uow)[-1] == ("NEG2-R", "current_interest", "balance", 2250)


def test_review_goes_through_every_plan_in_batches(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    other = add_customer(uow, company_es, "X1234567L", "Marta Ruiz", clock)
    add_debt(uow, company_es, other, "F-9", "1200.00", date(2026, 1, 1), clock)
    for cid, ref in ((customer_id, "F-1"), (other.id, "F-9")):
        n = neg.create_negotiation(
            uow, company_es.id, NewNegotiation(cid, "PPPA", (ref,)), actor=OPERATOR, clock=clock
        )
        neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
        _pay(uow, company_es, cid, f"NEG{n.id}-000", "150.00", clock)
    assert review.review_negotiations(uow, clock=clock, batch=1) == review.ReviewReport(activated=2)
    # F-9 had no breakdown: all capital, nothing condoned; 1050.00 over 3 = 350.00 each.
    plan = neg.get_negotiation(uow, company_es.id, 2, actor=OPERATOR).plan
    assert [(p.debt, p.amount, p.status) for p in plan] == [
        ("NEG2-000", E("150.00"), "paid"),
        ("NEG2-001", E("350.00"), "open"),
        ("NEG2-002", E("350.00"), "open"),
        ("NEG2-003", E("350.00"), "open"),
    ]


def test_a_debt_in_payment_or_settled_is_not_negotiated(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, customer_id: int
) -> None:
    with uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        uow.session.expunge(customer)
    add_debt(
        uow, company_es, customer, "F-3", "10.00", date(2026, 1, 1), clock, status="in_payment"
    )
    add_debt(uow, company_es, customer, "F-4", "10.00", date(2026, 1, 1), clock, status="paid")
    for ref, message in (
        ("F-3", "debt 'F-3' is in payment: wait for the channel's outcome"),
        ("F-4", "debt 'F-4' is paid: it cannot be negotiated"),
        ("F-5", None),
    ):
        new = NewNegotiation(customer_id, "CNTL", (ref,))
        if message is None:
            with pytest.raises(NotFound, match="no debt 'F-5' of customer"):
                neg.create_negotiation(uow, company_es.id, new, actor=OPERATOR, clock=clock)
            continue
        with pytest.raises(Conflict) as info:
            neg.create_negotiation(uow, company_es.id, new, actor=OPERATOR, clock=clock)
        assert info.value.message == message


def _race(n: int, work: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results.append(work(i))
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_concurrent_proposals_and_acceptances_happen_once(
    engine: Engine, company_es: Company, customer_id: int
) -> None:
    # Four requests with one key: one proposal, the others answer it.
    new = NewNegotiation(customer_id, "PPPA", ("F-1",), external_id="same")
    made, errors = _race(
        4,
        lambda i: (
            neg.create_negotiation(
                UnitOfWork(engine), company_es.id, new, actor=OPERATOR, clock=FrozenClock()
            ).id
        ),
    )
    assert (made, errors) == ([1, 1, 1, 1], [])
    # Four acceptances of it: one wins, the others are told it is accepted already.
    accepted, errors = _race(
        4,
        lambda i: (
            neg.accept_negotiation(
                UnitOfWork(engine), company_es.id, 1, actor=OPERATOR, clock=FrozenClock()
            ).state
        ),
    )
    assert accepted == ["accepted"]
    assert sorted(type(e).__name__ for e in errors) == ["Conflict"] * 3
    assert [d[0] for d in _debts(UnitOfWork(engine))] == [
        "F-1",
        "NEG1-000",
        "NEG1-001",
        "NEG1-002",
        "NEG1-003",
    ]


def test_the_review_is_a_periodic_job(
    engine: Engine, company_es: Company, clock: FrozenClock, customer_id: int, tmp_path: Path
) -> None:
    assert negotiation_job.NEGOTIATION_REVIEW_JOB in PERIODIC_JOBS
    assert negotiation_job.NEGOTIATION_REVIEW_JOB.every_s == 900
    n = neg.create_negotiation(
        UnitOfWork(engine),
        company_es.id,
        NewNegotiation(customer_id, "CNTL", ("F-1",)),
        actor=OPERATOR,
        clock=clock,
    )
    neg.accept_negotiation(UnitOfWork(engine), company_es.id, n.id, actor=OPERATOR, clock=clock)
    container = Container(
        settings=Settings(database_url=str(engine.url), data_dir=tmp_path),
        engine=engine,
        clock=clock,
    )
    assert negotiation_job.NEGOTIATION_REVIEW_JOB.run(container) == 0
    clock.advance(days=31)
    assert negotiation_job.NEGOTIATION_REVIEW_JOB.run(container) == 1
    with UnitOfWork(engine) as uow:
        row = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "negotiation.broken")
        ).one()
        assert row.actor == "job:negotiations"


@pytest.mark.parametrize(
    ("strategy", "parameters"),
    [
        ("PPPL", {"term": 7, "annual_rate": "23.99", "down_payment": "99.99"}),
        ("PPPL", {"term": 13, "annual_rate": "18", "grace_months": 2}),
        (
            "PPPA",
            {
                "term": 5,
                "annual_rate": "12.5",
                "condonation": {"late_interest": "33.33"},
                "condonation_at": 3,
            },
        ),
        (
            "PPPS",
            {
                "term": 11,
                "annual_rate": "9.75",
                "dead_months": 1,
                "condonation": {"current_interest": "17", "capital": "3.5"},
            },
        ),
        ("CNTL", {"condonation": {"late_interest": "100", "current_interest": "66.67"}}),
    ],
)
def test_accepted_money_adds_up_to_the_cent(
    uow: UnitOfWork,
    company_es: Company,
    admin: Actor,
    clock: FrozenClock,
    customer_id: int,
    strategy: str,
    parameters: dict[str, object],
) -> None:
    """Whatever the plan, to the cent: payment today + financed + condoned is what the
    replaced debt owed; the plan's principal parts are the financed amount plus interest
    capitalised in dead months; each new debt is its principal plus its interest; what is
    written off is what was condoned."""
    if strategy not in ("PPPA", "CNTL"):  # the fixture has policies for those two
        policies.add_policy(
            uow,
            company_es.id,
            NewPolicy(f"any {strategy}", strategy, "balance > 0", "c", "m"),
            actor=admin,
            clock=clock,
        )
    n = neg.create_negotiation(
        uow,
        company_es.id,
        NewNegotiation(customer_id, strategy, ("F-1",), parameters=parameters),
        actor=OPERATOR,
        clock=clock,
    )
    neg.accept_negotiation(uow, company_es.id, n.id, actor=OPERATOR, clock=clock)
    with uow:
        row = uow.session.get(Negotiation, n.id)
        assert row is not None
        offer = row.offer
        condoned, installments_total = row.condoned_minor, row.installments_total_minor
        plan = uow.session.execute(
            select(
                NegotiationInstallment.number,
                NegotiationInstallment.amount_minor,
                NegotiationInstallment.principal_minor,
                NegotiationInstallment.interest_minor,
                Debt.amount_minor,
            )
            .join(Debt, Debt.id == NegotiationInstallment.debt_id)
            .order_by(NegotiationInstallment.number)
        ).all()
        written_off = sum(
            uow.session.scalars(
                select(DebtComponent.amount_minor).where(DebtComponent.kind == "written_off")
            )
        )
    today, financed = offer["payment_today_minor"], offer["financed_minor"]
    assert today + financed + condoned == 120000
    assert written_off == condoned
    assert all(a == p + i == d for _, a, p, i, d in plan)
    scheduled = [r for r in plan if r[0] > 0]
    paid_interest = sum(r[3] for r in scheduled)
    capitalized = offer["total_interest_minor"] - paid_interest
    assert sum(r[2] for r in scheduled) == financed + capitalized
    assert sum(r[1] for r in plan) == today + installments_total
    assert [r[0] for r in plan][:1] == ([0] if today else [1])
