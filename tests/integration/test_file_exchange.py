"""Company file exchange on SQLite and PostgreSQL: the inbox imports each file once and
files it away, a bad file is set aside with its report, the outbox writes exact bytes."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from stdnum.cl import rut

from recaudo.adapters.db.tables import (
    Company,
    Debt,
    DebtImport,
    Delivery,
    DeliveryTarget,
    ExchangeFile,
    FileExchange,
    Incident,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.formats import fixedwidth
from recaudo.services import agreements, deliveries, storage
from recaudo.services import collections_online as online
from recaudo.services import file_exchange as fx
from recaudo.services.context import Actor, Role
from recaudo.services.deliveries import TargetSpec
from recaudo.services.file_exchange import Direction, ExchangeSpec
from recaudo.services.imports import ImportMode
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment
from tests.conftest import FrozenClock
from tests.integration.sftp_server import SftpServer, running_sftp_server
from tests.integration.smtp_server import ReceivedMail, SmtpServer, running_smtp_server

HEADER = "rut,nombre,id_deuda,vencimiento,monto,concepto"


def rut_of(body: int) -> str:
    digits = str(body)
    return f"{int(digits):,}".replace(",", ".") + f"-{rut.calc_check_digit(digits)}"


ANA = rut_of(12345678)
BETO = rut_of(11111111)
GOOD = (
    f"{HEADER}\n"
    f"{ANA},Ana Pérez,D-1,2026-03-10,15990,Plan hogar\n"
    f"{ANA},Ana Pérez,D-2,2026-04-10,8000,\n"
    f"{BETO},Beto Soto,D-3,2026-03-15,12000,Telefonía\n"
).encode()
BAD = (
    f"{HEADER}\n"
    f"{ANA},Ana Pérez,D-1,2026-03-10,15990,Plan hogar\n"
    f"{BETO},Beto Soto,D-3,2026-03-15,doce mil,Telefonía\n"
).encode()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,  # the test SFTP server is on 127.0.0.1
    )


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    with running_sftp_server(tmp_path / "sftp-root") as server:
        yield server


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def inbox_dir(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def add_target(
    uow: UnitOfWork,
    company: Company,
    name: str,
    kind: str,
    settings: dict[str, Any],
    clock: FrozenClock,
) -> DeliveryTarget:
    now = clock()
    with uow:
        target = DeliveryTarget(
            company_id=company.id,
            agreement_id=None,
            name=name,
            kind=kind,
            settings=settings,
            secret_encrypted=None,
            retention_days=60,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(target)
        uow.commit()
    return target


def make_inbox(
    uow: UnitOfWork,
    company: Company,
    directory: Path,
    admin: Actor,
    clock: FrozenClock,
    *,
    mode: ImportMode = ImportMode.UPSERT,
    recipients: Sequence[str] = (),
) -> fx.ExchangeView:
    add_target(uow, company, "inbox-dir", "local", {"directory": str(directory)}, clock)
    spec = ExchangeSpec(
        "debts-in", Direction.INBOX, "inbox-dir", import_mode=mode, report_recipients=recipients
    )
    return fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)


def drop(directory: Path, name: str, data: bytes, clock: FrozenClock, age_s: float = 120) -> Path:
    """A file as the company leaves it, last modified `age_s` seconds before the clock."""
    path = directory / name
    path.write_bytes(data)
    stamp = (clock.now - timedelta(seconds=age_s)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def poll(
    uow: UnitOfWork, exchange: fx.ExchangeView, settings: Settings, actor: Actor, clock: Any
) -> fx.RunResult:
    return fx.poll_inbox(uow, exchange.id, settings=settings, actor=actor, clock=clock)


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def debts_of(uow: UnitOfWork, company: Company) -> dict[str, tuple[str, int]]:
    with uow:
        rows = uow.session.execute(
            select(Debt.external_id, Debt.status, Debt.amount_minor).where(
                Debt.company_id == company.id
            )
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def count(uow: UnitOfWork, table: Any) -> int:
    with uow:
        return int(uow.session.scalar(select(func.count()).select_from(table)) or 0)


# --------------------------------------------------------------------------------- inbox


def test_inbox_imports_a_new_file_once_and_files_it_away(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)

    result = poll(uow, exchange, settings, admin, clock)

    [view] = result.files
    assert (view.file_name, view.status, result.skipped) == ("deudas.csv", "imported", 0)
    assert view.counts == fx.ImportCounts(3, 3, 0, 0, 0, 0, 0)
    assert view.detail == (
        "imported (upsert): 3 rows, 3 added, 0 updated, 0 cancelled, 0 conflicts, 0 rejected"
    )
    assert tree(inbox_dir) == {"processed/deudas.csv": GOOD}
    assert debts_of(uow, company) == {
        "D-1": ("open", 15990),
        "D-2": ("open", 8000),
        "D-3": ("open", 12000),
    }
    with uow:
        record = uow.session.scalar(select(ExchangeFile))
        assert record is not None
        imported = uow.session.get(DebtImport, record.debt_import_id)
        assert imported is not None
        assert (record.status, imported.file_name, imported.actor) == (
            "imported",
            "deudas.csv",
            "test:admin",
        )

    # Nothing new: nothing happens.
    assert poll(uow, exchange, settings, admin, clock).files == []

    # The same file dropped again is filed away, not imported again.
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    again = poll(uow, exchange, settings, admin, clock)
    assert (again.files, again.skipped) == ([], 0)
    assert tree(inbox_dir) == {"processed/deudas.csv": GOOD}
    assert (count(uow, DebtImport), count(uow, ExchangeFile)) == (1, 1)

    with uow:
        files, total = fx.list_files(uow, company.id, exchange.id)
    assert (total, [f.id for f in files]) == (1, [view.id])


def test_a_bad_file_is_set_aside_with_its_report_and_nothing_is_imported(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "malo.csv", BAD, clock)

    [view] = poll(uow, exchange, settings, admin, clock).files

    assert view.status == "rejected"
    assert view.counts == fx.ImportCounts(2, 0, 0, 0, 0, 0, 1)
    assert debts_of(uow, company) == {}  # all or nothing: the good row did not go in
    files = tree(inbox_dir)
    assert files.keys() == {"rejected/malo.csv", "rejected/malo.csv.report.csv"}
    assert files["rejected/malo.csv"] == BAD
    report = files["rejected/malo.csv.report.csv"].decode("utf-8-sig").splitlines()
    assert report[0] == "rut,nombre,id_deuda,vencimiento,monto,concepto,row_number,column,reason"
    assert report[1].startswith(f"{BETO},Beto Soto,D-3,2026-03-15,doce mil,Telefonía,3,monto,")
    assert len(report) == 2
    name, data = fx.file_report(uow, company.id, exchange.id, view.id)
    assert (name, data) == ("malo.csv.report.csv", files["rejected/malo.csv.report.csv"])


def test_an_unreadable_file_is_rejected_with_a_text_report(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    data = b"cliente,valor\n1,2\n"
    drop(inbox_dir, "otra_cosa.csv", data, clock)

    [view] = poll(uow, exchange, settings, admin, clock).files

    assert (view.status, view.debt_import_id, view.counts) == ("rejected", None, None)
    assert view.detail is not None and "missing" in view.detail
    files = tree(inbox_dir)
    assert files["rejected/otra_cosa.csv"] == data
    digest = storage.sha256_of(data)
    assert (
        files["rejected/otra_cosa.csv.report.txt"]
        == (
            f"File: otra_cosa.csv\nSHA-256: {digest}\nStatus: rejected\nDetail: {view.detail}\n"
        ).encode()
    )
    assert count(uow, DebtImport) == 0


def test_files_still_being_written_are_left_until_they_settle(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv.part", GOOD, clock)  # an upload in progress, by its name
    drop(inbox_dir, "deudas.csv", GOOD, clock, age_s=5)  # modified 5 s ago

    result = poll(uow, exchange, settings, admin, clock)
    assert (result.files, result.skipped) == ([], 2)
    assert tree(inbox_dir).keys() == {"deudas.csv", "deudas.csv.part"}

    clock.advance(seconds=60)
    [view] = poll(uow, exchange, settings, admin, clock).files
    assert view.file_name == "deudas.csv"
    assert tree(inbox_dir).keys() == {"deudas.csv.part", "processed/deudas.csv"}


def test_a_file_over_the_upload_limit_is_left_in_place(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    db_url: str,
    tmp_path: Path,
    inbox_dir: Path,
) -> None:
    small = Settings(
        database_url=db_url, data_dir=tmp_path / "data", max_upload_bytes=len(GOOD) - 1
    )
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    result = poll(uow, exchange, small, admin, clock)
    assert (result.files, result.skipped) == ([], 1)
    assert tree(inbox_dir) == {"deudas.csv": GOOD}
    assert count(uow, ExchangeFile) == 0


def test_the_same_content_under_another_name_changes_nothing(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "lunes.csv", GOOD, clock)
    [first] = poll(uow, exchange, settings, admin, clock).files
    drop(inbox_dir, "martes.csv", GOOD, clock)
    [second] = poll(uow, exchange, settings, admin, clock).files
    assert second.status == "duplicate"
    assert second.debt_import_id == first.debt_import_id
    assert second.detail == f"same content as import {first.debt_import_id}: nothing changed"
    assert tree(inbox_dir).keys() == {"processed/lunes.csv", "processed/martes.csv"}
    assert count(uow, DebtImport) == 1


def test_replace_mode_cancels_the_debts_the_file_no_longer_names(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock, mode=ImportMode.REPLACE)
    drop(inbox_dir, "d1.csv", GOOD, clock)
    poll(uow, exchange, settings, admin, clock)
    smaller = b"\n".join(GOOD.split(b"\n")[:2]) + b"\n"  # only D-1
    clock.advance(minutes=5)
    drop(inbox_dir, "d2.csv", smaller, clock)
    [view] = poll(uow, exchange, settings, admin, clock).files
    assert view.counts == fx.ImportCounts(1, 0, 0, 1, 2, 0, 0)
    assert debts_of(uow, company) == {
        "D-1": ("open", 15990),
        "D-2": ("cancelled", 8000),
        "D-3": ("cancelled", 12000),
    }


def test_a_file_claimed_by_another_server_is_left_to_it_until_the_claim_is_stale(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    with uow:  # another server inserted the claim and is importing the file
        uow.session.add(
            ExchangeFile(
                exchange_id=exchange.id,
                company_id=company.id,
                file_name="deudas.csv",
                sha256=storage.sha256_of(GOOD),
                status="processing",
                processed_at=clock(),
            )
        )
        uow.commit()

    result = poll(uow, exchange, settings, admin, clock)
    assert (result.files, result.skipped) == ([], 1)
    assert debts_of(uow, company) == {}

    clock.advance(minutes=31)  # that server died mid-import: the claim is taken over
    [view] = poll(uow, exchange, settings, admin, clock).files
    assert view.status == "imported"
    assert count(uow, ExchangeFile) == 1
    assert len(debts_of(uow, company)) == 3


def test_the_job_polls_each_inbox_every_poll_seconds(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "a.csv", GOOD, clock)
    assert fx.run_due(uow, settings=settings, clock=clock) == 1
    with uow:
        record = uow.session.scalar(select(DebtImport))
        assert record is not None and record.actor == "exchange:debts-in"

    drop(inbox_dir, "b.csv", BAD, clock)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0  # polled moments ago
    clock.advance(seconds=exchange.poll_seconds)
    assert fx.run_due(uow, settings=settings, clock=clock) == 1
    assert tree(inbox_dir).keys() == {
        "processed/a.csv",
        "rejected/b.csv",
        "rejected/b.csv.report.csv",
    }

    # Disabled: the job leaves it alone.
    off = fx.ExchangeChanges(enabled=False)
    assert not fx.update_exchange(
        uow, company.id, exchange.id, off, actor=admin, clock=clock
    ).enabled
    drop(inbox_dir, "c.csv", GOOD, clock)
    clock.advance(seconds=exchange.poll_seconds)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    assert "c.csv" in tree(inbox_dir)
    with pytest.raises(ValidationFailed, match="write_time is for an outbox, not an inbox"):
        changes = fx.ExchangeChanges(write_time=time(6, 0))
        fx.update_exchange(uow, company.id, exchange.id, changes, actor=admin, clock=clock)


def test_a_missing_inbox_directory_is_an_incident_not_a_crash(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    make_inbox(uow, company, tmp_path / "nowhere", admin, clock)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    with uow:
        causes = uow.session.scalars(select(Incident.cause)).all()
        kinds = uow.session.scalars(select(Incident.kind)).all()
    assert kinds == ["file_exchange"]
    missing = tmp_path / "nowhere"
    assert causes == [
        f"exchange debts-in: the inbox cannot be read: directory {missing} does not exist"
    ]


# ------------------------------------------------------------------------- configuration


def test_exchange_configuration_is_validated(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    admin: Actor,
    clock: FrozenClock,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock, recipients=["a@x.cl", "a@x.cl"])
    assert exchange.report_recipients == ("a@x.cl",)
    assert (exchange.import_mode, exchange.file_format, exchange.write_time) == (
        "upsert",
        "csv",
        None,
    )
    add_target(uow, company, "mail", "email", {"host": "127.0.0.1"}, clock)
    cases: list[tuple[ExchangeSpec, type[Exception], str]] = [
        (ExchangeSpec("debts-in", Direction.INBOX, "inbox-dir"), Conflict, "already"),
        (ExchangeSpec("x", Direction.INBOX, "mail"), ValidationFailed, "sftp or local"),
        (ExchangeSpec("x", Direction.INBOX, "nope"), NotFound, "no delivery target"),
        (ExchangeSpec("bad name!", Direction.INBOX, "inbox-dir"), ValidationFailed, "name"),
        (
            ExchangeSpec("x", Direction.INBOX, "inbox-dir", report_recipients=["no-at"]),
            ValidationFailed,
            "not an e-mail",
        ),
        (
            ExchangeSpec("x", Direction.INBOX, "inbox-dir", poll_seconds=1),
            ValidationFailed,
            "poll_seconds",
        ),
        (
            ExchangeSpec("x", Direction.OUTBOX, "inbox-dir", file_format="pdf"),
            ValidationFailed,
            "file_format",
        ),
        (
            ExchangeSpec("x", Direction.OUTBOX, "inbox-dir", file_format="/etc/passwd.toml"),
            ValidationFailed,
            "file_format",
        ),
    ]
    for spec, error, words in cases:
        with pytest.raises(error, match=words):
            fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)
    # Another company's target is not found; an operator may not configure.
    with pytest.raises(NotFound):
        spec = ExchangeSpec("x", Direction.INBOX, "inbox-dir")
        fx.create_exchange(uow, company_es.id, spec, actor=admin, clock=clock)
    with pytest.raises(Exception, match="admin"):
        operator = Actor("op", Role.OPERATOR, company.id)
        spec = ExchangeSpec("y", Direction.INBOX, "inbox-dir")
        fx.create_exchange(uow, company.id, spec, actor=operator, clock=clock)

    removed = fx.remove_exchange(uow, company.id, exchange.id, actor=admin, clock=clock)
    assert removed.name == "debts-in"
    assert count(uow, FileExchange) == 0


# -------------------------------------------------------------------------------- outbox


def pay(
    uow: UnitOfWork,
    company: Company,
    customer_id: int,
    amount: str,
    key: str,
    admin: Actor,
    clock: FrozenClock,
    debts: tuple[str, ...] = (),
) -> int:
    cmd = ApplyPayment(company.id, customer_id, amount, PaymentMethod.CASH, key, debts=debts)
    return apply_payment(uow, cmd, actor=admin, clock=clock).payment.id


def customer_ids(uow: UnitOfWork, company: Company) -> dict[str, int]:
    with uow:
        rows = uow.session.execute(
            select(Debt.external_id, Debt.customer_id).where(Debt.company_id == company.id)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_the_outbox_writes_the_days_payments_file_once_with_exact_bytes(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
    tmp_path: Path,
) -> None:
    # The portfolio, through the inbox.
    inbox = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    poll(uow, inbox, settings, admin, clock)
    outdir = tmp_path / "outbox"
    outdir.mkdir()
    add_target(uow, company, "out-dir", "local", {"directory": str(outdir)}, clock)
    spec = ExchangeSpec("pagos", Direction.OUTBOX, "out-dir", write_time=time(23, 30))
    outbox = fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)
    assert (outbox.file_format, outbox.write_time, outbox.import_mode) == (
        "csv",
        time(23, 30),
        None,
    )

    # 2 March, Santiago (UTC-3): Ana pays D-1 and half of D-2; Beto pays D-3 and 500 more
    # (credit); a payment of Ana's is reversed.
    who = customer_ids(uow, company)
    pay(uow, company, who["D-1"], "19990", "caja-1", admin, clock, ("D-1", "D-2"))
    beto = pay(uow, company, who["D-3"], "12500", "caja-2", admin, clock, ("D-3",))
    reversed_id = pay(uow, company, who["D-2"], "1000", "caja-3", admin, clock, ("D-2",))
    reverse_payment(uow, company.id, reversed_id, "cheque sin fondos", actor=admin, clock=clock)
    # 23:45 local, after the write time: it belongs to the next day's file.
    clock.now = datetime(2026, 3, 3, 2, 45, tzinfo=UTC)
    pay(uow, company, who["D-1"], "100", "caja-4", admin, clock)

    # Before 23:30 local on 2 March nothing is due; the first day is the day it was set up.
    clock.now = datetime(2026, 3, 3, 2, 29, tzinfo=UTC)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    clock.now = datetime(2026, 3, 3, 2, 31, tzinfo=UTC)
    assert fx.run_due(uow, settings=settings, clock=clock) == 1

    ana, beto_id = rut_of(12345678), rut_of(11111111)
    del beto
    expected = (
        "\ufeffid_cliente,id_deuda,vencimiento,monto,canal,estado_pago,fecha_contable,id_pago\r\n"
        f"{ana},D-1,2026-03-10,15990,office,applied,,1\r\n"
        f"{ana},D-2,2026-04-10,4000,office,applied,,1\r\n"
        f"{beto_id},D-3,2026-03-15,12000,office,applied,,2\r\n"
        f"{beto_id},,,500,office,applied,,2\r\n"
        f"{ana},D-2,2026-04-10,1000,office,reversed,,3\r\n"
    ).encode()
    with uow:
        record = uow.session.scalar(
            select(ExchangeFile).where(ExchangeFile.exchange_id == outbox.id)
        )
        assert record is not None
        written = (record.file_name, record.status, record.accounting_date, record.detail)
        path, digest, record_id = record.storage_path, record.sha256, record.id
        delivery = uow.session.scalar(select(Delivery))
        assert delivery is not None
        queued = (delivery.status, delivery.file_name, delivery.exchange_file_id)
    assert written == (
        "pagos_acme_20260302.csv",
        "written",
        date(2026, 3, 2),
        "5 lines, 3 payments",
    )
    assert storage.read_bytes(settings.data_dir, path or "") == expected
    assert digest == storage.sha256_of(expected)
    assert queued == ("pending", "pagos_acme_20260302.csv", record_id)
    # The delivery job takes it to the company's folder, byte for byte.
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert tree(outdir) == {"pagos_acme_20260302.csv": expected}
    with uow:
        assert fx.get_file(uow, company.id, outbox.id, record_id).delivery_status == "delivered"

    # Never twice: a later run, or a run for that day, writes nothing more.
    clock.advance(hours=1)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    again = fx.write_outbox(
        uow, outbox.id, settings=settings, actor=admin, clock=clock, day=date(2026, 3, 2)
    )
    assert again.files == []
    # The next day's file carries the late payment; a day whose window is open is refused.
    with pytest.raises(ValidationFailed, match="can be written from"):
        fx.write_outbox(
            uow, outbox.id, settings=settings, actor=admin, clock=clock, day=date(2026, 3, 3)
        )
    clock.now = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    [next_day] = fx.run_exchange(
        uow, company.id, outbox.id, settings=settings, actor=admin, clock=clock
    ).files
    assert next_day.file_name == "pagos_acme_20260303.csv"
    with uow:
        files, total = fx.list_files(uow, company.id, outbox.id)
    assert total == 2 and files[0].delivery_status == "pending"
    stored = storage.read_bytes(
        settings.data_dir, f"files/exchanges/{company.id}/{outbox.id}/pagos_acme_20260303.csv"
    )
    assert stored.decode("utf-8-sig").splitlines()[1:] == [
        f"{ana},D-2,2026-04-10,100,office,applied,,4"
    ]


def test_the_outbox_catches_up_missed_days_and_writes_xlsx(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    import io

    import openpyxl

    add_target(uow, company, "out-dir", "local", {"directory": str(tmp_path)}, clock)
    spec = ExchangeSpec("pagos", Direction.OUTBOX, "out-dir", file_format="XLSX")
    outbox = fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)
    assert outbox.write_time == time(23, 30)
    clock.now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # no server ran for three days
    result = fx.run_exchange(
        uow, company.id, outbox.id, settings=settings, actor=admin, clock=clock
    )
    assert [f.accounting_date for f in result.files] == [
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 4),
    ]
    data = storage.read_bytes(
        settings.data_dir, f"files/exchanges/{company.id}/{outbox.id}/pagos_acme_20260304.xlsx"
    )
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [list(fx.OUTBOX_HEADERS)]


# ------------------------------------------------------------ real SFTP and SMTP servers


def test_an_sftp_inbox_is_polled_and_its_report_mailed(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp: SftpServer,
    smtp: SmtpServer,
) -> None:
    inbox_dir = sftp.root / "inbox"
    inbox_dir.mkdir()
    sftp = TargetSpec("bank-sftp", "sftp", sftp.target_settings("/inbox"), secret=sftp.password)
    mail = TargetSpec("mail", "email", smtp.target_settings(["ops@acme.cl"]), secret=smtp.password)
    for spec in (sftp, mail):
        deliveries.create_target(uow, company.id, spec, settings=settings, actor=admin, clock=clock)
    exchange = fx.create_exchange(
        uow,
        company.id,
        ExchangeSpec(
            "debts-in", Direction.INBOX, "bank-sftp", report_recipients=["cobranza@acme.cl"]
        ),
        actor=admin,
        clock=clock,
    )
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    drop(inbox_dir, "malo.csv", BAD, clock, age_s=60)

    result = poll(uow, exchange, settings, admin, clock)

    assert [(f.file_name, f.status) for f in result.files] == [
        ("deudas.csv", "imported"),
        ("malo.csv", "rejected"),
    ]
    assert tree(inbox_dir).keys() == {
        "processed/deudas.csv",
        "rejected/malo.csv",
        "rejected/malo.csv.report.csv",
    }
    assert tree(inbox_dir)["processed/deudas.csv"] == GOOD
    assert len(debts_of(uow, company)) == 3

    good, bad = smtp.messages
    assert (good.rcpt_tos, good.tls) == (("cobranza@acme.cl",), True)
    assert good.message["Subject"] == "Recaudo acme: deudas.csv imported"
    assert text_of(good) == (
        "Exchange: debts-in\n"
        "File: deudas.csv\n"
        f"SHA-256: {storage.sha256_of(GOOD)}\n"
        "Status: imported\n"
        "Mode: upsert\n"
        "Rows total: 3\n"
        "Added: 3\n"
        "Updated: 0\n"
        "Unchanged: 0\n"
        "Cancelled: 0\n"
        "Conflicts: 0\n"
        "Rejected: 0\n"
        f"Import: {result.files[0].debt_import_id}\n"
    )
    assert good.attachments() == []
    assert bad.message["Subject"] == "Recaudo acme: malo.csv rejected"
    body = text_of(bad)
    assert "Rejected: 1\n" in body and "row 3 [monto] rejected:" in body
    assert body.endswith("Nothing was imported. The file was moved to rejected/ with its report.\n")
    assert bad.attachments() == [
        ("malo.csv.report.csv", tree(inbox_dir)["rejected/malo.csv.report.csv"])
    ]


def test_a_report_that_cannot_be_mailed_is_an_incident(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    exchange = make_inbox(uow, company, inbox_dir, admin, clock, recipients=["ops@acme.cl"])
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    [view] = poll(uow, exchange, settings, admin, clock).files
    assert view.status == "imported"  # the import stands; only the e-mail is missing
    with uow:
        causes = uow.session.scalars(select(Incident.cause)).all()
    assert causes == [
        "exchange debts-in: report e-mail: no e-mail target to send the report of deudas.csv"
    ]


def text_of(mail: ReceivedMail) -> str:
    body = mail.message.get_body()
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


LAYOUT = """
name = "acme-pagos"
encoding = "latin-1"
newline = "LF"
record_length = 40
record_type = { start = 1, length = 1 }

[records.header]
code = "H"
after = ["^"]
max = 1
fields = [
  { name = "record_type", start = 1, length = 1, type = "Alfa", value = "H" },
  { name = "accounting_date", start = 2, length = 8, type = "Fecha", mask = "AAAAMMDD" },
  { name = "record_count", start = 10, length = 5, type = "Num" },
  { name = "total_amount", start = 15, length = 12, type = "Num" },
  { name = "filler", start = 27, length = 14, type = "Alfa", value = "" },
]

[records.detail]
code = "D"
after = ["header", "detail"]
fields = [
  { name = "record_type", start = 1, length = 1, type = "Alfa", value = "D" },
  { name = "rut", start = 2, length = 9, type = "Num" },
  { name = "rut_dv", start = 11, length = 1, type = "Alfa" },
  { name = "debt_id", start = 12, length = 6, type = "Alfa", null = true },
  { name = "amount", start = 18, length = 10, type = "Num" },
  { name = "payment_state", start = 28, length = 8, type = "Alfa" },
  { name = "payment_id", start = 36, length = 5, type = "Num" },
]
"""


def test_the_outbox_writes_a_company_fixed_width_layout(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
    tmp_path: Path,
) -> None:
    inbox = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    poll(uow, inbox, settings, admin, clock)
    layout = tmp_path / "acme-pagos.toml"
    layout.write_text(LAYOUT)
    add_target(uow, company, "out-dir", "local", {"directory": str(tmp_path)}, clock)
    spec = ExchangeSpec("pagos", Direction.OUTBOX, "out-dir", file_format=str(layout))
    with pytest.raises(ValidationFailed, match="file_format is csv, xlsx or a layout"):
        fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)  # the API's way
    outbox = fx.create_exchange(
        uow, company.id, spec, actor=admin, clock=clock, allow_layout_files=True
    )
    who = customer_ids(uow, company)
    pay(uow, company, who["D-1"], "19990", "caja-1", admin, clock, ("D-1", "D-2"))
    pay(uow, company, who["D-3"], "12500", "caja-2", admin, clock, ("D-3",))
    clock.now = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)

    [view] = fx.run_exchange(
        uow, company.id, outbox.id, settings=settings, actor=admin, clock=clock
    ).files

    assert view.file_name == "pagos_acme_20260302.txt"
    data = storage.read_bytes(
        settings.data_dir, f"files/exchanges/{company.id}/{outbox.id}/{view.file_name}"
    )
    assert data == (
        b"H2026030200004000000032490              \n"
        b"D0123456785D-1   0000015990applied 00001\n"
        b"D0123456785D-2   0000004000applied 00001\n"
        b"D0111111111D-3   0000012000applied 00002\n"
        b"D0111111111      0000000500applied 00002\n"
    )


def test_the_outbox_writes_the_bancoestado_rendicion_layout(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
    tmp_path: Path,
) -> None:
    """The settlement layout as an outbox format: the agreement's convenio for channel
    payments, zeros where Recaudo has none (office payment, unknown payer, credit)."""
    with uow:
        uow.session.execute(
            update(Company).where(Company.id == company.id).values(tax_id="76.086.428-5")
        )
        uow.commit()
    inbox = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    poll(uow, inbox, settings, admin, clock)
    agreements.create_agreement(uow, company.slug, "caja-vecina", "4321", actor=admin, clock=clock)
    add_target(uow, company, "out-dir", "local", {"directory": str(tmp_path)}, clock)
    spec = ExchangeSpec("pagos", Direction.OUTBOX, "out-dir", file_format="bancoestado-rendicion")
    outbox = fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock)

    who = customer_ids(uow, company)
    pay(uow, company, who["D-1"], "19990", "caja-1", admin, clock, ("D-1", "D-2"))
    with uow:
        caller = online.find_agreement(uow, company.slug, "caja-vecina", None).caller
    assert caller is not None
    uuid_tx = "019caea2-5480-7a04-bea0-1436fd1d6bce"
    paid = datetime(2026, 3, 2, 9, 55, 10)  # Santiago, before the 14:00 cut-off
    online.notify_payment(
        uow, caller, online.Notification(uuid_tx, BETO, paid, "12500", ("D-3",)), clock=clock
    )
    online.notify_payment(
        uow, caller, online.Notification("BE-77", "15.222.333-1", paid, "7000"), clock=clock
    )
    clock.now = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)

    [view] = fx.run_exchange(
        uow, company.id, outbox.id, settings=settings, actor=admin, clock=clock
    ).files

    assert view.file_name == "pagos_acme_20260302.txt"
    data = storage.read_bytes(
        settings.data_dir, f"files/exchanges/{company.id}/{outbox.id}/{view.file_name}"
    )
    layout = fixedwidth.load_layout("bancoestado-rendicion")
    report = layout.check(io.BytesIO(data))
    assert report.ok and report.error_count == 0
    assert report.counts == {"header": 1, "detail": 5}
    lines = data.decode("latin-1").split("\r\n")
    assert lines[-1] == "" and {len(line) for line in lines[:-1]} == {200}
    # Header: the company's RUT, its one agreement's convenio, the day, 5 lines, 3 payments.
    assert lines[0][:112] == (
        "1076086428" "5" f"{'Acme Telecomunicaciones SpA':<40}" f"{'4321':<10}"
        "20260302" "20260302" "000000" "0000005" "0000003" f"{19990 + 12500 + 7000:015d}"
    )  # fmt: skip
    ana_paid_at = lines[1][99:113]
    assert [line[:198] for line in lines[1:-1]] == [
        # Ana at the office: no agreement, so convenio 0; her payment's key is the id.
        "2012345678" "5" f"{'Ana Pérez':<40}" f"{'D-1':<20}" "0000000015990" "02"
        "0000000019990" f"{ana_paid_at}{'office':<20}" f"{'caja-1':<40}" f"{'0':<10}"
        "20260302" "0000001",
        "2012345678" "5" f"{'Ana Pérez':<40}" f"{'D-2':<20}" "0000000004000" "02"
        "0000000019990" f"{ana_paid_at}{'office':<20}" f"{'caja-1':<40}" f"{'0':<10}"
        "20260302" "0000002",
        # Beto through the agreement: its convenio, the bank's UUID whole, his 500 credit
        # under debt 0.
        "2011111111" "1" f"{'Beto Soto':<40}" f"{'D-3':<20}" "0000000012000" "02"
        "0000000012500" "20260302095510" f"{'bancoestado':<20}" f"{uuid_tx:<40}"
        f"{'4321':<10}" "20260302" "0000003",
        "2011111111" "1" f"{'Beto Soto':<40}" f"{'0':<20}" "0000000000500" "02"
        "0000000012500" "20260302095510" f"{'bancoestado':<20}" f"{uuid_tx:<40}"
        f"{'4321':<10}" "20260302" "0000004",
        # Nobody Recaudo knows: RUT 0-0, no name, the money under debt 0.
        "2000000000" "0" f"{'':<40}" f"{'0':<20}" "0000000007000" "01"
        "0000000007000" "20260302095510" f"{'bancoestado':<20}" f"{'BE-77':<40}"
        f"{'4321':<10}" "20260302" "0000005",
    ]  # fmt: skip


@pytest.mark.postgres_only
def test_two_servers_polling_at_once_import_each_file_once(
    engine: Any,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
) -> None:
    import threading

    exchange = make_inbox(UnitOfWork(engine), company, inbox_dir, admin, clock)
    for n in range(6):
        body = GOOD.replace(b"D-", f"S{n}-".encode())
        drop(inbox_dir, f"deudas_{n}.csv", body, clock)
    results: list[fx.RunResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def server() -> None:
        try:
            start.wait()
            results.append(poll(UnitOfWork(engine), exchange, settings, admin, clock))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=server) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    imported = sorted(f.file_name for r in results for f in r.files)
    assert imported == [f"deudas_{n}.csv" for n in range(6)]
    uow = UnitOfWork(engine)
    assert (count(uow, DebtImport), count(uow, ExchangeFile)) == (6, 6)
    assert len(debts_of(uow, company)) == 18
    assert sorted(tree(inbox_dir)) == [f"processed/deudas_{n}.csv" for n in range(6)]


def test_an_sftp_server_that_is_down_is_an_incident_and_the_next_poll_catches_up(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp: SftpServer,
) -> None:
    spec = TargetSpec("bank-sftp", "sftp", sftp.target_settings("/"), secret=sftp.password)
    deliveries.create_target(uow, company.id, spec, settings=settings, actor=admin, clock=clock)
    exchange = fx.create_exchange(
        uow,
        company.id,
        ExchangeSpec("debts-in", Direction.INBOX, "bank-sftp"),
        actor=admin,
        clock=clock,
    )
    drop(sftp.root, "deudas.csv", GOOD, clock)
    sftp.stop()
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    with uow:
        causes = uow.session.scalars(select(Incident.cause)).all()
    assert causes == [
        "exchange debts-in: the inbox cannot be read: connecting to "
        f"sftp://bank@127.0.0.1:{sftp.port} failed: connection refused"
    ]
    assert sftp.password not in causes[0]

    sftp.start()
    clock.advance(seconds=exchange.poll_seconds)
    assert fx.run_due(uow, settings=settings, clock=clock) == 1
    assert tree(sftp.root) == {"processed/deudas.csv": GOOD}


def test_an_outbox_write_that_fails_is_an_incident_retried_every_poll_seconds(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    inbox_dir: Path,
    tmp_path: Path,
) -> None:
    inbox = make_inbox(uow, company, inbox_dir, admin, clock)
    drop(inbox_dir, "deudas.csv", GOOD, clock)
    poll(uow, inbox, settings, admin, clock)
    layout = tmp_path / "short.toml"
    # A 3-digit amount field cannot hold 15990.
    layout.write_text(
        LAYOUT.replace(
            '{ name = "amount", start = 18, length = 10, type = "Num" }',
            '{ name = "amount", start = 18, length = 3, type = "Num" },\n'
            '  { name = "gap", start = 21, length = 7, type = "Alfa", value = "" }',
        )
    )
    add_target(uow, company, "out-dir", "local", {"directory": str(tmp_path)}, clock)
    spec = ExchangeSpec("pagos", Direction.OUTBOX, "out-dir", file_format=str(layout))
    fx.create_exchange(uow, company.id, spec, actor=admin, clock=clock, allow_layout_files=True)
    who = customer_ids(uow, company)
    pay(uow, company, who["D-1"], "15990", "caja-1", admin, clock, ("D-1",))

    def incidents() -> int:
        with uow:
            return len(uow.session.scalars(select(Incident.cause)).all())

    clock.now = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    assert incidents() == 1
    clock.advance(seconds=60)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    assert incidents() == 1  # not retried at every tick
    clock.advance(seconds=300)
    assert fx.run_due(uow, settings=settings, clock=clock) == 0
    assert incidents() == 2
    with uow:
        [cause] = set(uow.session.scalars(select(Incident.cause)).all())
    assert cause.startswith("exchange pagos: the layout ")
    assert count(uow, ExchangeFile) == 1  # the inbox's only: no outbox file was recorded
