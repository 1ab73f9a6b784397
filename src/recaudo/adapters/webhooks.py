"""Signed webhook delivery over HTTP, and the check a receiving company runs.

Every request is a JSON ``POST`` with these headers::

    Content-Type: application/json
    Recaudo-Event: payment.applied
    Recaudo-Delivery: 42
    Recaudo-Signature: t=1772456400,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

``t`` is the Unix time of signing; ``body`` is the exact bytes of the request body. A
receiver recomputes the HMAC with its secret, compares in constant time and refuses
timestamps older than its tolerance (replayed captures): :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from recaudo.services.webhooks import SendResult

SIGNATURE_HEADER = "Recaudo-Signature"
EVENT_HEADER = "Recaudo-Event"
DELIVERY_HEADER = "Recaudo-Delivery"
TIMEOUT_S = 10.0
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Recaudo-Signature`` header value for ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


class HttpSender:
    """The real `WebhookSender`: one POST per attempt, 10 s timeout, no redirects."""

    def __init__(
        self, *, timeout_s: float = TIMEOUT_S, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False
        )

    def send(
        self,
        url: str,
        secret: str,
        *,
        event_type: str,
        delivery_id: int,
        body: bytes,
        timestamp: int,
    ) -> SendResult:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Recaudo-Webhooks/1",
            EVENT_HEADER: event_type,
            DELIVERY_HEADER: str(delivery_id),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        started = time.monotonic()
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return SendResult(None, "timeout", _elapsed_ms(started))
        except httpx.HTTPError as exc:
            return SendResult(None, f"connection error: {type(exc).__name__}", _elapsed_ms(started))
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return SendResult(response.status_code, error, _elapsed_ms(started))

    def close(self) -> None:
        self._client.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
