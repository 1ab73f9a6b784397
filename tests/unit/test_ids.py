"""National ids: real check-digit cases, formatting variants, one canonical form per person."""

from __future__ import annotations

import pytest

from recaudo.domain import ids
from recaudo.domain.errors import InvalidNationalId
from recaudo.domain.ids import IdType


@pytest.mark.parametrize(
    "typed", ["12.345.678-5", "12345678-5", "123456785", " 12.345.678-5 ", "12 345 678-5"]
)
def test_rut_formatting_variants_are_one_person(typed: str) -> None:
    assert ids.normalize(IdType.RUT, typed) == ids.NationalId(IdType.RUT, "123456785")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [("10.000.013-K", "10000013K"), ("10000013-k", "10000013K"), ("15.000.005-k", "15000005K")],
)
def test_rut_with_k_check_digit(typed: str, canonical: str) -> None:
    assert ids.normalize(IdType.RUT, typed).value == canonical


@pytest.mark.parametrize("typed", ["12.345.678-4", "10.000.013-1", "12345678-K"])
def test_rut_wrong_check_digit_is_refused(typed: str) -> None:
    with pytest.raises(InvalidNationalId, match="wrong check digit"):
        ids.normalize(IdType.RUT, typed)


@pytest.mark.parametrize("typed", ["", "   ", "abc", "12.345.678-", "1" * 31])
def test_rut_garbage_is_refused(typed: str) -> None:
    with pytest.raises(InvalidNationalId):
        ids.normalize(IdType.RUT, typed)


def test_rut_check_digit_for_lookups_without_one() -> None:
    assert ids.rut_check_digit("12.345.678") == "5"
    assert ids.rut_check_digit("10000013") == "K"
    with pytest.raises(InvalidNationalId):
        ids.rut_check_digit("12a")


def test_rut_display_format() -> None:
    assert ids.NationalId(IdType.RUT, "123456785").formatted() == "12.345.678-5"


def test_colombian_nit_check_digit() -> None:
    assert ids.normalize(IdType.NIT, "800.123.45-9").value == "800123459"
    assert ids.normalize(IdType.NIT, "900373115-3").value == "9003731153"
    with pytest.raises(InvalidNationalId, match="wrong check digit"):
        ids.normalize(IdType.NIT, "900373115-4")


def test_colombian_cedula_is_digits_only() -> None:
    assert ids.normalize(IdType.CC, "1.020.304.050").value == "1020304050"
    for bad in ("12", "12345678901", "12A45", "0123456"):
        with pytest.raises(InvalidNationalId):
            ids.normalize(IdType.CC, bad)


def test_spanish_nif_nie_cif() -> None:
    assert ids.normalize(IdType.NIF, "12345678-z") == ids.NationalId(IdType.NIF, "12345678Z")
    assert ids.normalize(IdType.NIE, "X-1234567-L") == ids.NationalId(IdType.NIE, "X1234567L")
    assert ids.normalize(IdType.CIF, "A58103532") == ids.NationalId(IdType.CIF, "A58103532")
    with pytest.raises(InvalidNationalId, match="wrong check digit"):
        ids.normalize(IdType.NIF, "12345678A")
    with pytest.raises(InvalidNationalId):
        ids.normalize(IdType.NIE, "X1234567A")


def test_spanish_number_declared_nif_is_filed_under_its_true_type() -> None:
    assert ids.normalize(IdType.NIF, "X1234567L").type is IdType.NIE
    assert ids.normalize(IdType.NIF, "A58103532").type is IdType.CIF


def test_id_type_aliases() -> None:
    assert ids.parse_id_type("dni") is IdType.NIF
    assert ids.parse_id_type(" rut ") is IdType.RUT
    with pytest.raises(InvalidNationalId, match="unknown id type"):
        ids.parse_id_type("SSN")


def test_masking_keeps_only_the_edges() -> None:
    assert ids.mask_national_id("123456785") == "12*****85"
    assert ids.mask_national_id("1234") == "****"
    assert ids.mask_name("Juan Pérez Soto") == "J*** P*** S***"
