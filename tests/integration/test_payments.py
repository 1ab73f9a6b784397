"""Applying and reversing payments on SQLite and PostgreSQL: exact money, exactly once."""

from __future__ import annotations

import itertools
import threading
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from recaudo.adapters.db.tables import AuditEvent, Company, CreditEntry, Debt, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import (
    AlreadyReversed,
    Conflict,
    DebtNotPayable,
    InvalidAmount,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from recaudo.domain.payments import PaymentMethod
from recaudo.services import queries
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt


def statuses(uow: UnitOfWork, company: Company) -> dict[str, tuple[str, Decimal]]:
    with uow:
        page = queries.list_debts(uow, company.id, paging=queries.Paging(page_size=500))
    return {d.debt_id: (d.status, d.open_amount) for d in page.items}


@pytest.fixture
def juan(uow: UnitOfWork, company: Company, clock: FrozenClock):  # type: ignore[no-untyped-def]
    customer = add_customer(uow, company, "12.345.678-5", "Juan Pérez", clock)
    add_debt(uow, company, customer, "B-100", "10000", date(2026, 1, 10), clock)
    add_debt(uow, company, customer, "B-101", "5000", date(2026, 1, 5), clock)
    add_debt(uow, company, customer, "B-102", "7000", date(2026, 2, 5), clock)
    return customer


def pay(uow, company, customer, amount, key, admin, clock, **kw):  # type: ignore[no-untyped-def]
    cmd = ApplyPayment(
        company.id, customer.id, amount, kw.pop("method", PaymentMethod.CASH), key, **kw
    )
    return apply_payment(uow, cmd, actor=admin, clock=clock)


def test_oldest_due_first_partial_and_credit(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    first = pay(uow, company, juan, "12000", "caja-1", admin, clock)
    assert not first.replayed
    assert [(a.debt_id, a.amount) for a in first.payment.allocations] == [
        ("B-101", Decimal("5000")),
        ("B-100", Decimal("7000")),
    ]
    assert first.payment.credit == Decimal("0") and first.payment.allocated == Decimal("12000")
    assert statuses(uow, company) == {
        "B-101": ("paid", Decimal("0")),
        "B-100": ("open", Decimal("3000")),
        "B-102": ("open", Decimal("7000")),
    }
    second = pay(uow, company, juan, "15000", "caja-2", admin, clock)
    assert [(a.debt_id, a.amount) for a in second.payment.allocations] == [
        ("B-100", Decimal("3000")),
        ("B-102", Decimal("7000")),
    ]
    assert second.payment.credit == Decimal("5000")
    with uow:
        view = queries.get_customer(uow, company.id, juan.id)
    assert view.credit_balance == Decimal("5000") and view.open_total == Decimal("0")


def test_named_debts_in_given_order(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    applied = pay(uow, company, juan, "8000", "caja-3", admin, clock, debts=("B-102", "B-101"))
    assert [(a.debt_id, a.amount) for a in applied.payment.allocations] == [
        ("B-102", Decimal("7000")),
        ("B-101", Decimal("1000")),
    ]
    assert statuses(uow, company)["B-101"] == ("open", Decimal("4000"))


def test_replay_returns_first_answer_and_changes_nothing(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    first = pay(uow, company, juan, "6000", "caja-9", admin, clock)
    with uow:
        audit_before = uow.session.scalar(select(func.count()).select_from(AuditEvent))
    again = pay(uow, company, juan, "6000", "caja-9", admin, clock)
    assert again.replayed and again.payment == first.payment
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 1
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before
    with pytest.raises(Conflict, match="already used for a different payment"):
        pay(uow, company, juan, "6001", "caja-9", admin, clock)


def test_reverse_restores_debts_and_withdraws_credit(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    before = statuses(uow, company)
    applied = pay(uow, company, juan, "25000", "caja-4", admin, clock)
    assert applied.payment.credit == Decimal("3000")
    reversed_ = reverse_payment(
        uow, company.id, applied.payment.id, "cheque sin fondos", actor=admin, clock=clock
    )
    assert reversed_.status == "reversed" and reversed_.reversal_reason == "cheque sin fondos"
    assert statuses(uow, company) == before
    with uow:
        assert queries.get_customer(uow, company.id, juan.id).credit_balance == Decimal("0")
        actions = list(
            uow.session.scalars(
                select(AuditEvent.action).where(AuditEvent.entity_type == "payment")
            )
        )
    assert actions == ["payment.applied", "payment.reversed"]
    with pytest.raises(AlreadyReversed):
        reverse_payment(uow, company.id, applied.payment.id, "otra vez", actor=admin, clock=clock)
    with pytest.raises(ValidationFailed, match="reason"):
        reverse_payment(uow, company.id, applied.payment.id, "   ", actor=admin, clock=clock)


def test_audit_trail_records_before_and_after(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    applied = pay(uow, company, juan, "5000", "caja-5", admin, clock)
    with uow:
        page = queries.list_audit_events(uow, company.id, queries.AuditFilter(entity_type="debt"))
    (event,) = page.items
    assert (event.actor, event.action, event.before, event.after) == (
        "test:admin",
        "debt.status_changed",
        {"status": "open"},
        {"status": "paid", "payment_id": applied.payment.id},
    )
    with uow:
        (pay_event,) = queries.list_audit_events(
            uow, company.id, queries.AuditFilter(action="payment.applied")
        ).items
    assert pay_event.after == {
        "amount": "5000",
        "currency": "CLP",
        "status": "applied",
        "allocations": {"B-101": "5000"},
        "credit": "0",
    }


def test_bad_payments_are_refused_without_a_trace(uow, company, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidAmount):
        pay(uow, company, juan, "0", "k0", admin, clock)
    with pytest.raises(InvalidAmount):
        pay(uow, company, juan, "10.5", "k1", admin, clock)  # CLP has no decimals
    with pytest.raises(InvalidAmount):
        pay(uow, company, juan, "-5", "k2", admin, clock)
    with pytest.raises(NotFound, match="B-999"):
        pay(uow, company, juan, "100", "k3", admin, clock, debts=("B-999",))
    with pytest.raises(ValidationFailed, match="named twice"):
        pay(uow, company, juan, "100", "k4", admin, clock, debts=("B-100", "B-100"))
    with pytest.raises(ValidationFailed, match="transaction id"):
        pay(uow, company, juan, "100", " ", admin, clock)
    auditor = Actor("api_key:9", Role.AUDITOR, company.id)
    with pytest.raises(PermissionDenied):
        apply_payment(
            uow,
            ApplyPayment(company.id, juan.id, "1", PaymentMethod.CASH, "k5"),
            actor=auditor,
            clock=clock,
        )
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_paid_debt_strict_refuses_channel_records_exception(
    uow, company, juan, admin, clock
) -> None:  # type: ignore[no-untyped-def]
    pay(uow, company, juan, "5000", "k1", admin, clock, debts=("B-101",))
    with pytest.raises(DebtNotPayable):
        pay(uow, company, juan, "5000", "k2", admin, clock, debts=("B-101",))
    late = pay(
        uow,
        company,
        juan,
        "5000",
        "bank-77",
        admin,
        clock,
        debts=("B-101",),
        channel="bancoestado",
        strict=False,
    )
    assert late.payment.status == "exception" and late.payment.allocations == []
    assert late.payment.exception_reason == "debt 'B-101' cannot take payments"


def test_company_isolation(uow, company, company_es, juan, admin, clock) -> None:  # type: ignore[no-untyped-def]
    other_key = Actor("api_key:2", Role.ADMIN, company_es.id)
    with pytest.raises(NotFound):
        apply_payment(
            uow,
            ApplyPayment(company.id, juan.id, "100", PaymentMethod.CASH, "x"),
            actor=other_key,
            clock=clock,
        )
    with pytest.raises(NotFound):  # a customer id of another company is not found in this one
        apply_payment(
            uow,
            ApplyPayment(company_es.id, juan.id, "100", PaymentMethod.CASH, "x"),
            actor=admin,
            clock=clock,
        )
    applied = pay(uow, company, juan, "100", "y", admin, clock)
    with uow, pytest.raises(NotFound):
        queries.get_payment(uow, company_es.id, applied.payment.id)


@pytest.mark.postgres_only
def test_twenty_concurrent_payments_never_overpay(engine, company, admin) -> None:  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    uow = UnitOfWork(engine)
    customer = add_customer(uow, company, "7.654.321-6", "Ana Rojas", clock)
    add_debt(uow, company, customer, "D-1", "10000", date(2026, 1, 1), clock)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            cmd = ApplyPayment(company.id, customer.id, "3000", PaymentMethod.TRANSFER, f"t-{i}")
            apply_payment(UnitOfWork(engine), cmd, actor=admin, clock=FrozenClock())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with uow:
        allocated = queries.list_debts(uow, company.id).items[0]
        credit = uow.session.scalar(select(func.sum(CreditEntry.amount_minor)))
        n = uow.session.scalar(select(func.count()).select_from(Payment))
    assert n == 20
    assert (allocated.status, allocated.paid, allocated.open_amount) == (
        "paid",
        Decimal("10000"),
        Decimal("0"),
    )
    assert credit == 20 * 3000 - 10000  # every peso is either allocated or in credit


def test_concurrent_replays_apply_once(engine, company, admin) -> None:  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    uow = UnitOfWork(engine)
    customer = add_customer(uow, company, "7.654.321-6", "Ana Rojas", clock)
    add_debt(uow, company, customer, "D-1", "10000", date(2026, 1, 1), clock)
    barrier = threading.Barrier(8)
    results = []

    def worker() -> None:
        barrier.wait()
        cmd = ApplyPayment(company.id, customer.id, "4000", PaymentMethod.TRANSFER, "same-id")
        results.append(apply_payment(UnitOfWork(engine), cmd, actor=admin, clock=FrozenClock()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and sum(not r.replayed for r in results) == 1
    assert len({r.payment.id for r in results}) == 1
    with uow:
        assert queries.list_debts(uow, company.id).items[0].paid == Decimal("4000")


_keys = itertools.count()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=20000), min_size=1, max_size=4),
    payments=st.lists(st.integers(min_value=1, max_value=60000), min_size=1, max_size=4),
)
def test_apply_then_reverse_restores_every_debt(uow, company, admin, amounts, payments) -> None:  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    n = next(_keys)
    customer = add_customer(
        uow, company, f"{10_000_000 + n}-{_dv(10_000_000 + n)}", "Prop Test", clock
    )
    for i, amount in enumerate(amounts):
        add_debt(uow, company, customer, f"P{n}-{i}", str(amount), date(2026, 1, 1 + i), clock)

    def snapshot() -> list[tuple[str, str]]:
        with uow:
            return [
                (d.external_id, d.status)
                for d in uow.session.scalars(
                    select(Debt).where(Debt.customer_id == customer.id).order_by(Debt.id)
                )
            ]

    def open_total() -> Decimal:
        with uow:
            return queries.get_customer(uow, company.id, customer.id).open_total

    before, before_open = snapshot(), open_total()
    applied = [
        pay(uow, company, customer, str(p), f"prop-{n}-{j}", admin, clock)
        for j, p in enumerate(payments)
    ]
    total_paid = sum(payments)
    with uow:
        view = queries.get_customer(uow, company.id, customer.id)
    assert before_open - view.open_total + view.credit_balance == total_paid
    assert view.open_total == max(Decimal(0), before_open - total_paid)
    for a in reversed(applied):
        reverse_payment(uow, company.id, a.payment.id, "prueba", actor=admin, clock=clock)
    assert snapshot() == before and open_total() == before_open
    with uow:
        assert queries.get_customer(uow, company.id, customer.id).credit_balance == 0


def _dv(body: int) -> str:
    from stdnum.cl import rut

    return str(rut.calc_check_digit(str(body)))
