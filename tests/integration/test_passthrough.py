"""The pass-through debt query client against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from recaudo.adapters.passthrough import (
    CircuitBreaker,
    PassthroughAnswer,
    PassthroughClient,
    PassthroughDebt,
    PassthroughUnavailable,
    parse_answer,
)
from tests.integration.receiver import Receiver, closed_port_url, running_receiver

RUT = "12345678-5"
ANSWER = {
    "nombre": "Juana Pérez",
    "deudas": [
        {"id": "B-1", "monto": "1500", "vencimiento": "2026-01-31", "concepto": "Boleta enero"},
        {"id": "B-2", "monto": "2990.50", "vencimiento": "2026-02-28"},
    ],
}


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def company() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        receiver.get_answers[RUT] = (200, json.dumps(ANSWER).encode())
        yield receiver


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def client(monotonic: FakeMonotonic) -> Iterator[PassthroughClient]:
    client = PassthroughClient(breaker=CircuitBreaker(monotonic=monotonic))
    yield client
    client.close()


def test_known_rut(company: Receiver, client: PassthroughClient) -> None:
    answer = client.fetch_debts(f"{company.url}/deudas", RUT, 3)
    assert answer == PassthroughAnswer(
        "Juana Pérez",
        (
            PassthroughDebt("B-1", Decimal("1500"), date(2026, 1, 31), "Boleta enero"),
            PassthroughDebt("B-2", Decimal("2990.50"), date(2026, 2, 28), ""),
        ),
    )
    [request] = company.received
    assert (request.method, request.path) == ("GET", "/deudas?rut=12345678-5")
    assert request.headers["Accept"] == "application/json"


def test_unknown_rut_is_none_and_not_a_failure(
    company: Receiver, client: PassthroughClient
) -> None:
    for _ in range(6):
        assert client.fetch_debts(company.url, "11111111-1", 3) is None
    assert client.breaker.state(company.url) == "closed"


def test_customer_without_debts(company: Receiver, client: PassthroughClient) -> None:
    company.get_answers[RUT] = (200, b'{"nombre": "Juana", "deudas": []}')
    assert client.fetch_debts(company.url, RUT) == PassthroughAnswer("Juana", ())


def test_timeout(company: Receiver, client: PassthroughClient) -> None:
    company.delay_s = 1.0
    with pytest.raises(PassthroughUnavailable) as info:
        client.fetch_debts(company.url, RUT, 0.2)
    assert info.value.cause == "timeout after 0.2 s"


def test_server_error(company: Receiver, client: PassthroughClient) -> None:
    company.fail_next = 1
    with pytest.raises(PassthroughUnavailable) as info:
        client.fetch_debts(company.url, RUT)
    assert info.value.cause == "HTTP 500"


def test_connection_refused(client: PassthroughClient) -> None:
    with pytest.raises(PassthroughUnavailable) as info:
        client.fetch_debts(closed_port_url(), RUT)
    assert info.value.cause == "connection error: ConnectError"


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b"<html>oops</html>", "malformed answer: Expecting value: line 1 column 1 (char 0)"),
        (b"[]", "malformed answer: the answer must be a JSON object"),
        (b'{"deudas": []}', "malformed answer: 'nombre' must be a string"),
        (b'{"nombre": "J", "deudas": {}}', "malformed answer: 'deudas' must be a list"),
        (
            b'{"nombre": "J", "deudas": [{"id": "1", "monto": 1500, "vencimiento": "2026-01-31"}]}',
            "malformed answer: 'monto' must be a decimal string",
        ),
        (
            b'{"nombre": "J", "deudas": [{"id": "1", "monto": "-5", "vencimiento": "2026-01-31"}]}',
            "malformed answer: 'monto' must be positive",
        ),
        (
            b'{"nombre": "J", "deudas": [{"id": "1", "monto": "1,5", "vencimiento": "2026-01-31"}]}',  # noqa: E501
            "malformed answer: 'monto' is not a decimal",
        ),
        (
            b'{"nombre": "J", "deudas": [{"id": "1", "monto": "5", "vencimiento": "31/01/2026"}]}',
            "malformed answer: 'vencimiento' is not YYYY-MM-DD",
        ),
        (
            b'{"nombre": "J", "deudas": [{"id": "", "monto": "5", "vencimiento": "2026-01-31"}]}',
            "malformed answer: 'id' is empty",
        ),
        (
            b'{"nombre": "J", "deudas": [{"id": "1", "monto": "5", "vencimiento": "2026-01-31"},'
            b' {"id": "1", "monto": "6", "vencimiento": "2026-01-31"}]}',
            "malformed answer: repeated debt id",
        ),
    ],
)
def test_garbage_answers(
    company: Receiver, client: PassthroughClient, body: bytes, cause: str
) -> None:
    company.get_answers[RUT] = (200, body)
    with pytest.raises(PassthroughUnavailable) as info:
        client.fetch_debts(company.url, RUT)
    assert info.value.cause == cause


def test_circuit_opens_after_five_failures_then_half_opens(
    company: Receiver, client: PassthroughClient, monotonic: FakeMonotonic
) -> None:
    company.fail_next = 5
    for _ in range(5):
        with pytest.raises(PassthroughUnavailable, match="HTTP 500"):
            client.fetch_debts(company.url, RUT)
    assert client.breaker.state(company.url) == "open"
    # Open: no request reaches the company.
    with pytest.raises(PassthroughUnavailable) as info:
        client.fetch_debts(company.url, RUT)
    assert info.value.cause == "circuit open"
    assert len(company.received) == 5
    # Other URLs have their own circuit.
    assert client.breaker.state(f"{company.url}/other") == "closed"

    monotonic.now += 29.9
    with pytest.raises(PassthroughUnavailable, match="circuit open"):
        client.fetch_debts(company.url, RUT)
    monotonic.now += 0.1
    assert client.breaker.state(company.url) == "half-open"
    # A failed trial opens it again for another 30 s.
    company.fail_next = 1
    with pytest.raises(PassthroughUnavailable, match="HTTP 500"):
        client.fetch_debts(company.url, RUT)
    assert client.breaker.state(company.url) == "open"
    assert len(company.received) == 6
    monotonic.now += 30
    # A good trial closes it.
    assert client.fetch_debts(company.url, RUT) is not None
    assert client.breaker.state(company.url) == "closed"
    assert len(company.received) == 7


def test_half_open_lets_one_trial_through(
    company: Receiver, client: PassthroughClient, monotonic: FakeMonotonic
) -> None:
    company.fail_next = 5
    for _ in range(5):
        with pytest.raises(PassthroughUnavailable):
            client.fetch_debts(company.url, RUT)
    monotonic.now += 30
    company.delay_s = 0.5
    results: list[str] = []

    def call() -> None:
        try:
            client.fetch_debts(company.url, RUT)
            results.append("ok")
        except PassthroughUnavailable as exc:
            results.append(exc.cause)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["circuit half-open, trial in flight"] * 3 + ["ok"]
    assert len(company.received) == 6


def test_failures_must_be_consecutive(company: Receiver, client: PassthroughClient) -> None:
    for _ in range(3):
        company.fail_next = 4
        for _ in range(4):
            with pytest.raises(PassthroughUnavailable):
                client.fetch_debts(company.url, RUT)
        assert client.fetch_debts(company.url, RUT) is not None
    assert client.breaker.state(company.url) == "closed"


def test_parse_answer_accepts_null_concept() -> None:
    body = {
        "nombre": " Ana ",
        "deudas": [{"id": "X", "monto": "1", "vencimiento": "2026-01-01", "concepto": None}],
    }
    assert parse_answer(body) == PassthroughAnswer(
        "Ana", (PassthroughDebt("X", Decimal("1"), date(2026, 1, 1), ""),)
    )
