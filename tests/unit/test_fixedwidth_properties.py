"""Property tests: any record written reads back equal, for every type, padding and Null.

Also: the generated fast code and the field-by-field slow path agree on every line, so
the precise error path never gives a different answer from the fast one.
"""

from __future__ import annotations

import io
import string
from datetime import date, time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recaudo.formats.fixedwidth import Layout, Record, load_layout, parse_layout

PADS = ("_*", "*_", "0*", "*0")
DATE_MASKS = ("AAAAMMDD", "DDMMAAAA", "AAMMDD", "DD/MM/AAAA", "MMDDYY")
TIME_MASKS = ("HHMMSS", "HHMM", "HH:MM:SS")
ALFA = string.ascii_letters + string.digits + " -.,/'&#áéíóúñÑü"
CHAR = string.ascii_letters + " .,'&/-" + "áéíóúñÑü"


def field_specs() -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for null in (False, True):
        for pad in PADS:
            specs.append({"type": "Num", "pad": pad, "length": 7, "null": null})
            specs.append({"type": "Alfa", "pad": pad, "length": 9, "null": null})
            specs.append({"type": "Char", "pad": pad, "length": 6, "null": null})
        for mask in DATE_MASKS:
            specs.append({"type": "Fecha", "mask": mask, "length": len(mask), "null": null})
        for mask in TIME_MASKS:
            specs.append({"type": "Hhmmss", "mask": mask, "length": len(mask), "null": null})
    specs.append({"type": "Num", "pad": "0*", "length": 14, "decimals": 2, "null": False})
    return specs


SPECS = field_specs()


def layout_text(encoding: str, newline: str) -> str:
    lines = []
    pos = 3
    for i, spec in enumerate(SPECS):
        parts = [f'name = "f{i}"', f"start = {pos}", f"length = {spec['length']}"]
        parts.append(f'type = "{spec["type"]}"')
        if "pad" in spec:
            parts.append(f'pad = "{spec["pad"]}"')
        if "mask" in spec:
            parts.append(f'mask = "{spec["mask"]}"')
        if spec.get("decimals"):
            parts.append(f"decimals = {spec['decimals']}")
        parts.append(f"null = {'true' if spec['null'] else 'false'}")
        lines.append("  { " + ", ".join(parts) + " },")
        pos += spec["length"]
    return (
        f'name = "everything"\nencoding = "{encoding}"\nnewline = "{newline}"\n'
        f"record_length = {pos - 1}\nrecord_type = {{ start = 1, length = 2 }}\n"
        '[records.row]\ncode = "R1"\nfields = [\n'
        '  { name = "type", start = 1, length = 2, value = "R1" },\n' + "\n".join(lines) + "\n]\n"
    )


LAYOUTS = {
    (enc, nl): parse_layout(layout_text(enc, nl).encode())
    for enc, nl in (("latin-1", "CRLF"), ("utf-8", "LF"), ("ascii", "CRLF"))
}


def text_value(alphabet: str, spec: dict[str, Any]) -> st.SearchStrategy[str]:
    pad = spec["pad"]

    def fits(s: str) -> bool:
        if not s.strip():
            return False
        # What the notation cannot carry (docs/layouts.md): the fill character at the
        # value's edge where the fill goes.
        if pad == "*_":
            return s == s.rstrip()
        if pad == "_*":
            return s == s.lstrip()
        if pad == "0*":
            return not s.startswith("0")
        return not s.endswith("0")

    return st.text(alphabet, min_size=1, max_size=spec["length"]).filter(fits)


def value_strategy(spec: dict[str, Any], ascii_only: bool) -> st.SearchStrategy[Any]:
    kind = spec["type"]
    strategy: st.SearchStrategy[Any]
    if kind == "Num":
        top = 10 ** spec["length"] - 1
        strategy = st.integers(0, top)
        if spec["pad"] == "*0":
            strategy = strategy.filter(lambda n: n == 0 or n % 10 != 0)
    elif kind in ("Alfa", "Char"):
        alphabet = ALFA if kind == "Alfa" else CHAR
        if ascii_only:
            alphabet = "".join(ch for ch in alphabet if ch.isascii())
        strategy = text_value(alphabet, spec)
    elif kind == "Fecha":
        two_digit = "AAAA" not in spec["mask"] and "YYYY" not in spec["mask"]
        low, high = (
            (date(2000, 1, 1), date(2099, 12, 31))
            if two_digit
            else (date(1, 1, 1), date(9999, 12, 31))
        )
        strategy = st.dates(low, high)
    else:
        strategy = st.times().map(lambda t: t.replace(microsecond=0, tzinfo=None))
        if "SS" not in spec["mask"]:
            strategy = strategy.map(lambda t: t.replace(second=0))
    if spec["null"]:
        strategy = st.none() | strategy
    return strategy


def record_strategy(ascii_only: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {f"f{i}": value_strategy(spec, ascii_only) for i, spec in enumerate(SPECS)}
    )


def roundtrip(layout: Layout, values: dict[str, Any]) -> None:
    record = Record("row", values)
    data = layout.dumps([record, record])
    lines = data.split(layout.newline.encode())
    assert lines[-1] == b""
    parsed = list(layout.read(io.BytesIO(data)))
    assert [p.errors for p in parsed] == [[], []]
    assert parsed[0].record == record
    assert parsed[1].record == record
    # The slow paths agree with the fast ones.
    text = data.decode(layout.encoding).split(layout.newline)[0]
    assert layout.parse_line(text + layout.newline).record == record
    spec = layout.records["row"]
    assert layout._format_slow(spec, values, 1) == text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(record_strategy(ascii_only=False))
def test_latin1_roundtrip(values: dict[str, Any]) -> None:
    roundtrip(LAYOUTS[("latin-1", "CRLF")], values)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(record_strategy(ascii_only=False))
def test_utf8_roundtrip(values: dict[str, Any]) -> None:
    roundtrip(LAYOUTS[("utf-8", "LF")], values)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(record_strategy(ascii_only=True))
def test_ascii_roundtrip(values: dict[str, Any]) -> None:
    roundtrip(LAYOUTS[("ascii", "CRLF")], values)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_read_without_raising(data: bytes) -> None:
    layout = LAYOUTS[("latin-1", "CRLF")]
    report = layout.check(io.BytesIO(b"R1" + data))
    assert report.lines >= 1
    for parsed in layout.read(io.BytesIO(data)):
        assert parsed.record is not None or parsed.errors


@settings(max_examples=200, deadline=None)
@given(
    record_strategy(ascii_only=False),
    st.integers(0, 400),
    st.characters(codec="latin-1", exclude_characters="\r\n"),
)
def test_one_changed_character_is_read_or_reported(
    values: dict[str, Any], position: int, char: str
) -> None:
    """Flip one character of a good line: the fast and slow readers still agree."""
    layout = LAYOUTS[("latin-1", "CRLF")]
    line = layout.dumps([Record("row", values)]).decode("latin-1")
    body = line[:-2]
    position %= len(body)
    changed = body[:position] + char + body[position + 1 :] + "\r\n"
    fast = list(layout.read(io.BytesIO(changed.encode("latin-1"))))
    slow = layout.parse_line(changed)
    assert len(fast) == 1
    if fast[0].errors:
        assert fast[0].errors == slow.errors
    else:
        assert fast[0].record == slow.record
        assert slow.errors == []


def test_times_and_dates_fixture() -> None:
    # A fixed example of every mask, checked by eye.
    layout = LAYOUTS[("latin-1", "CRLF")]
    values: dict[str, Any] = {}
    for i, spec in enumerate(SPECS):
        if spec["type"] == "Num":
            values[f"f{i}"] = 123
        elif spec["type"] in ("Alfa", "Char"):
            values[f"f{i}"] = "Ab"
        elif spec["type"] == "Fecha":
            values[f"f{i}"] = date(2026, 3, 9)
        else:
            values[f"f{i}"] = time(7, 5, 0) if "SS" not in spec["mask"] else time(7, 5, 4)
    line = layout.dumps([Record("row", values)]).decode("latin-1")
    pieces = []
    pos = 2
    for spec in SPECS:
        pieces.append(line[pos : pos + spec["length"]])
        pos += spec["length"]
    assert pieces[:12] == [
        "    123", "       Ab", "    Ab",
        "123    ", "Ab       ", "Ab    ",
        "0000123", "0000000Ab", "0000Ab",
        "1230000", "Ab0000000", "Ab0000",
    ]  # fmt: skip
    assert pieces[12:20] == [
        "20260309", "09032026", "260309", "09/03/2026", "030926",
        "070504", "0705", "07:05:04",
    ]  # fmt: skip


ASOBANCARIA = load_layout("asobancaria-2001")


def asobancaria_file(lots: list[list[int]]) -> list[Record]:
    records = [
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
        )
    ]
    for number, amounts in enumerate(lots, 1):
        records.append(Record("05", {"service_code": 7709998888487, "lot_number": number}))
        for k, amount in enumerate(amounts, 1):
            values = {
                "reference": str(1000 + k),
                "amount": amount,
                "payment_origin": 1,
                "payment_method": 1,
                "operation_number": k,
                "authorization_number": 0,
                "debited_bank_code": 7,
                "branch_code": 1,
                "sequence": k,
                "return_cause": None,
            }
            records.append(Record("06", values))
        lot_values = {"detail_count": len(amounts), "total_amount": sum(amounts)}
        records.append(Record("08", {**lot_values, "lot_number": number}))
    all_amounts = [a for lot in lots for a in lot]
    records.append(
        Record("09", {"detail_count": len(all_amounts), "total_amount": sum(all_amounts)})
    )
    return records


LOTS = st.lists(st.lists(st.integers(1, 10**12), max_size=6), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(LOTS)
def test_consistent_asobancaria_files_pass_every_check(lots: list[list[int]]) -> None:
    report = ASOBANCARIA.check(io.BytesIO(ASOBANCARIA.dumps(asobancaria_file(lots))))
    assert report.errors == []
    assert report.ok
    assert len(report.checks) == 3 * len(lots) + 2


@settings(max_examples=100, deadline=None)
@given(LOTS, st.data())
def test_a_wrong_lot_total_fails_exactly_its_check(lots: list[list[int]], data: Any) -> None:
    records = asobancaria_file(lots)
    trailers = [i for i, r in enumerate(records) if r.kind == "08"]
    target = data.draw(st.sampled_from(trailers))
    values = dict(records[target].values)
    values["total_amount"] = values["total_amount"] + data.draw(st.integers(1, 1000))  # type: ignore[operator]
    records[target] = Record("08", values)
    report = ASOBANCARIA.check(io.BytesIO(ASOBANCARIA.dumps(records)))
    failed = [(c.name, c.line_no) for c in report.checks if not c.ok]
    assert failed == [("lot total (08 vs sum of 06 amounts)", target + 1)]
