"""`recaudo reconcile` and `recaudo reconciliation list|show` against a real database."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.tables import Company, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from tests.conftest import FrozenClock
from tests.integration.reconciliation_builders import (
    ANA,
    JUANA,
    MARTA,
    PEDRO,
    UNKNOWN,
    Line,
    bank_file,
    build_world,
    online_day,
    rendicion,
    write_layout,
)

runner = CliRunner()

LINES = [
    (JUANA, "134371", 1500, "T1", 2),
    (JUANA, "134372", 2500, "T1", 2),
    (PEDRO, "P-1", 1200, "T2", 1),
    (MARTA, "M-2", 700, "REC-4", 1),
    (ANA, "A-1", 5000, "T5", 1),
    (UNKNOWN, "X-9", 800, "T6", 1),
    (JUANA, "134371", 1500, "T1", 2),
    (JUANA, "134372", 2500, "T1", 2),
]


def run(db_url: str, *args: str) -> Result:
    result = runner.invoke(app, list(args), env={"RECAUDO_DATABASE_URL": db_url})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def count_payments(uow: UnitOfWork) -> int:
    with uow:
        return int(uow.session.scalar(select(func.count()).select_from(Payment)) or 0)


def test_reconcile_prints_the_summary_and_the_differences(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    world = build_world(uow, company, clock)
    online_day(uow, world, clock)
    bank = tmp_path / "rendicion.txt"
    bank.write_bytes(rendicion(LINES))
    report = tmp_path / "out.csv"
    agreement = str(world.agreement.id)

    result = run(db_url, "reconcile", "--agreement", agreement, str(bank), "--report", str(report))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert (
        f"Reconciliation 1: agreement {agreement}, accounting date 2026-03-02, file "
        "rendicion.txt (layout bancoestado-rendicion)." in out
    )
    for row in (
        "│ matched        │ 2         │",
        "│ only_bank      │ 2         │",
        "│ only_recaudo   │ 1         │",
        "│ amount_differs │ 1         │",
        "│ duplicated     │ 1         │",
        "│ bank total     │ 15700 CLP │",
        "│ Recaudo total  │ 8700 CLP  │",
    ):
        assert row in out, out
    assert (
        "Recorded 2 payments only the bank had, each with an exception to review "
        "(`recaudo exceptions list`): 5, 6." in out
    )
    assert "bank 1200, Recaudo 1000" in out
    assert "transaction T1 is in the file more than once" in out
    assert "not in the bank's file" in out
    assert "│ matched " not in out.split("differences")[1]
    assert result.stderr.strip() == f"Report with 7 items written to {report}."
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert (
        lines[0] == "Tipo,Transacción,Referencia,Monto banco,Monto Recaudo,Fecha,Línea,Pago,Detalle"
    )
    assert lines[2] == 'Monto distinto,T2,P-1,1200,1000,2026-03-02,4,2,"bank 1200, Recaudo 1000"'
    assert count_payments(uow) == 6

    again = run(db_url, "reconcile", "--agreement", agreement, str(bank), "--date", "2026-03-02")
    assert again.exit_code == 0, again.stderr
    assert "Recorded" not in again.stdout
    assert "Reconciliation 2:" in again.stdout
    assert count_payments(uow) == 6

    listing = run(db_url, "reconciliation", "list", "--agreement", agreement)
    assert listing.exit_code == 0, listing.stderr
    assert "rendicion.txt" in listing.stdout and "15700" in listing.stdout

    book = tmp_path / "only-bank.xlsx"
    shown = run(db_url, "reconciliation", "show", "1", "--kind", "only_bank", "--export", str(book))
    assert shown.exit_code == 0, shown.stderr
    assert "T5" in shown.stdout and "T6" in shown.stdout and "T2" not in shown.stdout
    sheet = openpyxl.load_workbook(book, read_only=True).active
    assert sheet is not None
    assert len(list(sheet.iter_rows(values_only=True))) == 8  # every item, plus the titles


def test_a_refused_file_lists_every_error(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    world = build_world(uow, company, clock)
    data = rendicion(LINES)
    lines = data.split(b"\r\n")
    lines[1] = lines[1][:71] + b"00000000012X0" + lines[1][84:]
    lines[2] = lines[2][:99] + b"20260230" + lines[2][107:]  # 30 February
    bank = tmp_path / "bad.txt"
    bank.write_bytes(b"\r\n".join(lines))
    result = run(db_url, "reconcile", "--agreement", str(world.agreement.id), str(bank))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "line 2, record detail, field debt_amount (columns 72-84): '00000000012X0' is not a "
        "number (digits only)",
        "line 3, record detail, field paid_date (columns 100-107): '20260230' is not a valid "
        "date (AAAAMMDD)",
        "line 1: header total (sum of Monto Pagado): the file says 15700, its records give 14200",
        "Error: the file does not conform to layout bancoestado-rendicion (3 errors); nothing "
        "was recorded",
    ]
    assert count_payments(uow) == 0


def test_bad_arguments(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    world = build_world(uow, company, clock)
    bank = tmp_path / "r.txt"
    bank.write_bytes(rendicion(LINES[:1]))
    agreement = str(world.agreement.id)
    bad_date = run(db_url, "reconcile", "--agreement", agreement, str(bank), "--date", "3/2")
    assert (bad_date.exit_code, bad_date.stderr.strip()) == (
        2,
        "Error: --date must be YYYY-MM-DD, not '3/2'",
    )
    bad_report = run(db_url, "reconcile", "--agreement", agreement, str(bank), "--report", "x.pdf")
    assert (bad_report.exit_code, bad_report.stderr.strip()) == (
        2,
        "Error: the report file must end in .csv or .xlsx",
    )
    unknown = run(db_url, "reconcile", "--agreement", "999", str(bank))
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "Error: no agreement 999")
    layout = run(db_url, "reconcile", "--agreement", agreement, str(bank), "--layout", "nope")
    assert layout.exit_code == 2
    assert layout.stderr.startswith("Error: cannot use layout 'nope': unknown layout 'nope'")
    missing = run(db_url, "reconciliation", "show", "42")
    assert (missing.exit_code, missing.stderr.strip()) == (1, "Error: no reconciliation 42")


def test_layout_command(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    world = build_world(uow, company, clock)
    agreement = str(world.agreement.id)
    path = write_layout(tmp_path)
    result = run(db_url, "reconciliation", "layout", "--agreement", agreement, str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        f"Agreement {agreement} reads its bank's files with layout {path.resolve()}."
    )
    bank = tmp_path / "bank.txt"
    bank.write_bytes(bank_file(path, [Line(ANA, "A-1", 5000, "T5")]))
    reconciled = run(db_url, "reconcile", "--agreement", agreement, str(bank))
    assert reconciled.exit_code == 0, reconciled.stderr
    assert f"(layout {path.resolve()})" in reconciled.stdout
    cleared = run(db_url, "reconciliation", "layout", "--agreement", agreement, "--clear")
    assert cleared.stdout.strip() == (
        f"Agreement {agreement} reads its bank's files with layout bancoestado-rendicion."
    )
    neither = run(db_url, "reconciliation", "layout", "--agreement", agreement)
    assert (neither.exit_code, neither.stderr.strip()) == (2, "Error: give a layout, or --clear")
