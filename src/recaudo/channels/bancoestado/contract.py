"""The BancoEstado JSON contract: parse the bank's inputs, map every outcome to its codes.

Pure translation, no I/O: `routes.py` calls the services and hands their results or
errors to the functions here. Field names are the bank's (`rut_cliente`, `transaccion`,
`codigo_error`, ...). Every error the services can raise maps to exactly one code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any

from recaudo.domain.errors import RecaudoError, Unauthenticated, ValidationFailed
from recaudo.services.collections_online import (
    CompanyUnavailable,
    CustomerNotFound,
    NothingOwed,
    Notification,
    Quoted,
)

TYPE_STRING = "String"
MAX_BODY_BYTES = 64 * 1024
MAX_NAME = 100
_TOTAL = re.compile(r"^[0-9]{1,17}([.,][0-9]{1,2})?$")
_PAID_AT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


class QueryCode(IntEnum):
    INTERNAL_ERROR = 1002
    INVALID_QUERY = 1003
    CUSTOMER_NOT_FOUND = 1004
    NOTHING_OWED = 1005


QUERY_MESSAGES: dict[QueryCode, str] = {
    QueryCode.INTERNAL_ERROR: "Error interno del servidor.",
    QueryCode.INVALID_QUERY: "Consulta Invalida.",
    QueryCode.CUSTOMER_NOT_FOUND: "RUT del cliente no encontrado.",
    QueryCode.NOTHING_OWED: "RUT sin adeudo.",
}


class NotifyCode(IntEnum):
    OK = 1000
    INVALID_REQUEST = 1003
    INTERNAL_ERROR = 2003


NOTIFY_MESSAGES: dict[NotifyCode, str] = {
    NotifyCode.OK: "Informacion obtenida con exito",
    NotifyCode.INVALID_REQUEST: "Peticion Invalida.",
    NotifyCode.INTERNAL_ERROR: "Ha ocurrido un error",
}

# The HTTP status of each answer when an agreement does not want every answer as 200.
QUERY_STATUS: dict[QueryCode, int] = {
    QueryCode.INTERNAL_ERROR: 503,
    QueryCode.INVALID_QUERY: 400,
    QueryCode.CUSTOMER_NOT_FOUND: 404,
    QueryCode.NOTHING_OWED: 404,
}
NOTIFY_STATUS: dict[NotifyCode, int] = {
    NotifyCode.OK: 200,
    NotifyCode.INVALID_REQUEST: 400,
    NotifyCode.INTERNAL_ERROR: 500,
}


class BadRequest(Exception):
    """The bank's request cannot be understood (1003 on both endpoints)."""


def query_code(error: RecaudoError) -> QueryCode:
    """The bank's code for an expected error of the debt query."""
    if isinstance(error, CustomerNotFound):
        return QueryCode.CUSTOMER_NOT_FOUND
    if isinstance(error, NothingOwed):
        return QueryCode.NOTHING_OWED
    if isinstance(error, CompanyUnavailable):
        return QueryCode.INTERNAL_ERROR
    if isinstance(error, ValidationFailed | Unauthenticated):
        # A wrong credential answers exactly like a malformed query: it reveals nothing.
        return QueryCode.INVALID_QUERY
    return QueryCode.INTERNAL_ERROR


def notify_code(error: RecaudoError) -> NotifyCode:
    """The bank's code for an expected error of the payment notification."""
    if isinstance(error, ValidationFailed | Unauthenticated):
        return NotifyCode.INVALID_REQUEST
    return NotifyCode.INTERNAL_ERROR


def query_error(code: QueryCode) -> dict[str, Any]:
    return {"codigo_error": int(code), "mensaje_error": QUERY_MESSAGES[code]}


def notify_answer(code: NotifyCode) -> dict[str, Any]:
    return {"resultado": NOTIFY_MESSAGES[code], "codigo_resultado": int(code)}


def _clean(text: object, name: str, *, max_len: int, required: bool = True) -> str:
    if not isinstance(text, str):
        raise BadRequest(f"{name} must be a string")
    if "\x00" in text:
        raise BadRequest(f"{name} contains NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{name} is not valid Unicode") from None
    value = text.strip()
    if (required and not value) or len(value) > max_len:
        raise BadRequest(f"{name} must have 1 to {max_len} characters")
    return value


def parse_query(params: Mapping[str, str]) -> str:
    """The raw `rut_cliente` of a debt query; `type` must be the word `String`."""
    kind = params.get("type")
    if kind is None or len(kind) > 8 or kind != TYPE_STRING:
        raise BadRequest("type must be String")
    return _clean(params.get("rut_cliente"), "rut_cliente", max_len=30)


def _debt_id(value: str) -> int | str:
    # Numbers when the company's ids are numbers (without leading zeros to lose).
    return int(value) if value.isdigit() and str(int(value)) == value else value


def quote_answer(quoted: Quoted) -> dict[str, Any]:
    total: Decimal = quoted.total
    return {
        "transaccion": quoted.transaction_id,
        "rut_cliente": quoted.rut,
        "vencimiento": quoted.due_date.isoformat(),
        "facturas_pagar": len(quoted.debts),
        "id_facturas": [_debt_id(d.debt_id) for d in quoted.debts],
        "nombre": quoted.name[:MAX_NAME],
        "total": f"{total:.2f}",
    }


def _paid_at(value: object) -> datetime:
    text = _clean(value, "fecha-pago", max_len=19)
    for pattern in _PAID_AT_FORMATS:
        try:
            return datetime.strptime(text, pattern)  # noqa: DTZ007 (local time, zone added later)
        except ValueError:
            continue
    raise BadRequest("fecha-pago must be YYYY-MM-DD HH:MM")


def parse_notification(body: bytes) -> Notification:
    """The payment the bank notifies; `BadRequest` when it cannot be understood."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body is not a JSON object")
    total = _clean(data.get("total"), "total", max_len=20)
    if not _TOTAL.match(total):
        raise BadRequest("total must be a decimal amount")
    raw_ids = data.get("id_facturas", [])
    if not isinstance(raw_ids, list) or len(raw_ids) > 50:
        raise BadRequest("id_facturas must be a list")
    refs: list[str] = []
    for item in raw_ids:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise BadRequest("id_facturas holds numbers or strings")
        refs.append(_clean(str(item), "id_facturas", max_len=64))
    count = data.get("facturas_pagar")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise BadRequest("facturas_pagar must be a number")
    for optional in ("vencimiento", "nombre"):
        if data.get(optional) is not None:
            _clean(data[optional], optional, max_len=200, required=False)
    return Notification(
        transaction_id=_clean(data.get("transaccion"), "transaccion", max_len=40),
        raw_rut=_clean(data.get("rut_cliente"), "rut_cliente", max_len=30),
        paid_at_local=_paid_at(data.get("fecha-pago")),
        total=total.replace(",", "."),
        debts=tuple(refs),
    )
