"""BancoEstado payment notification through the real server: money is never lost or doubled."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import httpx
import pytest

from recaudo.services.incidents import set_availability
from tests.e2e.bank import (  # noqa: F401 (the fixture)
    INVALID_REQUEST,
    JUANA_RUT,
    OK,
    SHAPES,
    UNKNOWN_RUT,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.conftest import ROOT_ACTOR, TIMESTAMP

JUANA_ALLOCATIONS = [
    {"debt": 2, "debt_id": "134371", "amount": "1500"},
    {"debt": 1, "debt_id": "134372", "amount": "2500"},
]


def _payments(bank: Bank) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = bank.api.client().get("/payments").json()["items"]
    return items


def _exceptions(bank: Bank) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = bank.api.client().get("/exceptions").json()["items"]
    return items


def _debts(bank: Bank) -> dict[str, tuple[str, str]]:
    items = bank.api.client().get("/debts", params={"page_size": 100}).json()["items"]
    return {d["debt_id"]: (d["status"], d["open_amount"]) for d in items}


def _credit(bank: Bank, who: str) -> str:
    customer = bank.api.client().get(f"/customers/{bank.people[who].id}").json()
    return str(customer["credit_balance"])


@pytest.mark.parametrize("shape", SHAPES)
def test_normal_payment(bank: Bank, shape: str) -> None:
    quote = bank.quote(JUANA_RUT, shape)
    response = bank.notify(paid_body(quote), shape)
    assert (response.status_code, response.json()) == (200, OK)
    [payment] = _payments(bank)
    assert payment == {
        "id": 1,
        "customer_id": bank.people["juana"].id,
        "channel": "bancoestado",
        "method": "cash",
        "external_id": quote["transaccion"],
        "amount": "4000",
        "currency": "CLP",
        "paid_at": "2026-03-02T13:00:00Z",
        "status": "applied",
        "allocated": "4000",
        "credit": "0",
        "exception_reason": None,
        "reversal_reason": None,
        "reversed_at": None,
        "recorded_by": f"channel:bancoestado:{bank.agreements['caja-vecina'].id}",
        "created_at": TIMESTAMP,
        "allocations": JUANA_ALLOCATIONS,
        "agreement_id": bank.agreements["caja-vecina"].id,
        "agreement_channel": "caja-vecina",
        "transaccion": quote["transaccion"],
        "accounting_date": "2026-03-02",
    }
    assert bank.api.client().get("/payments/1").json() == payment
    assert _debts(bank)["134371"] == ("paid", "0")
    assert _debts(bank)["134372"] == ("paid", "0")
    assert _exceptions(bank) == []
    assert bank.query(JUANA_RUT, shape).json() == {
        "codigo_error": 1005,
        "mensaje_error": "RUT sin adeudo.",
    }


def test_internet_payment_method_and_agreement(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT, "canonical", channel="internet")
    assert bank.notify(paid_body(quote), "canonical", channel="internet").json() == OK
    [payment] = _payments(bank)
    assert (payment["method"], payment["agreement_channel"]) == ("bank_debit", "internet")


@pytest.mark.parametrize(
    ("when", "accounting"),
    [
        ("2026-03-02 14:00", "2026-03-02"),  # Monday, at the cut-off
        ("2026-03-02 14:01", "2026-03-03"),  # after it: the next business day
        ("2026-03-06 15:00", "2026-03-09"),  # Friday afternoon: Monday
        ("2026-03-07 09:00", "2026-03-09"),  # Saturday
        ("2026-04-02 14:30", "2026-04-06"),  # Thursday before Good Friday: Monday
    ],
)
def test_accounting_date(bank: Bank, when: str, accounting: str) -> None:
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, when)).json() == OK
    [payment] = _payments(bank)
    assert payment["accounting_date"] == accounting


def test_cutoff_is_per_agreement(bank: Bank) -> None:
    from datetime import time

    bank.settings("caja-vecina", cutoff=time(16, 0))
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, "2026-03-02 15:30")).json() == OK
    assert _payments(bank)[0]["accounting_date"] == "2026-03-02"


@pytest.mark.parametrize("shape", ["bank", "canonical/"])
def test_replayed(bank: Bank, shape: str) -> None:
    quote = bank.quote(JUANA_RUT, shape)
    for _ in range(3):
        assert bank.notify(paid_body(quote), shape).json() == OK
    # The same transaccion with another total is still the first payment.
    assert bank.notify(paid_body(quote, total="9000.00"), shape).json() == OK
    [payment] = _payments(bank)
    assert (payment["amount"], payment["allocations"]) == ("4000", JUANA_ALLOCATIONS)
    assert _exceptions(bank) == []


def test_fifty_concurrent_replays(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    body = json.dumps(paid_body(quote)).encode()
    url = bank.api.url + bank.url("bank", "notify")
    headers = {**bank.auth(), "Content-Type": "application/json"}

    def send(_: int) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as client:
            response = client.post(url, content=body, headers=headers)
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))
    assert answers == [(200, OK)] * 50
    [payment] = _payments(bank)
    assert (payment["amount"], payment["allocations"], payment["credit"]) == (
        "4000",
        JUANA_ALLOCATIONS,
        "0",
    )
    assert _credit(bank, "juana") == "0"


def test_total_above_quote(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, total="5250.00")).json() == OK
    [payment] = _payments(bank)
    assert (payment["status"], payment["amount"], payment["allocated"], payment["credit"]) == (
        "applied",
        "5250",
        "4000",
        "1250",
    )
    assert payment["exception_reason"] == "amount_mismatch"
    [exc] = _exceptions(bank)
    assert exc == {
        "id": 1,
        "payment_id": payment["id"],
        "customer_id": bank.people["juana"].id,
        "transaccion": quote["transaccion"],
        "amount": "5250",
        "credit": "1250",
        "currency": "CLP",
        "reason": "amount_mismatch",
        "detail": "paid 5250 but the quote was for 4000; credited 1250",
        "status": "open",
        "resolution": None,
        "comment": None,
        "resolved_by": None,
        "resolved_at": None,
        "created_at": TIMESTAMP,
    }
    assert _credit(bank, "juana") == "1250"


def test_total_below_quote(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    assert bank.notify(paid_body(quote, total="3000")).json() == OK
    [payment] = _payments(bank)
    assert payment["allocations"] == [
        {"debt": 2, "debt_id": "134371", "amount": "1500"},
        {"debt": 1, "debt_id": "134372", "amount": "1500"},
    ]
    [exc] = _exceptions(bank)
    assert (exc["reason"], exc["detail"], exc["credit"]) == (
        "amount_mismatch",
        "paid 3000 but the quote was for 4000; credited 0",
        "0",
    )
    assert _debts(bank)["134372"] == ("open", "1000")


def test_quoted_debt_paid_elsewhere_meanwhile(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    office = bank.api.client().post(
        "/payments",
        json={
            "customer_id": bank.people["juana"].id,
            "amount": "1500",
            "method": "cash",
            "debt_ids": ["134371"],
            "idempotency_key": "caja-1",
        },
    )
    assert office.status_code == 201, office.text
    assert bank.notify(paid_body(quote)).json() == OK
    payment = next(p for p in _payments(bank) if p["channel"] == "bancoestado")
    assert (payment["allocations"], payment["credit"]) == (
        [{"debt": 1, "debt_id": "134372", "amount": "2500"}],
        "1500",
    )
    [exc] = _exceptions(bank)
    assert (exc["reason"], exc["detail"]) == (
        "debts_not_payable",
        "no longer payable (paid or cancelled meanwhile): 134371; credited 1500",
    )
    assert _credit(bank, "juana") == "1500"


def test_unknown_transaction(bank: Bank) -> None:
    transaction = str(uuid.uuid4())
    body = paid_body(
        {
            "transaccion": transaction,
            "rut_cliente": "10.379.613-k",
            "vencimiento": "2026-02-10",
            "facturas_pagar": 1,
            "id_facturas": [134372],
            "nombre": "Juana",
            "total": "2600",
        }
    )
    assert bank.notify(body).json() == OK
    [payment] = _payments(bank)
    assert (payment["allocations"], payment["credit"], payment["transaccion"]) == (
        [{"debt": 1, "debt_id": "134372", "amount": "2500"}],
        "100",
        transaction,
    )
    [exc] = _exceptions(bank)
    assert (exc["reason"], exc["detail"]) == (
        "unknown_transaction",
        f"transaccion {transaction} was never quoted; credited 100",
    )
    # Without named debts of hers, the oldest due take the money.
    other = paid_body({**body, "transaccion": "retry-2", "id_facturas": [], "total": "1000"})
    assert bank.notify(other).json() == OK
    second = next(p for p in _payments(bank) if p["external_id"] == "retry-2")
    assert second["allocations"] == [{"debt": 2, "debt_id": "134371", "amount": "1000"}]


def test_unknown_customer(bank: Bank) -> None:
    body = paid_body(
        {
            "transaccion": "lost-1",
            "rut_cliente": UNKNOWN_RUT,
            "vencimiento": "2026-02-10",
            "facturas_pagar": 1,
            "id_facturas": [1],
            "nombre": "Nadie",
            "total": "777",
        }
    )
    for _ in range(2):
        assert bank.notify(body).json() == OK
    [payment] = _payments(bank)
    assert (payment["customer_id"], payment["status"], payment["amount"]) == (
        None,
        "exception",
        "777",
    )
    [exc] = _exceptions(bank)
    assert (exc["reason"], exc["detail"], exc["credit"]) == (
        "unknown_customer",
        "transaccion lost-1 was never quoted and rut_cliente is no customer's; "
        "777 held unallocated",
        "0",
    )


def test_payment_recorded_while_company_unavailable(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    api = bank.api
    set_availability(api.uow, api.acme.id, False, "mantención", actor=ROOT_ACTOR, clock=api.clock)
    assert bank.notify(paid_body(quote)).json() == OK
    assert len(_payments(bank)) == 1


MALFORMED: list[bytes] = [
    b"",
    b"{not json",
    b"[]",
    b'"text"',
    b"null",
    b"{}",
    json.dumps({"transaccion": "x"}).encode(),
    b'{"a": ' * 5000 + b"1" + b"}" * 5000,
]


def _valid(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fecha-pago": "2026-03-02 10:00",
        "transaccion": "t-1",
        "rut_cliente": JUANA_RUT,
        "vencimiento": "2026-01-10",
        "facturas_pagar": 2,
        "id_facturas": [134371, 134372],
        "nombre": "Juana",
        "total": "4000.00",
    }
    body.update(over)
    return body


WRONG_TYPES = [
    _valid(total=4000),
    _valid(total="4.000,00"),
    _valid(total="-1"),
    _valid(total="0"),
    _valid(total="1e3"),
    _valid(total="4000.5"),  # CLP has no cents
    _valid(transaccion=123),
    _valid(transaccion=""),
    _valid(transaccion="x" * 41),
    _valid(transaccion="a\x00b"),
    _valid(rut_cliente=None),
    _valid(id_facturas="134371"),
    _valid(id_facturas=[True]),
    _valid(id_facturas=[{"id": 1}]),
    _valid(facturas_pagar="2"),
    _valid(**{"fecha-pago": "02-03-2026 10:00"}),
    _valid(**{"fecha-pago": "2026-03-02T10:00:00Z"}),
    _valid(**{"fecha-pago": 20260302}),
    _valid(nombre=["x"]),
]


@pytest.mark.parametrize("shape", ["bank", "canonical"])
def test_malformed_requests(bank: Bank, shape: str) -> None:
    for raw in MALFORMED:
        response = bank.notify(raw, shape)
        assert (response.status_code, response.json()) == (200, INVALID_REQUEST), raw[:40]
    for body in WRONG_TYPES:
        response = bank.notify(body, shape)
        assert (response.status_code, response.json()) == (200, INVALID_REQUEST), body
    big = json.dumps(_valid(nombre="x" * (1024 * 1024))).encode()
    response = bank.notify(big, shape)
    assert (response.status_code, response.json()) == (200, INVALID_REQUEST)
    assert _payments(bank) == []
    # A valid request after all that is applied.
    assert bank.notify(_valid(), shape).json() == OK


def test_bad_credentials_record_nothing(bank: Bank) -> None:
    quote = bank.quote(JUANA_RUT)
    body = paid_body(quote)
    url = bank.url("bank", "notify")
    for headers in ({}, {"Authorization": "Bearer ca_nope_nope"}, {"X-Api-Key": "wrong"}):
        response = bank.http.post(url, json=body, headers=headers)
        assert (response.status_code, response.json()) == (200, INVALID_REQUEST)
    response = bank.http.post(url, json=body, params={"token": bank.secrets["caja-vecina"]})
    assert response.json() == INVALID_REQUEST
    assert _payments(bank) == []


def test_errors_as_http_statuses_when_configured(bank: Bank) -> None:
    bank.settings("caja-vecina", errors_as_http_200=False)
    response = bank.notify(b"{")
    assert (response.status_code, response.json()) == (400, INVALID_REQUEST)


def test_debts_untouched_by_rejected_requests(bank: Bank) -> None:
    before = _debts(bank)
    bank.notify(b"{")
    assert _debts(bank) == before
    assert before["134371"] == ("open", "1500")
    assert date(2026, 1, 10).isoformat() == bank.quote(JUANA_RUT)["vencimiento"]
