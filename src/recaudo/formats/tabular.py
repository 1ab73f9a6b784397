"""Spreadsheet-shaped files: CSV and XLSX in, CSV and XLSX out.

Reading streams one row at a time whatever the file size: CSV through the `csv` module
over a decoding stream, XLSX through openpyxl's read-only mode. The caller says which
columns it needs and the names each may go by (`rut` or `customer_id`, `monto` or
`amount`); headers are matched case-, accent- and punctuation-insensitively. Every
cell comes out as text, so the caller validates one kind of value whatever the format.

A CSV file may be separated by `,` or `;` and encoded in UTF-8 (with or without BOM)
or Latin-1: both are detected, because billers export from whatever spreadsheet or
ERP they have and rarely know which encoding it used.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from recaudo.domain.errors import ValidationFailed

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
SCAN_CHUNK = 1 << 20
LABEL_MAX = 64  # what an issue's `column` can hold
# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?[0-9]+([.,][0-9]+)?$")


class TableFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True, slots=True)
class Column:
    """A column the caller needs: its key and every header text that means it."""

    key: str
    aliases: tuple[str, ...]
    required: bool = False


def header_key(text: str) -> str:
    """`Fecha de Vencimiento`, `fecha_vencimiento` and `FECHA-VENCIMIENTO` match."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each known column sits, and a unique label for every column of the file."""

    labels: tuple[str, ...]
    index: Mapping[str, int]

    @property
    def width(self) -> int:
        return len(self.labels)

    def label(self, key: str) -> str:
        return self.labels[self.index[key]]


def build_layout(headers: Sequence[str], columns: Sequence[Column]) -> Layout:
    by_alias = {header_key(alias): column for column in columns for alias in column.aliases}
    index: dict[str, int] = {}
    for position, header in enumerate(headers):
        column = by_alias.get(header_key(header))
        if column is None:
            continue  # extra columns are allowed and ignored
        if column.key in index:
            first = headers[index[column.key]]
            raise ValidationFailed(
                f"columns {first!r} and {header!r} both mean {column.key}", column=header
            )
        index[column.key] = position
    missing = [column for column in columns if column.required and column.key not in index]
    if missing:
        wanted = "; ".join(f"{c.key} (named {' or '.join(c.aliases)})" for c in missing)
        found = ", ".join(repr(h) for h in headers if h.strip()) or "nothing"
        raise ValidationFailed(
            f"missing required column(s): {wanted}; the header row has {found}",
            missing=[c.key for c in missing],
        )
    return Layout(_unique_labels(headers), index)


def _unique_labels(headers: Sequence[str]) -> tuple[str, ...]:
    labels: list[str] = []
    seen: set[str] = set()
    for position, header in enumerate(headers, start=1):
        base = header.strip()[:LABEL_MAX] or f"column_{position}"
        label, n = base, 1
        while label in seen:
            n += 1
            label = f"{base[: LABEL_MAX - 6]} ({n})"
        seen.add(label)
        labels.append(label)
    return tuple(labels)


class Table(ABC):
    """An open file: its layout, then its data rows as `(row_number, cells)`.

    Row numbers are what a spreadsheet shows: the header is row 1 when it is the
    first line. Blank rows are skipped but still counted, so numbers stay true.
    """

    format: TableFormat
    layout: Layout
    size: int

    @abstractmethod
    def rows(self) -> Iterator[tuple[int, list[str]]]: ...

    @property
    @abstractmethod
    def bytes_read(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_table(path: Path, columns: Sequence[Column]) -> Table:
    """Open a CSV or XLSX file and match its header; `ValidationFailed` if unreadable."""
    try:
        size = path.stat().st_size
        with path.open("rb") as probe:
            head = probe.read(8)
    except OSError as exc:
        raise ValidationFailed(f"cannot read the file: {exc.strerror}") from None
    if size == 0:
        raise ValidationFailed("the file is empty")
    if head.startswith(ZIP_MAGIC):
        return XlsxTable(path, columns, size)
    if head.startswith(OLE2_MAGIC):
        raise ValidationFailed("legacy .xls files are not supported: save it as .xlsx or CSV")
    return CsvTable(path, columns, size)


def is_blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


class CsvTable(Table):
    def __init__(self, path: Path, columns: Sequence[Column], size: int) -> None:
        self.format = TableFormat.CSV
        self.size = size
        self.encoding = detect_encoding(path)
        self._binary = path.open("rb")
        try:
            self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, newline="")
            self._number, header = self._header_line()
            self.delimiter = ";" if header.count(";") > header.count(",") else ","
            # strict: a stray quote is an error, not the rest of the file in one cell.
            self._reader = csv.reader(
                _chain_first(header, self._text), delimiter=self.delimiter, strict=True
            )
            cells = self._next_record()
            if cells is None:
                raise ValidationFailed("the file has no header row")
            self.layout = build_layout(cells, columns)
        except BaseException:
            self._binary.close()
            raise

    def _header_line(self) -> tuple[int, str]:
        """Skip leading blank lines; the first line with content is the header."""
        for number, line in enumerate(self._text, start=1):
            if line.strip():
                return number, line
        raise ValidationFailed("the file has no header row")

    def _next_record(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise ValidationFailed(f"row {self._number}: unreadable CSV ({exc})") from None

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        number = self._number
        reader = self._reader
        try:
            for cells in reader:
                number += 1
                # The first cell is usually filled: checking it first keeps blank-row
                # detection off the hot path.
                if cells and (cells[0] or not is_blank(cells)):
                    yield number, cells
        except csv.Error as exc:
            raise ValidationFailed(f"row {number + 1}: unreadable CSV ({exc})") from None
        except UnicodeDecodeError:
            raise ValidationFailed(
                f"row {number + 1}: the file mixes encodings (not valid {self.encoding})"
            ) from None

    @property
    def bytes_read(self) -> int:
        return self._binary.tell()

    def close(self) -> None:
        self._binary.close()


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) if the whole file decodes as UTF-8, else Latin-1.

    The whole file is scanned because a Latin-1 file may be pure ASCII for its first
    megabytes; a NUL byte means it is not a text file at all.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as stream:
        first = stream.read(SCAN_CHUNK)
        if first.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ValidationFailed("UTF-16 files are not supported: save it as CSV UTF-8")
        else:
            encoding = "utf-8"
        chunk = first
        while chunk:
            if b"\x00" in chunk:
                raise ValidationFailed("not a CSV or XLSX file (it contains binary data)")
            # ASCII chunks are valid UTF-8 unless a multi-byte character is pending.
            pending = decoder.getstate()[0]
            if encoding != "latin-1" and (pending or not chunk.isascii()):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    encoding = "latin-1"
            chunk = stream.read(SCAN_CHUNK)
    if encoding != "latin-1":
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = "latin-1"
    return encoding


class XlsxTable(Table):
    """The first worksheet of a workbook, read in openpyxl's streaming mode.

    openpyxl still loads the workbook's shared-strings table whole, so memory grows
    with the number of distinct texts (bounded by Excel's 1,048,576 rows).
    """

    def __init__(self, path: Path, columns: Sequence[Column], size: int) -> None:
        self.format = TableFormat.XLSX
        self.size = size
        self._done_rows = 0
        try:
            self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
            raise ValidationFailed("not a CSV or XLSX file (unreadable workbook)") from None
        try:
            sheet = self._book.worksheets[0]
            self._max_row = sheet.max_row or 0
            self._iter = sheet.iter_rows(values_only=True)
            self._number = 0
            header: list[str] | None = None
            for values in self._iter:
                self._number += 1
                cells = [cell_text(v) for v in values]
                if not is_blank(cells):
                    header = cells
                    break
            if header is None:
                raise ValidationFailed("the workbook's first sheet has no header row")
            self.layout = build_layout(header, columns)
        except BaseException:
            self._book.close()
            raise

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        for values in self._iter:
            self._number += 1
            self._done_rows = self._number
            cells = [cell_text(v) for v in values]
            if not is_blank(cells):
                yield self._number, cells

    @property
    def bytes_read(self) -> int:
        # A workbook is compressed XML: progress is the share of declared rows read.
        if self._max_row <= 0:
            return 0
        return min(self.size, self.size * self._done_rows // self._max_row)

    def close(self) -> None:
        self._book.close()


def cell_text(value: object) -> str:
    """A spreadsheet value as the text a person would have typed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- writing

Cell = str | int | Decimal | date | datetime | bool | None


def write_table(
    headers: Sequence[str], rows: Iterable[Sequence[Cell]], fmt: str, out: BinaryIO
) -> None:
    """Write `headers` then `rows` as CSV (UTF-8 with BOM, `,`) or XLSX to `out`.

    Memory stays flat: CSV is written as rows come, XLSX through openpyxl's write-only
    mode. Text that a spreadsheet would run as a formula is neutralised (OWASP CSV
    injection); numbers keep their sign.
    """
    if fmt == TableFormat.CSV:
        _write_csv(headers, rows, out)
    elif fmt == TableFormat.XLSX:
        _write_xlsx(headers, rows, out)
    else:
        raise ValidationFailed(f"unknown table format {fmt!r} (csv or xlsx)", field="format")


def _write_csv(headers: Sequence[str], rows: Iterable[Sequence[Cell]], out: IO[bytes]) -> None:
    # The BOM makes Excel read the file as UTF-8 instead of the machine's code page.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow([_csv_cell(h) for h in headers])
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
        text.flush()
    finally:
        text.detach()  # the caller owns `out`


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _defuse(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):  # datetime too: ISO 8601 keeps its UTC offset
        return value.isoformat()
    return str(value)


def _defuse(text: str) -> str:
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def _write_xlsx(headers: Sequence[str], rows: Iterable[Sequence[Cell]], out: IO[bytes]) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([_xlsx_cell(sheet, h) for h in headers])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    book.save(out)


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell) -> object:
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # openpyxl would store "=..." as a formula
        return cell
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Excel has no time zones; stored timestamps are UTC, so the sheet shows UTC.
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
