"""The BancoEstado contract translation, without a server: parsing and the code maps."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from recaudo.channels.bancoestado import contract
from recaudo.domain.errors import (
    Conflict,
    InvalidAmount,
    InvalidNationalId,
    NotFound,
    RecaudoError,
    Unauthenticated,
)
from recaudo.services.collections_online import (
    CompanyUnavailable,
    CustomerNotFound,
    NothingOwed,
    OfferedDebt,
    Quoted,
    _time_ordered_id,
    rut_candidates,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CustomerNotFound("x"), 1004),
        (NothingOwed("x"), 1005),
        (CompanyUnavailable("x"), 1002),
        (InvalidNationalId("x"), 1003),
        (InvalidAmount("x"), 1003),
        (Unauthenticated("x"), 1003),
        (NotFound("x"), 1002),
        (Conflict("x"), 1002),
        (RecaudoError("x"), 1002),
    ],
)
def test_query_codes(error: RecaudoError, code: int) -> None:
    assert contract.query_code(error) == code
    assert contract.query_error(contract.query_code(error)) == {
        "codigo_error": code,
        "mensaje_error": contract.QUERY_MESSAGES[contract.QueryCode(code)],
    }


@pytest.mark.parametrize(
    ("error", "code"),
    [(InvalidAmount("x"), 1003), (Unauthenticated("x"), 1003), (Conflict("x"), 2003)],
)
def test_notify_codes(error: RecaudoError, code: int) -> None:
    assert contract.notify_code(error) == code


def test_every_code_has_a_message_and_a_status() -> None:
    assert set(contract.QUERY_MESSAGES) == set(contract.QueryCode) == set(contract.QUERY_STATUS)
    assert set(contract.NOTIFY_MESSAGES) == set(contract.NotifyCode)
    assert set(contract.NOTIFY_STATUS) == set(contract.NotifyCode)


def test_parse_query() -> None:
    assert contract.parse_query({"type": "String", "rut_cliente": " 1-9 "}) == "1-9"
    for params in (
        {"rut_cliente": "1-9"},
        {"type": "string", "rut_cliente": "1-9"},
        {"type": "String"},
        {"type": "String", "rut_cliente": ""},
        {"type": "String", "rut_cliente": "1" * 31},
        {"type": "String", "rut_cliente": "1\x00"},
    ):
        with pytest.raises(contract.BadRequest):
            contract.parse_query(params)


def test_quote_answer_numbers_only_when_numeric() -> None:
    quoted = Quoted(
        transaction_id="t",
        rut="1-9",
        name="N" * 120,
        due_date=date(2026, 1, 2),
        debts=[OfferedDebt("134371", Decimal(1)), OfferedDebt("0012", Decimal(1))],
        total=Decimal("141419"),
        currency="CLP",
    )
    assert contract.quote_answer(quoted) == {
        "transaccion": "t",
        "rut_cliente": "1-9",
        "vencimiento": "2026-01-02",
        "facturas_pagar": 2,
        "id_facturas": [134371, "0012"],
        "nombre": "N" * 100,
        "total": "141419.00",
    }


def test_parse_notification() -> None:
    body = {
        "fecha-pago": "2026-03-02 10:15",
        "transaccion": "abc",
        "rut_cliente": "32038400-1",
        "vencimiento": "2021-08-13",
        "facturas_pagar": 1,
        "id_facturas": [134371, "B-2"],
        "nombre": "x",
        "total": "141418,79",
    }
    note = contract.parse_notification(json.dumps(body).encode())
    assert (note.transaction_id, note.raw_rut, note.total, note.debts) == (
        "abc",
        "32038400-1",
        "141418.79",
        ("134371", "B-2"),
    )
    assert note.paid_at_local == datetime(2026, 3, 2, 10, 15)
    with pytest.raises(contract.BadRequest):
        contract.parse_notification(json.dumps({**body, "total": 5}).encode())
    with pytest.raises(contract.BadRequest):
        contract.parse_notification(b"\xff\xfe")


def test_rut_candidates() -> None:
    assert rut_candidates("10.379.613-k") == ("10379613K",)
    assert rut_candidates("10379613") == ("10379613K",)  # a body without check digit
    assert rut_candidates("7654321") == ("76543216",)
    # Both readings are RUTs: the one with a check digit is tried first.
    assert rut_candidates("76543216") == ("76543216", "765432162")
    for bad in ("10379613-1", "1037961-3", "abc", "", "103796131"):
        with pytest.raises(InvalidNationalId):
            rut_candidates(bad)


def test_quote_ids_are_uuid7_ordered_by_time() -> None:
    moment = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    first = _time_ordered_id(moment)
    later = _time_ordered_id(moment + timedelta(milliseconds=1))
    parsed = uuid.UUID(first)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == int(moment.timestamp() * 1000)
    assert first < later and len(first) == 36
    assert len({_time_ordered_id(moment) for _ in range(1000)}) == 1000
