"""Signed webhook delivery over HTTP, and the check a receiving company runs.

Every request is a JSON ``POST`` with these headers::

    Content-Type: application/json
    Recaudo-Event: payment.applied
    Recaudo-Delivery: 42
    Recaudo-Signature: t=1772456400,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

``t`` is the Unix time of signing; ``body`` is the exact bytes of the request body. A
receiver recomputes the HMAC with its secret, compares in constant time and refuses
timestamps older than its tolerance (replayed captures): :func:`verify_signature`.

The sender never connects to an address the network guard refuses (``adapters.netguard``:
loopback, private, link-local/cloud metadata, ...; loopback and private are allowed with
``allow_private``). It resolves the URL's host once, checks every address, then connects
to a checked address itself, sending the URL's host in the ``Host`` header and as the TLS
server name (SNI, and the name the certificate must match): a DNS answer that changes
between the check and the connection (DNS rebinding) cannot redirect it. A refused
target is an attempt that fails with the reason, like a refused connection.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time

import httpx

from recaudo.adapters import netguard
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
    """The real `WebhookSender`: one POST per attempt, 10 s timeout, no redirects, only
    to addresses the network guard allows."""

    def __init__(
        self,
        *,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        allow_private: bool = False,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allow_private = allow_private
        # No kept-alive connections: each attempt connects to the address it has just
        # checked, and a TLS connection verified for one host is never reused for
        # another host that shares its address. No proxies from the environment: through
        # an HTTPS tunnel the TLS name would be the address, not the URL's host.
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            verify=verify,
            trust_env=False,
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
        started = time.monotonic()
        try:
            target = httpx.URL(url)
            host = target.raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeDecodeError):
            return SendResult(None, "invalid URL", _elapsed_ms(started))
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            addresses = netguard.allowed_addresses(host, port, allow_private=self.allow_private)
        except netguard.TargetRefused as exc:
            return SendResult(None, f"refused target: {exc}", _elapsed_ms(started))
        except netguard.TargetUnresolved as exc:
            return SendResult(None, f"DNS error: {exc}", _elapsed_ms(started))
        headers = {
            "Host": target.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": "Recaudo-Webhooks/1",
            EVENT_HEADER: event_type,
            DELIVERY_HEADER: str(delivery_id),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        extensions = {}
        if target.scheme == "https" and netguard.ip_literal(host) is None:
            extensions["sni_hostname"] = host
        error = "connection error"
        for address in addresses:  # the next one only when this one refuses the connection
            pinned = target.copy_with(host=str(address))
            try:
                response = self._client.post(
                    pinned, content=body, headers=headers, extensions=extensions
                )
            except httpx.TimeoutException:
                return SendResult(None, "timeout", _elapsed_ms(started))
            except httpx.ConnectError:
                error = "connection error: ConnectError"
                continue
            except httpx.HTTPError as exc:
                error = f"connection error: {type(exc).__name__}"
                break
            error_text = (
                None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            )
            return SendResult(response.status_code, error_text, _elapsed_ms(started))
        return SendResult(None, error, _elapsed_ms(started))

    def close(self) -> None:
        self._client.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
