"""A simulated card gateway: a small real HTTP service (Starlette) that charges cards.

It stands in for Redsys and the like in development and in the tests, which start it on
loopback (`SimulatorServer`); `recaudo card-gateway-sim` runs it on its own. It keeps its
charges in memory and its answers are deterministic by card token:

- ``tok_expired...``: the card has expired (``expired``, "Tarjeta caducada").
- ``tok_decline_funds...``: declined, "Denegada: saldo insuficiente".
- ``tok_decline...`` (any other): declined, "Denegada por el emisor".
- any other ``tok_...``: approved, with a reference derived from the idempotency key.
- anything else: declined, "Tarjeta desconocida".

The API (JSON):

``POST /v1/charges`` with header ``Idempotency-Key`` and body ``{card_token, amount_minor,
currency, description}`` answers 200 ``{id, status, message, amount_minor, currency,
replayed}`` where ``status`` is ``approved``, ``declined`` or ``expired``. The same key again
answers the first result with ``replayed: true`` and charges nothing; the same key with a
different card, amount or currency is a 409. A bad body is a 422, a wrong key a 401.
``GET /v1/charges`` lists every charge made (one per idempotency key), oldest first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

EXPIRED = ("expired", "Tarjeta caducada")
DECLINED_FUNDS = ("declined", "Denegada: saldo insuficiente")
DECLINED_ISSUER = ("declined", "Denegada por el emisor")
UNKNOWN_CARD = ("declined", "Tarjeta desconocida")
APPROVED = ("approved", "Autorizada")
MAX_KEY = 100
MAX_TOKEN = 100


def decide(card_token: str) -> tuple[str, str]:
    """The simulator's verdict for a card token: (status, message)."""
    if card_token.startswith("tok_expired"):
        return EXPIRED
    if card_token.startswith("tok_decline_funds"):
        return DECLINED_FUNDS
    if card_token.startswith("tok_decline"):
        return DECLINED_ISSUER
    if card_token.startswith("tok_"):
        return APPROVED
    return UNKNOWN_CARD


@dataclass
class _Charge:
    id: str
    key: str
    card_token: str
    amount_minor: int
    currency: str
    description: str
    status: str
    message: str

    def document(self, *, replayed: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "replayed": replayed,
        }


@dataclass
class SimulatorState:
    """The simulator's memory: one charge per idempotency key, in arrival order."""

    api_key: str | None = None
    charges: dict[str, _Charge] = field(default_factory=dict)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(api_key: str | None = None) -> Starlette:
    """The simulator's ASGI app; `api_key` set: requests must carry `Bearer <api_key>`."""
    state = SimulatorState(api_key=api_key)

    def authorized(request: Request) -> bool:
        if state.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {state.api_key}".encode())

    async def charge(request: Request) -> JSONResponse:
        if not authorized(request):
            return _error(401, "missing or wrong API key")
        key = request.headers.get("idempotency-key", "").strip()
        if not key or len(key) > MAX_KEY:
            return _error(422, f"the Idempotency-Key header is required (1-{MAX_KEY} chars)")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(422, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(422, "the body must be a JSON object")
        token = body.get("card_token")
        amount = body.get("amount_minor")
        currency = body.get("currency")
        description = body.get("description", "")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            return _error(422, "card_token must be a non-empty string")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return _error(422, "amount_minor must be a positive integer")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            return _error(422, "currency must be a three-letter code")
        if not isinstance(description, str):
            return _error(422, "description must be a string")
        # One event loop, no await between the check and the write: no lock needed.
        seen = state.charges.get(key)
        if seen is not None:
            if (seen.card_token, seen.amount_minor, seen.currency) != (token, amount, currency):
                return _error(409, "this Idempotency-Key was used for a different charge")
            return JSONResponse(seen.document(replayed=True))
        status, message = decide(token)
        charge_id = "sim_" + hashlib.sha256(key.encode()).hexdigest()[:24]
        made = _Charge(
            charge_id, key, token, amount, currency.upper(), description, status, message
        )
        state.charges[key] = made
        return JSONResponse(made.document(replayed=False))

    async def list_charges(request: Request) -> JSONResponse:
        if not authorized(request):
            return _error(401, "missing or wrong API key")
        return JSONResponse(
            [
                {**c.document(replayed=False), "idempotency_key": c.key, "card_token": c.card_token}
                for c in state.charges.values()
            ]
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/v1/charges", charge, methods=["POST"]),
            Route("/v1/charges", list_charges, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.simulator = state
    return app


class SimulatorServer:
    """The simulator under uvicorn in a daemon thread on a socket bound beforehand (so the
    port is known before it starts): for tests and for embedding."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None):
        self.app = create_app(api_key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(self.app, log_config=None, lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SimulatorState:
        state: SimulatorState = self.app.state.simulator
        return state

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the card gateway simulator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


def run(host: str, port: int, api_key: str | None = None) -> None:
    """Serve the simulator in the foreground until interrupted."""
    uvicorn.run(create_app(api_key), host=host, port=port, log_level="info")
