"""The commitment jobs on both backends, with an injected clock: the monthly generation run
twice, after a gap of three months, concurrently, and the daily active flags."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recaudo.adapters.db.tables import AuditEvent, CommitmentPayment, Company, Incident
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.config import Settings
from recaudo.domain.errors import ValidationFailed
from recaudo.jobs import commitments as jobs
from recaudo.jobs.schedule import PERIODIC_JOBS
from recaudo.services import commitments as svc
from recaudo.services import creditor_accounts as accounts
from recaudo.services.commitments import NewCommitment
from recaudo.services.context import Actor, Role
from recaudo.services.customers import CustomerData, register_customer
from tests.conftest import FrozenClock

IBAN = "ES9121000418450200051332"
# Madrid is UTC+2 from 29 March 2026: 1 April 00:30 local is 31 March 22:30 UTC.
APRIL_RUN = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)


@pytest.fixture
def container(db_url: str, engine: Engine, clock: FrozenClock, tmp_path: Path) -> Container:
    return Container(
        settings=Settings(database_url=db_url, data_dir=tmp_path),
        engine=engine,
        clock=clock,
    )


@pytest.fixture
def payer(uow: UnitOfWork, company_es: Company, clock: FrozenClock) -> int:
    with uow:
        row = register_customer(
            uow,
            company_es,
            CustomerData("12345678Z", "Ana García"),
            actor=Actor("test:admin", Role.ADMIN),
            clock=clock,
        )
        uow.commit()
        return row.id


def create(
    uow: UnitOfWork, company: Company, payer: int, admin: Actor, clock: FrozenClock, **kw: object
) -> int:
    values: dict[str, object] = {
        "payer_customer_id": payer,
        "kind": "fee",
        "method": "direct_debit",
        "periodicity": "monthly",
        "amount": "10.00",
        "first_payment_on": date(2026, 1, 31),
        "concept": "Cuota socio",
        "iban": IBAN,
    }
    values.update(kw)
    view = svc.create_commitment(
        uow,
        company.id,
        NewCommitment(**values),
        actor=admin,
        clock=clock,  # type: ignore[arg-type]
    )
    return view.id


def dues(uow: UnitOfWork, commitment_id: int) -> list[date]:
    with uow:
        return list(
            uow.session.scalars(
                select(CommitmentPayment.due_on)
                .where(CommitmentPayment.commitment_id == commitment_id)
                .order_by(CommitmentPayment.period_start)
            )
        )


def test_the_jobs_are_scheduled() -> None:
    assert jobs.GENERATION_JOB in PERIODIC_JOBS
    assert jobs.ACTIVE_FLAGS_JOB in PERIODIC_JOBS


def test_monthly_run_waits_for_its_time_and_runs_once(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    container: Container,
) -> None:
    commitment = create(uow, company_es, payer, admin, clock)
    assert dues(uow, commitment) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    # 00:29 on 1 April, Madrid: March's run (never recorded) is due; it finds nothing new.
    clock.now = APRIL_RUN.replace(minute=29)
    assert jobs.run_generation(container) == 0
    with uow:
        assert accounts.get_settings(uow, company_es.id).last_generated_month == date(2026, 3, 1)
    assert jobs.run_generation(container) == 0
    # 00:30: April's run creates April's payment; running again creates nothing.
    clock.now = APRIL_RUN
    assert jobs.run_generation(container) == 1
    assert jobs.run_generation(container) == 0
    assert dues(uow, commitment)[-1] == date(2026, 4, 30)
    # Calling the generation itself again (a retry) does not double either.
    run = svc.generate_payments(uow, company_es.id, month=date(2026, 4, 1), clock=clock)
    assert (run.created, run.commitments, run.month) == (0, 1, date(2026, 4, 1))
    with uow:
        audits = uow.session.scalars(
            select(AuditEvent.after).where(AuditEvent.action == "commitment_payments.generated")
        ).all()
    assert audits == [{"month": "2026-04-01", "created": 1, "commitments": 1}]


def test_after_a_gap_of_three_months_every_missed_period_is_created(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    container: Container,
) -> None:
    monthly = create(uow, company_es, payer, admin, clock)
    ending = create(uow, company_es, payer, admin, clock, ends_on=date(2026, 5, 31))
    quarterly = create(
        uow,
        company_es,
        payer,
        admin,
        clock,
        periodicity="quarterly",
        first_payment_on=date(2026, 2, 28),
    )
    clock.now = APRIL_RUN
    assert jobs.run_generation(container) == 2  # April: monthly and ending
    # No server from April to July: the July run catches May, June and July up.
    clock.now = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
    assert jobs.run_generation(container) == 3 + 1 + 1  # monthly x3, ending May, quarterly May
    assert jobs.run_generation(container) == 0
    assert dues(uow, monthly) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
        date(2026, 7, 31),
    ]
    assert dues(uow, ending)[-2:] == [date(2026, 4, 30), date(2026, 5, 31)]
    assert dues(uow, quarterly) == [date(2026, 2, 28), date(2026, 5, 28)]
    with uow:
        assert accounts.get_settings(uow, company_es.id).last_generated_month == date(2026, 7, 1)
        total = uow.session.scalar(select(func.count(CommitmentPayment.id)))
        distinct = uow.session.scalar(
            select(func.count()).select_from(
                select(CommitmentPayment.commitment_id, CommitmentPayment.period_start)
                .distinct()
                .subquery()
            )
        )
    assert total == distinct == 7 + 5 + 2


def test_generate_for_next_month_and_own_run_day(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    container: Container,
) -> None:
    commitment = create(uow, company_es, payer, admin, clock)
    accounts.update_settings(
        uow,
        company_es.id,
        accounts.SettingsChanges(generate_for="next", run_day=25),
        actor=admin,
        clock=clock,
    )
    clock.now = datetime(2026, 3, 24, 12, 0, tzinfo=UTC)  # before the 25th: March's run waits
    with uow:
        [item] = svc.due_generations(uow, clock.now)
    assert (item.run_month, item.target) == (date(2026, 2, 1), date(2026, 3, 1))
    assert jobs.run_generation(container) == 0
    clock.now = datetime(2026, 3, 25, 0, 0, tzinfo=UTC)  # 01:00 in Madrid on the 25th
    assert jobs.run_generation(container) == 1  # April's payment, a month ahead
    assert dues(uow, commitment)[-1] == date(2026, 4, 30)


def test_batches_cover_every_commitment(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [create(uow, company_es, payer, admin, clock) for _ in range(5)]
    monkeypatch.setattr(svc, "BATCH", 2)
    monkeypatch.setattr(svc, "INSERT_ROWS", 3)
    run = svc.generate_payments(uow, company_es.id, month=date(2026, 6, 1), clock=clock)
    assert (run.commitments, run.created) == (5, 15)
    assert all(len(dues(uow, i)) == 6 for i in ids)


def test_concurrent_runs_never_double(
    uow: UnitOfWork,
    engine: Engine,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
) -> None:
    for _ in range(20):
        create(uow, company_es, payer, admin, clock)
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            barrier.wait()
            got = svc.generate_payments(
                UnitOfWork(engine), company_es.id, month=date(2026, 9, 1), clock=clock
            )
            results.append(got.created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results) == 20 * 6  # April to September, each created by exactly one run
    with uow:
        assert uow.session.scalar(select(func.count(CommitmentPayment.id))) == 20 * 9


def test_active_flags_follow_the_end_date(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    container: Container,
) -> None:
    ending = create(uow, company_es, payer, admin, clock, ends_on=date(2026, 3, 15))
    forever = create(uow, company_es, payer, admin, clock)
    assert jobs.run_active_flags(container) == 0
    # 15 March 23:30 in Madrid (UTC+1): still the last day.
    clock.now = datetime(2026, 3, 15, 22, 30, tzinfo=UTC)
    assert jobs.run_active_flags(container) == 0
    clock.now = datetime(2026, 3, 15, 23, 0, tzinfo=UTC)  # midnight in Madrid
    assert jobs.run_active_flags(container) == 1
    assert jobs.run_active_flags(container) == 0
    with uow:
        assert svc.get_commitment(uow, company_es.id, ending).active is False
        assert svc.get_commitment(uow, company_es.id, forever).active is True
        event = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "commitment.deactivated")
        ).one()
        assert (event.entity_id, event.actor, event.after) == (
            str(ending),
            "job:commitments",
            {"active": False, "today": "2026-03-16"},
        )


def test_generation_refuses_more_than_a_year_ahead(
    uow: UnitOfWork, company_es: Company, payer: int, admin: Actor, clock: FrozenClock
) -> None:
    create(uow, company_es, payer, admin, clock)
    run = svc.generate_payments(uow, company_es.id, month=date(2027, 3, 1), clock=clock)
    assert run.created == 12
    with pytest.raises(ValidationFailed, match=r"cannot generate beyond 2027-03 \(12 months"):
        svc.generate_payments(uow, company_es.id, month=date(2027, 4, 1), clock=clock)


def test_a_failed_generation_records_an_incident_and_is_retried_later(
    uow: UnitOfWork,
    company_es: Company,
    payer: int,
    admin: Actor,
    clock: FrozenClock,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create(uow, company_es, payer, admin, clock)
    clock.now = APRIL_RUN

    def broken(*args: object, **kwargs: object) -> svc.GenerationRun:
        raise ValidationFailed("the database said no")

    monkeypatch.setattr(jobs, "_failed_at", {})
    monkeypatch.setattr(svc, "generate_payments", broken)
    assert jobs.run_generation(container) == 0
    assert jobs.run_generation(container) == 0  # throttled: no second incident
    with uow:
        incidents = uow.session.execute(select(Incident.kind, Incident.cause)).all()
        assert accounts.get_settings(uow, company_es.id).last_generated_month is None
    assert incidents == [
        (
            "commitment_generation_failed",
            "commitment payments up to 2026-04 not generated: the database said no",
        )
    ]
    monkeypatch.undo()
    monkeypatch.setattr(jobs, "_failed_at", {})  # half an hour later
    assert jobs.run_generation(container) == 1
