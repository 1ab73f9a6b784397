"""A simulated PSE / card provider: a small real HTTP service (Starlette) with a redirect flow.

It stands in for PSE and card acquirers in development and in the tests, which start it on
loopback (`ProviderSimulator`). Payments are kept in memory. The flow:

``POST /v1/payments`` ``{reference, amount_minor, vat_minor, currency, means, bank,
description, payer_email, return_url, callback_url}`` answers ``{session, redirect_url}``;
the payer opens ``redirect_url`` (``GET /pse/<session>``: the "bank" page, Spanish) and
chooses: ``approve``, ``decline``, ``fail`` — the simulator records the outcome, notifies
``callback_url`` with ``{"session": ...}`` and redirects the payer (303) to ``return_url`` —
or ``abandon``: nothing is answered ever, the payment stays ``pending`` (the provider
"never answers"). ``GET /v1/payments/<session>`` answers ``{session, state, trace_code,
bank, message, reference, amount_minor}``; ``GET /v1/banks`` the bank list.
``hang_status`` (attribute of the state) makes the status endpoint never answer in time.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from recaudo.domain.checkout import trace_code

BANKS = (
    ("1007", "BANCOLOMBIA"),
    ("1051", "BANCO DAVIVIENDA"),
    ("1001", "BANCO DE BOGOTA"),
    ("1023", "BANCO DE OCCIDENTE"),
)
OUTCOMES = {
    "approve": ("approved", "Aprobada"),
    "decline": ("declined", "Rechazada por la entidad financiera"),
    "fail": ("failed", "Error técnico en la entidad financiera"),
}


@dataclass
class SimPayment:
    session: str
    request: dict[str, Any]
    state: str = "pending"
    trace_code: str | None = None
    message: str | None = None


@dataclass
class SimState:
    payments: dict[str, SimPayment] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    hang_status: bool = False
    notified: list[str] = field(default_factory=list)
    base_url: str = ""


REQUIRED = ("reference", "amount_minor", "currency", "means", "return_url", "callback_url")


def create_app() -> Starlette:
    state = SimState()

    async def banks(request: Request) -> Response:
        return JSONResponse({"banks": [{"code": c, "name": n} for c, n in BANKS]})

    async def create(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=422)
        if not isinstance(body, dict) or any(body.get(k) in (None, "") for k in REQUIRED):
            return JSONResponse({"error": f"required: {', '.join(REQUIRED)}"}, status_code=422)
        if not isinstance(body["amount_minor"], int) or body["amount_minor"] <= 0:
            return JSONResponse({"error": "amount_minor must be positive"}, status_code=422)
        session = secrets.token_hex(12)
        with state.lock:
            state.payments[session] = SimPayment(session, body)
        base = state.base_url or str(request.base_url).rstrip("/")
        return JSONResponse({"session": session, "redirect_url": f"{base}/pse/{session}"})

    async def status(request: Request) -> Response:
        if state.hang_status:
            await asyncio.sleep(30)
        payment = state.payments.get(request.path_params["session"])
        if payment is None:
            return JSONResponse({"error": "unknown session"}, status_code=404)
        bank_code = payment.request.get("bank") or ""
        return JSONResponse(
            {
                "session": payment.session,
                "state": payment.state,
                "trace_code": payment.trace_code,
                "bank": dict(BANKS).get(bank_code, bank_code or None),
                "message": payment.message,
                "reference": payment.request["reference"],
                "amount_minor": payment.request["amount_minor"],
            }
        )

    async def page(request: Request) -> Response:
        payment = state.payments.get(request.path_params["session"])
        if payment is None:
            return HTMLResponse("<p>Sesión desconocida</p>", status_code=404)
        r = payment.request
        buttons = "".join(
            f'<button name="outcome" value="{o}">{label}</button> '
            for o, label in (
                ("approve", "Aprobar"),
                ("decline", "Rechazar"),
                ("fail", "Fallar"),
                ("abandon", "Abandonar"),
            )
        )
        return HTMLResponse(
            "<!doctype html><html lang='es'><head><meta charset='utf-8'>"
            "<title>Banco simulado</title></head><body>"
            f"<h1>Banco simulado ({html.escape(r.get('means', ''))})</h1>"
            f"<p>Referencia {html.escape(str(r['reference']))}: "
            f"{r['amount_minor']} ({html.escape(r['currency'])})</p>"
            f"<form method='post'>{buttons}</form></body></html>"
        )

    def notify(url: str, session: str) -> None:
        try:
            httpx.post(url, json={"session": session}, timeout=5)
            state.notified.append(session)
        except httpx.HTTPError:
            pass

    async def decide(request: Request) -> Response:
        payment = state.payments.get(request.path_params["session"])
        if payment is None:
            return HTMLResponse("<p>Sesión desconocida</p>", status_code=404)
        form = await request.form()
        outcome = str(form.get("outcome", ""))
        if outcome == "abandon":
            return HTMLResponse("<p>Ha abandonado el pago.</p>")
        if outcome not in OUTCOMES:
            return HTMLResponse("<p>Opción desconocida</p>", status_code=422)
        with state.lock:
            if payment.state == "pending":
                payment.state, payment.message = OUTCOMES[outcome]
                if payment.state == "approved":
                    bank = payment.request.get("bank") or "0000"
                    payment.trace_code = trace_code(bank, datetime.now(UTC), next(state.sequence))
        callback = str(payment.request["callback_url"])
        threading.Thread(target=notify, args=(callback, payment.session), daemon=True).start()
        return RedirectResponse(str(payment.request["return_url"]), status_code=303)

    app = Starlette(
        routes=[
            Route("/v1/banks", banks),
            Route("/v1/payments", create, methods=["POST"]),
            Route("/v1/payments/{session}", status),
            Route("/pse/{session}", page),
            Route("/pse/{session}", decide, methods=["POST"]),
        ]
    )
    app.state.simulator = state
    return app


class ProviderSimulator:
    """The simulator under uvicorn in a daemon thread, on a socket bound beforehand."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        self.app = create_app()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(self.app, log_config=None, lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.state.base_url = self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SimState:
        state: SimState = self.app.state.simulator
        return state

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the payment provider simulator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()
