"""Declarative fixed-width files: a layout (TOML or YAML) in, a fast writer and reader out.

Banks describe their files as tables of fields: position, length, type (`Alfa`, `Char`,
`Num`, `Fecha` with a mask, `Hhmmss`), padding in their own notation (`_*` right-aligned
with spaces on the left, `*_` left-aligned, `0*` zero-filled on the left, `*0` zeros on
the right), implied decimals and whether the field may be empty (`Null`). A layout file
says the same thing, so a company can drop in the layout its bank gave it without code.

Speed: every record type is compiled ONCE, when the layout is loaded, into two small
Python functions generated as source and `exec`-ed — an f-string formatter and a slicing
parser with the positions, widths and constants inlined. Interpreting the field list per
record would cost several times more (a loop, attribute lookups and a branch per field);
the generated code runs about as fast as a hand-written writer/reader for that one layout
(see docs/benchmarks.md). Only names we generate and `repr()`-ed constants reach the
generated source, so a layout file cannot inject code.

The fast functions handle well-formed data only and give up (return None or raise) on
anything unusual: a missing attribute, an empty optional field, a value too long, an
accent the encoding lacks, a non-digit in a numeric field. The line is then redone by the
slow, field-by-field path, which either produces the right output or names exactly what is
wrong (record, line, field, columns). So errors are precise and the common case is fast.

Reading never raises on bad data: every problem becomes a `FieldError` on its line and
reading goes on. `Checker` adds the structural rules (which record may follow which) and
the declarative control checks (counts and sums of detail fields against control-record
fields, per lot and per file).
"""

from __future__ import annotations

import io
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from recaudo.formats.tabular import Cell, Table, TableFormat, write_table
from recaudo.formats.tabular import Layout as TabularLayout

__all__ = [
    "Checker",
    "ControlCheck",
    "FieldError",
    "FieldSpec",
    "Layout",
    "LayoutError",
    "ParsedLine",
    "ReadReport",
    "Record",
    "RecordTable",
    "RecordType",
    "available_layouts",
    "load_layout",
    "parse_layout",
    "records_to_table",
]

TYPES = ("Alfa", "Char", "Num", "Fecha", "Hhmmss")
PADS = ("_*", "*_", "0*", "*0")
ENCODINGS = {"latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1",
             "ascii": "ascii", "utf-8": "utf-8", "utf8": "utf-8"}  # fmt: skip
NEWLINES = {"CRLF": "\r\n", "LF": "\n"}
START = "^"  # in a record type's `after`: it may be the file's first record
MAX_ERRORS_KEPT = 10_000  # a garbage file must not exhaust memory; the count stays exact
WRITE_CHUNK = 2048  # lines encoded and written at once
# Char ("alfabético"): letters, blanks and the punctuation names carry; no digits.
_CHAR_BAD = re.compile(r"[^\w .,'&/-]|[\d_]")
_MASK_TOKEN = re.compile(r"AAAA|YYYY|AA|YY|MM|DD")
_TIME_TOKEN = re.compile(r"HH|MM|SS")


class LayoutError(ValueError):
    """A layout file that is wrong, or a value that cannot be written (names where)."""


@dataclass(frozen=True, slots=True, init=False)
class Record:
    """One line of a file: its record type's name and its values by attribute name."""

    kind: str
    values: Mapping[str, object]

    def __init__(self, kind: str, values: Mapping[str, object]) -> None:
        # Frozen, so set through the slots' descriptors: a third cheaper than the
        # generated object.__setattr__ calls, and the reader makes one Record per line.
        _SET_KIND(self, kind)
        _SET_VALUES(self, values)


_SET_KIND = cast(Any, Record).kind.__set__
_SET_VALUES = cast(Any, Record).values.__set__


@dataclass(slots=True)
class FieldError:
    """A problem on one line; `start`/`end` are 1-based inclusive columns (0 when n/a)."""

    line_no: int
    record: str | None
    field: str | None
    start: int
    end: int
    message: str

    def __str__(self) -> str:
        where = [f"line {self.line_no}"]
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.start:
            where.append(f"columns {self.start}-{self.end}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(slots=True)
class ParsedLine:
    line_no: int
    record: Record | None
    errors: list[FieldError]


@dataclass(slots=True)
class ControlCheck:
    """One declarative check evaluated on a file: the control field against what we counted."""

    name: str
    scope: str  # "file" or "lot"
    line_no: int  # the line of the control record
    expected: object  # what the detail records add up to
    found: object  # what the control record says
    ok: bool

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        return (
            f"{self.name} (line {self.line_no}): file says {self.found}, "
            f"records give {self.expected}: {verdict}"
        )


@dataclass(slots=True)
class ReadReport:
    layout: str
    lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # records per kind
    checks: list[ControlCheck] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)  # the first MAX_ERRORS_KEPT
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {
            "layout": self.layout,
            "lines": self.lines,
            "counts": dict(self.counts),
            "ok": self.ok,
            "checks": [
                {
                    "name": c.name,
                    "scope": c.scope,
                    "line": c.line_no,
                    "expected": c.expected,
                    "found": c.found,
                    "ok": c.ok,
                }
                for c in self.checks
            ],
            "error_count": self.error_count,
            "errors": [
                {
                    "line": e.line_no,
                    "record": e.record,
                    "field": e.field,
                    "start": e.start,
                    "end": e.end,
                    "message": e.message,
                }
                for e in self.errors
            ],
        }


# --- the layout model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    start: int  # 1-based, as banks write it
    length: int
    type: str
    pad: str
    mask: str = ""
    decimals: int = 0
    null: bool = False
    value: str | None = None  # fixed content
    source: str = ""  # the attribute it takes (default: its name)
    title: str = ""  # Spanish column title for CSV/XLSX
    aliases: tuple[str, ...] = ()  # extra attribute names it is read under
    check: bool = True  # fixed value verified on read

    @property
    def end(self) -> int:
        return self.start + self.length - 1

    @property
    def fixed(self) -> bool:
        return self.value is not None

    def where(self) -> str:
        return f"field {self.name} (columns {self.start}-{self.end})"


@dataclass(frozen=True, slots=True)
class RecordType:
    kind: str
    code: str
    title: str
    fields: tuple[FieldSpec, ...]
    after: tuple[str, ...]  # kinds it may follow; START for the first line
    max: int | None  # at most this many per file

    def value_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if not f.fixed)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    scope: str  # "file" | "lot"
    record: str  # the control record's kind
    field: str  # its field (attribute) name
    count: str | None = None  # kind counted
    sum: tuple[str, str] | None = None  # (kind, attribute) summed
    equals: tuple[str, str] | None = None  # (kind, attribute) compared


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class Layout:
    """A compiled layout: writes and reads files of its record types."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        encoding: str,
        newline: str,
        record_length: int,
        type_start: int,
        type_length: int,
        records: Sequence[RecordType],
        checks: Sequence[CheckSpec] = (),
        lot: tuple[str, str] | None = None,
        last: Sequence[str] = (),
        lenient_last_line: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.encoding = encoding
        self.newline = newline
        self.record_length = record_length
        self.type_start = type_start
        self.type_length = type_length
        self.records: dict[str, RecordType] = {r.kind: r for r in records}
        self.by_code: dict[str, RecordType] = {r.code: r for r in records}
        self.checks = tuple(checks)
        self.lot = lot
        self.last = tuple(last)
        self.lenient_last_line = lenient_last_line
        self._codec = "ascii" if encoding == "ascii" else encoding
        self._formatters: dict[str, Callable[[Mapping[str, object]], str | None]] = {}
        self._parsers: dict[str, Callable[[str, int], ParsedLine | None]] = {}
        for record in records:
            self._formatters[record.kind] = _compile_formatter(record, record_length)
            self._parsers[record.code] = _compile_parser(
                record, type_start, type_length, self._codec
            )

    def __repr__(self) -> str:
        return f"Layout({self.name!r})"

    # --- writing -------------------------------------------------------------------------

    def format_line(self, record: Record, line_no: int = 0) -> str:
        """One record as text without the newline; LayoutError names what cannot be written."""
        try:
            line = self._formatters[record.kind](record.values)
        except (TypeError, ValueError, KeyError, AttributeError):
            line = None
        if line is None or (self._codec != "utf-8" and not _encodable(line, self._codec)):
            line = self._format_slow_record(record, line_no)
        return line

    def write(self, records: Iterable[Record], out: BinaryIO | IO[bytes]) -> int:
        """Stream `records` to `out`; returns the number of lines written."""
        formatters = self._formatters
        written = 0
        chunk: list[str] = []
        pending: list[Record] = []  # kept to redo a line whose accents the codec lacks
        add_line, add_record = chunk.append, pending.append
        for record in records:
            try:
                line = formatters[record.kind](record.values)
            except (TypeError, ValueError, KeyError, AttributeError):
                line = None
            if line is None:
                # Unknown kind, an empty optional field, a bad value: field by field.
                line = self._format_slow_record(record, written + len(chunk) + 1)
            add_line(line)
            add_record(record)
            if len(chunk) >= WRITE_CHUNK:
                out.write(self._encode_chunk(chunk, pending, written + 1))
                written += len(chunk)
                chunk.clear()
                pending.clear()
        if chunk:
            out.write(self._encode_chunk(chunk, pending, written + 1))
            written += len(chunk)
        return written

    def _format_slow_record(self, record: Record, line_no: int) -> str:
        spec = self.records.get(record.kind)
        if spec is None:
            raise LayoutError(
                f"line {line_no}: layout {self.name} has no record type {record.kind!r} "
                f"(it has {', '.join(self.records)})"
            )
        return self._format_slow(spec, record.values, line_no)

    def dumps(self, records: Iterable[Record]) -> bytes:
        buffer = io.BytesIO()
        self.write(records, buffer)
        return buffer.getvalue()

    def _encode_chunk(self, lines: list[str], records: list[Record], first_no: int) -> bytes:
        newline = self.newline
        text = newline.join(lines) + newline
        try:
            return text.encode(self._codec)
        except UnicodeEncodeError:
            pass
        # Some value has a character the encoding lacks: redo those lines field by field,
        # folding accents (NFKD) before padding so the widths stay right.
        fixed = []
        for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
            if not _encodable(line, self._codec):
                line = self._format_slow(
                    self.records[record.kind], record.values, first_no + offset
                )
            fixed.append(line)
        return (newline.join(fixed) + newline).encode(self._codec)

    def _format_slow(self, spec: RecordType, values: Mapping[str, object], line_no: int) -> str:
        parts = []
        for f in spec.fields:
            parts.append(self._format_field(spec, f, values, line_no))
        line = "".join(parts)
        assert len(line) == self.record_length, (spec.kind, len(line))
        return line

    def _format_field(
        self, spec: RecordType, f: FieldSpec, values: Mapping[str, object], line_no: int
    ) -> str:
        def fail(message: str) -> LayoutError:
            return LayoutError(f"line {line_no}, record {spec.kind}, {f.where()}: {message}")

        if f.fixed:
            text = f.value or ""
            return _pad(text, f) if text else " " * f.length
        key = f.source or f.name
        raw = values.get(key)
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and f.type != "Alfa"):
            if f.null:
                return " " * f.length
            raise fail(f"attribute {key!r} is required" + ("" if key in values else " (missing)"))
        if f.type == "Num":
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise fail(f"{raw!r} is not an integer (amounts are integer minor units)")
            text = raw.strip() if isinstance(raw, str) else str(raw)
            if not text.isascii() or not text.isdigit():
                raise fail(f"{raw!r} is not a non-negative integer")
            text = str(int(text))
        elif f.type == "Fecha":
            if not isinstance(raw, date):
                raise fail(f"{raw!r} is not a date")
            formatted = _format_date(raw, f)
            if formatted is None:
                raise fail(f"year {raw.year} does not fit the mask {f.mask} (2000-2099)")
            text = formatted
        elif f.type == "Hhmmss":
            if not isinstance(raw, time):
                raise fail(f"{raw!r} is not a time")
            text = _format_time(raw, f.mask)
        else:
            text = str(raw)
            text = "".join(" " if not ch.isprintable() else ch for ch in text)
            if self._codec != "utf-8" and not _encodable(text, self._codec):
                text = _fold(text)
                text = text.encode(self._codec, "replace").decode(self._codec)
            if f.type == "Char" and _CHAR_BAD.search(text):
                raise fail(f"{raw!r} has characters a Char (alphabetic) field cannot hold")
            if not text.strip() and not f.null:
                raise fail(f"attribute {key!r} is required (empty)")
            if f.pad == "0*":
                # Leading zeros are the fill: "0012" is written, and read back, as "12".
                text = text.lstrip("0") or "0"
        trailing_zero = text.endswith("0") and text.strip("0")
        if f.pad == "*0" and f.type in ("Num", "Alfa", "Char") and trailing_zero:
            # Trailing zeros would be read back as fill: refuse rather than change the value.
            raise fail(f"{raw!r} ends in 0, which a `*0` (zero-filled on the right) field loses")
        if len(text) > f.length:
            raise fail(f"value {text!r} is {len(text)} characters long, the field holds {f.length}")
        if not text:
            return " " * f.length
        return _pad(text, f)

    # --- reading -------------------------------------------------------------------------

    def read(self, stream: BinaryIO | IO[bytes]) -> Iterator[ParsedLine]:
        """Parse `stream` line by line; never raises on bad data (errors ride on each line)."""
        codec = "latin-1" if self._codec == "latin-1" else self._codec
        text = io.TextIOWrapper(
            stream,
            encoding=codec,
            errors="replace",
            newline="\n" if self.newline.endswith("\n") else "",
        )
        newline = self.newline
        cut = -len(newline)
        full = self.record_length + len(newline)
        a, b = self.type_start - 1, self.type_start - 1 + self.type_length
        parsers = self._parsers
        try:
            for line_no, line in enumerate(text, 1):
                if len(line) == full and line[cut:] == newline:
                    parse = parsers.get(line[a:b])
                    if parse is not None:
                        try:
                            parsed = parse(line, line_no)
                        except (ValueError, TypeError):
                            parsed = None
                        if parsed is not None:
                            yield parsed
                            continue
                yield self._parse_slow(line, line_no)
        finally:
            text.detach()  # the caller owns `stream`

    def parse_line(self, line: str, line_no: int = 1) -> ParsedLine:
        """One line of text (with or without its newline), field by field."""
        return self._parse_slow(line, line_no)

    def _parse_slow(self, line: str, line_no: int) -> ParsedLine:
        errors: list[FieldError] = []
        expected = "CRLF" if self.newline == "\r\n" else "LF"
        if line.endswith("\r\n"):
            ending, body = "CRLF", line[:-2]
        elif line.endswith("\n"):
            ending, body = "LF", line[:-1]
        elif line.endswith("\r"):
            ending, body = "CR", line[:-1]
        else:
            ending, body = "", line
        if ending and ending != expected:
            errors.append(
                FieldError(line_no, None, None, 0, 0, f"line ends in {ending}, expected {expected}")
            )
        elif not ending and not self.lenient_last_line:
            # Only the file's last line can lack the newline.
            errors.append(FieldError(line_no, None, None, 0, 0, f"last line lacks its {expected}"))
        a, b = self.type_start - 1, self.type_start - 1 + self.type_length
        code = body[a:b]
        spec = self.by_code.get(code)
        if spec is None:
            known = ", ".join(repr(c) for c in self.by_code)
            errors.append(
                FieldError(
                    line_no,
                    None,
                    None,
                    a + 1,
                    b,
                    f"unknown record type {code!r} (known: {known})",
                )
            )
            return ParsedLine(line_no, None, errors)
        bad = body.find("\ufffd")
        if bad >= 0 and self._codec != "latin-1":
            errors.append(
                FieldError(
                    line_no,
                    spec.kind,
                    None,
                    bad + 1,
                    bad + 1,
                    f"bytes that are not valid {self.encoding} (first at column {bad + 1})",
                )
            )
        length = len(body)
        if length != self.record_length:
            unterminated = not line.endswith(("\n", "\r"))
            if length < self.record_length and self.lenient_last_line and unterminated:
                body = body.ljust(self.record_length)  # a short unterminated last line is allowed
            else:
                errors.append(
                    FieldError(
                        line_no,
                        spec.kind,
                        None,
                        1,
                        length,
                        f"line is {length} characters long, expected {self.record_length}",
                    )
                )
        values: dict[str, object] = {}
        for f in spec.fields:
            raw = body[f.start - 1 : f.end]
            if len(raw) < f.length:
                if (f.null or (f.fixed and not f.value)) and not raw.strip():
                    if not f.fixed:
                        _put(values, f, None)
                    continue
                errors.append(
                    FieldError(
                        line_no, spec.kind, f.name, f.start, f.end, "missing (line too short)"
                    )
                )
                continue
            try:
                value = _parse_field(raw, f)
            except ValueError as exc:
                errors.append(FieldError(line_no, spec.kind, f.name, f.start, f.end, str(exc)))
                continue
            if not f.fixed:
                _put(values, f, value)
        return ParsedLine(line_no, Record(spec.kind, values), errors)

    def check(self, stream: BinaryIO | IO[bytes]) -> ReadReport:
        """Read the whole stream: counts, structure, control checks and every error."""
        checker = Checker(self)
        for parsed in self.read(stream):
            checker.feed(parsed)
        return checker.finish()

    def checker(self) -> Checker:
        return Checker(self)

    # --- describing ----------------------------------------------------------------------

    def columns(self, record_kind: str) -> list[FieldSpec]:
        """The fields of `record_kind` that carry values (what a CSV/XLSX export shows)."""
        return list(self.record(record_kind).value_fields())

    def record(self, kind: str) -> RecordType:
        try:
            return self.records[kind]
        except KeyError:
            known = ", ".join(self.records)
            raise LayoutError(f"layout {self.name} has no record type {kind!r} ({known})") from None


def _put(values: dict[str, object], f: FieldSpec, value: object) -> None:
    values[f.source or f.name] = value
    for alias in f.aliases:
        values[alias] = value


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _pad(text: str, f: FieldSpec) -> str:
    if f.pad == "_*":
        return text.rjust(f.length)
    if f.pad == "*_":
        return text.ljust(f.length)
    if f.pad == "0*":
        return text.rjust(f.length, "0")
    return text.ljust(f.length, "0")


def _strip(raw: str, pad: str) -> str:
    if pad == "_*":
        return raw.lstrip()
    if pad == "*_":
        return raw.rstrip()
    if pad == "0*":
        return raw.lstrip("0")
    return raw.rstrip("0")


def _format_date(value: date, f: FieldSpec) -> str | None:
    def token(match: re.Match[str]) -> str:
        t = match.group(0)
        if t in ("AAAA", "YYYY"):
            return f"{value.year:04d}"
        if t in ("AA", "YY"):
            return f"{value.year % 100:02d}"
        if t == "MM":
            return f"{value.month:02d}"
        return f"{value.day:02d}"

    two_digit_year = ("AA" in f.mask or "YY" in f.mask) and not _four_digit_year(f.mask)
    if two_digit_year and not 2000 <= value.year <= 2099:
        return None
    return _MASK_TOKEN.sub(token, f.mask)


def _four_digit_year(mask: str) -> bool:
    return "AAAA" in mask or "YYYY" in mask


def _format_time(value: time, mask: str) -> str:
    parts = {"HH": value.hour, "MM": value.minute, "SS": value.second}
    return _TIME_TOKEN.sub(lambda m: f"{parts[m.group(0)]:02d}", mask)


def _parse_field(raw: str, f: FieldSpec) -> object:
    """One field's text to its value; ValueError with a message naming what is wrong."""
    if f.fixed:
        expected = _pad(f.value or "", f) if f.value else " " * f.length
        if f.check and raw != expected:
            raise ValueError(f"expected {expected!r}, found {raw!r}")
        return f.value
    if not raw.strip():
        if f.null:
            return None
        if f.type == "Alfa" or f.type == "Char":
            raise ValueError("required field is empty")
        raise ValueError("required field is blank")
    if f.type == "Num":
        # Blanks around the digits are tolerated whatever the padding (as int() does, which
        # is what the fast path uses); anything else that is not a digit is an error.
        text = raw.strip()
        if f.pad == "*0":
            text = text.rstrip("0") or "0"
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"{raw!r} is not a number (digits only)")
        return int(text)
    if f.type == "Fecha":
        return _parse_date(raw, f.mask)
    if f.type == "Hhmmss":
        return _parse_time(raw, f.mask)
    text = _strip(raw, f.pad)
    if not text and f.pad == "0*":
        text = "0"  # all fill: the value was zero
    if f.type == "Char" and _CHAR_BAD.search(text):
        raise ValueError(f"{raw.strip()!r} has digits or symbols in an alphabetic (Char) field")
    if not text:
        if f.null:
            return None
        raise ValueError("required field is empty")
    return text


def _parse_date(raw: str, mask: str) -> date:
    year = month = day = None
    pos = 0
    for match in _MASK_TOKEN.finditer(mask):
        literal = mask[pos : match.start()]
        if raw[pos : match.start()] != literal:
            raise ValueError(f"{raw!r} does not match the date mask {mask}")
        t = match.group(0)
        piece = raw[match.start() : match.end()]
        if not (piece.isascii() and piece.isdigit()):
            raise ValueError(f"{raw!r} is not a date ({mask})")
        n = int(piece)
        if t in ("AAAA", "YYYY"):
            year = n
        elif t in ("AA", "YY"):
            year = 2000 + n
        elif t == "MM":
            month = n
        else:
            day = n
        pos = match.end()
    if raw[pos:] != mask[pos:]:
        raise ValueError(f"{raw!r} does not match the date mask {mask}")
    try:
        return date(year or 0, month or 0, day or 0)
    except ValueError:
        raise ValueError(f"{raw!r} is not a valid date ({mask})") from None


def _parse_time(raw: str, mask: str) -> time:
    parts = {"HH": 0, "MM": 0, "SS": 0}
    for match in _TIME_TOKEN.finditer(mask):
        piece = raw[match.start() : match.end()]
        if not (piece.isascii() and piece.isdigit()):
            raise ValueError(f"{raw!r} is not a time ({mask})")
        parts[match.group(0)] = int(piece)
    try:
        return time(parts["HH"], parts["MM"], parts["SS"])
    except ValueError:
        raise ValueError(f"{raw!r} is not a valid time ({mask})") from None


# --- code generation ---------------------------------------------------------------------


def _date_reader_expr(f: FieldSpec, base: int) -> str | None:
    """`_date(int(line[a:b]), ...)` for masks made only of AAAA/AA/MM/DD tokens."""
    args: dict[str, str] = {}
    pos = 0
    for match in _MASK_TOKEN.finditer(f.mask):
        if match.start() != pos:
            return None  # separators: the slow path checks them
        s, e = base + match.start(), base + match.end()
        key = {"AAAA": "y", "YYYY": "y", "AA": "yy", "YY": "yy", "MM": "m", "DD": "d"}
        args[key[match.group(0)]] = f"int(line[{s}:{e}])"
        pos = match.end()
    if pos != len(f.mask):
        return None
    if "yy" in args:
        args["y"] = f"2000 + {args.pop('yy')}"
    if set(args) != {"y", "m", "d"}:
        return None
    return f"_date({args['y']}, {args['m']}, {args['d']})"


def _compile_formatter(
    record: RecordType, record_length: int
) -> Callable[[Mapping[str, object]], str | None]:
    consts: dict[str, object] = {}
    lines: list[str] = []
    pieces: list[str] = []
    num_checks: list[str] = []
    other_checks: list[str] = []
    text_vars: list[tuple[str, str]] = []

    def const(value: object) -> str:
        name = f"C{len(consts)}"
        consts[name] = value
        return name

    for i, f in enumerate(record.fields):
        if f.fixed:
            text = _pad(f.value or "", f) if f.value else " " * f.length
            pieces.append("{" + const(text) + "}")
            continue
        var = f"v{i}"
        key = repr(f.source or f.name)
        lines.append(f"    {var} = v.get({key})" if f.null else f"    {var} = v[{key}]")
        n = f.length
        if f.type == "Num":
            # Digits as text (a RUT body, say) are numbers too; anything else -> slow path.
            guard = f"{var} is not None and " if f.null else ""
            lines.append(f"    if {guard}{var}.__class__ is not int: {var} = _num({var})")
            if f.pad == "0*":
                spec = f"0{n}d"
            elif f.pad == "_*":
                spec = f">{n}d"
            elif f.pad == "*_":
                spec = f"<{n}d"
            else:
                return _never  # `*0` numbers are rare: the slow path does them
            if f.null:
                blank = const(" " * n)
                pieces.append(f"{{{blank} if {var} is None else format({var}, {spec!r})}}")
                other_checks.append(f"({var} is not None and {var} < 0)")
            else:
                pieces.append(f"{{{var}:{spec}}}")
                num_checks.append(var)
        elif f.type in ("Fecha", "Hhmmss"):
            parts = _date_writer_parts(f, var) if f.type == "Fecha" else _time_writer_parts(f, var)
            if parts is None:
                return _never
            if f.null:
                blank = const(" " * n)
                inner = "".join("{" + p + "}" for p in parts)
                pieces.append(f"{{{blank} if {var} is None else f'{inner}'}}")
            else:
                pieces.extend("{" + p + "}" for p in parts)
                cls = "_date" if f.type == "Fecha" else "_time"
                other_checks.append(f"{var}.__class__ is not {cls}")
            if f.type == "Fecha" and not _four_digit_year(f.mask):
                other_checks.append(f"({var} is not None and not 2000 <= {var}.year <= 2099)")
        else:
            align = {"_*": ">", "*_": "<", "0*": "0>", "*0": "0<"}[f.pad]
            guard = f"{var} is not None and " if f.null else ""
            if f.null:
                blank = const(" " * n)
                spec = f"{align}{n}"
                pieces.append(
                    f"{{{blank} if {var} is None or {var} == '' else format({var}, {spec!r})}}"
                )
            else:
                pieces.append(f"{{{var}:{align}{n}}}")
                other_checks.append(f"not {var} or {var}.isspace()")
            text_vars.append((var, guard))
            if f.type == "Char":
                other_checks.append(f"({guard}_char_bad({var}) is not None)")
            if f.pad == "*0":
                # A value ending in the fill character would not read back: slow path.
                other_checks.append(f"({guard}{var}[-1:] == '0')")
    body = "\n".join(lines)
    checks = [f"len(line) != {record_length}"]
    # Control characters would break the file's lines: check the text values (one scan of
    # the whole line when there are many).
    if len(text_vars) > 2:
        checks.append("not line.isprintable()")
    else:
        checks.extend(f"({guard}not {var}.isprintable())" for var, guard in text_vars)
    checks.extend(other_checks)
    checks.extend(f"{var} < 0" for var in num_checks)
    params = "".join(f", {name}={name}" for name in consts)
    src = (
        f"def fmt(v, _date=_date, _time=_time, _char_bad=_char_bad, _num=_num{params}):\n"
        f"{body}\n"
        f"    line = f{''.join(pieces)!r}\n"
        f"    if {' or '.join(checks)}:\n"
        f"        return None\n"
        f"    return line\n"
    )
    # The pieces contain `{...}` replacement fields built above; repr() only quoted them.
    namespace: dict[str, Any] = {
        "_date": date,
        "_time": time,
        "_char_bad": _CHAR_BAD.search,
        "_num": _num,
        **consts,
    }
    exec(compile(src, f"<layout writer {record.kind}>", "exec"), namespace)  # noqa: S102
    func: Callable[[Mapping[str, object]], str | None] = namespace["fmt"]
    return func


def _num(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(value)  # the slow path says what is wrong


def _never(values: Mapping[str, object]) -> str | None:
    return None


def _date_writer_parts(f: FieldSpec, var: str) -> list[str] | None:
    """Replacement-field bodies (`v3.year:04d`, ...) for a mask without separators."""
    out = []
    pos = 0
    for match in _MASK_TOKEN.finditer(f.mask):
        if match.start() != pos:
            return None  # masks with separators go through the slow path
        t = match.group(0)
        if t in ("AAAA", "YYYY"):
            out.append(f"{var}.year:04d")
        elif t in ("AA", "YY"):
            out.append(f"{var}.year % 100:02d")
        elif t == "MM":
            out.append(f"{var}.month:02d")
        else:
            out.append(f"{var}.day:02d")
        pos = match.end()
    if pos != len(f.mask):
        return None
    return out


def _time_writer_parts(f: FieldSpec, var: str) -> list[str] | None:
    if ":" in f.mask:
        return None
    attrs = {"HH": "hour", "MM": "minute", "SS": "second"}
    return [f"{var}.{attrs[m.group(0)]}:02d" for m in _TIME_TOKEN.finditer(f.mask)]


def _compile_parser(
    record: RecordType, type_start: int, type_length: int, codec: str
) -> Callable[[str, int], ParsedLine | None]:
    consts: dict[str, object] = {}
    stmts: list[str] = []
    items: list[str] = []
    fail_if: list[str] = []
    digit_slices: list[tuple[int, int]] = []  # 0-based [a, b) columns of digits only
    type_end = type_start + type_length - 1

    def const(value: object) -> str:
        name = f"C{len(consts)}"
        consts[name] = value
        return name

    for i, f in enumerate(record.fields):
        a, b = f.start - 1, f.end
        sl = f"line[{a}:{b}]"
        if f.fixed:
            # The record-type code was matched to choose this parser: no need to recheck it.
            is_code = f.start >= type_start and f.end <= type_end
            if f.check and not is_code:
                expected = _pad(f.value or "", f) if f.value else " " * f.length
                fail_if.append(f"{sl} != {const(expected)}")
            continue
        var = f"v{i}"
        if f.type == "Num":
            if f.pad == "*0":
                return _never_parse
            if f.null:
                stmts.append(f"    s{i} = {sl}")
                stmts.append(f"    {var} = None if s{i}.isspace() else int(s{i})")
                fail_if.append(f"({var} is not None and {var} < 0)")
            elif f.pad == "0*":
                stmts.append(f"    {var} = int({sl})")
                digit_slices.append((a, b))
            else:
                stmts.append(f"    {var} = int({sl})")
                fail_if.append(f"{var} < 0")
        elif f.type == "Fecha":
            expr = _date_reader_expr(f, a)
            if expr is None:
                return _never_parse
            if f.null:
                stmts.append(f"    {var} = None if {sl}.isspace() else {expr}")
            else:
                stmts.append(f"    {var} = {expr}")
                digit_slices.append((a, b))
        elif f.type == "Hhmmss":
            if ":" in f.mask:
                return _never_parse
            args = []
            for m in _TIME_TOKEN.finditer(f.mask):
                args.append(f"int(line[{a + m.start()}:{a + m.end()}])")
            while len(args) < 3:
                args.append("0")
            expr = f"_time({', '.join(args)})"
            if f.null:
                stmts.append(f"    {var} = None if {sl}.isspace() else {expr}")
            else:
                stmts.append(f"    {var} = {expr}")
                digit_slices.append((a, b))
        else:
            strip = {"_*": "lstrip()", "*_": "rstrip()", "0*": "lstrip('0')",
                     "*0": "rstrip('0')"}[f.pad]  # fmt: skip
            stmts.append(f"    {var} = {sl}.{strip}")
            if f.null:
                if f.pad in ("_*", "*_"):
                    stmts.append(f"    {var} = {var} or None")
                else:
                    stmts.append(f"    if not {var} or {var}.isspace(): {var} = None")
                guard = f"{var} is not None and "
            else:
                fail_if.append(f"not {var}")
                guard = ""
            if f.pad in ("0*", "*0") and not f.null:
                # blanks in a zero-filled text field: the slow path says what is wrong
                fail_if.append(f"{var}.isspace()")
            if f.type == "Char":
                fail_if.append(f"({guard}_char_bad({var}) is not None)")
        keys = [f.source or f.name, *f.aliases]
        items.extend(f"{k!r}: {var}" for k in keys)
    if digit_slices:
        # int() also takes a sign and underscores. Checking every digit would cost a third
        # of the parse, so look for those characters in the whole line first (one fast
        # scan each); only when one is there are the numeric columns checked.
        merged: list[list[int]] = []
        for a, b in sorted(digit_slices):
            if merged and merged[-1][1] == a:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        joined = " + ".join(f"line[{a}:{b}]" for a, b in merged)
        strict = f"not ({joined}).isdigit()"
        if codec == "utf-8":
            # Other scripts' digits pass int(); Latin-1 and ASCII have none int() takes.
            fail_if.append(f"not ({joined}).isascii()")
        fail_if.append(f"(('-' in line or '+' in line or '_' in line) and {strict})")
    body = "\n".join(stmts) if stmts else "    pass"
    if codec != "latin-1":
        # Bytes the encoding cannot decode arrive as U+FFFD: the slow path reports them.
        fail_if.append("'\\ufffd' in line")
    check = f"    if {' or '.join(fail_if)}:\n        return None\n" if fail_if else ""
    kind = const(record.kind)
    params = "".join(f", {name}={name}" for name in consts)
    # The whole ParsedLine is built here rather than in the read loop: fewer steps per line.
    src = (
        f"def parse(line, line_no, _date=_date, _time=_time, _char_bad=_char_bad, _PL=_PL, "
        f"_R=_R{params}):\n"
        f"{body}\n"
        f"{check}"
        f"    return _PL(line_no, _R({kind}, {{{', '.join(items)}}}), [])\n"
    )
    namespace: dict[str, Any] = {
        "_date": date,
        "_time": time,
        "_char_bad": _CHAR_BAD.search,
        "_PL": ParsedLine,
        "_R": Record,
        **consts,
    }
    exec(compile(src, f"<layout reader {record.kind}>", "exec"), namespace)  # noqa: S102
    func: Callable[[str, int], ParsedLine | None] = namespace["parse"]
    return func


def _never_parse(line: str, line_no: int) -> ParsedLine | None:
    return None


# --- structure and control checks --------------------------------------------------------


class Checker:
    """Feed it parsed lines in order; `finish()` gives the report.

    Structure: each record type lists the kinds it may follow (`after`), the last line
    must be one of the layout's `last` kinds, and `max` caps a kind's count. Control
    checks compare a control record's field with a count or a sum of detail values (or
    another record's field), per lot (between the layout's lot-opening and lot-closing
    records) or per file.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.report = ReadReport(layout.name)
        self.previous: str | None = None
        self.last_line = 0
        self._file_counts: dict[str, int] = {}
        self._file_sums: dict[tuple[str, str], int] = {}
        self._lot_counts: dict[str, int] = {}
        self._lot_sums: dict[tuple[str, str], int] = {}
        self._file_records: dict[str, tuple[int, Mapping[str, object]]] = {}
        self._lot_records: dict[str, tuple[int, Mapping[str, object]]] = {}
        self._sums = {c.sum for c in layout.checks if c.sum is not None}
        self._lot_open = False

    def _error(self, error: FieldError) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < MAX_ERRORS_KEPT:
            self.report.errors.append(error)

    def feed(self, parsed: ParsedLine) -> None:
        report = self.report
        report.lines += 1
        self.last_line = parsed.line_no
        for error in parsed.errors:
            self._error(error)
        record = parsed.record
        if record is None:
            return
        kind = record.kind
        layout = self.layout
        spec = layout.records[kind]
        count = report.counts.get(kind, 0) + 1
        report.counts[kind] = count
        allowed = spec.after
        prev = self.previous or START
        if allowed and prev not in allowed:
            what = "the start of the file" if prev == START else f"record {prev}"
            self._error(
                FieldError(
                    parsed.line_no,
                    kind,
                    None,
                    0,
                    0,
                    f"record {kind} cannot follow {what} (allowed after: {', '.join(allowed)})",
                )
            )
        if spec.max is not None and count > spec.max:
            self._error(
                FieldError(
                    parsed.line_no, kind, None, 0, 0, f"more than {spec.max} {kind} record(s)"
                )
            )
        self.previous = kind
        lot = layout.lot
        if lot is not None and kind == lot[0]:
            self._lot_counts = {}
            self._lot_sums = {}
            self._lot_records = {}
            self._lot_open = True
        self._file_counts[kind] = self._file_counts.get(kind, 0) + 1
        self._lot_counts[kind] = self._lot_counts.get(kind, 0) + 1
        for s in self._sums:
            if s[0] == kind:
                value = record.values.get(s[1])
                if isinstance(value, int):
                    self._file_sums[s] = self._file_sums.get(s, 0) + value
                    self._lot_sums[s] = self._lot_sums.get(s, 0) + value
        self._file_records[kind] = (parsed.line_no, record.values)
        self._lot_records[kind] = (parsed.line_no, record.values)
        if lot is not None and kind == lot[1]:
            self._evaluate("lot", self._lot_counts, self._lot_sums, self._lot_records)
            self._lot_open = False

    def _evaluate(
        self,
        scope: str,
        counts: Mapping[str, int],
        sums: Mapping[tuple[str, str], int],
        records: Mapping[str, tuple[int, Mapping[str, object]]],
    ) -> None:
        for c in self.layout.checks:
            if c.scope != scope or c.record not in records:
                continue  # an optional control record that is absent is not checked
            line_no, values = records[c.record]
            found = values.get(c.field)
            expected: object
            if c.count is not None:
                expected = counts.get(c.count, 0)
            elif c.sum is not None:
                expected = sums.get(c.sum, 0)
            else:
                assert c.equals is not None
                other = records.get(c.equals[0])
                if other is None:
                    continue
                expected = other[1].get(c.equals[1])
            self.report.checks.append(
                ControlCheck(c.name, scope, line_no, expected, found, expected == found)
            )

    def finish(self) -> ReadReport:
        layout = self.layout
        if self.previous is None:
            self._error(FieldError(0, None, None, 0, 0, "the file has no records"))
        elif layout.last and self.previous not in layout.last:
            self._error(
                FieldError(
                    self.last_line,
                    self.previous,
                    None,
                    0,
                    0,
                    f"the file ends with record {self.previous}; "
                    f"it must end with {' or '.join(layout.last)}",
                )
            )
        if self._lot_open and layout.lot is not None:
            self._error(
                FieldError(
                    self.last_line, None, None, 0, 0, f"lot not closed by a {layout.lot[1]} record"
                )
            )
        self._evaluate("file", self._file_counts, self._file_sums, self._file_records)
        return self.report


# --- loading layouts ---------------------------------------------------------------------


def _layouts_dir() -> Any:
    return resources.files("recaudo.formats").joinpath("layouts")


def available_layouts() -> list[str]:
    """The names of the layouts shipped with Recaudo."""
    names = []
    for entry in _layouts_dir().iterdir():
        if entry.name.endswith(".toml"):
            names.append(entry.name[: -len(".toml")])
    return sorted(names)


_CACHE: dict[str, Layout] = {}


def load_layout(name_or_path: str | Path) -> Layout:
    """A shipped layout by name, or a layout file (.toml, .yaml, .yml) by path."""
    key = str(name_or_path)
    text_path = Path(key)
    if isinstance(name_or_path, Path) or text_path.suffix.lower() in (".toml", ".yaml", ".yml"):
        try:
            data = text_path.read_bytes()
        except OSError as exc:
            raise LayoutError(f"cannot read layout file {key}: {exc.strerror}") from None
        return parse_layout(data, text_path.suffix.lower(), default_name=text_path.stem)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    if key not in available_layouts():
        raise LayoutError(
            f"unknown layout {key!r}: shipped layouts are {', '.join(available_layouts())}, "
            "or give a .toml/.yaml file"
        )
    data = _layouts_dir().joinpath(f"{key}.toml").read_bytes()
    layout = parse_layout(data, ".toml", default_name=key)
    _CACHE[key] = layout
    return layout


def parse_layout(data: bytes, suffix: str = ".toml", *, default_name: str = "layout") -> Layout:
    """Build a layout from a TOML (or YAML) document; LayoutError says what is wrong."""
    try:
        if suffix in (".yaml", ".yml"):
            import yaml  # type: ignore[import-untyped]

            doc = yaml.safe_load(data.decode("utf-8"))
        else:
            doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise LayoutError(f"layout {default_name}: not valid {suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        raise LayoutError(f"layout {default_name}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"layout {default_name}: the document must be a table/mapping")
    return _build(doc, default_name)


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise LayoutError(f"{where}: {key!r} is required")
    value = doc[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise LayoutError(f"{where}: {key!r} has the wrong type ({value!r})")
    return value


def _build(doc: Mapping[str, Any], default_name: str) -> Layout:
    name = str(doc.get("name", default_name))
    where = f"layout {name}"
    encoding_name = str(doc.get("encoding", "latin-1")).lower()
    encoding = ENCODINGS.get(encoding_name)
    if encoding is None:
        raise LayoutError(f"{where}: encoding {encoding_name!r} (latin-1, ascii or utf-8)")
    newline_name = str(doc.get("newline", "CRLF")).upper()
    if newline_name not in NEWLINES:
        raise LayoutError(f"{where}: newline {newline_name!r} (CRLF or LF)")
    record_length = _need(doc, "record_length", int, where)
    rt = doc.get("record_type", {"start": 1, "length": 2})
    if not isinstance(rt, dict):
        raise LayoutError(f"{where}: record_type must be a table with start and length")
    type_start = _need(rt, "start", int, f"{where}, record_type")
    type_length = _need(rt, "length", int, f"{where}, record_type")
    raw_records = _need(doc, "records", dict, where)
    records: list[RecordType] = []
    for kind, rdoc in raw_records.items():
        records.append(
            _build_record(str(kind), rdoc, where, record_length, type_start, type_length)
        )
    if not records:
        raise LayoutError(f"{where}: no record types")
    codes: dict[str, str] = {}
    for r in records:
        if r.code in codes:
            raise LayoutError(
                f"{where}: records {codes[r.code]} and {r.kind} share code {r.code!r}"
            )
        codes[r.code] = r.kind
    kinds = {r.kind for r in records}
    for r in records:
        for prev in r.after:
            if prev != START and prev not in kinds:
                raise LayoutError(f"{where}, record {r.kind}: after names unknown record {prev!r}")
    last = [str(k) for k in doc.get("last", [])]
    for k in last:
        if k not in kinds:
            raise LayoutError(f"{where}: last names unknown record {k!r}")
    lot = None
    if "lot" in doc:
        ldoc = doc["lot"]
        opens, closes = str(ldoc.get("opens", "")), str(ldoc.get("closes", ""))
        if opens not in kinds or closes not in kinds:
            raise LayoutError(f"{where}: lot opens/closes must name record types")
        lot = (opens, closes)
    checks = [
        _build_check(c, where, {r.kind: r for r in records}, lot) for c in doc.get("checks", [])
    ]
    return Layout(
        name=name,
        description=str(doc.get("description", "")),
        encoding=encoding,
        newline=NEWLINES[newline_name],
        record_length=record_length,
        type_start=type_start,
        type_length=type_length,
        records=records,
        checks=checks,
        lot=lot,
        last=last,
        lenient_last_line=bool(doc.get("lenient_last_line", False)),
    )


def _build_record(
    kind: str, rdoc: Any, layout_where: str, record_length: int, type_start: int, type_length: int
) -> RecordType:
    where = f"{layout_where}, record {kind}"
    if not isinstance(rdoc, dict):
        raise LayoutError(f"{where}: must be a table")
    code = str(_need(rdoc, "code", (str, int), where))
    if len(code) != type_length:
        raise LayoutError(f"{where}: code {code!r} is not {type_length} characters long")
    raw_fields = _need(rdoc, "fields", list, where)
    fields = [_build_field(fdoc, where) for fdoc in raw_fields]
    fields.sort(key=lambda f: f.start)
    pos = 1
    seen: set[str] = set()
    for f in fields:
        if f.start != pos:
            gap = (
                "overlaps the previous field"
                if f.start < pos
                else f"leaves columns {pos}-{f.start - 1} undefined"
            )
            raise LayoutError(f"{where}, {f.where()}: {gap}")
        pos = f.end + 1
        for attr in (f.source or f.name, *f.aliases):
            if not f.fixed and attr in seen:
                raise LayoutError(f"{where}, {f.where()}: attribute {attr!r} is used twice")
            seen.add(attr)
    if pos - 1 != record_length:
        raise LayoutError(
            f"{where}: fields cover columns 1-{pos - 1}, the record is {record_length} long"
        )
    ts, te = type_start, type_start + type_length - 1
    covering = [f for f in fields if f.start <= ts and f.end >= te]
    if not covering or not covering[0].fixed:
        raise LayoutError(f"{where}: columns {ts}-{te} must be a field with value = {code!r}")
    cf = covering[0]
    text = _pad(cf.value or "", cf)
    if text[ts - cf.start : te - cf.start + 1] != code:
        raise LayoutError(
            f"{where}: the field at columns {ts}-{te} does not hold the code {code!r}"
        )
    after = rdoc.get("after", [])
    if not isinstance(after, list):
        raise LayoutError(f"{where}: after must be a list of record names")
    max_ = rdoc.get("max")
    if max_ is not None and not isinstance(max_, int):
        raise LayoutError(f"{where}: max must be an integer")
    return RecordType(
        kind=kind,
        code=code,
        title=str(rdoc.get("title", kind)),
        fields=tuple(fields),
        after=tuple(str(a) for a in after),
        max=max_,
    )


def _build_field(fdoc: Any, record_where: str) -> FieldSpec:
    if not isinstance(fdoc, dict):
        raise LayoutError(f"{record_where}: every field must be a table")
    name = str(_need(fdoc, "name", str, record_where))
    where = f"{record_where}, field {name}"
    start = _need(fdoc, "start", int, where)
    length = _need(fdoc, "length", int, where)
    if start < 1 or length < 1:
        raise LayoutError(f"{where}: start and length must be positive")
    type_ = str(fdoc.get("type", "Alfa"))
    if type_ not in TYPES:
        raise LayoutError(f"{where}: type {type_!r} ({', '.join(TYPES)})")
    default_pad = "0*" if type_ == "Num" else "*_"
    pad = str(fdoc.get("pad", default_pad))
    if pad not in PADS:
        raise LayoutError(f"{where}: pad {pad!r} ({', '.join(PADS)})")
    mask = str(
        fdoc.get("mask", "AAAAMMDD" if type_ == "Fecha" else "HHMMSS" if type_ == "Hhmmss" else "")
    )
    if type_ == "Fecha":
        tokens = _MASK_TOKEN.findall(mask)
        kinds = {"y" if t[0] in "AY" else t for t in tokens}
        if kinds != {"y", "MM", "DD"} or len(tokens) != 3:
            raise LayoutError(f"{where}: date mask {mask!r} needs AAAA (or AA), MM and DD once")
        if len(mask) != length:
            raise LayoutError(f"{where}: mask {mask!r} is not {length} characters long")
    if type_ == "Hhmmss":
        if not re.fullmatch(r"HHMM(SS)?|HH:MM(:SS)?", mask):
            raise LayoutError(f"{where}: time mask {mask!r} (HHMMSS, HHMM, HH:MM:SS)")
        if len(mask) != length:
            raise LayoutError(f"{where}: mask {mask!r} is not {length} characters long")
    value = fdoc.get("value")
    if value is not None:
        value = str(value)
        if len(value) > length:
            raise LayoutError(f"{where}: value {value!r} is longer than {length}")
    decimals = fdoc.get("decimals", 0)
    if not isinstance(decimals, int) or decimals < 0 or (decimals and type_ != "Num"):
        raise LayoutError(f"{where}: decimals must be a non-negative integer on a Num field")
    aliases = fdoc.get("aliases", [])
    if not isinstance(aliases, list):
        raise LayoutError(f"{where}: aliases must be a list")
    return FieldSpec(
        name=name,
        start=start,
        length=length,
        type=type_,
        pad=pad,
        mask=mask,
        decimals=decimals,
        null=bool(fdoc.get("null", False)),
        value=value,
        source=str(fdoc.get("source", "")) or name,
        title=str(fdoc.get("title", "")) or name,
        aliases=tuple(str(a) for a in aliases),
        check=bool(fdoc.get("check", True)),
    )


def _build_check(
    cdoc: Any, where: str, records: Mapping[str, RecordType], lot: tuple[str, str] | None
) -> CheckSpec:
    if not isinstance(cdoc, dict):
        raise LayoutError(f"{where}: every check must be a table")
    target = str(_need(cdoc, "field", str, f"{where}, check"))
    cwhere = f"{where}, check {target}"

    def ref(text: str) -> tuple[str, str]:
        kind, _, attr = text.partition(".")
        if kind not in records or not attr:
            raise LayoutError(f"{cwhere}: {text!r} must be RECORD.attribute")
        attrs = {f.source or f.name for f in records[kind].value_fields()}
        if attr not in attrs:
            raise LayoutError(f"{cwhere}: record {kind} has no attribute {attr!r}")
        return kind, attr

    record, attr = ref(target)
    scope = str(cdoc.get("scope", "file"))
    if scope not in ("file", "lot") or (scope == "lot" and lot is None):
        raise LayoutError(f"{cwhere}: scope must be file, or lot when the layout has lots")
    count = cdoc.get("count")
    if count is not None and str(count) not in records:
        raise LayoutError(f"{cwhere}: count names unknown record {count!r}")
    sum_ = ref(str(cdoc["sum"])) if "sum" in cdoc else None
    equals = ref(str(cdoc["equals"])) if "equals" in cdoc else None
    if sum(x is not None for x in (count, sum_, equals)) != 1:
        raise LayoutError(f"{cwhere}: give exactly one of count, sum, equals")
    default = (
        f"{target} = count of {count}" if count is not None
        else f"{target} = sum of {cdoc.get('sum')}" if sum_ is not None
        else f"{target} = {cdoc.get('equals')}"
    )  # fmt: skip
    return CheckSpec(
        name=str(cdoc.get("name", default)),
        scope=scope,
        record=record,
        field=attr,
        count=str(count) if count is not None else None,
        sum=sum_,
        equals=equals,
    )


# --- CSV / XLSX of records ---------------------------------------------------------------


class RecordTable(Table):
    """Records of one kind as a table with the layout's Spanish column titles.

    `rows()` gives text cells like any `Table`; `write(out, fmt)` writes CSV or XLSX with
    typed cells (dates stay dates, amounts become decimals when the field has decimals).
    """

    def __init__(self, layout: Layout, records: Iterable[Record], record_kind: str) -> None:
        self.format = TableFormat.CSV
        self.fields = layout.columns(record_kind)
        self.headers = [f.title for f in self.fields]
        self.layout = TabularLayout(
            tuple(self.headers), {f.source or f.name: i for i, f in enumerate(self.fields)}
        )
        self.size = 0
        self.kind = record_kind
        self._records = records

    def typed_rows(self) -> Iterator[list[Cell]]:
        from decimal import Decimal

        fields = self.fields
        for record in self._records:
            if record.kind != self.kind:
                continue
            row: list[Cell] = []
            for f in fields:
                value = record.values.get(f.source or f.name)
                if f.decimals and isinstance(value, int):
                    row.append(Decimal(value).scaleb(-f.decimals))
                elif value is None or isinstance(value, str | int | date):
                    row.append(value)
                else:
                    row.append(str(value))
            yield row

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        for n, row in enumerate(self.typed_rows(), start=2):
            yield (
                n,
                [
                    "" if c is None else c.isoformat() if isinstance(c, date) else str(c)
                    for c in row
                ],
            )

    @property
    def bytes_read(self) -> int:
        return 0

    def close(self) -> None:
        return None

    def write(self, out: BinaryIO | IO[bytes], fmt: str = "csv") -> None:
        write_table(self.headers, self.typed_rows(), fmt, out)  # type: ignore[arg-type]


def records_to_table(
    layout: Layout, records: Iterable[Record], record_kind: str = "detail"
) -> RecordTable:
    """The `record_kind` records as a table titled in Spanish (CSV/XLSX exports)."""
    return RecordTable(layout, records, record_kind)
