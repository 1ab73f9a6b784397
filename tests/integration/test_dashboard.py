"""The dashboard's read models on SQLite and PostgreSQL: money to the cent, accounting
dates in the company's time zone, ageing buckets at their edges."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from recaudo.adapters.db.tables import Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.payments import PaymentMethod
from recaudo.services import exceptions, incidents, monitoring, portfolio
from recaudo.services.agreements import create_agreement
from recaudo.services.context import Actor
from recaudo.services.dashboard import CollectedRow, build_dashboard
from recaudo.services.payments import ApplyPayment, Settled, apply_payment, reverse_payment
from recaudo.services.queries import Paging
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

# 2026-03-19 02:00 UTC is Wednesday 2026-03-18 23:00 in Santiago (UTC-3 in March).
NOW = datetime(2026, 3, 19, 2, 0, tzinfo=UTC)


def utc(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def pay(  # type: ignore[no-untyped-def]
    uow: UnitOfWork,
    company: Company,
    customer,
    amount: str,
    key: str,
    admin: Actor,
    clock: FrozenClock,
    **kw,
):
    method = kw.pop("method", PaymentMethod.CASH)
    cmd = ApplyPayment(company.id, customer.id, amount, method, key, **kw)
    return apply_payment(uow, cmd, actor=admin, clock=clock)


def test_collected_by_accounting_date_channel_and_method(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = NOW
    issued = create_agreement(uow, company.slug, "caja-vecina", "11223", actor=admin, clock=clock)
    ana = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)
    add_debt(uow, company, ana, "A-1", "100000", date(2026, 1, 10), clock)

    def p(amount: str, key: str, **kw: object) -> None:
        apply_payment(
            uow,
            ApplyPayment(
                company.id,
                ana.id,
                amount,
                kw.pop("method", PaymentMethod.CASH),  # type: ignore[arg-type]
                key,
                **kw,  # type: ignore[arg-type]
            ),
            actor=admin,
            clock=clock,
        )

    p("10000", "today")  # paid now: local Wednesday 18 at 23:00
    # Saturday 14 at 10:00 local: the office's money counts on Monday 16.
    p("2500", "saturday", method=PaymentMethod.CHEQUE, paid_at=utc(2026, 3, 14, 13))
    # Saturday 28-02 23:30 local (01-03 in UTC): counts on Monday 02-03, this month.
    p("1000", "feb28", paid_at=utc(2026, 3, 1, 2, 30))
    # Friday 27-02 23:30 local (28-02 in UTC): Friday, last month.
    p("400", "feb27", paid_at=utc(2026, 2, 28, 2, 30))
    bank = {"channel": "bancoestado", "agreement_id": issued.agreement.id}
    p("7000", "bank-17", method=PaymentMethod.TRANSFER, accounting_date=date(2026, 3, 17), **bank)
    # After the cut-off: tomorrow's accounting date, not in any period yet.
    p("900", "bank-19", method=PaymentMethod.TRANSFER, accounting_date=date(2026, 3, 19), **bank)
    p("3000", "reversed")
    with uow:
        reversed_id = (
            monitoring.search_payments(
                uow, company.id, monitoring.PaymentSearch(external_id="reversed")
            )
            .items[0]
            .id
        )
    reverse_payment(uow, company.id, reversed_id, "error de caja", actor=admin, clock=clock)
    p("5000", "january", paid_at=utc(2026, 1, 5, 15))  # before the chart's first day

    with uow:
        board = build_dashboard(uow, company.id, clock)

    assert board.local_today == date(2026, 3, 18)
    assert board.accounting_today == date(2026, 3, 18)
    today, week, month = board.periods
    assert (today.key, today.start, today.end) == ("today", date(2026, 3, 18), date(2026, 3, 18))
    assert today.rows == [CollectedRow("office", "cash", 1, Decimal("10000"))]
    assert (today.count, today.amount) == (1, Decimal("10000"))
    assert (week.start, week.end) == (date(2026, 3, 16), date(2026, 3, 18))
    assert week.rows == [
        CollectedRow("bancoestado/caja-vecina", "transfer", 1, Decimal("7000")),
        CollectedRow("office", "cash", 1, Decimal("10000")),
        CollectedRow("office", "cheque", 1, Decimal("2500")),
    ]
    assert (week.count, week.amount) == (3, Decimal("19500"))
    assert month.start == date(2026, 3, 1)
    assert month.rows == [
        CollectedRow("bancoestado/caja-vecina", "transfer", 1, Decimal("7000")),
        CollectedRow("office", "cash", 2, Decimal("11000")),
        CollectedRow("office", "cheque", 1, Decimal("2500")),
    ]
    assert (month.count, month.amount) == (4, Decimal("20500"))

    daily = board.daily
    assert len(daily.days) == 30
    # 30 business days (no Chilean holiday in February or March 2026) end today.
    assert (daily.days[0], daily.days[-1]) == (date(2026, 2, 5), date(2026, 3, 18))
    assert all(d.weekday() < 5 for d in daily.days)
    assert daily.channels == ["bancoestado/caja-vecina", "office"]
    nonzero = {
        (daily.days[i], c): daily.amounts[c][i]
        for c in daily.channels
        for i in range(30)
        if daily.amounts[c][i]
    }
    assert nonzero == {
        (date(2026, 2, 27), "office"): Decimal("400"),
        (date(2026, 3, 2), "office"): Decimal("1000"),
        (date(2026, 3, 16), "office"): Decimal("2500"),
        (date(2026, 3, 17), "bancoestado/caja-vecina"): Decimal("7000"),
        (date(2026, 3, 18), "office"): Decimal("10000"),
    }
    assert daily.day_total(daily.days.index(date(2026, 3, 18))) == Decimal("10000")


def test_weekend_today_is_the_next_business_day(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = utc(2026, 3, 21, 15)  # Saturday 21 at noon in Santiago
    ana = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)
    pay(uow, company, ana, "1500", "sat", admin, clock)
    with uow:
        board = build_dashboard(uow, company.id, clock)
    assert (board.local_today, board.accounting_today) == (date(2026, 3, 21), date(2026, 3, 23))
    today, week, _ = board.periods
    assert today.rows == [CollectedRow("office", "cash", 1, Decimal("1500"))]
    assert week.start == date(2026, 3, 23)  # Monday 23's week
    assert board.daily.days[-1] == date(2026, 3, 23)


def test_money_to_the_cent_in_euros(
    uow: UnitOfWork, company_es: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = utc(2026, 3, 18, 10)  # 11:00 in Madrid
    marta = add_customer(uow, company_es, "12345678Z", "Marta Gil", clock)
    add_debt(uow, company_es, marta, "F-1", "100.10", date(2026, 3, 1), clock)
    add_debt(uow, company_es, marta, "F-2", "0.99", date(2026, 4, 1), clock)
    pay(uow, company_es, marta, "12.34", "a", admin, clock)
    pay(uow, company_es, marta, "0.66", "b", admin, clock, method=PaymentMethod.CARD)
    pay(uow, company_es, marta, "0.01", "c", admin, clock)
    with uow:
        board = build_dashboard(uow, company_es.id, clock)
    assert board.currency == "EUR"
    today = board.periods[0]
    assert today.rows == [
        CollectedRow("office", "card", 1, Decimal("0.66")),
        CollectedRow("office", "cash", 2, Decimal("12.35")),
    ]
    assert today.amount == Decimal("13.01")
    # F-1 (due 01-03, 17 days overdue) received 13.01: 87.09 open; F-2 is not yet due.
    by_key = {b.key: (b.count, b.amount) for b in board.ageing}
    assert by_key == {
        "current": (1, Decimal("0.99")),
        "1-30": (1, Decimal("87.09")),
        "31-60": (0, Decimal("0.00")),
        "61-90": (0, Decimal("0.00")),
        "90+": (0, Decimal("0.00")),
    }
    assert (board.ageing_count, board.ageing_total) == (2, Decimal("88.08"))


def test_ageing_bucket_edges(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = NOW  # local 2026-03-18
    c = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)
    today = date(2026, 3, 18)
    for days, amount in [
        (-5, "100"),  # due in 5 days
        (0, "200"),  # due today: not overdue
        (1, "300"),
        (30, "400"),
        (31, "500"),
        (60, "600"),
        (61, "700"),
        (90, "800"),
        (91, "900"),
        (400, "1000"),
    ]:
        add_debt(uow, company, c, f"D{days}", amount, today - timedelta(days=days), clock)
    add_debt(uow, company, c, "PAID", "50", today - timedelta(days=10), clock, status="paid")
    add_debt(uow, company, c, "GONE", "60", today - timedelta(days=10), clock, status="cancelled")
    add_debt(uow, company, c, "HELD", "70", today - timedelta(days=45), clock, status="in_payment")
    # 250 to D90 (named): it keeps 550 open in 61-90.
    pay(uow, company, c, "250", "partial", admin, clock, debts=("D90",))
    with uow:
        board = build_dashboard(uow, company.id, clock)
    by_key = {b.key: (b.count, b.amount) for b in board.ageing}
    assert by_key == {
        "current": (2, Decimal("300")),
        "1-30": (2, Decimal("700")),
        "31-60": (3, Decimal("1170")),
        "61-90": (2, Decimal("1250")),
        "90+": (2, Decimal("1900")),
    }
    assert [(b.min_days, b.max_days) for b in board.ageing] == [
        (None, 0),
        (1, 30),
        (31, 60),
        (61, 90),
        (91, None),
    ]
    assert (board.ageing_count, board.ageing_total) == (11, Decimal("5320"))


def test_open_exceptions_and_recent_incidents(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = NOW
    c = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)

    def hook(u: UnitOfWork, settled: Settled) -> None:
        exceptions.raise_exception(
            u,
            settled.payment,
            exceptions.Reason.AMOUNT_MISMATCH,
            "monto distinto",
            actor=admin,
            clock=clock,
        )

    for key in ("e1", "e2"):
        apply_payment(
            uow,
            ApplyPayment(company.id, c.id, "1000", PaymentMethod.TRANSFER, key, strict=False),
            actor=admin,
            clock=clock,
            before_commit=hook,
        )
    with uow:
        first = exceptions.list_exceptions(uow, company.id).items[-1]
    exceptions.resolve_exception(
        uow, company.id, first.id, exceptions.Resolution.CREDIT, "queda como saldo",
        actor=admin, clock=clock,
    )  # fmt: skip
    incidents.record_incident(uow, company.id, None, "unavailable", "mantención", clock)
    clock.advance(days=8)
    incidents.record_incident(uow, company.id, None, "internal_error", "reciente", clock)
    with uow:
        board = build_dashboard(uow, company.id, clock)
    assert board.open_exceptions == 1
    assert [e.transaccion for e in board.latest_exceptions] == ["e2"]
    assert board.recent_incidents == 1
    assert [i.cause for i in board.latest_incidents] == ["reciente"]
    # Both exception payments were collected (the bank has the money): this month's.
    month = board.periods[2]
    assert (month.start, month.end) == (date(2026, 3, 1), date(2026, 3, 26))
    assert month.rows == [CollectedRow("office", "transfer", 2, Decimal("2000"))]


def test_payment_search_filters_and_export(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = NOW
    issued = create_agreement(uow, company.slug, "internet", "11224", actor=admin, clock=clock)
    ana = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)
    pay(uow, company, ana, "1000", "k1", admin, clock, paid_at=utc(2026, 3, 17, 2, 59))
    pay(uow, company, ana, "2000", "k2", admin, clock, paid_at=utc(2026, 3, 17, 3, 0))
    pay(
        uow, company, ana, "3000", "k3", admin, clock,
        channel="bancoestado", agreement_id=issued.agreement.id, method=PaymentMethod.TRANSFER,
        accounting_date=date(2026, 3, 17), paid_at=utc(2026, 3, 17, 15),
    )  # fmt: skip
    search = monitoring.PaymentSearch

    def found(s: monitoring.PaymentSearch) -> list[str]:
        with uow:
            return [r.external_id for r in monitoring.search_payments(uow, company.id, s).items]

    # 02:59 UTC on the 17th is the 16th at 23:59 in Santiago.
    assert found(search(date_from=date(2026, 3, 17), date_to=date(2026, 3, 17))) == ["k3", "k2"]
    assert found(search(date_to=date(2026, 3, 16))) == ["k1"]
    assert found(search(channel="bancoestado")) == ["k3"]
    assert found(search(agreement_id=issued.agreement.id)) == ["k3"]
    assert found(search(method="cash")) == ["k2", "k1"]
    assert found(search(amount_min="2000", amount_max="3000")) == ["k3", "k2"]
    assert found(search(external_id=" k1 ")) == ["k1"]
    assert found(search(status="reversed")) == []
    with uow:
        page = monitoring.search_payments(
            uow, company.id, search(), paging=Paging(page=2, page_size=2)
        )
    assert (page.total, [r.external_id for r in page.items]) == (3, ["k1"])
    row = page.items[0]
    assert (row.customer_name, row.customer_national_id) == ("Ana Lagos", "12.345.678-5")

    out = io.BytesIO()
    with uow:
        count = monitoring.write_export(uow, company.id, search(channel="bancoestado"), "csv", out)
    assert count == 1
    lines = out.getvalue().decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "id,fecha_pago,fecha_contable,canal,convenio_canal,medio,transaccion,rut_cliente,"
        "cliente,monto,moneda,estado"
    )
    assert lines[1].split(",")[1:] == [
        "2026-03-17T15:00:00+00:00",
        "2026-03-17",
        "bancoestado",
        "internet",
        "transfer",
        "k3",
        "12.345.678-5",
        "Ana Lagos",
        "3000",
        "CLP",
        "applied",
    ]


def test_debt_search_filters_and_customer_page(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    clock.now = NOW
    ana = add_customer(uow, company, "12.345.678-5", "Ana Lagos", clock)
    other = add_customer(uow, company, "9.876.543-3", "Pedro Rojas", clock)
    add_debt(uow, company, ana, "A-1", "1000", date(2026, 1, 10), clock)
    add_debt(uow, company, ana, "A-2", "2000", date(2026, 2, 10), clock)
    add_debt(uow, company, ana, "A-3", "3000", date(2026, 3, 10), clock)
    add_debt(uow, company, other, "P-1", "4000", date(2026, 2, 1), clock)
    pay(uow, company, ana, "1500", "k1", admin, clock)  # A-1 paid, 500 to A-2
    s = portfolio.DebtSearch

    def found(search: portfolio.DebtSearch) -> list[str]:
        with uow:
            page = portfolio.search_debts(uow, company.id, search)
        return [r.debt.debt_id for r in page.items]

    assert found(s()) == ["A-1", "P-1", "A-2", "A-3"]
    assert found(s(status="paid")) == ["A-1"]
    assert found(s(status="payable")) == ["P-1", "A-2", "A-3"]
    assert found(s(due_from=date(2026, 2, 1), due_to=date(2026, 2, 10))) == ["P-1", "A-2"]
    assert found(s(amount_min="2000", amount_max="3000")) == ["A-2", "A-3"]
    assert found(s(customer_id=other.id)) == ["P-1"]
    with pytest.raises(Exception, match="unknown status"):
        found(s(status="nope"))

    with uow:
        page = portfolio.customer_page(uow, company.id, ana.id)
    assert [(d.debt_id, d.open_amount) for d in page.open_debts] == [
        ("A-2", Decimal("1500")),
        ("A-3", Decimal("3000")),
    ]
    assert [d.debt_id for d in page.other_debts] == ["A-1"]
    assert [(a.debt_id, a.amount) for a in page.payments[0].allocations] == [
        ("A-1", Decimal("1000")),
        ("A-2", Decimal("500")),
    ]
    assert page.customer.open_total == Decimal("4500")
