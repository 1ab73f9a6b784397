"""National identity numbers: validation and one canonical form per person.

Validation and check digits come from python-stdnum; this module only decides which
number types exist, which ones a country defaults to, and the canonical stored form
(stdnum's compact form: no dots, no hyphens, upper-case check letter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from operator import mul

from stdnum import exceptions as stdnum_errors
from stdnum.cl import rut
from stdnum.co import nit
from stdnum.es import cif, dni, nie, nif

from recaudo.domain.errors import InvalidNationalId


class IdType(StrEnum):
    RUT = "RUT"  # Chile, persons and companies
    NIT = "NIT"  # Colombia, tax id with check digit
    CC = "CC"  # Colombia, cédula de ciudadanía (no check digit)
    NIF = "NIF"  # Spain, DNI-based NIF of a person
    NIE = "NIE"  # Spain, foreigner's number
    CIF = "CIF"  # Spain, legal entity


COUNTRY_DEFAULT_ID_TYPE: dict[str, IdType] = {"CL": IdType.RUT, "CO": IdType.CC, "ES": IdType.NIF}
COUNTRY_ID_TYPES: dict[str, tuple[IdType, ...]] = {
    "CL": (IdType.RUT,),
    "CO": (IdType.CC, IdType.NIT),
    "ES": (IdType.NIF, IdType.NIE, IdType.CIF),
}
_ALIASES = {"DNI": IdType.NIF, "CEDULA": IdType.CC, "C.C.": IdType.CC, "RUN": IdType.RUT}
_CC = re.compile(r"^[0-9]{3,10}$")


@dataclass(frozen=True, slots=True)
class NationalId:
    type: IdType
    value: str  # canonical compact form

    def formatted(self) -> str:
        return format_national_id(self.type, self.value)

    def masked(self) -> str:
        return mask_national_id(self.value)

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


def parse_id_type(text: str) -> IdType:
    key = text.strip().upper()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return IdType(key)
    except ValueError:
        known = ", ".join(t.value for t in IdType)
        raise InvalidNationalId(f"unknown id type {text!r} (expected one of {known})") from None


def normalize(id_type: IdType, raw: str) -> NationalId:
    """Validate `raw` as `id_type` and return its canonical form.

    `12.345.678-5`, `12345678-5` and `123456785` give the same RUT; a Spanish number
    declared NIF that is really an NIE or a CIF is filed under its true type so that one
    person is one customer however it was declared.
    """
    text = raw.strip()
    if not text:
        raise InvalidNationalId("national id is empty")
    if len(text) > 30:
        raise InvalidNationalId("national id is longer than 30 characters")
    try:
        if id_type is IdType.RUT:
            return NationalId(IdType.RUT, rut.validate(text))
        if id_type is IdType.NIT:
            return NationalId(IdType.NIT, nit.validate(text))
        if id_type is IdType.CC:
            digits = re.sub(r"[ .]", "", text)
            if not _CC.match(digits) or digits.startswith("0"):
                raise InvalidNationalId(f"{raw!r} is not a cédula: 3 to 10 digits expected")
            return NationalId(IdType.CC, digits)
        if id_type is IdType.NIE:
            return NationalId(IdType.NIE, nie.validate(text))
        if id_type is IdType.CIF:
            return NationalId(IdType.CIF, cif.validate(text))
        value = nif.validate(text)
        if value[0] in "XYZ":
            return NationalId(IdType.NIE, value)
        if value[0].isalpha() and value[0] not in "KLM":
            return NationalId(IdType.CIF, value)
        return NationalId(IdType.NIF, value)
    except stdnum_errors.InvalidChecksum:
        raise InvalidNationalId(f"{raw!r} has a wrong check digit for {id_type}") from None
    except stdnum_errors.ValidationError as exc:
        raise InvalidNationalId(f"{raw!r} is not a valid {id_type}: {exc}") from None


def rut_check_digit(body: str) -> str:
    """The check digit of a RUT body (digits only), for lookups typed without one."""
    digits = re.sub(r"[ .]", "", body)
    if not digits.isdigit() or not 1 <= len(digits) <= 8:
        raise InvalidNationalId(f"{body!r} is not a RUT number")
    return fast_rut_check_digit(digits)


_RUT_SEPARATORS = str.maketrans("", "", " -.")
_RUT_WEIGHTS = (9, 8, 7, 6, 5, 4, 9, 8, 7)  # applied from the last digit of the body


def fast_rut_check_digit(body: str) -> str:
    """stdnum's modulo-11 check digit of an all-digit body, with the loop in C (3× faster)."""
    return "0123456789K"[sum(map(mul, map(int, reversed(body)), _RUT_WEIGHTS)) % 11]


def quick_rut(raw: str) -> str | None:
    """The compact form of a plainly typed valid RUT (`12.345.678-5`), else `None`.

    stdnum's validation costs about 5 µs, mostly in cleaning Unicode look-alikes; a
    daily file has hundreds of thousands of distinct customers and the bank channel
    reads one RUT per request. This takes only ASCII text and gives exactly what
    `normalize` gives for it (a property test checks); anything else goes to
    `normalize`, which also words the error.
    """
    if not raw.isascii():
        return None
    text = raw.translate(_RUT_SEPARATORS).upper()
    body = text[:-1]
    if len(text) not in (8, 9) or not body.isdigit() or text[-1] != fast_rut_check_digit(body):
        return None
    return text


def format_national_id(id_type: IdType, value: str) -> str:
    if id_type is IdType.RUT:
        return str(rut.format(value))
    if id_type is IdType.NIT:
        return str(nit.format(value))
    if id_type is IdType.NIF and value[0].isdigit():
        return str(dni.compact(value))
    return value


def mask_national_id(value: str) -> str:
    """What logs may show of a national id: the first two and last two characters."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_name(name: str) -> str:
    """What logs may show of a person's name: initials only."""
    return " ".join(part[0] + "***" for part in name.split() if part)
