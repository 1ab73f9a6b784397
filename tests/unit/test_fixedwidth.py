"""The fixed-width engine: shipped layouts (golden bytes, Asobancaria samples), errors."""

from __future__ import annotations

import io
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from recaudo.formats.fixedwidth import (
    FieldError,
    Layout,
    LayoutError,
    Record,
    available_layouts,
    load_layout,
    parse_layout,
    records_to_table,
)

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "asobancaria"
GOLDEN = DATA / "fixedwidth"
DAY = date(2026, 11, 20)


def bancoestado_records() -> list[Record]:
    """A payment that settled 3 debts (3 details) and one that settled 1."""

    def detail(seq: int, debt: str, amount: int, n: int, pay: int, **extra: object) -> Record:
        values: dict[str, object] = {
            "rut": 12345678,
            "rut_dv": "5",
            "customer_name": "María José Núñez",
            "debt_id": debt,
            "debt_amount": amount,
            "debts_in_payment": n,
            "payment_amount": pay,
            "paid_date": date(2026, 11, 19),
            "paid_time": time(14, 5, 9),
            "channel": "CAJA VECINA",
            "transaction_id": "CV-000981",
            "convenio": "4471",
            "accounting_date": DAY,
            "sequence": seq,
        }
        values.update(extra)
        return Record("detail", values)

    return [
        Record(
            "header",
            {
                "company_rut": 76543210,
                "company_rut_dv": "3",
                "company_name": "Aguas del Valle S.A.",
                "convenio": "4471",
                "accounting_date": DAY,
                "generated_date": DAY,
                "generated_time": time(18, 30, 5),
                "record_count": 4,
                "payment_count": 2,
                "total_amount": 47_350,
            },
        ),
        detail(1, "134371", 15_000, 3, 40_000),
        detail(2, "134372", 15_000, 3, 40_000),
        detail(3, "134373", 10_000, 3, 40_000),
        detail(
            4,
            "P-77",
            7_350,
            1,
            7_350,
            rut="9876543",  # digits as text are accepted for Num
            rut_dv="K",
            customer_name=None,  # Null: blanks
            paid_time=time(9, 0, 0),
            channel="INTERNET",
            transaction_id="WEB77120",
        ),
    ]


def asobancaria_records() -> list[Record]:
    def detail(
        ref: str, amount: int, method: int, op: int, auth: int, bank: int, branch: int, seq: int
    ) -> Record:
        return Record(
            "06",
            {
                "reference": ref,
                "amount": amount,
                "payment_origin": 1,
                "payment_method": method,
                "operation_number": op,
                "authorization_number": auth,
                "debited_bank_code": bank,
                "branch_code": branch,
                "sequence": seq,
                "return_cause": None,
            },
        )

    return [
        Record(
            "01",
            {
                "biller_nit": 9006491199,
                "collection_date": date(2024, 7, 24),
                "bank_code": 1,
                "account_number": 62912613,
                "file_date": date(2024, 7, 25),
                "file_time": time(10, 0),
                "file_modifier": "A",
                "account_type": 2,
            },
        ),
        Record("05", {"service_code": 7709998888487, "lot_number": 1}),
        detail("1060968", 8_400_000, 1, 0, 0, 999, 8, 2),
        detail("1062572", 1_500_000, 2, 123456, 654321, 7, 250, 3),
        Record("08", {"detail_count": 2, "total_amount": 9_900_000, "lot_number": 1}),
        Record("09", {"detail_count": 2, "total_amount": 9_900_000}),
    ]


# --- shipped layouts ------------------------------------------------------------------------


def test_shipped_layouts_are_listed_and_load() -> None:
    assert available_layouts() == ["asobancaria-2001", "bancoestado-rendicion"]
    for name in available_layouts():
        layout = load_layout(name)
        assert layout.name == name
        assert load_layout(name) is layout  # compiled once


def test_bancoestado_golden_bytes() -> None:
    layout = load_layout("bancoestado-rendicion")
    data = layout.dumps(bancoestado_records())
    assert data == (GOLDEN / "bancoestado-rendicion.golden.txt").read_bytes()
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) == 200 for line in lines[:-1])
    # Latin-1: one byte per character, accents kept.
    assert lines[1][11:51] == "María José Núñez".ljust(40).encode("latin-1")
    assert lines[1][:11] == b"20123456785"
    assert lines[4][:11] == b"2009876543K"
    assert lines[4][11:51] == b" " * 40


def test_bancoestado_reads_back_and_checks() -> None:
    layout = load_layout("bancoestado-rendicion")
    data = (GOLDEN / "bancoestado-rendicion.golden.txt").read_bytes()
    parsed = list(layout.read(io.BytesIO(data)))
    assert [p.errors for p in parsed] == [[]] * 5
    written = bancoestado_records()
    for p, record in zip(parsed, written, strict=True):
        assert p.record is not None
        expected = dict(record.values)
        if record.kind == "detail":
            expected["rut"] = int(expected["rut"])  # type: ignore[call-overload]
            expected["reference"] = expected["debt_id"]
        assert p.record == Record(record.kind, expected)
    report = layout.check(io.BytesIO(data))
    assert report.ok
    assert report.counts == {"header": 1, "detail": 4}
    assert [(c.name, c.found, c.expected) for c in report.checks] == [
        ("header count (details)", 4, 4),
        ("header total (sum of Monto Pagado)", 47_350, 47_350),
    ]


def test_bancoestado_optional_control_record_is_checked_when_present() -> None:
    layout = load_layout("bancoestado-rendicion")
    control = Record("control", {"record_count": 4, "payment_count": 2, "total_amount": 47_000})
    data = layout.dumps([*bancoestado_records(), control])
    report = layout.check(io.BytesIO(data))
    assert not report.ok
    failed = [(c.name, c.line_no, c.found, c.expected) for c in report.checks if not c.ok]
    assert failed == [("control total (sum of Monto Pagado)", 6, 47_000, 47_350)]
    assert report.error_count == 0


def test_asobancaria_golden_bytes() -> None:
    layout = load_layout("asobancaria-2001")
    data = layout.dumps(asobancaria_records())
    assert data == (GOLDEN / "asobancaria-2001.golden.txt").read_bytes()
    report = layout.check(io.BytesIO(data))
    assert report.ok
    assert len(report.checks) == 5


@pytest.mark.parametrize(
    ("name", "details", "total"),
    [
        ("11JULIO.TXT", 17, 30_000_000),
        ("24JULIO.TXT", 77, 13_393_100_000),
        ("26AGOSTO.TXT", 22, 64_000_000),
    ],
)
def test_asobancaria_good_samples(name: str, details: int, total: int) -> None:
    layout = load_layout("asobancaria-2001")
    data = (SAMPLES / name).read_bytes()
    report = layout.check(io.BytesIO(data))
    assert report.errors == []
    assert report.ok
    assert report.counts == {"01": 1, "05": 1, "06": details, "08": 1, "09": 1}
    by_name = {c.name: c for c in report.checks}
    assert by_name["file count (09 vs 06 records)"].found == details
    assert by_name["file total (09 vs sum of 06 amounts)"].found == total
    assert by_name["lot total (08 vs sum of 06 amounts)"].expected == total
    # Written back, the file is the same (the samples' last record is unpadded and
    # unterminated, which the writer always pads and terminates).
    records = [p.record for p in layout.read(io.BytesIO(data))]
    rewritten = layout.dumps(r for r in records if r is not None)
    last = data.rsplit(b"\r\n", 1)[-1]
    if last:
        data = data[: -len(last)] + last.ljust(162) + b"\r\n"
    assert rewritten == data


def test_asobancaria_sample_values() -> None:
    layout = load_layout("asobancaria-2001")
    parsed = list(layout.read(io.BytesIO((SAMPLES / "24JULIO.TXT").read_bytes())))
    header = parsed[0].record
    assert header is not None
    assert header.values["biller_nit"] == 9006491199
    assert header.values["collection_date"] == date(2024, 7, 24)
    assert header.values["paid_date"] == date(2024, 7, 24)
    assert header.values["file_time"] == time(10, 0)
    assert header.values["account_type"] == 2
    first = parsed[2].record
    assert first is not None and first.kind == "06"
    assert first.values["reference"] == "106096800000000009004345062402"
    assert first.values["amount"] == 8_400_000  # 84,000.00
    assert first.values["return_cause"] is None
    assert first.values["debited_bank_code"] == 999


def test_asobancaria_inconsistent_sample_is_reported() -> None:
    layout = load_layout("asobancaria-2001")
    report = layout.check(io.BytesIO((SAMPLES / "asobancaria_test.txt").read_bytes()))
    assert not report.ok
    failed = [(c.name, c.line_no, c.found, c.expected) for c in report.checks if not c.ok]
    assert failed == [
        ("lot count (08 vs 06 records)", 5, 1, 2),
        ("lot total (08 vs sum of 06 amounts)", 5, 100_000_000, 200_000_000),
        ("lot number (08 vs 05)", 5, 11, 1),
        ("lot count (08 vs 06 records)", 9, 1, 2),
        ("lot total (08 vs sum of 06 amounts)", 9, 100_000_000, 200_000_000),
        ("lot number (08 vs 05)", 9, 11, 1),
        ("file count (09 vs 06 records)", 10, 1, 4),
        ("file total (09 vs sum of 06 amounts)", 10, 100_000_000, 400_000_000),
    ]
    messages = {str(e) for e in report.errors}
    assert "line 1: line ends in LF, expected CRLF" in messages
    assert "line 1, record 01, columns 1-55: line is 55 characters long, expected 162" in messages


def test_asobancaria_concatenated_sample_does_not_crash() -> None:
    layout = load_layout("asobancaria-2001")
    report = layout.check(io.BytesIO((SAMPLES / "VARIOS.TXT").read_bytes()))
    assert not report.ok
    assert report.lines == 124
    assert report.error_count == len(report.errors) > 0
    assert any("cannot follow" in e.message for e in report.errors) or any(
        not c.ok for c in report.checks
    )
    assert [c.ok for c in report.checks if c.scope == "file"] == [False, False]


# --- reading errors -------------------------------------------------------------------------


def bancoestado_line(**changes: object) -> bytes:
    records = bancoestado_records()
    values = dict(records[1].values)
    values.update(changes)
    return load_layout("bancoestado-rendicion").dumps([Record("detail", values)])


def read_errors(layout: Layout, data: bytes) -> list[str]:
    return [str(e) for p in layout.read(io.BytesIO(data)) for e in p.errors]


def patch(line: bytes, start: int, text: bytes) -> bytes:
    """Put `text` at 1-based column `start`."""
    return line[: start - 1] + text + line[start - 1 + len(text) :]


def test_reading_reports_letters_in_a_numeric_field() -> None:
    layout = load_layout("bancoestado-rendicion")
    line = patch(bancoestado_line(), 72, b"00000000150O0")  # letter O for a zero
    assert read_errors(layout, line) == [
        "line 1, record detail, field debt_amount, columns 72-84: "
        "'00000000150O0' is not a number (digits only)"
    ]
    line = patch(bancoestado_line(), 72, b"-000000015000")
    assert read_errors(layout, line) == [
        "line 1, record detail, field debt_amount, columns 72-84: "
        "'-000000015000' is not a number (digits only)"
    ]


def test_reading_reports_a_bad_date_and_time() -> None:
    layout = load_layout("bancoestado-rendicion")
    line = patch(bancoestado_line(), 100, b"20261131250000")
    assert read_errors(layout, line) == [
        "line 1, record detail, field paid_date, columns 100-107: "
        "'20261131' is not a valid date (AAAAMMDD)",
        "line 1, record detail, field paid_time, columns 108-113: "
        "'250000' is not a valid time (HHMMSS)",
    ]


def test_reading_reports_wrong_length_unknown_type_and_newline() -> None:
    layout = load_layout("bancoestado-rendicion")
    good = bancoestado_line()
    short = good[:150] + b"\r\n"
    unknown = b"7" + good[1:]
    lf = good[:-2] + b"\n"
    parsed = list(layout.read(io.BytesIO(short + unknown + lf + good)))
    assert len(parsed) == 4
    assert parsed[0].errors[0] == FieldError(
        1, "detail", None, 1, 150, "line is 150 characters long, expected 200"
    )
    assert "field convenio, columns 174-183: missing (line too short)" in str(
        [str(e) for e in parsed[0].errors]
    )
    assert parsed[1].record is None
    assert [str(e) for e in parsed[1].errors] == [
        "line 2, columns 1-1: unknown record type '7' (known: '1', '2', '9')"
    ]
    assert [str(e) for e in parsed[2].errors] == ["line 3: line ends in LF, expected CRLF"]
    assert parsed[2].record is not None  # the rest of the line still reads
    assert parsed[3].errors == []


def test_reading_reports_empty_required_fields_and_bad_fillers() -> None:
    layout = load_layout("bancoestado-rendicion")
    line = patch(bancoestado_line(), 52, b" " * 20)  # debt_id
    line = patch(line, 200, b"X")  # filler
    assert read_errors(layout, line) == [
        "line 1, record detail, field debt_id, columns 52-71: required field is empty",
        f"line 1, record detail, field filler, columns 199-200: expected {' ' * 2!r}, "
        f"found {' X'!r}",
    ]


def test_reading_checks_structure() -> None:
    layout = load_layout("asobancaria-2001")
    records = asobancaria_records()
    # A detail before its lot header, and no 09 at the end.
    data = layout.dumps([records[0], records[2], records[1], records[2], records[4]])
    report = layout.check(io.BytesIO(data))
    messages = [str(e) for e in report.errors]
    assert messages == [
        "line 2, record 06: record 06 cannot follow record 01 (allowed after: 05, 06)",
        "line 3, record 05: record 05 cannot follow record 06 (allowed after: 01, 08)",
        "line 5, record 08: the file ends with record 08; it must end with 09",
    ]


def test_a_garbage_file_never_raises() -> None:
    layout = load_layout("asobancaria-2001")
    garbage = bytes(range(256)) * 40 + b"\r\n06\r\n\r\n" + b"\xff" * 500
    report = layout.check(io.BytesIO(garbage))
    assert not report.ok
    assert report.error_count > 0


# --- writing errors -------------------------------------------------------------------------


def test_writing_refuses_an_over_long_value() -> None:
    layout = load_layout("bancoestado-rendicion")
    records = bancoestado_records()
    values = dict(records[2].values, debt_id="X" * 21)
    with pytest.raises(LayoutError) as caught:
        layout.dumps([records[0], records[1], Record("detail", values)])
    assert str(caught.value) == (
        "line 3, record detail, field debt_id (columns 52-71): "
        f"value {'X' * 21!r} is 21 characters long, the field holds 20"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"debt_amount": -5},
            "field debt_amount (columns 72-84): -5 is not a non-negative integer",
        ),
        (
            {"debt_amount": 10**13},
            "field debt_amount (columns 72-84): value '10000000000000' is 14 characters long, "
            "the field holds 13",
        ),
        (
            {"debt_amount": 12.5},
            "field debt_amount (columns 72-84): 12.5 is not an integer "
            "(amounts are integer minor units)",
        ),
        (
            {"rut": "12.345.678"},
            "field rut (columns 2-10): '12.345.678' is not a non-negative integer",
        ),
        (
            {"paid_date": "2026-11-19"},
            "field paid_date (columns 100-107): '2026-11-19' is not a date",
        ),
        (
            {"paid_time": None},
            "field paid_time (columns 108-113): attribute 'paid_time' is required",
        ),
        (
            {"channel": ""},
            "field channel (columns 114-133): attribute 'channel' is required (empty)",
        ),
    ],
)
def test_writing_names_the_field_and_columns(changes: dict[str, object], message: str) -> None:
    layout = load_layout("bancoestado-rendicion")
    values = dict(bancoestado_records()[1].values, **changes)
    with pytest.raises(LayoutError) as caught:
        layout.dumps([Record("detail", values)])
    assert str(caught.value) == f"line 1, record detail, {message}"


def test_writing_a_missing_attribute_and_an_unknown_record() -> None:
    layout = load_layout("bancoestado-rendicion")
    values = dict(bancoestado_records()[1].values)
    del values["sequence"]
    with pytest.raises(
        LayoutError,
        match=r"field sequence \(columns 192-198\): attribute 'sequence' is required \(missing\)",
    ):
        layout.dumps([Record("detail", values)])
    with pytest.raises(LayoutError, match="has no record type 'trailer'"):
        layout.dumps([Record("trailer", {})])


def test_control_characters_become_blanks() -> None:
    line = bancoestado_line(customer_name="Ana\r\nSoto\t")
    assert line[11:51] == b"Ana  Soto".ljust(40)
    assert line.count(b"\r\n") == 1


# --- layout files, encodings, notation ------------------------------------------------------

SMALL = """
name = "small"
encoding = "{encoding}"
newline = "{newline}"
record_length = 30
record_type = {{ start = 1, length = 1 }}

[records.detail]
code = "D"
fields = [
  {{ name = "type", start = 1, length = 1, value = "D" }},
  {{ name = "name", start = 2, length = 10, type = "Alfa" }},
  {{ name = "who", start = 12, length = 6, type = "Char", null = true }},
  {{ name = "amount", start = 18, length = 7, type = "Num", pad = "_*", decimals = 2 }},
  {{ name = "day", start = 25, length = 6, type = "Fecha", mask = "DDMMAA" }},
]
"""


def small(encoding: str = "latin-1", newline: str = "CRLF") -> Layout:
    return parse_layout(SMALL.format(encoding=encoding, newline=newline).encode(), ".toml")


def test_ascii_layout_folds_accents() -> None:
    layout = small("ascii", "LF")
    record = Record("detail", {"name": "Peñalolén", "who": "Ñuñoa", "amount": 12345, "day": DAY})
    assert layout.dumps([record]) == b"DPenalolen Nunoa   12345201126\n"
    assert (
        layout.dumps([record])
        == b"D" + b"Penalolen ".ljust(10) + b"Nunoa " + b"  12345" + b"201126\n"
    )


def test_latin1_and_utf8_keep_accents() -> None:
    record = Record("detail", {"name": "Peñalolén", "who": None, "amount": 5, "day": DAY})
    assert (
        small("latin-1").dumps([record])
        == "DPeñalolén       ".encode("latin-1") + b"      5201126\r\n"
    )
    data = small("utf-8").dumps([record])
    assert data.decode("utf-8") == "DPeñalolén             5201126\r\n"
    parsed = list(small("utf-8").read(io.BytesIO(data)))
    assert parsed[0].errors == []
    assert parsed[0].record == Record(
        "detail", {"name": "Peñalolén", "who": None, "amount": 5, "day": DAY}
    )


def test_char_fields_refuse_digits() -> None:
    layout = small()
    with pytest.raises(LayoutError, match=r"field who \(columns 12-17\): 'R2D2' has characters"):
        layout.dumps([Record("detail", {"name": "x", "who": "R2D2", "amount": 1, "day": DAY})])
    line = b"D" + b"x".ljust(10) + b"R2D2  " + b"1".rjust(7) + b"201126\r\n"
    assert read_errors(layout, line) == [
        "line 1, record detail, field who, columns 12-17: "
        "'R2D2' has digits or symbols in an alphabetic (Char) field"
    ]


def test_two_digit_years_are_2000_to_2099() -> None:
    layout = small()
    with pytest.raises(LayoutError, match="year 1999 does not fit the mask DDMMAA"):
        layout.dumps([Record("detail", {"name": "x", "amount": 1, "day": date(1999, 1, 1)})])


def test_yaml_layout(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nencoding: latin-1\nnewline: LF\nrecord_length: 8\n"
        "record_type: {start: 1, length: 1}\n"
        "records:\n  row:\n    code: R\n    fields:\n"
        "      - {name: type, start: 1, length: 1, value: R}\n"
        "      - {name: n, start: 2, length: 7, type: Num}\n"
    )
    layout = load_layout(path)
    assert layout.dumps([Record("row", {"n": 42})]) == b"R0000042\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            '{ name = "type", start = 1, length = 1, value = "D" },'
            '{ name = "a", start = 3, length = 8 }',
            "field a (columns 3-10): leaves columns 2-2 undefined",
        ),
        (
            '{ name = "type", start = 1, length = 1, value = "D" },'
            '{ name = "a", start = 2, length = 5 }, { name = "b", start = 5, length = 6 }',
            "field b (columns 5-10): overlaps the previous field",
        ),
        (
            '{ name = "type", start = 1, length = 1, value = "D" },'
            '{ name = "a", start = 2, length = 9, type = "Num", pad = "0_" }',
            "pad '0_' (_*, *_, 0*, *0)",
        ),
        (
            '{ name = "type", start = 1, length = 1, value = "D" },'
            '{ name = "a", start = 2, length = 9, type = "Fecha", mask = "AAAAMMDD" }',
            "mask 'AAAAMMDD' is not 9 characters long",
        ),
        (
            '{ name = "type", start = 1, length = 1, value = "D" },'
            '{ name = "a", start = 2, length = 5 }',
            "fields cover columns 1-6, the record is 10 long",
        ),
        (
            '{ name = "a", start = 1, length = 10 }',
            "columns 1-1 must be a field with value = 'D'",
        ),
    ],
)
def test_layout_file_errors(fields: str, message: str) -> None:
    text = (
        'name = "bad"\nrecord_length = 10\nrecord_type = { start = 1, length = 1 }\n'
        f'[records.detail]\ncode = "D"\nfields = [{fields}]\n'
    )
    with pytest.raises(LayoutError) as caught:
        parse_layout(text.encode())
    assert message in str(caught.value)
    assert str(caught.value).startswith("layout bad, record detail")


def test_unknown_layout_name() -> None:
    with pytest.raises(LayoutError, match="unknown layout 'nope'"):
        load_layout("nope")


# --- CSV / XLSX -----------------------------------------------------------------------------


def test_records_to_table_csv_and_xlsx() -> None:
    layout = load_layout("asobancaria-2001")
    table = records_to_table(layout, asobancaria_records(), record_kind="06")
    assert table.headers[:3] == [
        "Referencia principal del usuario",
        "Valor recaudado",
        "Procedencia de pago",
    ]
    out = io.BytesIO()
    table.write(out, "csv")
    lines = out.getvalue().decode("utf-8-sig").splitlines()
    assert lines[1] == "1060968,84000.00,1,1,0,0,999,8,2,"
    assert len(lines) == 3
    xlsx = io.BytesIO()
    records_to_table(layout, asobancaria_records(), record_kind="06").write(xlsx, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.getvalue())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][1] == "Valor recaudado"
    assert Decimal(str(rows[2][1])) == Decimal("15000")


def test_records_to_table_bancoestado_titles() -> None:
    layout = load_layout("bancoestado-rendicion")
    table = records_to_table(layout, bancoestado_records())
    assert (
        "ID Crédito" in table.headers
        and "Monto Pagado" in table.headers
        and "Cuota" in table.headers
    )
    rows = list(table.rows())
    assert len(rows) == 4
    assert rows[0][1][table.headers.index("Fecha de pago")] == "2026-11-19"


def test_zero_fill_notation_edges() -> None:
    layout = parse_layout(
        b"""
name = "zeros"
record_length = 21
record_type = { start = 1, length = 1 }
[records.z]
code = "Z"
fields = [
  { name = "type", start = 1, length = 1, value = "Z" },
  { name = "left", start = 2, length = 10, type = "Alfa", pad = "0*" },
  { name = "right", start = 12, length = 10, type = "Num", pad = "*0" },
]
"""
    )
    # Leading zeros of a 0* text are fill: written and read back without them.
    data = layout.dumps([Record("z", {"left": "0012", "right": 123})])
    assert data == b"Z0000000012" + b"1230000000\r\n"
    assert next(iter(layout.read(io.BytesIO(data)))).record == Record(
        "z", {"left": "12", "right": 123}
    )
    # All zeros is the value zero.
    data = layout.dumps([Record("z", {"left": "000", "right": 0})])
    assert data == b"Z" + b"0" * 20 + b"\r\n"
    assert next(iter(layout.read(io.BytesIO(data)))).record == Record(
        "z", {"left": "0", "right": 0}
    )
    # A *0 number ending in 0 would read back as another number: refused.
    with pytest.raises(LayoutError, match=r"field right \(columns 12-21\): 120 ends in 0"):
        layout.dumps([Record("z", {"left": "1", "right": 120})])


def test_bytes_the_encoding_cannot_decode_are_reported() -> None:
    layout = small("ascii", "LF")
    good = layout.dumps([Record("detail", {"name": "Pena", "amount": 1, "day": DAY})])
    bad = good.replace(b"Pena", b"Pe\xf1a")
    parsed = list(layout.read(io.BytesIO(good + bad)))
    assert parsed[0].errors == []
    assert [str(e) for e in parsed[1].errors] == [
        "line 2, record detail, columns 4-4: bytes that are not valid ascii (first at column 4)"
    ]


def test_a_blank_required_text_is_refused() -> None:
    layout = load_layout("bancoestado-rendicion")
    values = dict(bancoestado_records()[1].values, debt_id="   ")
    with pytest.raises(
        LayoutError,
        match=r"field debt_id \(columns 52-71\): attribute 'debt_id' is required \(empty\)",
    ):
        layout.dumps([Record("detail", values)])


def test_folding_works_across_write_chunks() -> None:
    layout = small("ascii", "CRLF")
    plain = Record("detail", {"name": "Pena", "amount": 1, "day": DAY})
    accented = Record("detail", {"name": "Peña", "amount": 2, "day": DAY})
    records = [plain] * 2500 + [accented] + [plain] * 2000
    out = io.BytesIO()
    assert layout.write(iter(records), out) == 4501
    lines = out.getvalue().split(b"\r\n")
    assert len(lines) == 4502
    assert lines[2500] == b"D" + b"Pena".ljust(10) + b" " * 6 + b"2".rjust(7) + b"201126"
    assert (
        lines[0] == lines[4500] == b"D" + b"Pena".ljust(10) + b" " * 6 + b"1".rjust(7) + b"201126"
    )
