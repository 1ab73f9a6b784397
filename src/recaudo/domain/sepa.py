"""SEPA rules that hold whatever file version is written: identifiers, accounts, text, dates.

- Creditor identifier (AT-02 of the SDD rulebooks, EPC262-08 "Creditor Identifier
  Overview"): country code, two check digits, a three-character creditor business code and
  the national identifier. The check digits are ISO 7064 MOD 97-10 over the national
  identifier followed by the country code and "00", letters read as numbers (A=10 .. Z=35);
  the business code is NOT part of the check (it may change without a new identifier).
- IBAN and BIC through schwifty (ISO 13616 check digits, country formats, bank registry),
  plus `bic_matches_iban` (a warning-level check: the BIC belongs to the IBAN's bank).
- The SEPA character set (EPC basic Latin: a-z A-Z 0-9 / - ? : ( ) . , ' + space) and the
  transliteration into it with anyascii; a text that keeps a character outside the set, or
  that transliterates to nothing, cannot be written.
- TARGET2 closing days (weekends, 1 January, Good Friday, Easter Monday, 1 May, 25 and 26
  December) and the earliest charge date for a bank lead time in TARGET2 business days.
- `SequenceType`, `Scheme` and the maximum lengths of the fields Recaudo fills.

Pure: no I/O. Errors are `ValidationFailed` subclasses with a message naming the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from anyascii import anyascii
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from recaudo.domain.errors import ValidationFailed

__all__ = [
    "MAX_AMOUNT",
    "MAX_END_TO_END_ID",
    "MAX_MANDATE_ID",
    "MAX_MESSAGE_ID",
    "MAX_NAME",
    "MAX_REMITTANCE_INFORMATION",
    "MIN_AMOUNT",
    "InvalidBic",
    "InvalidCreditorIdentifier",
    "InvalidIban",
    "InvalidSepaAmount",
    "InvalidSepaIdentifier",
    "Scheme",
    "SepaTextError",
    "SequenceType",
    "add_business_days",
    "bic_matches_iban",
    "creditor_identifier_check_digits",
    "earliest_charge_date",
    "easter_sunday",
    "iban_checksum_ok",
    "is_sepa_text",
    "is_target2_business_day",
    "sepa_identifier",
    "sepa_text",
    "validate_bic",
    "validate_creditor_identifier",
    "validate_iban",
    "validate_sepa_amount",
]

# Maximum lengths (ISO 20022 Max70Text, Max35Text, Max140Text as the EPC guidelines use them).
MAX_NAME = 70  # Nm of creditor, debtor, initiating party
MAX_END_TO_END_ID = 35
MAX_MANDATE_ID = 35
MAX_MESSAGE_ID = 35  # MsgId, PmtInfId
MAX_REMITTANCE_INFORMATION = 140  # RmtInf/Ustrd
MAX_ADDRESS_LINE = 70
MAX_STREET = 70
MAX_BUILDING_NUMBER = 16
MAX_POSTCODE = 16
MAX_TOWN = 35
MAX_CREDITOR_IDENTIFIER = 35
# SEPA amounts: euro, 2 decimals, 0.01 to 999,999,999.99 (EPC implementation guidelines).
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")


class SequenceType(StrEnum):
    """SeqTp of a direct debit: first, recurrent, one-off, final collection of a mandate."""

    FRST = "FRST"
    RCUR = "RCUR"
    OOFF = "OOFF"
    FNAL = "FNAL"


class Scheme(StrEnum):
    """LclInstrm/Cd: the SDD scheme of the mandate (consumers CORE, businesses B2B)."""

    CORE = "CORE"
    B2B = "B2B"


class InvalidCreditorIdentifier(ValidationFailed):
    code = "invalid_creditor_identifier"


class InvalidIban(ValidationFailed):
    code = "invalid_iban"


class InvalidBic(ValidationFailed):
    code = "invalid_bic"


class SepaTextError(ValidationFailed):
    """A text that cannot be written in the SEPA character set."""

    code = "invalid_sepa_text"


class InvalidSepaIdentifier(ValidationFailed):
    code = "invalid_sepa_identifier"


class InvalidSepaAmount(ValidationFailed):
    code = "invalid_sepa_amount"


# --- check digits -------------------------------------------------------------------------

# Letters as ISO 7064 / ISO 13616 read them: A=10 ... Z=35; digits stay.
_LETTERS_AS_NUMBERS = str.maketrans({chr(ord("A") + i): str(10 + i) for i in range(26)})
_ALNUM_UPPER = re.compile(r"[0-9A-Z]+")


def _mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 remainder of an upper-case alphanumeric string."""
    return int(text.translate(_LETTERS_AS_NUMBERS)) % 97


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


# --- creditor identifier (AT-02) --------------------------------------------------------------

_CREDITOR_ID = re.compile(
    r"(?P<cc>[A-Z]{2})(?P<check>[0-9]{2})(?P<business>[0-9A-Z]{3})(?P<nat>[0-9A-Z]{1,28})"
)
# Total lengths the national communities fixed, where we are sure of them (EPC262-08).
_CREDITOR_ID_LENGTHS = {"ES": 16, "DE": 18}


def creditor_identifier_check_digits(country: str, national_identifier: str) -> str:
    """The two check digits of a creditor identifier: 98 - MOD97(national + country + "00")."""
    remainder = _mod97(_compact(national_identifier) + country.upper() + "00")
    return f"{98 - remainder:02d}"


def validate_creditor_identifier(value: str) -> str:
    """The compact, upper-case creditor identifier, or `InvalidCreditorIdentifier` saying why.

    `ES59ZZZX1234567B`-style ids: the business code ("ZZZ", "000", ...) is skipped by the
    check; the national identifier is checked followed by the country code and "00".
    """
    compact = _compact(value or "")
    if not compact:
        raise InvalidCreditorIdentifier("the creditor identifier is empty")
    if len(compact) > MAX_CREDITOR_IDENTIFIER:
        raise InvalidCreditorIdentifier(
            f"creditor identifier {compact!r} is longer than {MAX_CREDITOR_IDENTIFIER} characters",
            value=compact,
        )
    match = _CREDITOR_ID.fullmatch(compact)
    if match is None:
        raise InvalidCreditorIdentifier(
            f"creditor identifier {compact!r} is not country code, 2 check digits, "
            "3-character business code and national identifier (letters and digits only)",
            value=compact,
        )
    expected_length = _CREDITOR_ID_LENGTHS.get(match["cc"])
    if expected_length is not None and len(compact) != expected_length:
        raise InvalidCreditorIdentifier(
            f"creditor identifier {compact!r} has {len(compact)} characters; "
            f"{match['cc']} identifiers have {expected_length}",
            value=compact,
        )
    expected = creditor_identifier_check_digits(match["cc"], match["nat"])
    if match["check"] != expected:
        raise InvalidCreditorIdentifier(
            f"creditor identifier {compact!r} has a wrong check digit "
            f"(AT-02, ISO 7064 MOD 97-10): {match['check']} instead of {expected}",
            value=compact,
        )
    return compact


# --- IBAN and BIC -------------------------------------------------------------------------------

_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")
_COUNTRY_NUMBERS = {
    a + b: (a + b).translate(_LETTERS_AS_NUMBERS)
    for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
}


def iban_checksum_ok(iban: str) -> bool:
    """Fast ISO 13616 shape and MOD 97 check of a compact upper-case IBAN (no country rules).

    For the hot path of the writers; `validate_iban` is the full check.
    """
    if _IBAN_SHAPE.fullmatch(iban) is None:
        return False
    bban = iban[4:]
    if bban.isdigit():  # most SEPA countries: only the country code needs converting
        return int(bban + _COUNTRY_NUMBERS[iban[:2]] + iban[2:4]) % 97 == 1
    return _mod97(bban + iban[:4]) == 1


def validate_iban(value: str) -> str:
    """The compact IBAN of a SEPA country, or `InvalidIban` with schwifty's reason."""
    compact = _compact(value or "")
    if not compact:
        raise InvalidIban("the IBAN is empty")
    try:
        iban = IBAN(compact)
    except SchwiftyException as exc:
        raise InvalidIban(f"IBAN {compact!r} is not valid: {exc}", value=compact) from None
    if not iban.in_sepa_zone:
        raise InvalidIban(
            f"IBAN {compact!r} is from {iban.country_code}, outside the SEPA zone", value=compact
        )
    return str(iban.compact)


def validate_bic(value: str) -> str:
    """The upper-case BIC (8 or 11 characters), or `InvalidBic` with schwifty's reason."""
    compact = _compact(value or "")
    if not compact:
        raise InvalidBic("the BIC is empty")
    try:
        bic = BIC(compact)
    except SchwiftyException as exc:
        raise InvalidBic(f"BIC {compact!r} is not valid: {exc}", value=compact) from None
    return str(bic.compact)


def bic_matches_iban(bic: str, iban: str) -> bool | None:
    """Whether the BIC belongs to the IBAN's bank: True, False, or None when unknown.

    Uses schwifty's bank registry: the BIC's domestic bank codes must include the IBAN's
    bank code, or the BIC the registry gives for the IBAN must be the same institution
    (first 8 characters). None when neither side is in the registry, so no warning can be
    given honestly. Both values must already be valid.
    """
    iban_obj = IBAN(_compact(iban))
    bic_obj = BIC(_compact(bic))
    if bic_obj.country_code != iban_obj.country_code:
        return False
    bank_code = iban_obj.bank_code
    try:
        domestic = bic_obj.domestic_bank_codes
    except (SchwiftyException, KeyError):  # pragma: no cover - registry gaps
        domestic = []
    if domestic:
        return bank_code in domestic
    try:
        registered = iban_obj.bic
    except SchwiftyException:  # pragma: no cover - registry gaps
        registered = None
    if registered is None:
        return None
    return bool(str(registered.compact)[:8] == str(bic_obj.compact)[:8])


# --- SEPA character set ---------------------------------------------------------------------

SEPA_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ "
)
_SEPA_TEXT = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]*")
# Conversions beyond plain transliteration, as the EPC recommends for characters outside the
# basic set ("&" is written "+"); brackets and quotes to their nearest allowed sign.
_CONVERSIONS = {
    "&": "+",
    "_": "-",
    '"': "'",
    ";": ",",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "!": ".",
    "¡": "",  # Spanish opening marks: the closing one carries the meaning
    "¿": "",
    "\t": " ",
    "\n": " ",
    "\r": " ",
}


@dataclass(frozen=True, slots=True)
class _Transliterated:
    text: str
    refused: tuple[str, ...]


@lru_cache(maxsize=4096)
def _transliterate_char(char: str) -> str | None:
    """The SEPA text for one character outside the set, or None if it has none."""
    if char in _CONVERSIONS:
        return _CONVERSIONS[char]
    category = unicodedata.category(char)
    if category[0] in "LMN":  # letters, marks, numbers: ñ → n, ß → ss, Ж → Zh, ² → 2
        converted = anyascii(char)
    elif category[0] == "Z":  # every kind of space
        converted = " "
    elif category[0] == "P":  # punctuation: – → -, ’ → ', « → <<
        converted = anyascii(char)
    else:  # symbols (€, @, emoji, ...), controls, private use: no honest conversion
        return None
    converted = "".join(_CONVERSIONS.get(c, c) for c in converted)
    if not converted or all(c in SEPA_CHARACTERS for c in converted):
        return converted
    return None


# Latin-1 and Latin Extended-A/B (the accents of every EU language) converted in one
# `str.translate`; other characters take the per-character path.
_COMMON = {cp: _transliterate_char(chr(cp)) for cp in range(0x80, 0x250)}
_COMMON_TABLE = str.maketrans({chr(cp): out for cp, out in _COMMON.items() if out is not None})
_COMMON_TABLE.update(str.maketrans(_CONVERSIONS))


def _transliterate(text: str) -> _Transliterated:
    fast = text.translate(_COMMON_TABLE)
    if _SEPA_TEXT.fullmatch(fast):
        return _Transliterated(" ".join(fast.split()), ())
    out: list[str] = []
    refused: list[str] = []
    for char in text:
        if char in SEPA_CHARACTERS:
            out.append(char)
            continue
        converted = _transliterate_char(char)
        if converted is None:
            refused.append(char)
        else:
            out.append(converted)
    return _Transliterated(" ".join("".join(out).split()), tuple(dict.fromkeys(refused)))


def is_sepa_text(text: str) -> bool:
    """True when every character is in the EPC basic Latin set."""
    return _SEPA_TEXT.fullmatch(text) is not None


def sepa_text(text: str, *, max_length: int, field: str = "text") -> str:
    """The text in the SEPA character set: transliterated, spaces collapsed, cut to max_length.

    `SepaTextError` when a character has no conversion (symbols such as "@", "€", emoji) or
    the result is empty. Already-valid short text is returned unchanged (the fast path).
    """
    if (
        text
        and len(text) <= max_length
        and _SEPA_TEXT.fullmatch(text)
        and text.strip() == text
        and "  " not in text
    ):
        return text
    result = _transliterate(text)
    if result.refused:
        shown = ", ".join(repr(c) for c in result.refused)
        raise SepaTextError(
            f"{field} {text!r} has characters outside the SEPA character set that cannot be "
            f"transliterated: {shown}",
            field=field,
            value=text,
        )
    if not result.text:
        raise SepaTextError(
            f"{field} {text!r} is empty in the SEPA character set", field=field, value=text
        )
    return result.text[:max_length].rstrip()


# A valid identifier of up to 35 characters, in one expression (the fast path).
_IDENTIFIER_35 = re.compile(r"(?![/ ])(?!.*//)[A-Za-z0-9/\-?:().,'+ ]{1,35}(?<![/ ])")


def sepa_identifier(
    value: str, *, max_length: int = MAX_END_TO_END_ID, field: str = "identifier"
) -> str:
    """An identifier (MsgId, PmtInfId, EndToEndId, MndtId) exactly as given, or an error.

    Identifiers are never transliterated or cut (the bank echoes them back in returns):
    SEPA characters only, no spaces at the ends, not starting with "/", no "//", at most
    max_length characters.
    """
    if max_length == MAX_END_TO_END_ID and _IDENTIFIER_35.fullmatch(value):
        return value
    if not value:
        raise InvalidSepaIdentifier(f"{field} is empty", field=field)
    if len(value) > max_length:
        raise InvalidSepaIdentifier(
            f"{field} {value!r} is longer than {max_length} characters", field=field, value=value
        )
    if not is_sepa_text(value) or value.strip() != value:
        raise InvalidSepaIdentifier(
            f"{field} {value!r} has characters outside the SEPA character set",
            field=field,
            value=value,
        )
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise InvalidSepaIdentifier(
            f"{field} {value!r} must not start or end with '/' nor contain '//'",
            field=field,
            value=value,
        )
    return value


def validate_sepa_amount(amount: Decimal) -> Decimal:
    """A euro amount with at most 2 decimals from 0.01 to 999,999,999.99, else an error."""
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise InvalidSepaAmount(f"amount {amount} must have at most 2 decimals", value=str(amount))
    if amount < MIN_AMOUNT:
        raise InvalidSepaAmount(f"amount {amount} must be at least {MIN_AMOUNT}", value=str(amount))
    if amount > MAX_AMOUNT:
        raise InvalidSepaAmount(f"amount {amount} is above {MAX_AMOUNT}", value=str(amount))
    return amount.quantize(Decimal("0.01"))


# --- TARGET2 calendar -------------------------------------------------------------------------


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Meeus/Jones/Butcher algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def _target2_holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter - timedelta(days=2),  # Good Friday
            easter + timedelta(days=1),  # Easter Monday
            date(year, 5, 1),
            date(year, 12, 25),
            date(year, 12, 26),
        }
    )


def is_target2_business_day(day: date) -> bool:
    """True when TARGET2 is open: not a weekend nor one of its six closing days."""
    return day.weekday() < 5 and day not in _target2_holidays(day.year)


def add_business_days(start: date, days: int) -> date:
    """The TARGET2 business day `days` business days after `start` (start itself not counted).

    `days` = 0 gives `start` when it is a business day, else the next one.
    """
    if days < 0:
        raise ValueError("days must be zero or positive")
    current = start
    if days == 0:
        while not is_target2_business_day(current):
            current += timedelta(days=1)
        return current
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_target2_business_day(current):
            remaining -= 1
    return current


def earliest_charge_date(today: date, lead_business_days: int) -> date:
    """The first charge date a file sent today can ask for.

    The bank processes the file on a TARGET2 business day (today if it is one, else the
    next), and needs `lead_business_days` TARGET2 business days between that day and the
    charge date: a Saturday file with one day of lead time charges on Tuesday.
    """
    if lead_business_days < 0:
        raise ValueError("the lead time must be zero or positive")
    processed_on = add_business_days(today, 0)
    return add_business_days(processed_on, lead_business_days)
