"""The payment-provider port of the hosted checkout (PSE bank debit, cards) and its HTTP client.

A provider takes a payment in a redirect flow (PSE-like):

1. `create_payment` registers the payment and answers the provider's session id and the URL
   to send the payer to (the bank's page);
2. the payer approves or not at the bank; the provider sends the payer back to
   `return_url` and notifies `callback_url` (server to server, body `{"session": ...}`);
3. Recaudo never trusts the redirect or the notification's content: it asks `status` for
   the session, which answers `pending`, `approved` (with the bank's trace code),
   `declined` or `failed`.

`HttpPaymentProvider` speaks the JSON API of the simulated provider
(`adapters.payment_provider_sim`); real providers are further adapters of the same port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

APPROVED = "approved"
DECLINED = "declined"
FAILED = "failed"
PENDING = "pending"
PROVIDER_STATES = (APPROVED, DECLINED, FAILED, PENDING)


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered something else than its API."""


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    reference: str  # the ticket number
    amount_minor: int
    vat_minor: int
    currency: str
    means: str  # PSE | CARD
    bank: str | None
    description: str
    payer_email: str | None
    return_url: str
    callback_url: str


@dataclass(frozen=True, slots=True)
class ProviderSession:
    session: str
    redirect_url: str


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    state: str
    trace_code: str | None = None
    bank: str | None = None
    message: str | None = None


class PaymentProvider(Protocol):
    name: str

    def banks(self) -> list[tuple[str, str]]: ...

    def create_payment(self, request: PaymentRequest) -> ProviderSession: ...

    def status(self, session: str) -> ProviderStatus: ...


class HttpPaymentProvider:
    """The client of a provider speaking the simulator's JSON API."""

    name = "pse-sim"

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, json: object | None = None) -> dict[str, object]:
        try:
            response = httpx.request(
                method, f"{self.base_url}{path}", json=json, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderUnavailable(f"the provider answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderUnavailable("the provider answered no JSON") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable("the provider answered no JSON object")
        return body

    def banks(self) -> list[tuple[str, str]]:
        body = self._call("GET", "/v1/banks")
        items = body.get("banks")
        if not isinstance(items, list):
            raise ProviderUnavailable("no bank list")
        return [(str(b["code"]), str(b["name"])) for b in items if isinstance(b, dict)]

    def create_payment(self, request: PaymentRequest) -> ProviderSession:
        body = self._call(
            "POST",
            "/v1/payments",
            {
                "reference": request.reference,
                "amount_minor": request.amount_minor,
                "vat_minor": request.vat_minor,
                "currency": request.currency,
                "means": request.means,
                "bank": request.bank,
                "description": request.description,
                "payer_email": request.payer_email,
                "return_url": request.return_url,
                "callback_url": request.callback_url,
            },
        )
        session, url = body.get("session"), body.get("redirect_url")
        if not isinstance(session, str) or not isinstance(url, str):
            raise ProviderUnavailable("the provider answered no session")
        return ProviderSession(session, url)

    def status(self, session: str) -> ProviderStatus:
        body = self._call("GET", f"/v1/payments/{session}")
        state = body.get("state")
        if state not in PROVIDER_STATES:
            raise ProviderUnavailable(f"unknown provider state {state!r}")

        def text(name: str) -> str | None:
            value = body.get(name)
            return value if isinstance(value, str) else None

        return ProviderStatus(str(state), text("trace_code"), text("bank"), text("message"))


class UnconfiguredProvider:
    """No provider configured: every call is unavailable (pages say so, nothing breaks)."""

    name = "none"

    def banks(self) -> list[tuple[str, str]]:
        raise ProviderUnavailable("no payment provider is configured")

    def create_payment(self, request: PaymentRequest) -> ProviderSession:
        raise ProviderUnavailable("no payment provider is configured")

    def status(self, session: str) -> ProviderStatus:
        raise ProviderUnavailable("no payment provider is configured")


def configured_provider(url: str | None) -> PaymentProvider:
    """The provider at `url` (`RECAUDO_CHECKOUT_PROVIDER_URL`; the simulator in development)."""
    return HttpPaymentProvider(url) if url else UnconfiguredProvider()
