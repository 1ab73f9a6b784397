"""`recaudo exchange add|list|run|files|remove` against real databases and directories."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import Company, Debt, DeliveryTarget, FileExchange
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from tests.integration.test_cli import one_line_error

runner = CliRunner()
GOOD = b"rut,nombre,id_deuda,vencimiento,monto\n12.345.678-5,Ana Rojas,F-1,2026-03-10,15000\n"


def run(db_url: str, data_dir: Path, *args: str) -> Result:
    env = {
        "RECAUDO_DATABASE_URL": db_url,
        "RECAUDO_DATA_DIR": str(data_dir),
        "RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS": "true",  # test SFTP server on 127.0.0.1
    }
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def acme(db_url: str, tmp_path: Path) -> str:
    result = run(
        db_url,
        tmp_path,
        *("company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "CL"),
    )
    assert result.exit_code == 0, result.output
    return "acme"


def add_local_target(db_url: str, name: str, directory: Path) -> None:
    engine = make_engine(db_url)
    try:
        uow = UnitOfWork(engine)
        with uow:
            company = uow.session.scalar(select(Company).where(Company.slug == "acme"))
            assert company is not None
            now = datetime.now(UTC)
            uow.session.add(
                DeliveryTarget(
                    company_id=company.id,
                    name=name,
                    kind="local",
                    settings={"directory": str(directory)},
                    retention_days=60,
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            uow.commit()
    finally:
        engine.dispose()


def debt_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(Debt.external_id).order_by(Debt.external_id)))
    finally:
        engine.dispose()


def test_exchange_commands(db_url: str, acme: str, tmp_path: Path) -> None:
    data_dir, inbox, outbox = tmp_path / "data", tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    add_local_target(db_url, "in-dir", inbox)
    add_local_target(db_url, "out-dir", outbox)

    added = run(
        db_url,
        data_dir,
        *("exchange", "add", "--company", acme, "--name", "debts-in", "--direction", "inbox"),
        *("--target", "in-dir", "--mode", "replace", "--poll-seconds", "60"),
    )
    assert added.exit_code == 0, added.output
    assert "Exchange 1 debts-in (inbox) of acme through local target in-dir." in added.stdout
    bad = run(
        db_url,
        data_dir,
        *("exchange", "add", "--company", acme, "--name", "x", "--direction", "inbox"),
        *("--target", "nowhere"),
    )
    assert bad.exit_code == 1
    assert one_line_error(bad) == "Error: no delivery target 'nowhere'"
    bad_time = run(
        db_url,
        data_dir,
        *("exchange", "add", "--company", acme, "--name", "x", "--direction", "outbox"),
        *("--target", "out-dir", "--write-time", "25:00"),
    )
    assert bad_time.exit_code == 2
    assert one_line_error(bad_time) == "Error: '25:00' is not a time (HH:MM)"
    out_added = run(
        db_url,
        data_dir,
        *("exchange", "add", "--company", acme, "--name", "pagos", "--direction", "outbox"),
        *("--target", "out-dir", "--write-time", "00:00"),
    )
    assert out_added.exit_code == 0, out_added.output

    listed = run(db_url, data_dir, "exchange", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert any("debts-in" in line and "replace" in line and "every 60 s" in line for line in lines)
    assert any("pagos" in line and "csv" in line and "00:00 local" in line for line in lines)

    # A settled file is imported and filed away.
    path = inbox / "cartera.csv"
    path.write_bytes(GOOD)
    old = time.time() - 120
    os.utime(path, (old, old))
    ran = run(db_url, data_dir, "exchange", "run", "--company", acme, "--name", "debts-in")
    assert ran.exit_code == 0, ran.output
    assert "cartera.csv" in ran.stdout and "imported" in ran.stdout
    assert (inbox / "processed" / "cartera.csv").read_bytes() == GOOD
    assert debt_ids(db_url) == ["F-1"]
    again = run(db_url, data_dir, "exchange", "run", "--company", acme, "--name", "debts-in")
    assert (again.exit_code, again.stdout.strip()) == (0, "Nothing to do.")

    files = run(db_url, data_dir, "exchange", "files", "--company", acme, "--name", "debts-in")
    assert files.exit_code == 0
    assert "cartera.csv" in files.stdout and "imported" in files.stdout

    # The outbox writes yesterday's file (company local) once.
    yesterday = (datetime.now(ZoneInfo("America/Santiago")) - timedelta(days=1)).date()
    args = ("exchange", "run", "--company", acme, "--name", "pagos", "--date", str(yesterday))
    wrote = run(db_url, data_dir, *args)
    assert wrote.exit_code == 0, wrote.output
    name = f"pagos_acme_{yesterday:%Y%m%d}.csv"
    assert name in wrote.stdout and "written" in wrote.stdout
    stored = data_dir / "files" / "exchanges" / "1" / "2" / name
    assert stored.read_bytes() == (
        b"\xef\xbb\xbfid_cliente,id_deuda,vencimiento,monto,canal,estado_pago,"
        b"fecha_contable,id_pago\r\n"
    )
    twice = run(db_url, data_dir, *args)
    assert (twice.exit_code, twice.stdout.strip()) == (0, "Nothing to do.")
    on_inbox = run(
        db_url,
        data_dir,
        "exchange",
        "run",
        "--company",
        acme,
        "--name",
        "debts-in",
        "--date",
        str(yesterday),
    )
    assert on_inbox.exit_code == 1
    assert "a date is only for an outbox" in on_inbox.stderr

    removed = run(db_url, data_dir, "exchange", "remove", "--company", acme, "--name", "pagos")
    assert removed.exit_code == 0, removed.output
    missing = run(db_url, data_dir, "exchange", "remove", "--company", acme, "--name", "pagos")
    assert missing.exit_code == 1
    assert one_line_error(missing) == "Error: no exchange named 'pagos'"
    listed = run(db_url, data_dir, "exchange", "list", "--company", acme)
    assert "pagos" not in listed.stdout and "debts-in" in listed.stdout


def test_a_layout_file_is_kept_by_its_absolute_path(
    db_url: str, acme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_file_exchange import LAYOUT

    (tmp_path / "acme-pagos.toml").write_text(LAYOUT)
    add_local_target(db_url, "out-dir", tmp_path)
    monkeypatch.chdir(tmp_path)
    added = run(
        db_url,
        tmp_path / "data",
        *("exchange", "add", "--company", acme, "--name", "pagos", "--direction", "outbox"),
        *("--target", "out-dir", "--format", "acme-pagos.toml"),
    )
    assert added.exit_code == 0, added.output
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.scalar(select(FileExchange.file_format))
    finally:
        engine.dispose()
    assert stored == str((tmp_path / "acme-pagos.toml").resolve())
