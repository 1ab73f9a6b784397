"""`recaudo layout list|show|read` (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recaudo.cli import app

runner = CliRunner()
DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "asobancaria"


def test_layout_list_and_show() -> None:
    result = runner.invoke(app, ["layout", "list"])
    assert result.exit_code == 0, result.output
    assert "asobancaria-2001" in result.output
    assert "bancoestado-rendicion" in result.output
    result = runner.invoke(app, ["layout", "show", "bancoestado-rendicion"])
    assert result.exit_code == 0, result.output
    assert "ID Crédito" in result.output
    assert "debts_in_payment" in result.output
    assert "encoding latin-1, newline CRLF, 200 characters per record" in result.output


def test_layout_read_good_file() -> None:
    result = runner.invoke(
        app, ["layout", "read", "--layout", "asobancaria-2001", str(SAMPLES / "26AGOSTO.TXT")]
    )
    assert result.exit_code == 0, result.output
    assert "26AGOSTO.TXT read with asobancaria-2001: 26 lines" in result.output
    assert "The file conforms to the layout." in result.output
    assert "MISMATCH" not in result.output


def test_layout_read_good_file_json() -> None:
    result = runner.invoke(
        app,
        ["layout", "read", "--layout", "asobancaria-2001", "--json", "--limit", "3",
         str(SAMPLES / "11JULIO.TXT")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["file"] == "11JULIO.TXT"
    assert document["counts"] == {"01": 1, "05": 1, "06": 17, "08": 1, "09": 1}
    assert document["error_count"] == 0
    file_total = next(c for c in document["checks"] if c["name"].startswith("file total"))
    assert file_total == {
        "name": "file total (09 vs sum of 06 amounts)",
        "scope": "file",
        "line": 21,
        "expected": 30_000_000,
        "found": 30_000_000,
        "ok": True,
    }
    assert [r["kind"] for r in document["records"]] == ["01", "05", "06"]
    assert document["records"][0]["values"]["collection_date"] == "2024-07-11"
    assert document["records"][2]["values"]["reference"] == "1055909"
    assert document["records"][2]["values"]["amount"] == 1_800_000


def test_layout_read_bad_file_lists_errors_and_fails() -> None:
    result = runner.invoke(
        app,
        ["layout", "read", "--layout", "asobancaria-2001", "--no-records",
         str(SAMPLES / "asobancaria_test.txt")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "MISMATCH" in result.output
    assert "line is 55 characters long, expected 162" in result.output
    assert "The file does not conform: 18 error(s), 8 failed control check(s)." in result.output


def test_layout_read_bad_file_json() -> None:
    result = runner.invoke(
        app,
        ["layout", "read", "--layout", "asobancaria-2001", "--json", "--no-records",
         str(SAMPLES / "asobancaria_test.txt")],
    )  # fmt: skip
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "records" not in document
    assert document["error_count"] == 18
    assert document["errors"][1] == {
        "line": 1,
        "record": "01",
        "field": None,
        "start": 1,
        "end": 55,
        "message": "line is 55 characters long, expected 162",
    }
    assert sum(1 for c in document["checks"] if not c["ok"]) == 8


def test_layout_read_with_a_company_layout_file(tmp_path: Path) -> None:
    layout = tmp_path / "mibanco.toml"
    layout.write_text(
        'name = "mibanco"\nencoding = "ascii"\nnewline = "LF"\nrecord_length = 12\n'
        "record_type = { start = 1, length = 1 }\n"
        '[records.detail]\ncode = "D"\nfields = [\n'
        '  { name = "type", start = 1, length = 1, value = "D" },\n'
        '  { name = "amount", start = 2, length = 6, type = "Num" },\n'
        '  { name = "day", start = 8, length = 5, type = "Alfa" },\n]\n'
    )
    data = tmp_path / "file.txt"
    data.write_bytes(b"D000123lunes\nD0001x3marte\n")
    result = runner.invoke(app, ["layout", "read", "--layout", str(layout), str(data)])
    assert result.exit_code == 1
    assert "line 2" not in result.output or "amount" in result.output
    assert "'0001x3' is not a number (digits only)" in result.output
    assert "lunes" in result.output


def test_layout_read_invalid_layout_exits_2(tmp_path: Path) -> None:
    layout = tmp_path / "broken.toml"
    layout.write_text('name = "broken"\nrecord_length = 10\n[records.d]\ncode = "D"\nfields = []\n')
    data = tmp_path / "file.txt"
    data.write_bytes(b"D\n")
    result = runner.invoke(app, ["layout", "read", "--layout", str(layout), str(data)])
    assert result.exit_code == 2
    assert "layout broken, record d: code 'D' is not 2 characters long" in result.output
