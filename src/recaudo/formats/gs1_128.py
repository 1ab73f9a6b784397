"""GS1-128 bill-payment barcodes as Colombian billers print them on coupons.

The data is a GS1 element string of four Application Identifiers, in this order:

- `(415)` the biller's GLN, 13 digits whose last one is the GS1 mod-10 check digit;
  pre-defined length, so nothing separates it from the next AI;
- `(8020)` the payment reference, 1 to 25 characters of GS1's CSET 82; variable length;
- `(390n)` the amount, 1 to 15 digits with `n` implied decimals (`3900`: whole pesos);
  variable length;
- `(96)` the due date `YYYYMMDD` (company-internal AI, the Colombian convention);
  variable length, last.

A variable-length element that is not the last one is followed by FNC1. In the element
string FNC1 is written as the ASCII group separator (GS, 0x1D), which is also what a
scanner transmits in its place; the symbol starts with FNC1 (that makes it GS1-128) and
`barcode_input` spells FNC1 as reportlab's `\\xf1`.

Sources: GS1 Barcode Syntax Dictionary (`../shared/specs/gs1-128-colombia/`): 415 is
`N13,csum` and requires 8020; 8020 is `X..25`; 3900-3909 is `N..15`; 91-99 are `X..90`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from recaudo.domain.errors import ValidationFailed

GS = "\x1d"
REPORTLAB_FNC1 = "\xf1"
SYMBOLOGY_ID = "]C1"

AI_GLN = "415"
AI_REFERENCE = "8020"
AI_AMOUNT_PREFIX = "390"
AI_DUE_DATE = "96"

MAX_REFERENCE = 25
MAX_AMOUNT_DIGITS = 15
MAX_DECIMALS = 9

# GS1 CSET 82: the invariant subset of ISO/IEC 646.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$")
_DIGITS = re.compile(r"^[0-9]+$")
_HRI_ELEMENT = re.compile(r"\((\d{2,4})\)([^()]*)")


def gln_check_digit(body: str) -> int:
    """GS1 mod-10 check digit of the first 12 digits of a GLN.

    From the right, digits are weighted 3, 1, 3, 1, ...; the check digit brings the
    weighted sum up to the next multiple of ten.
    """
    if len(body) != 12 or not _DIGITS.match(body):
        raise ValidationFailed("a GLN body is 12 digits", field="gln", value=body)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gln(gln: str) -> bool:
    return len(gln) == 13 and bool(_DIGITS.match(gln)) and gln_check_digit(gln[:12]) == int(gln[12])


def check_gln(gln: str) -> str:
    """The GLN unchanged, or `ValidationFailed` naming what is wrong with it."""
    if len(gln) != 13 or not _DIGITS.match(gln):
        raise ValidationFailed("a GLN is 13 digits", field="gln", value=gln)
    expected = gln_check_digit(gln[:12])
    if int(gln[12]) != expected:
        raise ValidationFailed(
            f"GLN check digit is {gln[12]}, expected {expected}", field="gln", value=gln
        )
    return gln


def with_check_digit(body: str) -> str:
    """The 13-digit GLN made of a 12-digit body and its check digit."""
    return body + str(gln_check_digit(body))


@dataclass(frozen=True)
class PaymentCode:
    """What a coupon's barcode carries.

    `amount` is in currency units (`Decimal`), written with `decimals` implied decimals
    (AI 390n) and left-padded with zeros to `amount_width` digits (0: no padding).
    Two codes with the same data compare equal whatever their padding.
    """

    gln: str
    reference: str
    amount: Decimal
    due_date: date | None = None
    decimals: int = 0
    amount_width: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        check_gln(self.gln)
        if not self.reference or len(self.reference) > MAX_REFERENCE:
            raise ValidationFailed(
                f"the payment reference is 1 to {MAX_REFERENCE} characters",
                field="reference",
                value=self.reference,
            )
        if not _CSET82.match(self.reference):
            raise ValidationFailed(
                "the payment reference has characters a GS1-128 barcode cannot carry",
                field="reference",
                value=self.reference,
            )
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise ValidationFailed("implied decimals go from 0 to 9", field="decimals")
        if self.amount < 0 or self.amount != self.amount.quantize(
            Decimal(1).scaleb(-self.decimals)
        ):
            raise ValidationFailed(
                f"the amount {self.amount} does not fit {self.decimals} decimals",
                field="amount",
            )
        if len(self.amount_digits) > MAX_AMOUNT_DIGITS:
            raise ValidationFailed(
                f"the amount is at most {MAX_AMOUNT_DIGITS} digits", field="amount"
            )
        if self.due_date is not None and not date(1000, 1, 1) <= self.due_date:
            raise ValidationFailed("the due date is before year 1000", field="due_date")

    @property
    def amount_ai(self) -> str:
        return f"{AI_AMOUNT_PREFIX}{self.decimals}"

    @property
    def amount_digits(self) -> str:
        scaled = int(self.amount.scaleb(self.decimals))
        return str(scaled).rjust(self.amount_width, "0")

    def elements(self) -> list[tuple[str, str]]:
        """The (AI, value) pairs in barcode order."""
        pairs = [
            (AI_GLN, self.gln),
            (AI_REFERENCE, self.reference),
            (self.amount_ai, self.amount_digits),
        ]
        if self.due_date is not None:
            pairs.append((AI_DUE_DATE, self.due_date.strftime("%Y%m%d")))
        return pairs

    def element_string(self) -> str:
        """AIs and values concatenated, GS after each variable-length element but the last."""
        return join_elements(self.elements())

    def human_readable(self) -> str:
        """`(415)7709998013711(8020)...(3900)...(96)YYYYMMDD`, printed under the bars."""
        return "".join(f"({ai}){value}" for ai, value in self.elements())

    def barcode_input(self) -> str:
        """The message for reportlab's `Code128`: FNC1 first (GS1-128), FNC1 as separator."""
        return REPORTLAB_FNC1 + self.element_string().replace(GS, REPORTLAB_FNC1)


def _is_fixed(ai: str) -> bool:
    return ai == AI_GLN


def join_elements(pairs: list[tuple[str, str]]) -> str:
    parts: list[str] = []
    for index, (ai, value) in enumerate(pairs):
        parts.append(ai + value)
        if not _is_fixed(ai) and index < len(pairs) - 1:
            parts.append(GS)
    return "".join(parts)


def _known_ai(text: str, at: int) -> str:
    for ai in (AI_GLN, AI_REFERENCE, AI_DUE_DATE):
        if text.startswith(ai, at):
            return ai
    if text.startswith(AI_AMOUNT_PREFIX, at) and at + 3 < len(text) and text[at + 3].isdigit():
        return text[at : at + 4]
    raise ValidationFailed(
        f"unknown Application Identifier at position {at}", field="barcode", value=text[at : at + 4]
    )


def split_elements(data: str) -> list[tuple[str, str]]:
    """Split an element string (GS separators, optional `]C1` / leading FNC1) into pairs.

    Also accepts the human-readable form with parentheses.
    """
    text = data.strip()
    if text.startswith("("):
        return _split_hri(text)
    if text.startswith(SYMBOLOGY_ID):
        text = text[len(SYMBOLOGY_ID) :]
    text = text.replace(REPORTLAB_FNC1, GS).lstrip(GS)
    pairs: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        ai = _known_ai(text, at)
        at += len(ai)
        if _is_fixed(ai):
            value = text[at : at + 13]
            at += 13
        else:
            end = text.find(GS, at)
            end = len(text) if end < 0 else end
            value = text[at:end]
            at = end + 1 if end < len(text) else end
        pairs.append((ai, value))
    return pairs


def _split_hri(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    at = 0
    for match in _HRI_ELEMENT.finditer(text):
        if match.start() != at:
            break
        pairs.append((match[1], match[2]))
        at = match.end()
    if at != len(text) or not pairs:
        raise ValidationFailed("not a GS1 human-readable string", field="barcode", value=text)
    return pairs


def parse(data: str) -> PaymentCode:
    """The `PaymentCode` of a scanned element string or of a human-readable line.

    Requires 415, 8020 and one 390n, each once; 96 is optional. Padding widths are kept,
    so `parse(x).element_string()` gives back the same element string.
    """
    pairs = split_elements(data)
    seen: dict[str, str] = {}
    amount_ai = ""
    for ai, value in pairs:
        key = AI_AMOUNT_PREFIX if ai.startswith(AI_AMOUNT_PREFIX) and len(ai) == 4 else ai
        if key not in (AI_GLN, AI_REFERENCE, AI_AMOUNT_PREFIX, AI_DUE_DATE):
            raise ValidationFailed(f"unexpected Application Identifier ({ai})", field="barcode")
        if key in seen:
            raise ValidationFailed(f"Application Identifier ({ai}) repeated", field="barcode")
        seen[key] = value
        if key == AI_AMOUNT_PREFIX:
            amount_ai = ai
    for required in (AI_GLN, AI_REFERENCE, AI_AMOUNT_PREFIX):
        if required not in seen:
            shown = "390n" if required == AI_AMOUNT_PREFIX else required
            raise ValidationFailed(f"the barcode has no ({shown})", field="barcode")
    gln = seen[AI_GLN]
    if len(gln) != 13:
        raise ValidationFailed("(415) is 13 digits", field="gln", value=gln)
    digits = seen[AI_AMOUNT_PREFIX]
    if not digits or not _DIGITS.match(digits):
        raise ValidationFailed(f"({amount_ai}) is digits", field="amount", value=digits)
    decimals = int(amount_ai[3])
    due: date | None = None
    if AI_DUE_DATE in seen:
        due = parse_due_date(seen[AI_DUE_DATE])
    return PaymentCode(
        gln=gln,
        reference=seen[AI_REFERENCE],
        amount=Decimal(int(digits)).scaleb(-decimals) if decimals else Decimal(int(digits)),
        due_date=due,
        decimals=decimals,
        amount_width=len(digits),
    )


def parse_due_date(text: str) -> date:
    if len(text) != 8 or not _DIGITS.match(text):
        raise ValidationFailed("(96) is a date YYYYMMDD", field="due_date", value=text)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValidationFailed(
            "(96) is not a calendar date", field="due_date", value=text
        ) from None
