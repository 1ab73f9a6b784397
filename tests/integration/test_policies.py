"""Viability policies as data: safe rules, viable and non-viable offers with causes, exceptions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from recaudo.adapters.db.tables import AuditEvent, Company, PolicyException
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, NotFound, NotViable, PermissionDenied, ValidationFailed
from recaudo.services import negotiations as neg
from recaudo.services import policies
from recaudo.services.context import Actor, Role
from recaudo.services.policies import Cause, NewException, NewPolicy, PolicyChanges
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

OPERATOR = Actor("test:operator", Role.OPERATOR)
FACT_NAMES = (
    "days_past_due, balance, overdue_amount, product_type, customer_days_past_due, "
    "customer_balance, customer_overdue_amount, earlier_negotiations, broken_negotiations, "
    "months_since_last_negotiation, installments_paid, term, payment_today, new_installment, "
    "total_condoned"
)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("__class__", f"a policy rule may not name '__class__': the known facts are {FACT_NAMES}"),
        ("foo.bar", f"a policy rule may not name 'foo': the known facts are {FACT_NAMES}"),
        ("income > 5", f"a policy rule may not name 'income': the known facts are {FACT_NAMES}"),
        (
            "product_type.__class__ == 'x'",
            "a policy rule may not use attribute access ('__class__'): it may only compare the "
            f"facts {FACT_NAMES}",
        ),
        (
            "product_type.length > 3",
            "a policy rule may not use attribute access ('length'): it may only compare the "
            f"facts {FACT_NAMES}",
        ),
        ("$now != null", f"a policy rule may not name '$now': the known facts are {FACT_NAMES}"),
        ("days_past_due + 1", "a policy rule must be a yes/no condition, this one gives a FLOAT"),
        (
            "product_type =~ '(a+)+$'",
            "a policy rule may not use regular expressions (=~, !~): compare with ==, != or in",
        ),
        ("days_past_due >", "the policy rule is not valid: syntax error at: EOF"),
        ("  ", "a policy rule cannot be empty"),
    ],
)
def test_rule_reaching_outside_its_data_is_refused_at_save(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, rule: str, message: str
) -> None:
    new = NewPolicy("r", "CNTL", rule, "causa", "no")
    with pytest.raises(ValidationFailed) as info:
        policies.add_policy(uow, company.id, new, actor=admin, clock=clock)
    assert info.value.message == message
    assert info.value.details["field"] == "rule"
    assert policies.list_policies(uow, company.id, actor=admin) == []


def test_policy_crud_is_audited_and_admin_only(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    new = NewPolicy(
        "mora 30-180",
        "pppl",
        "days_past_due >= 30 and days_past_due <= 180",
        "causalDeNoViabilidadPuestaAlDia2",
        "days past due outside 30-180",
        exception_name="exc_dias_mora",
        parameters={"term": 12, "annual_rate": "18.5"},
    )
    with pytest.raises(PermissionDenied):
        policies.add_policy(uow, company.id, new, actor=OPERATOR, clock=clock)
    view = policies.add_policy(uow, company.id, new, actor=admin, clock=clock)
    assert (view.name, view.strategy, view.exception_name, view.parameters, view.active) == (
        "mora 30-180",
        "PPPL",
        "EXC_DIAS_MORA",
        {"term": 12, "annual_rate": "18.5"},
        True,
    )
    with pytest.raises(Conflict):
        policies.add_policy(uow, company.id, new, actor=admin, clock=clock)
    with pytest.raises(ValidationFailed, match="unknown strategy parameters: tem"):
        policies.add_policy(
            uow,
            company.id,
            NewPolicy("b", "PPPL", "term < 3", "c", "m", parameters={"tem": 1}),
            actor=admin,
            clock=clock,
        )
    changed = policies.update_policy(
        uow,
        company.id,
        view.id,
        PolicyChanges(rule="days_past_due >= 60"),
        actor=admin,
        clock=clock,
    )
    assert changed.rule == "days_past_due >= 60"
    with pytest.raises(ValidationFailed):
        policies.update_policy(
            uow, company.id, view.id, PolicyChanges(rule="os.system"), actor=admin, clock=clock
        )
    disabled = policies.disable_policy(uow, company.id, view.id, actor=admin, clock=clock)
    assert disabled.active is False
    assert [p.id for p in policies.list_policies(uow, company.id, actor=admin, active=True)] == []
    with pytest.raises(NotFound):
        policies.get_policy(uow, company.id, view.id + 1, actor=admin)
    with uow:
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity_type == "viability_policy")
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["policy.created", "policy.updated", "policy.updated"]


@pytest.fixture
def late_customer(uow: UnitOfWork, company: Company, clock: FrozenClock) -> int:
    """A customer with two debts: 90 days late (300000) and 10 days late (50000) on
    2026-03-02, the clock's (Santiago) date."""
    customer = add_customer(uow, company, "123456785", "Ana Pérez", clock)
    add_debt(uow, company, customer, "L-90", "300000", date(2025, 12, 2), clock)
    add_debt(uow, company, customer, "L-10", "50000", date(2026, 2, 20), clock)
    return customer.id


def _policy(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, **kw: object
) -> int:
    new = NewPolicy(**kw)  # type: ignore[arg-type]
    return policies.add_policy(uow, company.id, new, actor=admin, clock=clock).id


def test_simulation_gives_viable_offers_and_named_causes(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, late_customer: int
) -> None:
    _policy(
        uow,
        company,
        admin,
        clock,
        name="cntl mora",
        strategy="CNTL",
        rule="days_past_due >= 60",
        cause="causalDeNoViabilidadHerremienta1",
        message="payoff needs 60 days past due",
        parameters={"condonation": {"capital": "10"}},
    )
    _policy(
        uow,
        company,
        admin,
        clock,
        name="pppl saldo",
        strategy="PPPL",
        rule="balance >= 100000 and term <= 12",
        cause="causalDeNoViabilidadPuestaAlDia3",
        message="plans are for balances of 100000 or more, 12 installments at most",
        parameters={"term": 6, "annual_rate": "0"},
    )
    sim = neg.simulate(uow, company.id, neg.Simulate(late_customer), actor=OPERATOR, clock=clock)
    assert sim.as_of == date(2026, 3, 2)
    assert [(o.debt, o.days_past_due, o.balance) for o in sim.obligations] == [
        ("L-90", 90, Decimal("300000")),
        ("L-10", 10, Decimal("50000")),
    ]
    first, second = sim.obligations
    cntl, pppl = first.offers
    assert (cntl.strategy, cntl.viable, cntl.causes, cntl.fits_capacity) == ("CNTL", True, (), None)
    assert cntl.terms is not None
    assert (cntl.terms.payment_today, cntl.terms.total_condoned) == (
        Decimal("270000"),
        Decimal("30000"),
    )
    assert pppl.viable is True and pppl.terms is not None
    assert [i.amount for i in pppl.terms.installments] == [Decimal("50000")] * 6
    assert [i.due_date for i in pppl.terms.installments][:2] == [date(2026, 4, 2), date(2026, 5, 2)]
    cntl2, pppl2 = second.offers
    assert cntl2.viable is False
    assert cntl2.causes == (
        Cause("cntl mora", "causalDeNoViabilidadHerremienta1", "payoff needs 60 days past due"),
    )
    assert pppl2.causes == (
        Cause(
            "pppl saldo",
            "causalDeNoViabilidadPuestaAlDia3",
            "plans are for balances of 100000 or more, 12 installments at most",
        ),
    )
    # A recalculation with 24 installments breaks the term rule.
    again = neg.simulate(
        uow,
        company.id,
        neg.Simulate(late_customer, ("L-90",), ("PPPL",), {"PPPL": {"term": 24}}),
        actor=OPERATOR,
        clock=clock,
    )
    (only,) = again.obligations[0].offers
    assert (only.viable, only.causes[0].cause) == (False, "causalDeNoViabilidadPuestaAlDia3")
    assert only.terms is not None and only.terms.term == 24
    # Creating what is not viable is refused with the cause.
    with pytest.raises(NotViable) as info:
        neg.create_negotiation(
            uow,
            company.id,
            neg.NewNegotiation(late_customer, "CNTL", ("L-10",)),
            actor=OPERATOR,
            clock=clock,
        )
    assert info.value.message == (
        "CNTL is not viable: payoff needs 60 days past due (causalDeNoViabilidadHerremienta1)"
    )
    with pytest.raises(NotViable, match="no active policy"):
        neg.create_negotiation(
            uow,
            company.id,
            neg.NewNegotiation(late_customer, "PDIA", ("L-10",)),
            actor=OPERATOR,
            clock=clock,
        )


def test_profile_keeps_only_offers_that_fit_the_capacity(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, late_customer: int
) -> None:
    _policy(
        uow,
        company,
        admin,
        clock,
        name="plan",
        strategy="PPPL",
        rule="balance > 0",
        cause="c",
        message="m",
        parameters={"term": 6, "annual_rate": "0"},
    )
    # available = 600000 + 50000 - 450000 = 200000; capacity 30 % = 60000
    profile = neg.record_profile(
        uow,
        company.id,
        neg.NewProfile(late_customer, "600000", "50000", "450000"),
        actor=OPERATOR,
        clock=clock,
    )
    assert (profile.available_income, profile.capacity) == (Decimal("200000"), Decimal("60000"))
    sim = neg.simulate(
        uow,
        company.id,
        neg.Simulate(late_customer, ("L-90",), (), {"PPPL": {"term": 4}}),
        actor=OPERATOR,
        clock=clock,
    )
    (offer,) = sim.obligations[0].offers
    assert sim.capacity == Decimal("60000")
    assert (offer.viable, offer.fits_capacity) == (False, False)
    assert offer.causes == (
        Cause(
            "profile",
            "payment_capacity",
            "the installment 75000 is above the payment capacity 60000",
        ),
    )
    sim = neg.simulate(
        uow, company.id, neg.Simulate(late_customer, ("L-90",)), actor=OPERATOR, clock=clock
    )
    (offer,) = sim.obligations[0].offers
    assert (offer.viable, offer.fits_capacity) == (True, True)


def test_exception_needs_an_admin_and_overrides_the_rule_once(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, late_customer: int
) -> None:
    policy_id = _policy(
        uow,
        company,
        admin,
        clock,
        name="dias",
        strategy="CNTL",
        rule="days_past_due >= 60",
        cause="causalDeNoViabilidadHerremienta1",
        message="60 days past due needed",
        exception_name="EXC_DIAS_MORA",
    )
    grant = NewException(
        late_customer, policy_id, "hardship, approved by committee", date(2026, 3, 31), "L-10"
    )
    with pytest.raises(PermissionDenied) as info:
        policies.grant_exception(uow, company.id, grant, actor=OPERATOR, clock=clock)
    assert info.value.message == "role operator may not do this (needs admin)"
    with pytest.raises(ValidationFailed, match="reason"):
        policies.grant_exception(
            uow,
            company.id,
            NewException(late_customer, policy_id, " ", date(2026, 3, 31)),
            actor=admin,
            clock=clock,
        )
    granted = policies.grant_exception(uow, company.id, grant, actor=admin, clock=clock)
    assert (granted.exception_name, granted.debt, granted.granted_by, granted.negotiation_id) == (
        "EXC_DIAS_MORA",
        "L-10",
        "test:admin",
        None,
    )
    sim = neg.simulate(
        uow, company.id, neg.Simulate(late_customer, ("L-10",)), actor=OPERATOR, clock=clock
    )
    (offer,) = sim.obligations[0].offers
    assert (offer.viable, offer.exceptions) == (True, (granted.id,))
    created = neg.create_negotiation(
        uow,
        company.id,
        neg.NewNegotiation(late_customer, "CNTL", ("L-10",)),
        actor=OPERATOR,
        clock=clock,
    )
    assert created.exceptions_used == ["dias"]
    with uow:
        used = uow.session.get(PolicyException, granted.id)
        assert used is not None and used.negotiation_id == created.id
        audit_row = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "policy_exception.granted")
        ).one()
        assert audit_row.actor == "test:admin"
        assert audit_row.after is not None
        assert audit_row.after["reason"] == "hardship, approved by committee"
        use = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "policy_exception.used")
        ).one()
        assert (use.entity_id, use.actor, use.after) == (
            str(granted.id),
            "test:operator",
            {"negotiation_id": created.id, "policy": "dias"},
        )
    # Used once: a second simulation sees the rule fail again.
    sim = neg.simulate(
        uow, company.id, neg.Simulate(late_customer, ("L-90", "L-10")), actor=OPERATOR, clock=clock
    )
    assert [o.offers[0].viable for o in sim.obligations] == [True, False]
    # An expired exception does not count.
    policies.grant_exception(
        uow,
        company.id,
        NewException(late_customer, policy_id, "short grant", date(2026, 3, 5)),
        actor=admin,
        clock=clock,
    )
    clock.advance(days=4)  # 2026-03-06
    sim = neg.simulate(
        uow, company.id, neg.Simulate(late_customer, ("L-10",)), actor=OPERATOR, clock=clock
    )
    assert sim.obligations[0].offers[0].viable is False
