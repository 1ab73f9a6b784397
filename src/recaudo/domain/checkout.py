"""Checkout (issue 8): reference-field validation, service parameter rules, transaction states.

Pure: the hosted payment page, the company-application API and imports validate references
with the one function `validate_references`; the services apply the parameter rules below.

Reference fields follow eCollect's administration manual: types text, integer, currency,
e-mail, customer id number, customer id type and constant; attributes required, upper-case,
hidden, read-only and fixed value; the forced length in eCollect's notation (`n` exactly n,
`-n` at most n, `n-m` between n and m, `n,m,p` one of these; lengths up to 100); lists of
codes, including related lists (department -> city), where a child item names its parent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from stdnum.co import nit

from recaudo.domain.errors import Conflict, ValidationFailed

MAX_LENGTH = 100

KINDS = ("text", "integer", "currency", "email", "customer_id", "customer_id_type", "constant")
LIST_KINDS = ("text", "price", "currency")
# Colombian identity document types (Registraduría / DIAN abbreviations).
ID_TYPES = ("CC", "CE", "TI", "RC", "NIT", "PA", "PEP", "PPT")
_NUMERIC_ID_TYPES = ("CC", "TI", "RC", "NIT")

_INTEGER = re.compile(r"^[0-9]+$")
_CURRENCY = re.compile(r"^[0-9]+(?:[.,][0-9]{1,2})?$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_ID_NUMBER = re.compile(r"^[0-9A-Z]{3,20}$")
_LENGTH_EXACT = re.compile(r"^([0-9]{1,3})$")
_LENGTH_MAX = re.compile(r"^-([0-9]{1,3})$")
_LENGTH_RANGE = re.compile(r"^([0-9]{1,3})-([0-9]{1,3})$")
_LENGTH_ONE_OF = re.compile(r"^[0-9]{1,3}(?:,[0-9]{1,3})+$")


# --- forced length ------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthRule:
    """An eCollect forced length: the allowed lengths, from `minimum` to `maximum` or `one_of`."""

    notation: str
    minimum: int
    maximum: int
    one_of: frozenset[int] | None = None

    def allows(self, length: int) -> bool:
        if self.one_of is not None:
            return length in self.one_of
        return self.minimum <= length <= self.maximum

    def describe(self) -> str:
        if self.one_of is not None:
            return "una de estas longitudes: " + ", ".join(str(n) for n in sorted(self.one_of))
        if self.minimum == self.maximum:
            return f"exactamente {self.minimum} caracteres"
        if self.minimum == 0:
            return f"máximo {self.maximum} caracteres"
        return f"entre {self.minimum} y {self.maximum} caracteres"


def parse_forced_length(notation: str) -> LengthRule:
    """`n`, `-n`, `n-m` or `n,m,p`; every length between 1 and 100 (0 only as a minimum)."""
    text = notation.strip()

    def bounded(value: int) -> int:
        if not 1 <= value <= MAX_LENGTH:
            raise ValidationFailed(
                f"forced length {notation!r}: lengths go from 1 to {MAX_LENGTH}",
                field="forced_length",
            )
        return value

    if match := _LENGTH_EXACT.match(text):
        n = bounded(int(match[1]))
        return LengthRule(text, n, n)
    if match := _LENGTH_MAX.match(text):
        return LengthRule(text, 0, bounded(int(match[1])))
    if match := _LENGTH_RANGE.match(text):
        low, high = int(match[1]), bounded(int(match[2]))
        if low > high or low > MAX_LENGTH:
            raise ValidationFailed(
                f"forced length {notation!r}: the minimum is above the maximum",
                field="forced_length",
            )
        return LengthRule(text, low, high)
    if _LENGTH_ONE_OF.match(text):
        lengths = frozenset(bounded(int(part)) for part in text.split(","))
        return LengthRule(text, min(lengths), max(lengths), lengths)
    raise ValidationFailed(
        f"forced length {notation!r} is not n, -n, n-m or n,m,p", field="forced_length"
    )


# --- reference fields ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListItem:
    code: str
    label: str
    price_minor: int | None = None
    # For a related (child) list: the code of the parent list's item this one belongs to.
    parent: str | None = None


@dataclass(frozen=True)
class ReferenceSpec:
    """A reference field as attached to one service (field + per-service attributes)."""

    title: str
    kind: str = "text"
    required: bool = False
    upper_case: bool = False
    hidden: bool = False
    read_only: bool = False
    fixed_value: str | None = None
    forced_length: LengthRule | None = None
    prefix: str | None = None
    list_items: tuple[ListItem, ...] = ()
    # Index (in the service's order) of the parent reference of a related list.
    parent_index: int | None = None
    double_payment_control: bool = False
    help_text: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationFailed(f"unknown reference type {self.kind!r}", field="kind")
        if self.kind == "constant" and self.fixed_value is None:
            raise ValidationFailed(
                f"reference {self.title!r}: a constant needs its fixed value", field="fixed_value"
            )

    def item(self, code: str) -> ListItem | None:
        return next((item for item in self.list_items if item.code == code), None)


@dataclass(frozen=True)
class ValidReferences:
    """The normalised values in the service's order (prefix included) and the list prices."""

    values: tuple[str, ...]
    list_price_minor: int | None = None

    def double_payment_key(self, specs: Sequence[ReferenceSpec]) -> str | None:
        """The controlled references (only the first three may be) joined, or None."""
        parts = [
            f"{index}={value}"
            for index, (spec, value) in enumerate(zip(specs, self.values, strict=True))
            if spec.double_payment_control and index < 3
        ]
        return "|".join(parts) if parts else None


def _check_kind(spec: ReferenceSpec, value: str, id_type: str | None) -> str | None:
    """The normalised value, or raise with the reason (Spanish, shown to the payer)."""
    kind = spec.kind
    if kind == "integer":
        if not _INTEGER.match(value):
            raise ValueError("debe contener solo dígitos")
    elif kind == "currency":
        if not _CURRENCY.match(value):
            raise ValueError("debe ser un valor como 1234 o 1234.50")
        return value.replace(",", ".")
    elif kind == "email":
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValueError("debe ser un correo electrónico válido")
        return value.lower()
    elif kind == "customer_id_type":
        upper = value.upper()
        if upper not in ID_TYPES:
            raise ValueError("debe ser uno de " + ", ".join(ID_TYPES))
        return upper
    elif kind == "customer_id":
        upper = value.upper().replace(".", "").replace("-", "").replace(" ", "")
        if not _ID_NUMBER.match(upper):
            raise ValueError("debe tener entre 3 y 20 letras o dígitos")
        if id_type in _NUMERIC_ID_TYPES and not upper.isdigit():
            raise ValueError(f"un documento {id_type} tiene solo dígitos")
        if id_type == "NIT" and not nit.is_valid(upper):
            raise ValueError("el NIT no es válido (dígito de verificación)")
        return upper
    elif kind == "text" and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("contiene caracteres de control")
    return None


def _fixed(spec: ReferenceSpec) -> str | None:
    """The value a constant or a read-only field with a fixed value always takes."""
    if spec.kind == "constant" or (spec.read_only and spec.fixed_value is not None):
        return spec.fixed_value or ""
    return None


def validate_references(
    specs: Sequence[ReferenceSpec], submitted: Sequence[str | None] | Mapping[int, str | None]
) -> ValidReferences:
    """Validate the payer's values (by position) against the service's references.

    Every problem is reported at once: `ValidationFailed.details["fields"]` maps the
    reference's position (as text) to its Spanish message. Constants and read-only fields
    with a fixed value always take the fixed value, whatever was sent.
    """
    if isinstance(submitted, Mapping):
        raw: list[str | None] = [submitted.get(index) for index in range(len(specs))]
    else:
        if len(submitted) > len(specs):
            raise ValidationFailed(
                f"{len(submitted)} references sent, the service has {len(specs)}",
                fields={str(len(specs)): "sobran referencias"},
            )
        raw = list(submitted) + [None] * (len(specs) - len(submitted))
    id_type = next(
        (
            (_fixed(spec) or value or "").strip().upper()
            for spec, value in zip(specs, raw, strict=True)
            if spec.kind == "customer_id_type"
        ),
        None,
    )
    errors: dict[str, str] = {}
    values: list[str] = []
    price: int | None = None
    for index, (spec, given_value) in enumerate(zip(specs, raw, strict=True)):
        value = (given_value or "").strip()
        forced = _fixed(spec)
        if forced is not None:
            value = forced
        elif spec.fixed_value is not None and not value:
            value = spec.fixed_value
        if spec.upper_case:
            value = value.upper()
        if not value:
            if spec.required:
                errors[str(index)] = f"{spec.title}: es obligatorio"
            values.append("")
            continue
        try:
            if spec.list_items:
                item = spec.item(value)
                if item is None:
                    raise ValueError("no es una opción de la lista")
                if spec.parent_index is not None and item.parent is not None:
                    parent_value = values[spec.parent_index] if spec.parent_index < index else ""
                    if parent_value != (spec.prefix or "") + item.parent:
                        raise ValueError("no corresponde a la opción elegida arriba")
                if item.price_minor is not None:
                    price = (price or 0) + item.price_minor
            normalised = _check_kind(spec, value, id_type) or value
            if spec.forced_length is not None and not spec.forced_length.allows(len(normalised)):
                raise ValueError("debe tener " + spec.forced_length.describe())
            if len(normalised) > MAX_LENGTH:
                raise ValueError(f"admite máximo {MAX_LENGTH} caracteres")
        except ValueError as exc:
            errors[str(index)] = f"{spec.title}: {exc}"
            values.append(value)
            continue
        values.append((spec.prefix or "") + normalised)
    if errors:
        raise ValidationFailed(
            "the references do not validate: " + "; ".join(errors.values()), fields=errors
        )
    return ValidReferences(tuple(values), price)


# --- service parameters -------------------------------------------------------------------

PRICE_KINDS = ("fixed", "list", "open", "portfolio")
MEANS = ("PSE", "CARD")
DOUBLE_PAYMENT = ("off", "refuse", "warn")


@dataclass(frozen=True)
class ServiceRules:
    """The parameters of a service that decide whether a payment may start, and its amount."""

    price_kind: str
    currency: str
    active: bool = True
    active_from: date | None = None
    active_until: date | None = None
    fixed_price_minor: int | None = None
    min_amount_minor: int | None = None
    vat_basis_points: int = 0
    accepted_means: tuple[str, ...] = MEANS
    partial_payment: bool = False
    overdue_days: int | None = None
    max_retries: int = 2
    daily_attempt_limit: int | None = None
    daily_amount_limits: Mapping[str, int] = field(default_factory=dict)
    double_payment: str = "off"
    informative_only: bool = False

    def __post_init__(self) -> None:
        if self.price_kind not in PRICE_KINDS:
            raise ValidationFailed(f"unknown price kind {self.price_kind!r}", field="price_kind")
        if self.price_kind == "fixed" and (self.fixed_price_minor or 0) <= 0:
            raise ValidationFailed("a fixed-price service needs its price", field="fixed_price")
        if self.double_payment not in DOUBLE_PAYMENT:
            raise ValidationFailed("double payment is off, refuse or warn", field="double_payment")
        unknown = [m for m in self.accepted_means if m not in MEANS]
        if unknown:
            raise ValidationFailed(f"unknown payment means {unknown}", field="accepted_means")
        if not 0 <= self.vat_basis_points <= 10_000:
            raise ValidationFailed("VAT goes from 0 to 100 %", field="vat_percent")
        if self.max_retries < 0:
            raise ValidationFailed("retries cannot be negative", field="max_retries")

    def check_open(self, today: date) -> None:
        """Active flag and activation dates; informative-only services take no payment."""
        if self.informative_only:
            raise Conflict("this service is informative only and takes no payment")
        if not self.active:
            raise Conflict("this service is not active")
        if self.active_from is not None and today < self.active_from:
            raise Conflict(f"this service opens on {self.active_from.isoformat()}")
        if self.active_until is not None and today > self.active_until:
            raise Conflict(f"this service closed on {self.active_until.isoformat()}")

    def vat_for(self, base_minor: int) -> int:
        """VAT on an amount before tax, rounded half-up to the minor unit."""
        vat = Decimal(base_minor) * self.vat_basis_points / Decimal(10_000)
        return int(vat.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def amount(
        self,
        *,
        list_price_minor: int | None,
        typed_minor: int | None,
        typed_vat_minor: int | None = None,
        portfolio_total_minor: int | None = None,
    ) -> tuple[int, int]:
        """(amount before tax, VAT) the payer pays, by price kind.

        fixed: the service's price (a typed amount must be absent or equal); list: the price of
        the chosen list items; open: the typed amount, at least the minimum; portfolio: the
        customer's open debts, or a typed part of them when partial payment is allowed.
        A typed VAT (company-application API) must equal the service's VAT on the base.
        """
        kind = self.price_kind
        if kind == "fixed":
            base = self.fixed_price_minor or 0
            if typed_minor is not None and typed_minor != base:
                raise ValidationFailed(
                    "this service has a fixed price; the amount cannot change",
                    fields={"amount": "el valor es fijo"},
                )
        elif kind == "list":
            if list_price_minor is None:
                raise ValidationFailed(
                    "choose an item of the price list", fields={"amount": "elija un valor"}
                )
            base = list_price_minor
        elif kind == "open":
            if typed_minor is None or typed_minor <= 0:
                raise ValidationFailed(
                    "type the amount to pay", fields={"amount": "escriba el valor a pagar"}
                )
            if self.min_amount_minor is not None and typed_minor < self.min_amount_minor:
                raise ValidationFailed(
                    f"the amount is below the minimum ({self.min_amount_minor} minor units)",
                    fields={"amount": "el valor es menor que el mínimo"},
                )
            base = typed_minor
        else:
            total = portfolio_total_minor or 0
            if total <= 0:
                raise Conflict("no open debts to pay for these references")
            if typed_minor is None or typed_minor == total:
                base = total
            elif not self.partial_payment:
                raise ValidationFailed(
                    "this service does not accept partial payments",
                    fields={"amount": "debe pagar el total"},
                )
            elif not 0 < typed_minor < total:
                raise ValidationFailed(
                    "a partial payment is more than zero and less than the total due",
                    fields={"amount": "valor fuera de rango"},
                )
            else:
                base = typed_minor
        vat = self.vat_for(base)
        if typed_vat_minor is not None and typed_vat_minor != vat:
            raise ValidationFailed(
                f"the tax is {vat}, not {typed_vat_minor}", fields={"vat": "impuesto incorrecto"}
            )
        return base, vat

    def check_means(self, means: str) -> None:
        if means not in self.accepted_means:
            raise ValidationFailed(
                f"payment means {means!r} is not accepted by this service",
                fields={"means": "medio de pago no aceptado"},
            )

    def overdue_ok(self, due_date: date, today: date) -> bool:
        """A debt past its due date is payable only within `overdue_days` days of it."""
        if today <= due_date:
            return True
        if self.overdue_days is None:
            return False
        return (today - due_date).days <= self.overdue_days

    def check_retry(self, failed_attempts: int) -> None:
        """A payer retries a failed or declined payment at most `max_retries` times."""
        if failed_attempts > self.max_retries:
            raise Conflict(
                f"this payment was already retried {self.max_retries} times",
                max_retries=self.max_retries,
            )

    def check_daily_attempts(self, attempts_today: int) -> None:
        if self.daily_attempt_limit is not None and attempts_today >= self.daily_attempt_limit:
            raise Conflict(
                f"the daily limit of {self.daily_attempt_limit} attempts was reached",
                limit=self.daily_attempt_limit,
            )

    def check_daily_amount(self, means: str, paid_today_minor: int, amount_minor: int) -> None:
        limit = self.daily_amount_limits.get(means)
        if limit is not None and paid_today_minor + amount_minor > limit:
            raise Conflict(
                f"the daily amount limit for {means} would be exceeded",
                limit_minor=limit,
                used_minor=paid_today_minor,
            )

    def double_payment_outcome(self, already_paid: bool) -> str | None:
        """None when fine; "warn" to warn and allow; raises Conflict when refused."""
        if not already_paid or self.double_payment == "off":
            return None
        if self.double_payment == "refuse":
            raise Conflict("these references were already paid", code_hint="double_payment")
        return "warn"


# --- transaction states -------------------------------------------------------------------

CREATED = "CREATED"
PENDING = "PENDING"
OK = "OK"
NOT_AUTHORIZED = "NOT_AUTHORIZED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
CAPTURED = "CAPTURED"
STATES = (CREATED, PENDING, OK, NOT_AUTHORIZED, FAILED, EXPIRED, CAPTURED)
FINAL = frozenset({OK, NOT_AUTHORIZED, FAILED, EXPIRED, CAPTURED})
RETRYABLE = frozenset({NOT_AUTHORIZED, FAILED})

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({PENDING, EXPIRED, CAPTURED, FAILED}),
    PENDING: frozenset({OK, NOT_AUTHORIZED, FAILED, EXPIRED}),
}


def next_state(current: str, target: str) -> str:
    """The target state if the move is allowed; a final state never changes."""
    if current in FINAL:
        raise Conflict(
            f"the transaction is {current}, a final state", state=current, requested=target
        )
    if target not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a {current} transaction cannot become {target}", state=current)
    return target


def trace_code(bank_code: str, at: datetime, sequence: int) -> str:
    """The bank's trace code (CUS-like): bank code, UTC timestamp and a 6-digit sequence."""
    return f"{bank_code[:4].rjust(4, '0')}{at:%Y%m%d%H%M%S}{sequence % 1_000_000:06d}"
