"""`recaudo settle` and `recaudo settlement list|show|download`, on both backends."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from typer.testing import CliRunner, Result

from recaudo.adapters.db.tables import Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.formats import fixedwidth
from recaudo.services.context import Actor
from tests.conftest import FrozenClock
from tests.integration.test_settlements import DATA, golden_day, set_layout

runner = CliRunner()


def run(db_url: str, data_dir: Path, *args: str) -> Result:
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_DATA_DIR": str(data_dir), "COLUMNS": "240"}
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_settle_list_show_download(
    db_url: str,
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    data_dir = tmp_path / "data"
    agreement = str(acme.caja_vecina)

    first = run(db_url, data_dir, "settle", "--agreement", agreement, "--date", "2026-03-02")
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0] == "rendicion_caja-vecina_4321_20260302.txt (version 1, new version)"
    assert lines[1] == "payments 4, records 7, total 113490 CLP"
    assert lines[2].startswith("sha256 ") and len(lines[2]) == len("sha256 ") + 64
    sha = lines[2].split()[1]

    # The command runs on the real clock: the header says when, and a re-run reuses it.
    again = run(db_url, data_dir, "settle", "--agreement", agreement, "--date", "2026-03-02")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "rendicion_caja-vecina_4321_20260302.txt (version 1, unchanged, already generated)",
        lines[1],
        lines[2],
    ]

    listing = run(db_url, data_dir, "settlement", "list", "--agreement", agreement)
    assert listing.exit_code == 0, listing.output
    assert "rendicion_caja-vecina_4321_20260302.txt" in listing.stdout
    assert "113490 CLP" in listing.stdout
    empty = run(db_url, data_dir, "settlement", "list", "--date", "2026-03-03")
    assert "rendicion" not in empty.stdout

    shown = run(db_url, data_dir, "settlement", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert f"sha256:          {sha}" in shown.stdout
    assert "records:         7" in shown.stdout
    assert "layout:          bancoestado-rendicion" in shown.stdout
    assert "by cli:" in shown.stdout

    target = tmp_path / "out.txt"
    downloaded = run(db_url, data_dir, "settlement", "download", "1", "-o", str(target))
    assert downloaded.exit_code == 0, downloaded.output
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    # Same details as the golden file; only the header's generation moment differs.
    golden = (DATA / "bancoestado-rendicion.txt").read_bytes()
    assert data.splitlines()[1:] == golden.splitlines()[1:]
    assert data[:69] == golden[:69]
    report = fixedwidth.load_layout("bancoestado-rendicion").check(io.BytesIO(data))
    assert report.ok, report.as_dict()
    to_stdout = run(db_url, data_dir, "settlement", "download", "1", "-o", "-")
    assert to_stdout.stdout_bytes == data

    # A changed layout is a new version, shown first.
    set_layout(uow, acme.caja_vecina, "csv")
    csv_run = run(db_url, data_dir, "settle", "--agreement", agreement, "--date", "2026-03-02")
    assert csv_run.stdout.splitlines()[0] == (
        "rendicion_caja-vecina_4321_20260302_v2.csv (version 2, new version)"
    )
    csv_file = tmp_path / "out.csv"
    run(db_url, data_dir, "settlement", "download", "2", "-o", str(csv_file))
    assert csv_file.read_bytes() == (DATA / "rendicion.csv").read_bytes()


def test_errors_exit_non_zero(
    db_url: str,
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    data_dir = tmp_path / "data"
    agreement = str(acme.caja_vecina)
    bad = run(db_url, data_dir, "settle", "--agreement", agreement, "--date", "02-03-2026")
    assert (bad.exit_code, bad.stderr.strip()) == (
        2,
        "Error: '02-03-2026' is not a date (YYYY-MM-DD)",
    )
    sunday = run(db_url, data_dir, "settle", "--agreement", agreement, "--date", "2026-03-01")
    assert sunday.exit_code == 2
    assert "2026-03-01 is not a business day for acme" in sunday.stderr
    unknown = run(db_url, data_dir, "settle", "--agreement", "999", "--date", "2026-03-02")
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "Error: no agreement 999")
    missing = run(db_url, data_dir, "settlement", "show", "7")
    assert (missing.exit_code, missing.stderr.strip()) == (1, "Error: no settlement file 7")
    gone = run(db_url, data_dir, "settlement", "download", "7")
    assert gone.exit_code == 1


def test_settlement_config(
    db_url: str,
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    data_dir = tmp_path / "data"
    agreement = str(acme.internet)
    shown = run(db_url, data_dir, "settlement", "config", agreement)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        f"agreement:       {agreement}",
        "layout:          bancoestado-rendicion",
        "time:            18:30",
        "daily job:       enabled",
        "control record:  no",
    ]
    changed = run(
        db_url, data_dir, "settlement", "config", agreement,
        "--layout", "xlsx", "--time", "20:00", "--disabled", "--control-record",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.splitlines()[1:] == [
        "layout:          xlsx",
        "time:            20:00",
        "daily job:       disabled",
        "control record:  yes",
    ]
    bad_time = run(db_url, data_dir, "settlement", "config", agreement, "--time", "8pm")
    assert (bad_time.exit_code, bad_time.stderr.strip()) == (
        2,
        "Error: '8pm' is not a time (HH:MM)",
    )
    missing = run(db_url, data_dir, "settlement", "config", agreement, "--layout", "nope.toml")
    assert missing.exit_code == 2
    assert "cannot be loaded" in missing.stderr
