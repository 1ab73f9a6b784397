"""The correspondent-banking "Check collection" contract: headers, body, answers.

`POST /collections-management/v1/collection` (seeds/003, last section). A correspondent
(a shop acting for a bank) reads what a reference owes (`X-Invoker-Action: R`) and then
applies the payment (`C`). Pure translation: no database, no services.

Headers the document marks required are required; the fixed values it lists are checked
(`X-Invoker-Channel` 13, `X-Invoker-BranchId` 1108, `X-Invoker-Country` CO,
`X-Invoker-subChannel` 07, `X-Invoker-User` NEWCBSER; `X-Invoker-Source` 18 when sent).
`X-Invoker-TxId` is `APIF` + Julian date (last digit of the year, day of the year on
three digits, matching `X-Invoker-ProcessDate`) + bank code `32` + a 10-digit
authorisation number; `X-Invoker-ProcessId` is its last 11 digits right-aligned with a
zero on the left (`APIF4087320000000001` → `020000000001`), required to apply.

The error shape, the error codes and the client-credentials authentication are the
collections-management contract's (`channels/collections_management`), reused here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from recaudo.channels.collections_management.contract import (
    ContractError,
    bad_input,
    null_input,
)
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.formats import gs1_128
from recaudo.formats.gs1_128 import PaymentCode

ACTION_READ = "R"
ACTION_APPLY = "C"

# Required headers ("SI" in the document) besides the credentials, with their fixed value
# when the document gives one. X-Invoker-ModifierUser is "SI" but its value is spaces,
# which HTTP trims to nothing, so it cannot be required.
FIXED_HEADERS: Mapping[str, str] = {
    "X-Invoker-Channel": "13",
    "X-Invoker-BranchId": "1108",
    "X-Invoker-Country": "CO",
    "X-Invoker-subChannel": "07",
    "X-Invoker-User": "NEWCBSER",
}
REQUIRED_HEADERS = (
    "X-Invoker-Channel",
    "X-Invoker-BranchId",
    "X-Invoker-TerminalId",
    "X-Invoker-UserIPAddress",
    "X-Invoker-ServerIPAddress",
    "X-Invoker-ProcessDate",
    "X-Invoker-TxId",
    "X-Invoker-SessionKey",
    "X-Invoker-Country",
    "X-Invoker-subChannel",
    "X-Invoker-User",
    "X-Invoker-Action",
)
OPTIONAL_FIXED: Mapping[str, str] = {"X-Invoker-Source": "18"}

_TX_ID = re.compile(r"^APIF([0-9])([0-9]{3})(32)([0-9]{10})$")
_IP = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
_RQ_UID = re.compile(r"^[0-9]{6}$")
_DIGITS = re.compile(r"^[0-9]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Headers:
    action: str
    tx_id: str
    process_id: str | None
    process_date: date
    terminal_id: str
    user_ip: str
    server_ip: str


def process_id_of(tx_id: str) -> str:
    """The last 11 digits of the transaction id, right-aligned with a zero: 12 characters."""
    return tx_id[-11:].rjust(12, "0")


def julian(day: date) -> str:
    """`YDDD`: the year's last digit and the day of the year (2024-03-27 → `4087`)."""
    return f"{day.year % 10}{day.timetuple().tm_yday:03d}"


def parse_headers(headers: Mapping[str, str]) -> Headers:
    values: dict[str, str] = {}
    for name in REQUIRED_HEADERS:
        value = headers.get(name.lower(), "").strip()
        if not value:
            raise null_input(f"header {name}")
        values[name] = value
    for name, fixed in {**FIXED_HEADERS, **OPTIONAL_FIXED}.items():
        value = headers.get(name.lower(), "").strip()
        if value and value != fixed:
            raise bad_input(f"header {name}", f"valor fijo {fixed}")
    action = values["X-Invoker-Action"].upper()
    if action not in (ACTION_READ, ACTION_APPLY):
        raise bad_input("header X-Invoker-Action", "R (consulta) o C (aplicacion)")
    try:
        process_date = date.fromisoformat(values["X-Invoker-ProcessDate"])
    except ValueError:
        raise bad_input("header X-Invoker-ProcessDate", "formato AAAA-MM-DD") from None
    tx_id = values["X-Invoker-TxId"]
    match = _TX_ID.match(tx_id)
    if match is None:
        raise bad_input(
            "header X-Invoker-TxId",
            "APIF + fecha juliana (4) + codigo de banco 32 + autorizacion (10)",
        )
    if match[1] + match[2] != julian(process_date):
        raise bad_input(
            "header X-Invoker-TxId",
            f"la fecha juliana {match[1]}{match[2]} no es la de X-Invoker-ProcessDate "
            f"({julian(process_date)})",
        )
    process_id = headers.get("x-invoker-processid", "").strip() or None
    if process_id is None and action == ACTION_APPLY:
        raise null_input("header X-Invoker-ProcessId")
    if process_id is not None and process_id != process_id_of(tx_id):
        raise bad_input(
            "header X-Invoker-ProcessId",
            f"son los ultimos 11 digitos de X-Invoker-TxId: {process_id_of(tx_id)}",
        )
    for name in ("X-Invoker-UserIPAddress", "X-Invoker-ServerIPAddress"):
        if not _IP.match(values[name]):
            raise bad_input(f"header {name}", "no es una direccion IP")
    terminal = values["X-Invoker-TerminalId"]
    if len(terminal) > 30 or _CONTROL.search(terminal):
        raise bad_input("header X-Invoker-TerminalId", "hasta 30 caracteres")
    return Headers(
        action=action,
        tx_id=tx_id,
        process_id=process_id,
        process_date=process_date,
        terminal_id=terminal,
        user_ip=values["X-Invoker-UserIPAddress"],
        server_ip=values["X-Invoker-ServerIPAddress"],
    )


@dataclass(frozen=True, slots=True)
class Collection:
    """The request's `trn`: what was captured at the correspondent's till."""

    agreement: str  # refId
    reference: str  # ref1 (or curAmt.amt, the document's "referencia de pago")
    references: tuple[tuple[str, str], ...]
    scanned: PaymentCode | None  # eanCode, when the barcode was read
    due_date: date | None  # effDt, when the barcode was read
    amount: Decimal  # totalCurAmt.amt; zero when typed by hand
    another_amount: bool  # flagAnotherAmt
    rq_uid: str


def _text(node: Mapping[str, Any], key: str, path: str, *, max_len: int = 100) -> str:
    value = node.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad_input(f"{path}.{key}", "debe ser texto")
    text = str(value)
    if len(text) > max_len or _CONTROL.search(text.replace("\x1d", "")):
        raise bad_input(f"{path}.{key}", f"hasta {max_len} caracteres imprimibles")
    return text.strip()


def _obj(node: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = node.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_input(f"{path}.{key}", "debe ser un objeto")
    return value


def _amount(node: Mapping[str, Any], path: str) -> Decimal:
    value = node.get("amt")
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad_input(f"{path}.amt", "debe ser un numero")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad_input(f"{path}.amt", "debe ser un numero") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 15:
        raise bad_input(f"{path}.amt", "fuera de rango")
    if amount != amount.quantize(Decimal("0.01")):
        raise bad_input(f"{path}.amt", "a lo sumo dos decimales")
    return amount


def _effective_date(text: str) -> date | None:
    if not text:
        return None
    digits = text.replace("-", "")
    if len(digits) != 8 or not _DIGITS.match(digits):
        raise bad_input("trn.effDt", "formato AAAAMMDD")
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise bad_input("trn.effDt", "no es una fecha") from None


def parse_collection(data: Any) -> Collection:
    if not isinstance(data, dict):
        raise bad_input("body", "debe ser un objeto JSON")
    trn = data.get("trn")
    if trn is None:
        raise null_input("trn")
    if not isinstance(trn, dict):
        raise bad_input("trn", "debe ser un objeto")
    # The document writes both `RefId` and `refId`, `EANCode` and `eanCode`, `EffDt`...
    lowered = {str(k)[:1].lower() + str(k)[1:]: v for k, v in trn.items()}
    lowered.update({"refId": trn.get("refId", trn.get("RefId"))})
    lowered.update({"eanCode": trn.get("eanCode", trn.get("EANCode"))})
    lowered.update({"effDt": trn.get("effDt", trn.get("EffDt"))})
    agreement = _text(lowered, "refId", "trn", max_len=20)
    if not agreement:
        raise null_input("trn.refId")
    if not _DIGITS.match(agreement):
        raise bad_input("trn.refId", "codigo de convenio numerico")
    rq_uid = _text(lowered, "trnRqUID", "trn", max_len=6)
    if not rq_uid:
        raise null_input("trn.trnRqUID")
    if not _RQ_UID.match(rq_uid):
        raise bad_input("trn.trnRqUID", "6 digitos")
    extra = lowered.get("aditionalData")
    references: list[tuple[str, str]] = []
    if extra is not None:
        if not isinstance(extra, list) or len(extra) > 3:
            raise bad_input("trn.aditionalData", "lista de hasta 3 referencias")
        for n, item in enumerate(extra):
            path = f"trn.aditionalData[{n}]"
            if not isinstance(item, dict):
                raise bad_input(path, "debe ser un objeto {name, value}")
            references.append((_text(item, "name", path), _text(item, "value", path, max_len=25)))
    named = {name.lower(): value for name, value in references}
    reference = named.get("ref1") or (references[0][1] if references else "")
    if not reference:
        reference = _text(_obj(lowered, "curAmt", "trn"), "amt", "trn.curAmt", max_len=25)
    ean = _text(lowered, "eanCode", "trn", max_len=120)
    scanned: PaymentCode | None = None
    if ean:
        try:
            scanned = gs1_128.parse(ean)
        except ValidationFailed as error:
            raise bad_input("trn.eanCode", f"codigo de barras invalido: {error.message}") from None
    if not reference and scanned is not None:
        reference = scanned.reference
    if not reference:
        raise null_input("trn.aditionalData ref1")
    flag = _text(lowered, "flagAnotherAmt", "trn", max_len=1) or "0"
    if flag not in ("0", "1"):
        raise bad_input("trn.flagAnotherAmt", "0 o 1")
    return Collection(
        agreement=agreement,
        reference=reference,
        references=tuple(references),
        scanned=scanned,
        due_date=_effective_date(_text(lowered, "effDt", "trn", max_len=10)),
        amount=_amount(_obj(lowered, "totalCurAmt", "trn"), "trn.totalCurAmt"),
        another_amount=flag == "1",
        rq_uid=rq_uid,
    )


def _number(amount: Money) -> int | float:
    value = amount.amount
    return int(value) if value == value.to_integral_value() else float(value)


def ok_answer(
    *,
    holder: str,
    approval_id: str,
    amount: Money,
    reference: str,
    due_date: date,
) -> dict[str, Any]:
    """The document's success answer; a coupon's amount cannot be changed (flagUpdate 0)."""
    return {
        "responseType": {"value": "OK"},
        "trn": {
            "personName": {"fullName": holder},
            "approvalId": approval_id,
            "aditionalData": {"curAmt": [{"name": "Valor a pagar", "value": _number(amount)}]},
            "pmtRefId": reference,
            "dueDt": due_date.isoformat(),
            "flagUpdate": "0",
            "acctId": reference,
            "refType": "",
        },
    }


def another_amount_refused() -> ContractError:
    return ContractError(
        422, "10001", "OTR", "Error al ejecutar el PL: el cupon se paga por su valor exacto"
    )
