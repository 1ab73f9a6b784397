"""SEPA rules: creditor identifier, IBAN/BIC, character set, TARGET2 calendar, limits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recaudo.domain import sepa
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.sepa import (
    InvalidBic,
    InvalidCreditorIdentifier,
    InvalidIban,
    InvalidSepaAmount,
    InvalidSepaIdentifier,
    Scheme,
    SepaTextError,
    SequenceType,
)

# --- creditor identifier (AT-02) ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "ES77000B85626240",  # valid ids listed in specs/sepa-iso20022/SOURCES.md
        "ES03000W9614457A",
        "ES08000E77846772",
        "DE98ZZZ09999999999",  # Bundesbank test id
    ],
)
def test_valid_creditor_identifiers(value: str) -> None:
    assert sepa.validate_creditor_identifier(value) == value


def test_creditor_identifier_is_compacted_and_upper_cased() -> None:
    assert sepa.validate_creditor_identifier(" es77 000 b856 26240 ") == "ES77000B85626240"


def test_business_code_is_outside_the_check() -> None:
    # Same national id, another business code: still valid with the same check digits.
    assert sepa.validate_creditor_identifier("ES77ZZZB85626240") == "ES77ZZZB85626240"
    assert sepa.validate_creditor_identifier("ES77001B85626240") == "ES77001B85626240"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Creditor ids carried by sample files (SOURCES.md): a parser reads them, we refuse them.
        ("ES29000G12345678", "26"),  # LaCaixa pain.002 samples
        ("IE03ZZZ123456", "84"),  # OCA samples
        ("DE26ZZZ00000000000", "36"),  # python-sepaxml README example
        ("ES59ZZZX1234567B", "38"),  # the shape of the example, not a real id
    ],
)
def test_wrong_check_digits_are_refused(value: str, expected: str) -> None:
    with pytest.raises(InvalidCreditorIdentifier) as caught:
        sepa.validate_creditor_identifier(value)
    assert caught.value.message == (
        f"creditor identifier {value!r} has a wrong check digit (AT-02, ISO 7064 MOD 97-10): "
        f"{value[2:4]} instead of {expected}"
    )


def test_check_digits_are_computed_over_national_id_country_and_00() -> None:
    assert sepa.creditor_identifier_check_digits("ES", "B85626240") == "77"
    assert sepa.creditor_identifier_check_digits("DE", "09999999999") == "98"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the creditor identifier is empty"),
        (
            "ES77-000B85626240",
            "creditor identifier 'ES77-000B85626240' is not country code, 2 check digits, "
            "3-character business code and national identifier (letters and digits only)",
        ),
        (
            "7777000B85626240",
            "creditor identifier '7777000B85626240' is not country code, 2 check digits, "
            "3-character business code and national identifier (letters and digits only)",
        ),
        (
            "ES77000B8562624",
            "creditor identifier 'ES77000B8562624' has 15 characters; ES identifiers have 16",
        ),
        (
            "ES" + "1" * 34,
            f"creditor identifier {'ES' + '1' * 34!r} is longer than 35 characters",
        ),
    ],
)
def test_malformed_creditor_identifiers(value: str, message: str) -> None:
    with pytest.raises(InvalidCreditorIdentifier) as caught:
        sepa.validate_creditor_identifier(value)
    assert caught.value.message == message
    assert isinstance(caught.value, ValidationFailed)
    assert caught.value.code == "invalid_creditor_identifier"


# --- IBAN and BIC -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "compact"),
    [
        ("ES4721009999161234567890", "ES4721009999161234567890"),
        ("NL77ABNA0574908765", "NL77ABNA0574908765"),
        ("es91 2100 0418 4502 0005 1332", "ES9121000418450200051332"),
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ],
)
def test_valid_ibans(value: str, compact: str) -> None:
    assert sepa.validate_iban(value) == compact
    assert sepa.iban_checksum_ok(compact)


@pytest.mark.parametrize(
    "value",
    [
        "ES0921009999161234567890",  # LaCaixa creditor IBAN in the samples (SOURCES.md)
        "IE98BOFI90393912121212",  # OCA debtor IBAN in the samples (SOURCES.md)
        "ES9121000418450200051333",  # one digit changed
    ],
)
def test_bad_iban_checksums_are_refused(value: str) -> None:
    with pytest.raises(InvalidIban) as caught:
        sepa.validate_iban(value)
    assert caught.value.message.startswith(f"IBAN {value!r} is not valid: ")
    assert "checksum" in caught.value.message.lower()
    assert not sepa.iban_checksum_ok(value)


@pytest.mark.parametrize(
    "value",
    ["ES91210004184502000513", "XX9121000418450200051332", "ES91 2100 0418 4502 0005 133!", "1234"],
)
def test_malformed_ibans_are_refused(value: str) -> None:
    with pytest.raises(InvalidIban) as caught:
        sepa.validate_iban(value)
    assert caught.value.message.startswith("IBAN ")
    assert "is not valid: " in caught.value.message


def test_iban_outside_the_sepa_zone_is_refused() -> None:
    with pytest.raises(InvalidIban) as caught:
        sepa.validate_iban("BR1800360305000010009795493C1")
    assert caught.value.message == (
        "IBAN 'BR1800360305000010009795493C1' is from BR, outside the SEPA zone"
    )


def test_empty_iban() -> None:
    with pytest.raises(InvalidIban, match="the IBAN is empty"):
        sepa.validate_iban("  ")


def test_valid_and_invalid_bics() -> None:
    assert sepa.validate_bic("caixesbbxxx") == "CAIXESBBXXX"
    assert sepa.validate_bic("CAIXESBB") == "CAIXESBB"
    for bad in ("CAIXESB", "CAIX1SBBXXX", "CAIXXXBBXXX"):
        with pytest.raises(InvalidBic) as caught:
            sepa.validate_bic(bad)
        assert caught.value.message.startswith(f"BIC {bad!r} is not valid: ")
    with pytest.raises(InvalidBic, match="the BIC is empty"):
        sepa.validate_bic("")


def test_bic_matches_iban_bank() -> None:
    # 2100 is CaixaBank (CAIXESBB), 0049 is Banco Santander (BSCHESMM).
    assert sepa.bic_matches_iban("CAIXESBBXXX", "ES9121000418450200051332") is True
    assert sepa.bic_matches_iban("CAIXESBB", "ES9121000418450200051332") is True
    assert sepa.bic_matches_iban("BSCHESMMXXX", "ES9121000418450200051332") is False
    assert sepa.bic_matches_iban("ABNANL2AXXX", "ES9121000418450200051332") is False  # country


# --- SEPA character set -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Peña & Hijos", "Pena + Hijos"),
        ("José María Núñez-Ibáñez", "Jose Maria Nunez-Ibanez"),
        ("Çàvà Müller Straße", "Cava Muller Strasse"),
        ("L’Hospitalet  de   Llobregat", "L'Hospitalet de Llobregat"),
        ("Ελένη", "Eleni"),
        ("O'Brien (Cuota 3/12): ok? sí.", "O'Brien (Cuota 3/12): ok? si."),
        ('a_b;c[d]{e}"f"', "a-b,c(d)(e)'f'"),
        ("¡Gracias, socia! ¿Seguimos?", "Gracias, socia. Seguimos?"),
    ],
)
def test_transliteration(text: str, expected: str) -> None:
    assert sepa.sepa_text(text, max_length=70) == expected
    assert sepa.is_sepa_text(expected)


def test_text_is_cut_to_the_maximum_length_without_trailing_space() -> None:
    assert (
        sepa.sepa_text("Asociación de Vecinos Peñalara", max_length=22) == "Asociacion de Vecinos"
    )
    assert sepa.sepa_text("x" * 200, max_length=140) == "x" * 140


def test_valid_text_is_returned_unchanged() -> None:
    text = "Cuota mensual 11/2026 - Socio 42"
    assert sepa.sepa_text(text, max_length=140) is text


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("juan@example.com", "'@'"),
        ("Pago 10 €", "'€'"),
        ("Ana 😀", "'😀'"),
        ("50% #1", "'%', '#'"),
        ("Asociación «Amigos»", "'«', '»'"),
    ],
)
def test_untransliterable_text_is_refused(text: str, refused: str) -> None:
    with pytest.raises(SepaTextError) as caught:
        sepa.sepa_text(text, max_length=70, field="debtor name")
    assert caught.value.message == (
        f"debtor name {text!r} has characters outside the SEPA character set that cannot be "
        f"transliterated: {refused}"
    )


def test_text_that_transliterates_to_nothing_is_refused() -> None:
    with pytest.raises(SepaTextError) as caught:
        sepa.sepa_text("   \u0301 ", max_length=70, field="debtor name")
    assert caught.value.message == "debtor name '   \u0301 ' is empty in the SEPA character set"


def test_is_sepa_text() -> None:
    assert sepa.is_sepa_text("ABC abc 0-9 /?:().,'+")
    assert not sepa.is_sepa_text("Peña")
    assert not sepa.is_sepa_text("a&b")


# --- identifiers and amounts ------------------------------------------------------------------


def test_identifiers() -> None:
    assert sepa.sepa_identifier("RCD000000000042") == "RCD000000000042"
    assert sepa.sepa_identifier("A" * 35) == "A" * 35
    cases = [
        ("", "end to end id is empty"),
        ("A" * 36, f"end to end id {'A' * 36!r} is longer than 35 characters"),
        ("RCD-Ñ", "end to end id 'RCD-Ñ' has characters outside the SEPA character set"),
        (" RCD", "end to end id ' RCD' has characters outside the SEPA character set"),
        ("/RCD", "end to end id '/RCD' must not start or end with '/' nor contain '//'"),
        ("RC//D", "end to end id 'RC//D' must not start or end with '/' nor contain '//'"),
    ]
    for value, message in cases:
        with pytest.raises(InvalidSepaIdentifier) as caught:
            sepa.sepa_identifier(value, field="end to end id")
        assert caught.value.message == message


def test_amounts() -> None:
    assert sepa.validate_sepa_amount(Decimal("0.01")) == Decimal("0.01")
    assert str(sepa.validate_sepa_amount(Decimal("12.5"))) == "12.50"
    assert sepa.validate_sepa_amount(Decimal("999999999.99")) == Decimal("999999999.99")
    for bad, message in [
        (Decimal("0"), "amount 0 must be at least 0.01"),
        (Decimal("-5.00"), "amount -5.00 must be at least 0.01"),
        (Decimal("1.001"), "amount 1.001 must have at most 2 decimals"),
        (Decimal("1000000000.00"), "amount 1000000000.00 is above 999999999.99"),
    ]:
        with pytest.raises(InvalidSepaAmount) as caught:
            sepa.validate_sepa_amount(bad)
        assert caught.value.message == message


def test_limits_and_enums() -> None:
    assert (sepa.MAX_NAME, sepa.MAX_END_TO_END_ID, sepa.MAX_MANDATE_ID) == (70, 35, 35)
    assert sepa.MAX_REMITTANCE_INFORMATION == 140
    assert [s.value for s in SequenceType] == ["FRST", "RCUR", "OOFF", "FNAL"]
    assert [s.value for s in Scheme] == ["CORE", "B2B"]


# --- TARGET2 calendar ---------------------------------------------------------------------------


def test_easter() -> None:
    assert sepa.easter_sunday(2024) == date(2024, 3, 31)
    assert sepa.easter_sunday(2025) == date(2025, 4, 20)
    assert sepa.easter_sunday(2026) == date(2026, 4, 5)
    assert sepa.easter_sunday(2027) == date(2027, 3, 28)
    assert sepa.easter_sunday(2038) == date(2038, 4, 25)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1),
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2026, 5, 1),
        date(2026, 12, 25),
        date(2026, 12, 26),  # a Saturday anyway
        date(2025, 12, 26),  # a Friday
        date(2026, 11, 21),  # Saturday
        date(2026, 11, 22),  # Sunday
    ],
)
def test_target2_closing_days(day: date) -> None:
    assert not sepa.is_target2_business_day(day)


@pytest.mark.parametrize(
    "day",
    [date(2026, 1, 6), date(2026, 4, 2), date(2026, 4, 7), date(2026, 10, 12), date(2026, 12, 24)],
)
def test_national_holidays_are_target2_business_days(day: date) -> None:
    assert sepa.is_target2_business_day(day)


def test_add_business_days() -> None:
    assert sepa.add_business_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri → Mon
    assert sepa.add_business_days(date(2026, 11, 23), 2) == date(2026, 11, 25)
    assert sepa.add_business_days(date(2026, 4, 2), 1) == date(2026, 4, 7)  # over Easter
    assert sepa.add_business_days(date(2025, 12, 24), 1) == date(2025, 12, 29)
    assert sepa.add_business_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert sepa.add_business_days(date(2026, 11, 21), 0) == date(2026, 11, 23)
    assert sepa.add_business_days(date(2026, 11, 23), 0) == date(2026, 11, 23)
    with pytest.raises(ValueError, match="days must be zero or positive"):
        sepa.add_business_days(date(2026, 11, 23), -1)


def test_earliest_charge_date() -> None:
    assert sepa.earliest_charge_date(date(2026, 11, 23), 1) == date(2026, 11, 24)  # Mon → Tue
    assert sepa.earliest_charge_date(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri → Mon
    assert sepa.earliest_charge_date(date(2026, 11, 21), 1) == date(2026, 11, 24)  # Sat → Tue
    assert sepa.earliest_charge_date(date(2026, 11, 22), 2) == date(2026, 11, 25)  # Sun
    assert sepa.earliest_charge_date(date(2026, 4, 2), 2) == date(2026, 4, 8)  # Easter
    assert sepa.earliest_charge_date(date(2026, 11, 23), 0) == date(2026, 11, 23)
    with pytest.raises(ValueError, match="the lead time must be zero or positive"):
        sepa.earliest_charge_date(date(2026, 11, 23), -1)


@given(st.text(alphabet="0123456789", min_size=20, max_size=20), st.integers(0, 19))
def test_fast_iban_check_agrees_with_schwifty(bban: str, position: int) -> None:
    """Any Spanish BBAN with its computed check digits passes both; a changed digit fails."""
    check = 98 - int(bban + "142800") % 97
    iban = f"ES{check:02d}{bban}"
    assert sepa.iban_checksum_ok(iban)
    assert sepa.validate_iban(iban) == iban
    changed = bban[:position] + str((int(bban[position]) + 1) % 10) + bban[position + 1 :]
    wrong = f"ES{check:02d}{changed}"
    assert not sepa.iban_checksum_ok(wrong)
    with pytest.raises(InvalidIban):
        sepa.validate_iban(wrong)
