"""Pass-through debt query: ask the company's own billing system for a RUT's debts.

Some companies keep their debts in their own system. An agreement with a
``passthrough_url`` makes the debt query call that URL instead of reading Recaudo's
portfolio; payments are still recorded in Recaudo and pushed back by the signed webhook.
The URL must reach a public internet address, like a webhook URL: an agreement refuses a
loopback, private or cloud-metadata host when it is configured
(``services.agreements``, ``adapters.netguard``; ``webhook_allow_private_targets`` allows
loopback and private hosts for development and tests).

The contract the company endpoint must answer
----------------------------------------------

Request::

    GET {passthrough_url}?rut=12345678-5
    Accept: application/json

The RUT is normalised: body without dots, a hyphen, upper-case check digit.

Answer for a known RUT, ``200`` with a JSON object::

    {
      "nombre": "Juana Pérez",
      "deudas": [
        {"id": "B-1", "monto": "1500", "vencimiento": "2026-01-31", "concepto": "Boleta enero"}
      ]
    }

- ``nombre``: the customer's name, a non-empty string.
- ``deudas``: a list (possibly empty: the customer exists and owes nothing).
- ``id``: the company's own debt id, non-empty string (at most 64 characters).
- ``monto``: the amount as a decimal *string* (``"1500"``, ``"1500.50"``), never a JSON
  number (floats lose cents); it must be positive. Its scale is checked by the caller
  against the agreement's currency.
- ``vencimiento``: the due date, ISO ``YYYY-MM-DD``.
- ``concepto``: free text (may be empty, at most 200 characters).

Unknown RUT: ``404`` (any body). Any other status, a timeout, a refused connection or
a body that does not follow the shape above is "the company is down":
:class:`PassthroughUnavailable`, which the channel answers with its "not available"
code (BancoEstado 1002) and records as an incident.

Circuit breaker
---------------

Per URL: after ``failure_threshold`` (5) consecutive failures the circuit opens and
calls fail at once with ``PassthroughUnavailable("circuit open")`` for ``open_seconds``
(30 s); then it is half-open: exactly one trial call goes through, the others fail at
once; a successful trial (or a 404) closes the circuit, a failed one opens it again.
The breaker is in memory, per process: each API worker protects itself.

Usage::

    client = PassthroughClient()                # one per process (bootstrap wires it)
    answer = client.fetch_debts(agreement.passthrough_url, "12345678-5",
                                agreement.passthrough_timeout_ms / 1000)
    if answer is None: ...                      # unknown RUT
    for debt in answer.debts: debt.amount       # Decimal

Nothing here logs the RUT or the name unmasked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

DEFAULT_TIMEOUT_S = 3.0
FAILURE_THRESHOLD = 5
OPEN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class PassthroughDebt:
    debt_id: str
    amount: Decimal
    due_date: date
    concept: str


@dataclass(frozen=True, slots=True)
class PassthroughAnswer:
    customer_name: str
    debts: tuple[PassthroughDebt, ...]


class PassthroughUnavailable(Exception):
    """The company's endpoint did not answer usefully; ``cause`` says why (no PII)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class _Malformed(ValueError):
    pass


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class CircuitBreaker:
    """Consecutive-failure breaker, one circuit per key (the URL). Thread-safe."""

    def __init__(
        self,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        open_seconds: float = OPEN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half-open``."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            if self._monotonic() - circuit.opened_at < self.open_seconds:
                return "open"
            return "half-open"

    def before_call(self, key: str) -> None:
        """Raise ``PassthroughUnavailable`` when the call must not be attempted."""
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            if circuit.opened_at is None:
                return
            if self._monotonic() - circuit.opened_at < self.open_seconds:
                raise PassthroughUnavailable("circuit open")
            if circuit.trial_in_flight:
                raise PassthroughUnavailable("circuit half-open, trial in flight")
            circuit.trial_in_flight = True

    def success(self, key: str) -> None:
        with self._lock:
            self._circuits[key] = _Circuit()

    def failure(self, key: str) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            circuit.failures += 1
            if circuit.trial_in_flight or circuit.failures >= self.failure_threshold:
                circuit.opened_at = self._monotonic()
            circuit.trial_in_flight = False


class PassthroughClient:
    """HTTP client for the company's debt endpoint, with a per-URL circuit breaker."""

    def __init__(
        self,
        *,
        breaker: CircuitBreaker | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        self._transport = transport
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    @property
    def _client(self) -> httpx.Client:
        # One connection pool for every URL (httpx clients are thread-safe), made on first
        # use; each request carries its agreement's own timeout.
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(transport=self._transport, follow_redirects=False)
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def fetch_debts(
        self, url: str, rut: str, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> PassthroughAnswer | None:
        """The debts of ``rut`` in the company's system, or ``None`` for an unknown RUT.

        Raises ``PassthroughUnavailable`` on timeout, connection error, non-2xx other
        than 404, malformed JSON, or while the circuit for ``url`` is open.
        """
        self.breaker.before_call(url)
        try:
            answer = self._call(url, rut, timeout_s)
        except PassthroughUnavailable:
            self.breaker.failure(url)
            raise
        self.breaker.success(url)
        return answer

    def _call(self, url: str, rut: str, timeout_s: float) -> PassthroughAnswer | None:
        try:
            response = self._client.get(
                url,
                params={"rut": rut},
                headers={"Accept": "application/json"},
                timeout=httpx.Timeout(timeout_s),
            )
        except httpx.TimeoutException:
            raise PassthroughUnavailable(f"timeout after {timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise PassthroughUnavailable(f"connection error: {type(exc).__name__}") from None
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise PassthroughUnavailable(f"HTTP {response.status_code}")
        try:
            return parse_answer(response.json())
        except ValueError as exc:  # JSONDecodeError and _Malformed are ValueErrors
            raise PassthroughUnavailable(f"malformed answer: {exc}") from None


def _text(item: dict[str, Any], key: str, *, max_len: int, allow_empty: bool) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"{key!r} must be a string")
    value = value.strip()
    if not value and not allow_empty:
        raise _Malformed(f"{key!r} is empty")
    if len(value) > max_len:
        raise _Malformed(f"{key!r} is longer than {max_len}")
    return value


def _debt(item: object) -> PassthroughDebt:
    if not isinstance(item, dict):
        raise _Malformed("each debt must be an object")
    monto = item.get("monto")
    if not isinstance(monto, str):
        raise _Malformed("'monto' must be a decimal string")
    try:
        amount = Decimal(monto.strip())
    except InvalidOperation:
        raise _Malformed("'monto' is not a decimal") from None
    if not amount.is_finite() or amount <= 0:
        raise _Malformed("'monto' must be positive")
    vencimiento = item.get("vencimiento")
    if not isinstance(vencimiento, str):
        raise _Malformed("'vencimiento' must be a YYYY-MM-DD string")
    try:
        due = date.fromisoformat(vencimiento)
    except ValueError:
        raise _Malformed("'vencimiento' is not YYYY-MM-DD") from None
    concept = item.get("concepto", "")
    if concept is None:
        concept = ""
    return PassthroughDebt(
        debt_id=_text(item, "id", max_len=64, allow_empty=False),
        amount=amount,
        due_date=due,
        concept=_text({"concepto": concept}, "concepto", max_len=200, allow_empty=True),
    )


def parse_answer(body: object) -> PassthroughAnswer:
    """Check and convert the company's JSON; ``ValueError`` when it breaks the contract."""
    if not isinstance(body, dict):
        raise _Malformed("the answer must be a JSON object")
    name = _text(body, "nombre", max_len=200, allow_empty=False)
    deudas = body.get("deudas")
    if not isinstance(deudas, list):
        raise _Malformed("'deudas' must be a list")
    debts = tuple(_debt(item) for item in deudas)
    if len({d.debt_id for d in debts}) != len(debts):
        raise _Malformed("repeated debt id")
    return PassthroughAnswer(customer_name=name, debts=debts)
