"""The `recaudo` command against real databases (SQLite and PostgreSQL).

Each test runs the Typer app in-process with `RECAUDO_DATABASE_URL` pointing at the
`db_url` fixture, so the CLI builds its own engine exactly as it does from a shell; one
test starts `recaudo serve` as a real process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import (
    Allocation,
    AuditEvent,
    Company,
    CreditEntry,
    Customer,
    Debt,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.domain.payments import PaymentMethod
from recaudo.services.companies import authenticate, company_by_slug
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

runner = CliRunner()

DEBTS_CSV = (
    "rut,nombre,id_deuda,vencimiento,monto,concepto\n"
    "12.345.678-5,Ana Rojas,F-1,2026-03-10,15000,Internet marzo\n"
    "12.345.678-5,Ana Rojas,F-2,2026-04-10,15000,Internet abril\n"
    "7.654.321-6,Luis Soto,F-3,2026-03-15,22990,Plan móvil\n"
)


def run(db_url: str, *args: str) -> Result:
    # Test receivers listen on 127.0.0.1, which the default settings refuse to call.
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_line_error(result: Result) -> str:
    """The red message of a failed command: one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def acme(db_url: str) -> str:
    result = run(
        db_url, "company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "CL"
    )
    assert result.exit_code == 0, result.output
    return "acme"


def import_json(db_url: str, path: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    result = run(db_url, "import", "debts", str(path), "--company", "acme", "--json", *extra)
    return result, json.loads(result.stdout)


def counts(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        with UnitOfWork(engine, write=False) as uow:
            return {
                model.__tablename__: int(
                    uow.session.scalar(select(func.count()).select_from(model)) or 0
                )
                for model in (Company, Customer, Debt, Payment, Allocation, CreditEntry)
            } | {
                "debt_total": int(
                    uow.session.scalar(select(func.coalesce(func.sum(Debt.amount_minor), 0))) or 0
                ),
                "paid_debts": int(
                    uow.session.scalar(
                        select(func.count()).select_from(Debt).where(Debt.status == "paid")
                    )
                    or 0
                ),
            }
    finally:
        engine.dispose()


# --- companies ---------------------------------------------------------------------------


def test_company_create_uses_the_country_defaults_and_lists(db_url: str) -> None:
    result = run(
        db_url, "company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "cl"
    )
    assert result.exit_code == 0, result.output
    assert "Created company acme" in result.stdout
    assert "CLP, America/Santiago" in result.stdout

    result = run(
        db_url,
        "company",
        "create",
        "--slug",
        "ong",
        "--name",
        "Fundación Ejemplo",
        "--country",
        "ES",
        "--tax-id",
        "G12345678",
        "--timezone",
        "Atlantic/Canary",
    )
    assert result.exit_code == 0, result.output
    assert "EUR, Atlantic/Canary" in result.stdout

    listing = run(db_url, "company", "list")
    assert listing.exit_code == 0
    assert "acme" in listing.stdout and "Fundación Ejemplo" in listing.stdout

    engine = make_engine(db_url)
    with UnitOfWork(engine, write=False) as uow:
        event = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "company.created")
        ).first()
        assert event is not None and event.actor.startswith("cli:")
    engine.dispose()


def test_company_create_refuses_a_bad_country(db_url: str) -> None:
    result = run(db_url, "company", "create", "--slug", "x", "--name", "X SA", "--country", "AR")
    assert result.exit_code == 2
    assert "unsupported country 'AR'" in one_line_error(result)
    assert counts(db_url)["companies"] == 0


def test_company_create_refuses_a_duplicate_slug(db_url: str, acme: str) -> None:
    result = run(db_url, "company", "create", "--slug", acme, "--name", "Otra", "--country", "CL")
    assert result.exit_code == 1
    assert "a company with slug 'acme' already exists" in one_line_error(result)


def test_company_create_refuses_an_unknown_time_zone(db_url: str) -> None:
    result = run(
        db_url, "company", "create", "--slug", "x", "--name", "X", "--country", "CO",
        "--timezone", "America/Atlantis",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown time zone" in one_line_error(result)


# --- API keys ----------------------------------------------------------------------------


def test_apikey_create_prints_exactly_one_line_that_authenticates(db_url: str, acme: str) -> None:
    result = run(
        db_url, "apikey", "create", "--company", acme, "--role", "operator", "--label", "caja"
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    engine = make_engine(db_url)
    with UnitOfWork(engine, write=False) as uow:
        actor = authenticate(uow, lines[0])
        company_id = company_by_slug(uow, acme).id
    engine.dispose()
    assert actor.role is Role.OPERATOR
    assert actor.company_id == company_id


def test_apikey_revoke_stops_the_key(db_url: str, acme: str) -> None:
    secret = run(db_url, "apikey", "create", "--company", acme, "--role", "admin").stdout.strip()
    engine = make_engine(db_url)
    with UnitOfWork(engine, write=False) as uow:
        key_id = int(authenticate(uow, secret).label.split(":")[1])
    result = run(db_url, "apikey", "revoke", str(key_id))
    assert result.exit_code == 0, result.output
    with UnitOfWork(engine, write=False) as uow, pytest.raises(Exception, match="revoked"):
        authenticate(uow, secret)
    engine.dispose()
    missing = run(db_url, "apikey", "revoke", "999999")
    assert missing.exit_code == 1
    assert "no API key 999999" in one_line_error(missing)


def test_apikey_for_an_unknown_company_fails_cleanly(db_url: str) -> None:
    result = run(db_url, "apikey", "create", "--company", "nadie", "--role", "admin")
    assert result.exit_code == 1
    assert "no company 'nadie'" in one_line_error(result)
    assert result.stdout == ""


def test_apikey_refuses_an_unknown_role(db_url: str, acme: str) -> None:
    result = run(db_url, "apikey", "create", "--company", acme, "--role", "root")
    assert result.exit_code == 2
    assert result.stdout == ""


# --- import ------------------------------------------------------------------------------


def test_import_debts_reports_exact_numbers(db_url: str, acme: str, tmp_path: Path) -> None:
    path = tmp_path / "deudas.csv"
    path.write_text(DEBTS_CSV, encoding="utf-8")
    result, report = import_json(db_url, path, "--mode", "upsert")
    assert result.exit_code == 0, result.output
    assert {k: report[k] for k in ("status", "mode", "file_name", "rows_total")} == {
        "status": "completed",
        "mode": "upsert",
        "file_name": "deudas.csv",
        "rows_total": 3,
    }
    numbers = ("added", "updated", "unchanged", "cancelled", "conflicts", "rejected")
    assert [report[k] for k in numbers] == [3, 0, 0, 0, 0, 0]
    assert report["customers_added"] == 2
    assert report["actor"].startswith("cli:")

    # The human report shows the same numbers.
    path.write_text(DEBTS_CSV.replace("22990", "23990"), encoding="utf-8")
    result = run(db_url, "import", "debts", str(path), "--company", acme, "--mode", "upsert")
    assert result.exit_code == 0, result.output
    shown = {
        line.strip("│ ").rsplit(None, 1)[0].strip("│ "): line.strip("│ ").rsplit(None, 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert shown["rows"] == "3"
    assert shown["updated"] == "1"
    assert shown["unchanged"] == "2"
    assert shown["added"] == "0"
    assert shown["customers added"] == "0"
    assert result.stdout.startswith("Import #2 of deudas.csv (upsert): completed\n")

    # The same bytes again: recognised, nothing changes.
    again = run(db_url, "import", "debts", str(path), "--company", acme)
    assert again.exit_code == 0, again.output
    assert "deudas.csv was already imported as import #" in again.stdout
    assert counts(db_url)["debts"] == 3


def test_import_replace_cancels_open_debts_missing_from_the_file(
    db_url: str, acme: str, tmp_path: Path
) -> None:
    path = tmp_path / "deudas.csv"
    path.write_text(DEBTS_CSV, encoding="utf-8")
    assert import_json(db_url, path)[0].exit_code == 0
    only_first = tmp_path / "hoy.csv"
    only_first.write_text("\n".join(DEBTS_CSV.splitlines()[:2]) + "\n", encoding="utf-8")
    result, report = import_json(db_url, only_first, "--mode", "replace")
    assert result.exit_code == 0, result.output
    assert (report["unchanged"], report["cancelled"], report["mode"]) == (1, 2, "replace")


def test_a_rejected_file_exits_non_zero_and_changes_nothing(
    db_url: str, acme: str, tmp_path: Path
) -> None:
    path = tmp_path / "malo.csv"
    path.write_text(DEBTS_CSV + "12.345.678-9,Rut Malo,F-4,2026-03-10,1000,X\n", encoding="utf-8")
    result = run(db_url, "import", "debts", str(path), "--company", acme, "--mode", "upsert")
    assert result.exit_code == 1
    assert "rejected" in one_line_error(result)
    assert "F-4" in result.stdout and "5" in result.stdout  # the issue: debt and row number
    assert counts(db_url)["debts"] == 0
    assert not (tmp_path / "malo.csv.rejected.csv").exists()


def test_skip_invalid_imports_the_rest_and_writes_the_rejected_rows(
    db_url: str, acme: str, tmp_path: Path
) -> None:
    path = tmp_path / "malo.csv"
    path.write_text(
        DEBTS_CSV
        + "12.345.678-9,Rut Malo,F-4,2026-03-10,1000,X\n"
        + "7.654.321-6,Luis Soto,F-5,2026-02-30,1000,Fecha mala\n",
        encoding="utf-8",
    )
    result, report = import_json(db_url, path, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert (report["added"], report["rejected"], report["status"]) == (3, 2, "completed")
    issues = {(i["row_number"], i["debt_external_id"]) for i in report["issues"]}
    assert issues == {(5, "F-4"), (6, "F-5")}
    rejects = tmp_path / "malo.csv.rejected.csv"
    text = rejects.read_text(encoding="utf-8-sig")
    assert "12.345.678-9" in text and "2026-02-30" in text
    assert "F-1" not in text
    assert counts(db_url)["debts"] == 3

    chosen = tmp_path / "out" / "rechazos.csv"
    chosen.parent.mkdir()
    other = tmp_path / "malo2.csv"
    other.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    result, _ = import_json(db_url, other, "--skip-invalid", "--rejects", str(chosen))
    assert result.exit_code == 0, result.output
    assert "12.345.678-9" in chosen.read_text(encoding="utf-8-sig")


def test_import_needs_an_existing_file_and_company(db_url: str, acme: str, tmp_path: Path) -> None:
    result = run(db_url, "import", "debts", str(tmp_path / "no.csv"), "--company", acme)
    assert result.exit_code == 2
    path = tmp_path / "d.csv"
    path.write_text(DEBTS_CSV, encoding="utf-8")
    result = run(db_url, "import", "debts", str(path), "--company", "nadie")
    assert result.exit_code == 1
    assert "no company 'nadie'" in one_line_error(result)


# --- export ------------------------------------------------------------------------------


@pytest.fixture
def known_debts(db_url: str, acme: str) -> str:
    """Three debts of two customers; F-1 is half paid, F-3 fully paid."""
    engine = make_engine(db_url)
    uow = UnitOfWork(engine)
    clock = FrozenClock()
    with uow:
        company = company_by_slug(uow, acme)
        uow.commit()  # nothing to write; keeps the loaded attributes after the block
    ana = add_customer(uow, company, "12345678-5", "Ana Rojas", clock)
    luis = add_customer(uow, company, "7654321-6", "Luis Soto", clock)
    add_debt(uow, company, ana, "F-1", "15000", date(2026, 3, 10), clock)
    add_debt(uow, company, ana, "F-2", "15000", date(2026, 4, 10), clock)
    add_debt(uow, company, luis, "F-3", "22990", date(2026, 3, 15), clock)
    cashier = Actor("test:caja", Role.OPERATOR)
    for customer, amount, ref, key in ((ana, "7500", "F-1", "p1"), (luis, "22990", "F-3", "p2")):
        apply_payment(
            uow,
            ApplyPayment(
                company.id, customer.id, Decimal(amount), PaymentMethod.CASH, key, debts=(ref,)
            ),
            actor=cashier,
            clock=clock,
        )
    engine.dispose()
    return acme


HEADER = "rut,nombre,id_deuda,vencimiento,monto,concepto,emision,estado,pagado,saldo\r\n"
ROW_1 = "12.345.678-5,Ana Rojas,F-1,2026-03-10,15000,Servicio,,open,7500,7500\r\n"
ROW_2 = "12.345.678-5,Ana Rojas,F-2,2026-04-10,15000,Servicio,,open,0,15000\r\n"
ROW_3 = "7.654.321-6,Luis Soto,F-3,2026-03-15,22990,Servicio,,paid,22990,0\r\n"


def test_export_debts_csv_to_stdout_exact_bytes(db_url: str, known_debts: str) -> None:
    result = runner.invoke(
        app, ["export", "debts", "--company", known_debts], env={"RECAUDO_DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == ("\ufeff" + HEADER + ROW_1 + ROW_2 + ROW_3).encode()
    assert "Exported 3 debts" in result.stderr

    paid = runner.invoke(
        app,
        ["export", "debts", "--company", known_debts, "--status", "paid"],
        env={"RECAUDO_DATABASE_URL": db_url},
    )
    assert paid.stdout_bytes == ("\ufeff" + HEADER + ROW_3).encode()


def test_export_to_a_file_reads_back_as_an_unchanged_import(
    db_url: str, known_debts: str, tmp_path: Path
) -> None:
    out = tmp_path / "cartera.csv"
    result = run(
        db_url,
        "export",
        "debts",
        "--company",
        known_debts,
        "--status",
        "open",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == ("\ufeff" + HEADER + ROW_1 + ROW_2).encode()
    result, report = import_json(db_url, out)
    assert result.exit_code == 0, result.output
    assert (report["rows_total"], report["unchanged"], report["added"]) == (2, 2, 0)


def test_export_xlsx(db_url: str, known_debts: str, tmp_path: Path) -> None:
    refused = run(db_url, "export", "debts", "--company", known_debts, "--format", "xlsx")
    assert refused.exit_code == 2
    assert "--output" in one_line_error(refused)

    out = tmp_path / "cartera.xlsx"
    result = run(
        db_url,
        "export",
        "debts",
        "--company",
        known_debts,
        "--format",
        "xlsx",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out, read_only=True)
    rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    assert rows[0] == HEADER.strip().split(",")
    assert rows[1][:5] == ["12.345.678-5", "Ana Rojas", "F-1", rows[1][3], 15000]
    assert rows[1][3].date() == date(2026, 3, 10)
    assert rows[3][7:] == ["paid", 22990, 0]
    assert not list(tmp_path.glob(".*partial"))


def test_export_refuses_an_unknown_status_and_format(db_url: str, acme: str) -> None:
    bad = run(db_url, "export", "debts", "--company", acme, "--status", "lost")
    assert bad.exit_code == 2
    assert "Invalid value for '--status'" in bad.stderr and "'lost'" in bad.stderr
    assert bad.stdout == ""
    bad = run(db_url, "export", "debts", "--company", acme, "--format", "pdf")
    assert bad.exit_code == 2


# --- demo --------------------------------------------------------------------------------


def test_demo_twice_changes_nothing_the_second_time(db_url: str) -> None:
    first = run(db_url, "demo", "--customers", "30")
    assert first.exit_code == 0, first.output
    after_first = counts(db_url)
    assert after_first["companies"] == 1
    assert after_first["customers"] == 30
    assert 30 <= after_first["debts"] <= 120
    assert after_first["payments"] == 8
    assert after_first["paid_debts"] >= 3
    assert after_first["credit_entries"] == 1
    assert "Created demo company 'demo'" in first.stdout
    assert "http://127.0.0.1:8000/api/docs" in first.stdout

    second = run(db_url, "demo", "--customers", "30")
    assert second.exit_code == 0, second.output
    assert counts(db_url) == after_first
    assert "Refreshed demo company 'demo'" in second.stdout
    assert "Debts file: unchanged since import #1" in second.stdout

    keys = [
        line.split()[2]
        for line in (first.stdout + second.stdout).splitlines()
        if line.startswith("API key:")
    ]
    assert len(keys) == 2 and keys[0] != keys[1]
    engine = make_engine(db_url)
    with UnitOfWork(engine, write=False) as uow:
        for key in keys:
            actor = authenticate(uow, key)
            assert actor.role is Role.ADMIN
            assert actor.company_id == company_by_slug(uow, "demo").id
        names = list(uow.session.scalars(select(Customer.name).order_by(Customer.id)))
    engine.dispose()
    assert all(len(name.split()) >= 3 for name in names)
    assert len(set(names)) > 25


def test_demo_grows_without_duplicating(db_url: str) -> None:
    assert run(db_url, "demo", "--customers", "5").exit_code == 0
    small = counts(db_url)
    assert run(db_url, "demo", "--customers", "12").exit_code == 0
    grown = counts(db_url)
    assert grown["customers"] == 12
    assert grown["debts"] > small["debts"]
    assert grown["payments"] == 7  # the eighth demo payment is for customer 13


# --- database and server -----------------------------------------------------------------


def test_db_commands_on_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nuevo' / 'recaudo.db'}"
    before = run(url, "company", "list")
    assert before.exit_code == 1
    assert "recaudo db upgrade" in one_line_error(before)

    up = run(url, "db", "upgrade")
    assert up.exit_code == 0, up.output
    assert "upgraded from empty to" in up.stdout
    again = run(url, "db", "upgrade")
    assert "already at revision" in again.stdout
    current = run(url, "db", "current")
    lines = dict(line.split(":", 1) for line in current.stdout.splitlines() if ":" in line)
    assert lines["current"].strip() == lines["head"].strip() != "(empty)"

    refused = runner.invoke(
        app, ["db", "downgrade", "base"], env={"RECAUDO_DATABASE_URL": url}, input="n\n"
    )
    assert refused.exit_code == 1
    down = run(url, "db", "downgrade", "base", "--yes")
    assert down.exit_code == 0, down.output
    assert "downgraded to empty" in down.stdout


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = run("postgresql://nobody:secret@127.0.0.1:1/none", "company", "list")
    assert bad.exit_code == 1
    line = one_line_error(bad)
    assert "database error" in line
    assert "secret" not in bad.output


def test_bad_configuration_is_reported(db_url: str) -> None:
    result = runner.invoke(
        app, ["company", "list"], env={"RECAUDO_DATABASE_URL": db_url, "RECAUDO_PORT": "many"}
    )
    assert result.exit_code == 2
    assert "RECAUDO_PORT" in one_line_error(result)


def test_version_and_help() -> None:
    assert "recaudo 0.1.0" in runner.invoke(app, ["--version"]).stdout
    help_text = runner.invoke(app, ["--help"]).stdout
    for command in ("serve", "db", "company", "apikey", "import", "export", "demo"):
        assert command in help_text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_on_the_given_port(db_url: str, acme: str) -> None:
    port = _free_port()
    env = os.environ | {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from recaudo.cli import app; app()", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start in 30 s"
                time.sleep(0.2)
        assert health.status_code == 200
        docs = httpx.get(f"http://127.0.0.1:{port}/api/docs", timeout=5)
        assert docs.status_code == 200
        unauthorised = httpx.get(f"http://127.0.0.1:{port}/api/v1/company", timeout=5)
        assert unauthorised.status_code == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert f"http://127.0.0.1:{port}/api/docs" in stderr
