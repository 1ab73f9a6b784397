"""The card gateway over HTTP: the `CardGateway` port spoken to the simulated gateway's API
(`adapters.card_gateway_sim`). Real gateways (Redsys, ...) are other adapters of the port.

Each charge carries the payment's end-to-end id as ``Idempotency-Key``: a charge retried
after a timeout or a crash answers the first result and never charges twice. Anything but
a well-formed answer is a `CardGatewayError` (nothing known: the payment stays as it was).
"""

from __future__ import annotations

from typing import Any

import httpx

from recaudo.config import Settings
from recaudo.domain.errors import Conflict
from recaudo.services.ports import CardGatewayError, ChargeOutcome, ChargeRequest, ChargeResult

DEFAULT_TIMEOUT_S = 30.0
_OUTCOMES = {o.value: o for o in ChargeOutcome}


class HttpCardGateway:
    """`CardGateway` over HTTP. Use it as a context manager (or call `close`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._where = base_url.rstrip("/")

    def __enter__(self) -> HttpCardGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def charge(self, request: ChargeRequest) -> ChargeResult:
        try:
            response = self._client.post(
                "/v1/charges",
                headers={"Idempotency-Key": request.idempotency_key},
                json={
                    "card_token": request.card_token,
                    "amount_minor": request.amount_minor,
                    "currency": request.currency,
                    "description": request.description,
                },
            )
        except httpx.TimeoutException:
            raise CardGatewayError(f"the card gateway {self._where} timed out") from None
        except httpx.HTTPError as exc:
            raise CardGatewayError(
                f"the card gateway {self._where} could not be reached: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise CardGatewayError(
                f"the card gateway answered {response.status_code}: {_error_text(response)}"
            )
        try:
            body: Any = response.json()
            outcome = _OUTCOMES[body["status"]]
            reference = body.get("id")
            message = str(body.get("message") or "")
        except (ValueError, KeyError, TypeError):
            raise CardGatewayError("the card gateway's answer is not a charge result") from None
        if reference is not None and not isinstance(reference, str):
            raise CardGatewayError("the card gateway's charge id is not a string")
        return ChargeResult(outcome=outcome, reference=reference, message=message[:200])


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:200]
    return response.text[:200]


def from_settings(settings: Settings) -> HttpCardGateway:
    """The gateway the settings name (`card_gateway_url`, `card_gateway_key`)."""
    if not settings.card_gateway_url:
        raise Conflict(
            "no card gateway is configured (RECAUDO_CARD_GATEWAY_URL): card remittances "
            "cannot be charged"
        )
    key = settings.card_gateway_key.get_secret_value() if settings.card_gateway_key else None
    return HttpCardGateway(
        settings.card_gateway_url, key, timeout_s=settings.card_gateway_timeout_s
    )
