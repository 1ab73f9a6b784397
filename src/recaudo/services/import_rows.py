"""The daily debts file: its columns, and the check of one row.

No database here: a row goes in as the cells of the file and comes out as a staging
tuple, either valid (normalised values) or rejected (the column to blame, the reason
and the original cells). This is the hot loop of an import, so each check takes the
common case first and the national-id check, the expensive one, is cached per raw
value (files list each customer's debts together, so the cache hits often).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from recaudo.domain import ids, money
from recaudo.domain.errors import InvalidAmount, InvalidNationalId
from recaudo.formats.tabular import Column, Layout
from recaudo.services.customers import resolve_national_id

DEBT_COLUMNS: tuple[Column, ...] = (
    Column(
        "national_id",
        (
            "rut",
            "rut_cliente",
            "run",
            "customer_id",
            "national_id",
            "nit",
            "nif",
            "dni",
            "cedula",
            "identificacion",
            "numero_identificacion",
            "id_number",
        ),
        required=True,
    ),
    Column("id_type", ("tipo_documento", "tipo_identificacion", "tipo_id", "id_type")),
    Column(
        "name",
        ("nombre", "nombre_cliente", "razon_social", "name", "customer_name", "full_name"),
        required=True,
    ),
    Column(
        "external_id",
        ("id_deuda", "debt_id", "id_producto", "id_factura", "invoice_id", "folio"),
        required=True,
    ),
    Column(
        "due_date",
        ("vencimiento", "fecha_vencimiento", "fecha_de_vencimiento", "due_date"),
        required=True,
    ),
    Column("amount", ("monto", "importe", "valor", "amount"), required=True),
    Column("concept", ("concepto", "descripcion", "glosa", "detalle", "concept", "description")),
    Column("issue_date", ("emision", "fecha_emision", "fecha_de_emision", "issue_date")),
    Column("email", ("email", "correo", "correo_electronico", "e_mail", "mail")),
    Column("phone", ("telefono", "celular", "movil", "phone", "mobile")),
)

EXTERNAL_ID_MAX = 64
CONCEPT_MAX = 200
NAME_MAX = 200
EMAIL_MAX = 254
PHONE_MAX = 40
AMOUNT_DIGITS_MAX = 24  # longer is out of range anyway; int() of huge text is slow
NATIONAL_ID_CACHE = 65_536  # distinct raw ids remembered: ~20 MB at most
DATE_FORMATS = "YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY"

# The staging row, in the staging table's column order (see import_sql.STAGE_COLUMNS):
# row_number, external_id, id_type, national_id, name, email, phone, amount_minor,
# due_date, issue_date, concept, column, reason, raw.
StageRow = tuple[int | str | None, ...]


class _Reject(Exception):
    """One bad cell; caught in `parse` and turned into a rejected staging row."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _BadId:
    key: str
    reason: str


class DebtRowParser:
    """Checks rows of one file for one company (its country and currency)."""

    def __init__(self, layout: Layout, country: str, currency: str) -> None:
        self.layout = layout
        self.width = layout.width
        index = layout.index
        self._ext = index["external_id"]
        self._nid = index["national_id"]
        self._name = index["name"]
        self._due = index["due_date"]
        self._amount = index["amount"]
        self._type = index.get("id_type")
        self._concept = index.get("concept")
        self._issue = index.get("issue_date")
        self._email = index.get("email")
        self._phone = index.get("phone")
        self._currency = currency
        self._scale = money.exponent(currency)
        self._factor = 10**self._scale
        self._national = lru_cache(maxsize=NATIONAL_ID_CACHE)(_national_resolver(country))

    def has(self, key: str) -> bool:
        return key in self.layout.index

    def parse(self, number: int, cells: list[str]) -> StageRow:
        """The staging row for `cells`: valid, or rejected with its first bad column."""
        if len(cells) == self.width:
            row = self._quick(number, cells)
            if row is not None:
                return row
        return self.check(number, cells)

    def _quick(self, number: int, cells: list[str]) -> StageRow | None:
        """The common clean row, checked inline in one call; `None` sends it to `check`.

        A million-row file spends most of its Python time here. This accepts a strict
        subset of what `check` accepts and builds the same tuple (a property test
        compares the two), so every error message still comes from `check`.
        """
        external = cells[self._ext].strip()
        if not external or len(external) > EXTERNAL_ID_MAX or not external.isprintable():
            return None
        declared = cells[self._type] if self._type is not None else ""
        found = self._national(cells[self._nid], declared)
        if isinstance(found, _BadId):
            return None
        name = " ".join(cells[self._name].split())
        due = _iso_date(cells[self._due].strip())
        amount = self._quick_amount(cells[self._amount].strip())
        if not name or len(name) > NAME_MAX or due is None or amount is None:
            return None
        concept = issue = email = phone = None
        if self._concept is not None:
            concept = cells[self._concept].strip() or None
            if concept is not None and len(concept) > CONCEPT_MAX:
                return None
        if self._issue is not None and (text := cells[self._issue].strip()):
            issue = _iso_date(text)
            if issue is None:
                return None
        if self._email is not None and (email := cells[self._email].strip() or None):
            bad_email = len(email) > EMAIL_MAX or "@" not in email or " " in email
            if bad_email:
                return None
        if self._phone is not None and (phone := cells[self._phone].strip() or None):
            long_phone = len(phone) > PHONE_MAX
            if long_phone:
                return None
        valid = (found[0], found[1], name, email, phone, amount, due, issue, concept)
        return (number, external, *valid, None, None, None)

    def _quick_amount(self, text: str) -> int | None:
        """`1234`, `1234.5` or `1234,50` within the currency's decimals; else `None`."""
        if len(text) > AMOUNT_DIGITS_MAX or not text.isascii():
            return None
        if text.isdigit():
            minor = int(text) * self._factor
        else:
            whole, separator, fraction = text.partition("." if "." in text else ",")
            if not (separator and whole.isdigit() and fraction.isdigit()):
                return None
            if len(fraction) > self._scale:
                return None
            minor = int(whole) * self._factor + int(fraction) * 10 ** (self._scale - len(fraction))
        return minor if 0 < minor < money.MAX_MINOR else None

    def check(self, number: int, cells: list[str]) -> StageRow:
        """Every check, one helper per column: the first failing cell is blamed."""
        if len(cells) != self.width:
            cells = self._fit(cells)
        external: str | None = None
        try:
            if len(cells) != self.width:
                raise _Reject(None, f"row has {len(cells)} fields, the header has {self.width}")
            external = self._external_id(cells[self._ext])
            id_type, national = self._national_id(cells)
            name = self._name_of(cells[self._name])
            due = self._date(cells[self._due], "due_date", "due date")
            amount = self._amount_of(cells[self._amount])
            concept = self._concept_of(cells)
            issue = self._issue_of(cells)
            email, phone = self._contact(cells)
        except _Reject as bad:
            label = self.layout.label(bad.key) if bad.key else None
            return (number, external, *([None] * 9), label, bad.reason, self.raw(cells))
        valid = (id_type, national, name, email, phone, amount, due, issue, concept)
        return (number, external, *valid, None, None, None)

    def raw(self, cells: Sequence[str]) -> str:
        """The original cells as a JSON object keyed by the file's column labels."""
        padded = list(cells[: self.width]) + [""] * (self.width - len(cells))
        return json.dumps(dict(zip(self.layout.labels, padded, strict=True)), ensure_ascii=False)

    def _fit(self, cells: list[str]) -> list[str]:
        """Pad short rows (writers drop empty trailing cells); keep long ones long.

        A row longer than the header does not match it, even if the extra cells are
        empty: `...,12000,5,` with an unquoted decimal comma and an empty last column
        would otherwise read as 12000 with concept "5". `check` rejects it instead.
        """
        if len(cells) < self.width:
            return cells + [""] * (self.width - len(cells))
        return cells

    def _external_id(self, text: str) -> str:
        value = text.strip()
        if not value:
            raise _Reject("external_id", "debt id is required")
        if len(value) > EXTERNAL_ID_MAX:
            raise _Reject("external_id", f"debt id is longer than {EXTERNAL_ID_MAX} characters")
        if not value.isprintable():
            raise _Reject("external_id", "debt id contains control characters")
        return value

    def _national_id(self, cells: list[str]) -> tuple[str, str]:
        raw = cells[self._nid]
        declared = cells[self._type] if self._type is not None else ""
        if not raw.strip():
            raise _Reject("national_id", "national id is required")
        found = self._national(raw, declared)
        if isinstance(found, _BadId):
            raise _Reject(found.key, found.reason)
        return found

    def _name_of(self, text: str) -> str:
        value = " ".join(text.split())
        if not value:
            raise _Reject("name", "name is required")
        if len(value) > NAME_MAX:
            raise _Reject("name", f"name is longer than {NAME_MAX} characters")
        return value

    def _date(self, text: str, key: str, what: str) -> str:
        """ISO `YYYY-MM-DD` text of a date typed as ISO, `DD-MM-YYYY` or `DD/MM/YYYY`."""
        value = text.strip()
        if not value:
            raise _Reject(key, f"{what} is required")
        iso = _iso_date(value)
        if iso is None:
            raise _Reject(key, f"{what} {value!r} is not a valid date ({DATE_FORMATS})")
        return iso

    def _amount_of(self, text: str) -> int:
        value = text.strip()
        if not value:
            raise _Reject("amount", "amount is required")
        minor = -1
        if value.isascii() and value.isdigit() and len(value) <= AMOUNT_DIGITS_MAX:
            minor = int(value) * self._factor  # fast path: whole amounts, the usual case
        if not 0 <= minor < money.MAX_MINOR:
            try:
                minor = money.to_minor(money.parse_amount(value, self._currency), self._currency)
            except InvalidAmount as exc:
                raise _Reject("amount", exc.message) from None
            if _typed_decimals(value) > self._scale:
                # parse_amount lets bank channels send zero decimals (`141418.00` CLP);
                # a file is held stricter: no digits beyond the currency's, not even zeros.
                decimals = f"more than {self._scale} decimals for {self._currency}"
                raise _Reject("amount", f"{value!r} has {decimals}")
        if minor == 0:
            raise _Reject("amount", "amount must be greater than zero")
        return minor

    def _concept_of(self, cells: list[str]) -> str | None:
        if self._concept is None:
            return None
        value = cells[self._concept].strip()
        if len(value) > CONCEPT_MAX:
            raise _Reject("concept", f"concept is longer than {CONCEPT_MAX} characters")
        return value or None

    def _issue_of(self, cells: list[str]) -> str | None:
        if self._issue is None or not cells[self._issue].strip():
            return None
        return self._date(cells[self._issue], "issue_date", "issue date")

    def _contact(self, cells: list[str]) -> tuple[str | None, str | None]:
        email = cells[self._email].strip() if self._email is not None else ""
        phone = cells[self._phone].strip() if self._phone is not None else ""
        if email and (len(email) > EMAIL_MAX or "@" not in email or " " in email):
            raise _Reject("email", f"{email!r} is not an e-mail address")
        if len(phone) > PHONE_MAX:
            raise _Reject("phone", f"phone is longer than {PHONE_MAX} characters")
        return email or None, phone or None


def _typed_decimals(value: str) -> int:
    """How many decimals `value` was typed with, read the way `money.parse_amount` reads it."""
    raw = value.replace(" ", "")
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    exponent = Decimal(raw).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _iso_date(value: str) -> str | None:
    if len(value) != 10 or not value.isascii():
        return None
    if value[4] == "-" and value[7] == "-":
        iso = value
    elif value[2] in "-/" and value[5] == value[2]:
        iso = f"{value[6:]}-{value[3:5]}-{value[:2]}"
    else:
        return None
    try:
        date.fromisoformat(iso)
    except ValueError:
        return None
    return iso


def _national_resolver(country: str) -> Callable[[str, str], tuple[str, str] | _BadId]:
    chilean = country == "CL"

    def resolve(raw: str, declared: str) -> tuple[str, str] | _BadId:
        if chilean and not declared.strip() and (value := ids.quick_rut(raw)) is not None:
            return ids.IdType.RUT.value, value
        # The declared type is checked on its own so the right column gets the blame.
        if declared.strip():
            try:
                kind = ids.parse_id_type(declared)
            except InvalidNationalId as exc:
                return _BadId("id_type", exc.message)
            if kind not in ids.COUNTRY_ID_TYPES[country]:
                return _BadId("id_type", f"id type {kind} is not used in {country}")
        try:
            national = resolve_national_id(country, raw, declared or None)
        except InvalidNationalId as exc:
            return _BadId("national_id", exc.message)
        return national.type.value, national.value

    return resolve
