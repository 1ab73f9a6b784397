"""The check of one debts-file row: normalised values, or the column to blame and why."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cl import rut

from recaudo.domain import ids
from recaudo.domain.errors import InvalidNationalId
from recaudo.domain.ids import fast_rut_check_digit as rut_check_digit
from recaudo.domain.ids import quick_rut
from recaudo.formats.tabular import build_layout
from recaudo.services.import_rows import DEBT_COLUMNS, DebtRowParser

HEADER = ["RUT", "Nombre", "ID Deuda", "Vencimiento", "Monto", "Concepto", "Emisión", "Email"]
GOOD = ["12.345.678-5", "  Ana   Pérez ", "F-1", "2026-03-01", "15990", "Plan", "", ""]


def parser(header: list[str] = HEADER, country: str = "CL", currency: str = "CLP") -> DebtRowParser:
    return DebtRowParser(build_layout(header, DEBT_COLUMNS), country, currency)


def rejection(cells: list[str], header: list[str] = HEADER) -> tuple[str | None, str]:
    row = parser(header).parse(7, cells)
    column, reason = row[11], row[12]
    assert isinstance(reason, str), f"row was accepted: {row}"
    assert column is None or isinstance(column, str)
    return column, reason


def test_a_good_row_is_normalised() -> None:
    assert parser().parse(2, GOOD) == (
        2, "F-1", "RUT", "123456785", "Ana Pérez", None, None, 15990, "2026-03-01", None,
        "Plan", None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "iso"), [("01-04-2026", "2026-04-01"), ("01/04/2026", "2026-04-01")]
)
def test_day_first_dates_become_iso(typed: str, iso: str) -> None:
    cells = [*GOOD[:3], typed, *GOOD[4:6], typed, "ana@example.cl"]
    row = parser().parse(2, cells)
    assert (row[8], row[9], row[5]) == (iso, iso, "ana@example.cl")


def test_euro_amounts_with_decimal_commas_become_cents() -> None:
    header = ["dni", "name", "debt_id", "due_date", "amount"]
    row = parser(header, "ES", "EUR").parse(2, ["12345678Z", "Ana", "R-1", "2026-03-01", "12,5"])
    assert (row[2], row[3], row[7]) == ("NIF", "12345678Z", 1250)


def test_short_rows_are_padded_but_long_ones_refused_even_with_empty_extra_cells() -> None:
    assert parser().parse(2, GOOD[:5])[7] == 15990
    header = ["rut", "nombre", "id_deuda", "vencimiento", "monto", "concepto"]
    shifted = ["1-9", "Ana", "F-1", "2026-03-01", "12000", "5", ""]  # from "12000,5" + ""
    assert parser(header).parse(2, shifted)[11:13] == (None, "row has 7 fields, the header has 6")


@pytest.mark.parametrize(
    ("position", "value", "column", "reason"),
    [
        (0, "12.345.678-9", "RUT", "'12.345.678-9' has a wrong check digit for RUT"),
        (0, "", "RUT", "national id is required"),
        (0, "abc", "RUT", "'abc' is not a valid RUT: "),
        (1, "   ", "Nombre", "name is required"),
        (1, "x" * 201, "Nombre", "name is longer than 200 characters"),
        (2, "", "ID Deuda", "debt id is required"),
        (2, "F" * 65, "ID Deuda", "debt id is longer than 64 characters"),
        (2, "F\x001", "ID Deuda", "debt id contains control characters"),
        (3, "", "Vencimiento", "due date is required"),
        (3, "2026-02-30", "Vencimiento", "due date '2026-02-30' is not a valid date"),
        (3, "1/3/2026", "Vencimiento", "(YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY)"),
        (3, "20260301", "Vencimiento", "due date '20260301' is not a valid date"),
        (4, "", "Monto", "amount is required"),
        (4, "abc", "Monto", "not an amount: 'abc'"),
        (4, "-100", "Monto", "negative amount: '-100'"),
        (4, "100.5", "Monto", "'100.5' has more than 0 decimals for CLP"),
        (4, "0", "Monto", "amount must be greater than zero"),
        (4, "0.00", "Monto", "'0.00' has more than 0 decimals for CLP"),
        (4, "9" * 16, "Monto", "amount too large"),
        (5, "c" * 201, "Concepto", "concept is longer than 200 characters"),
        (6, "mañana", "Emisión", "issue date 'mañana' is not a valid date"),
        (7, "ana.example.cl", "Email", "'ana.example.cl' is not an e-mail address"),
    ],
)
def test_every_bad_cell_is_blamed_on_its_column(
    position: int, value: str, column: str, reason: str
) -> None:
    cells = list(GOOD)
    cells[position] = value
    blamed, why = rejection(cells)
    assert blamed == column
    assert why.startswith(reason) or reason in why


def test_the_id_type_column_is_blamed_for_a_foreign_or_unknown_type() -> None:
    header = ["tipo_documento", *HEADER]
    assert rejection(["NIT", *GOOD], header=header) == (
        "tipo_documento",
        "id type NIT is not used in CL",
    )
    blamed, why = rejection(["PASAPORTE", *GOOD], header=header)
    assert (blamed, why.split(" (")[0]) == ("tipo_documento", "unknown id type 'PASAPORTE'")
    assert parser(header).parse(2, ["run", *GOOD])[2:4] == ("RUT", "123456785")


def test_a_row_longer_than_the_header_is_refused_rather_than_shifted() -> None:
    header = ["rut", "nombre", "id_deuda", "vencimiento", "monto"]
    row = parser(header).parse(9, ["1-9", "Ana", "F-1", "2026-03-01", "1234", "50"])
    assert row[11:13] == (None, "row has 6 fields, the header has 5")


def test_a_rejected_row_keeps_its_debt_id_and_original_cells() -> None:
    cells = ["1-8", "Ana", "F-1", "2026-03-01", "100"]
    row = parser(HEADER[:5]).parse(4, cells)
    assert row[:2] == (4, "F-1")
    assert row[2:11] == (None,) * 9
    raw = row[13]
    assert isinstance(raw, str)
    assert json.loads(raw) == dict(zip(HEADER[:5], cells, strict=True))


@given(st.lists(st.text(max_size=80), max_size=10))
def test_any_cells_give_a_staging_row_never_an_exception(cells: list[str]) -> None:
    row = parser().parse(2, cells)
    assert len(row) == 14
    assert (row[12] is None) == (row[13] is None)


# ----------------------------------------------------------------------------- fast paths
# `parse` takes a quick path for clean rows; it must agree with `check` on every row.

GOOD_RUTS = ["12.345.678-5", "12345678-5", "123456785", "5.000.033-k", " 7654321-6 "]
BAD_RUTS = ["12.345.678-9", "CL12345678-5", "12 345 678 5", "12.345.678–5", "1-9", "", "abc"]
BAD_RUTS += ["１２３４５６７８-5", "\t12345678-5"]
NAMES = ["Ana", " Ana  Pérez ", "Beto\tSoto"], ["", " ", "x" * 201]
IDS = ["F-1", "D 2", "x" * 64, " F-3 "], ["", "x" * 65, "F\x00", " "]
DATES = ["2026-03-01", "01-03-2026", "01/03/2026", " 2026-03-01 "]
BAD_DATES = ["2026-02-30", "1/3/2026", "20260301", "2026/03/01", "", "mañana"]
AMOUNTS = ["15990", "00150", "1.5", "1,50", " 7 ", "10.000", "9" * 12]
BAD_AMOUNTS = ["0", "12,345", "1.234,50", "-5", "+5", "1e3", "9" * 15, "9" * 30, "0.00", ".5"]
BAD_AMOUNTS += ["5.", "１２", "3.14159", ""]
CONCEPTS = ["", "Plan", "x" * 200, " Cuota 3 "], ["x" * 201]
EMAILS = ["", "ana@example.cl", " ana@example.cl "], ["ana.example.cl", "a @b", "x@" + "y" * 260]


def cell(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """Mostly good values, so that whole rows are often valid and take the quick path."""
    return st.sampled_from(good * 4 + bad)


ROWS = st.tuples(
    cell(GOOD_RUTS, BAD_RUTS), cell(*NAMES), cell(*IDS), cell(DATES, BAD_DATES),
    cell(AMOUNTS, BAD_AMOUNTS), cell(*CONCEPTS), cell(["", *DATES], BAD_DATES), cell(*EMAILS),
).map(list)  # fmt: skip


@given(ROWS)
def test_the_quick_path_agrees_with_every_check_in_pesos(cells: list[str]) -> None:
    clp = parser()
    assert clp.parse(2, cells) == clp.check(2, cells)


@given(ROWS)
def test_the_quick_path_agrees_with_every_check_in_euros(cells: list[str]) -> None:
    eur = parser(country="ES", currency="EUR")
    cells[0] = cells[0].replace("12.345.678-5", "12345678Z")
    assert eur.parse(2, cells) == eur.check(2, cells)


@given(
    st.one_of(
        st.sampled_from(GOOD_RUTS + BAD_RUTS),
        st.text(alphabet="0123456789kK.- \t", max_size=14),
    )
)
def test_quick_rut_gives_what_the_domain_gives(raw: str) -> None:
    try:
        expected: str | None = ids.normalize(ids.IdType.RUT, raw).value
    except InvalidNationalId:
        expected = None
    found = quick_rut(raw)
    assert found is None or found == expected


@given(st.integers(min_value=1, max_value=99_999_999))
def test_rut_check_digit_is_stdnums(body: int) -> None:
    assert rut_check_digit(str(body)) == rut.calc_check_digit(str(body))


@pytest.mark.parametrize("typed", ["10.000", "1.500", "100.00", "15,000"])
def test_pesos_typed_with_decimals_are_refused_even_when_they_are_zeros(typed: str) -> None:
    """In Chile `10.000` is ten thousand: reading it as 10 pesos would lose money."""
    cells = list(GOOD)
    cells[4] = typed
    assert rejection(cells) == ("Monto", f"{typed!r} has more than 0 decimals for CLP")


def test_cents_typed_with_their_two_decimals_are_fine() -> None:
    header = ["dni", "name", "debt_id", "due_date", "amount"]
    eur = parser(header, "ES", "EUR")
    assert eur.parse(2, ["12345678Z", "Ana", "R-1", "2026-03-01", "1.500,"])[12] is not None
    assert eur.parse(2, ["12345678Z", "Ana", "R-1", "2026-03-01", "10.00"])[7] == 1000
    assert eur.parse(2, ["12345678Z", "Ana", "R-1", "2026-03-01", "10.000"])[12] == (
        "'10.000' has more than 2 decimals for EUR"
    )
