"""The tabular codec: CSV and XLSX in (separators, encodings, header aliases), CSV and XLSX out."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from recaudo.domain.errors import ValidationFailed
from recaudo.formats.tabular import (
    Cell,
    Column,
    CsvTable,
    TableFormat,
    build_layout,
    cell_text,
    detect_encoding,
    header_key,
    open_table,
    write_table,
)

COLUMNS = (
    Column("national_id", ("rut", "customer_id"), required=True),
    Column("amount", ("monto", "amount"), required=True),
    Column("concept", ("concepto", "concept")),
)


def rows_of(path: Path) -> list[tuple[int, list[str]]]:
    with open_table(path, COLUMNS) as table:
        return list(table.rows())


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Fecha de Vencimiento", "fecha_de_vencimiento"),
        ("  EMISIÓN ", "emision"),
        ("Teléfono-Móvil", "telefono_movil"),
        ("e-mail", "e_mail"),
        ("", ""),
    ],
)
def test_header_key_ignores_case_accents_and_punctuation(text: str, key: str) -> None:
    assert header_key(text) == key


def test_layout_matches_spanish_and_english_names_and_ignores_extra_columns() -> None:
    layout = build_layout(["Sucursal", "Customer_ID", "MONTO", ""], COLUMNS)
    assert dict(layout.index) == {"national_id": 1, "amount": 2}
    assert layout.labels == ("Sucursal", "Customer_ID", "MONTO", "column_4")
    assert layout.label("amount") == "MONTO"


def test_layout_refuses_a_missing_required_column_naming_what_it_wants() -> None:
    with pytest.raises(ValidationFailed) as caught:
        build_layout(["rut", "total"], COLUMNS)
    assert caught.value.details["missing"] == ["amount"]
    assert "amount (named monto or amount)" in caught.value.message
    assert "'total'" in caught.value.message


def test_layout_refuses_two_columns_with_one_meaning() -> None:
    with pytest.raises(ValidationFailed, match="'rut' and 'customer_id' both mean national_id"):
        build_layout(["rut", "customer_id", "monto"], COLUMNS)


def test_labels_are_unique_and_fit_an_issue_column() -> None:
    layout = build_layout(["rut", "monto", "x", "x", "y" * 80], COLUMNS)
    assert layout.labels == ("rut", "monto", "x", "x (2)", "y" * 64)


# ----------------------------------------------------------------------------- CSV


def test_comma_file_in_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "rut,monto,concepto\n1-9,100,Plan móvil\n2-7,200,\n")
    with open_table(path, COLUMNS) as table:
        assert isinstance(table, CsvTable)
        assert (table.format, table.encoding, table.delimiter) == ("csv", "utf-8", ",")
        assert list(table.rows()) == [(2, ["1-9", "100", "Plan móvil"]), (3, ["2-7", "200", ""])]


def test_semicolon_file_in_latin1_with_decimal_commas(tmp_path: Path) -> None:
    text = "RUT;Monto;Concepto\n1-9;1234,50;Electricidad año 2026\n"
    path = write(tmp_path / "a.csv", text, "latin-1")
    with open_table(path, COLUMNS) as table:
        assert isinstance(table, CsvTable)
        assert (table.encoding, table.delimiter) == ("latin-1", ";")
        assert list(table.rows()) == [(2, ["1-9", "1234,50", "Electricidad año 2026"])]


def test_utf8_with_bom_keeps_the_first_header(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "\ufeffrut;monto\n1-9;100\n")
    with open_table(path, COLUMNS) as table:
        assert isinstance(table, CsvTable)
        assert table.encoding == "utf-8-sig"
        assert table.layout.index["national_id"] == 0
        assert list(table.rows()) == [(2, ["1-9", "100"])]


def test_latin1_is_detected_even_after_megabytes_of_ascii(tmp_path: Path) -> None:
    ascii_rows = "".join(f"{n}-9,{n}\n" for n in range(200_000))  # about 2 MB
    path = write(tmp_path / "a.csv", "rut,monto\n" + ascii_rows + "9-9,1,Peñalolén\n", "latin-1")
    assert path.stat().st_size > 2 * 2**20
    assert detect_encoding(path) == "latin-1"
    *_, last = rows_of(path)
    assert last == (200_002, ["9-9", "1", "Peñalolén"])


def test_a_multibyte_character_split_across_scan_chunks_is_still_utf8(tmp_path: Path) -> None:
    head = "rut,monto\n"
    filler = "x" * (2**20 - len(head) - 1)  # "ñ" straddles the first 1 MiB boundary
    path = write(tmp_path / "a.csv", head + filler + "ñ\n")
    assert detect_encoding(path) == "utf-8"


def test_blank_lines_are_skipped_but_counted_and_quotes_are_honoured(tmp_path: Path) -> None:
    text = '\n\nrut,monto,concepto\n1-9,100,"a, b"\n\n,,\n2-7,200,"two\nlines"\n'
    assert rows_of(write(tmp_path / "a.csv", text)) == [
        (4, ["1-9", "100", "a, b"]),
        (7, ["2-7", "200", "two\nlines"]),
    ]


def test_bytes_read_reaches_the_file_size(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "rut,monto\n" + "1-9,100\n" * 50_000)
    with open_table(path, COLUMNS) as table:
        seen = [table.bytes_read for _ in table.rows()]
    assert seen[0] < table.size
    assert seen == sorted(seen)
    assert seen[-1] == table.size == path.stat().st_size


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "no header row"),
        (b"rut,monto\x00\n", "binary data"),
        (b"\xff\xfer\x00u\x00t\x00", "UTF-16"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, r"legacy \.xls"),
        (b"PK\x03\x04garbage", "unreadable workbook"),
        (b"nombre,total\nAna,100\n", "missing required column"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed, match=message):
        open_table(path, COLUMNS)


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ValidationFailed, match="unreadable workbook"):
        open_table(path, COLUMNS)


def test_an_unterminated_quote_is_reported_with_its_row(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'rut,monto\n1-9,100\n2-7,"200\n')
    with open_table(path, COLUMNS) as table, pytest.raises(ValidationFailed, match="row 3"):
        list(table.rows())


def test_a_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="cannot read the file"):
        open_table(tmp_path / "nope.csv", COLUMNS)


# ----------------------------------------------------------------------------- XLSX


def test_xlsx_cells_come_out_as_typed_text(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([])
    sheet.append(["Concepto", "Monto", "RUT", "Vence"])
    sheet.append(["Plan", 15990, "1-9", datetime(2026, 3, 1)])
    sheet.append([None, None, None, None])
    sheet.append(["Cuota", 12.5, "2-7", datetime(2026, 3, 1, 10, 30)])
    sheet.append(["Otro", 100.0, 123, True])
    path = tmp_path / "a.xlsx"
    book.save(path)
    with open_table(path, COLUMNS) as table:
        assert table.format == TableFormat.XLSX
        assert dict(table.layout.index) == {"concept": 0, "amount": 1, "national_id": 2}
        rows = list(table.rows())
        assert table.bytes_read == table.size
    assert rows == [
        (3, ["Plan", "15990", "1-9", "2026-03-01"]),
        (5, ["Cuota", "12.5", "2-7", "2026-03-01 10:30:00"]),
        (6, ["Otro", "100", "123", "TRUE"]),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (0.1, "0.1"), (3.0, "3"), (date(2026, 1, 2), "2026-01-02"), (False, "FALSE")],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


# ----------------------------------------------------------------------------- writing


def test_csv_written_is_read_back_identically(tmp_path: Path) -> None:
    rows: list[list[Cell]] = [
        ["1-9", Decimal("1234.50"), date(2026, 3, 1), 'Plan; móvil, "40 GB"'],
        ["2-7", 5, datetime(2026, 3, 2, 13, 0, tzinfo=UTC), None],
    ]
    out = io.BytesIO()
    write_table(["rut", "monto", "vence", "concepto"], rows, "csv", out)
    assert out.getvalue().startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    path = tmp_path / "out.csv"
    path.write_bytes(out.getvalue())
    assert rows_of(path) == [
        (2, ["1-9", "1234.50", "2026-03-01", 'Plan; móvil, "40 GB"']),
        (3, ["2-7", "5", "2026-03-02T13:00:00+00:00", ""]),
    ]


def test_csv_defuses_formulas_but_keeps_signed_numbers() -> None:
    out = io.BytesIO()
    cells: list[Cell] = [
        '=HYPERLINK("x")',
        "-500",
        "+12,5",
        "-1+2",
        "@SUM(A1)",
        "plain",
        Decimal("-3.5"),
    ]
    write_table(["a", "b", "c", "d", "e", "f", "g"], [cells], "csv", out)
    line = out.getvalue().decode("utf-8-sig").splitlines()[1]
    assert line == """"'=HYPERLINK(""x"")",-500,"+12,5",'-1+2,'@SUM(A1),plain,-3.5"""


def test_write_table_leaves_the_callers_stream_open() -> None:
    out = io.BytesIO()
    write_table(["a"], [], "csv", out)
    assert not out.closed
    assert out.getvalue() == b"\xef\xbb\xbfa\r\n"


def test_xlsx_written_keeps_text_as_text_and_timestamps_in_utc() -> None:
    out = io.BytesIO()
    moment = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).astimezone()  # any offset
    write_table(
        ["texto", "monto", "cuando", "día"],
        [["=1+2", Decimal("12.50"), moment, date(2026, 3, 1)], [None, 7, None, None]],
        "xlsx",
        out,
    )
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True)
    sheet = book.worksheets[0]
    assert list(sheet.iter_rows(values_only=True)) == [
        ("texto", "monto", "cuando", "día"),
        ("=1+2", 12.5, datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 1)),
        (None, 7),  # openpyxl writes no trailing empty cells
    ]


def test_unknown_output_format_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown table format 'ods'"):
        write_table(["a"], [], "ods", io.BytesIO())
