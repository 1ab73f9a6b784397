"""Ports: what the services need from the outside world, as Protocols.

Adapters (`recaudo.adapters`) implement them; a use case takes the port as an argument, so
tests and other gateways plug in without the service knowing which one it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ChargeOutcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    # The card is past its expiry date: no later charge can succeed either.
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One card charge. `idempotency_key` is the payment's end-to-end id: a gateway that
    sees the same key again answers the first result and charges nothing more."""

    idempotency_key: str
    card_token: str
    amount_minor: int
    currency: str
    description: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    # The gateway's id of the charge (approved ones; declines may carry one too).
    reference: str | None
    # The gateway's own words: shown to the user on a decline.
    message: str


class CardGatewayError(Exception):
    """The gateway could not be asked or did not answer sensibly: nothing is known about the
    charge, so the payment stays as it was and the run can be repeated (the idempotency key
    makes a charge that did go through answer again instead of charging twice)."""


class CardGateway(Protocol):
    """A card payment gateway (the simulated one; Redsys and others later)."""

    def charge(self, request: ChargeRequest) -> ChargeResult: ...
