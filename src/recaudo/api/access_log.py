"""The access log: one masked line per HTTP request, written in batches.

uvicorn's own access log goes through `logging` for every request: a record, the
caller lookup, the formatter, the masking filter, a lock and a write. On the bank
channel that was about 58 µs of a request's ~450 µs of server CPU (docs/benchmarks.md),
more than its whole database work. This middleware formats the same line itself
(uvicorn's wording, the same masking of the path and query string as every other log
line) and gathers lines for up to `flush_after_s` before one write to stderr.

What that trades: an access line may reach stderr up to a quarter of a second after its
request, and a process killed with SIGKILL loses at most that quarter second of access
lines (never a payment: the audit trail and the payments are in the database). A clean
shutdown (ASGI lifespan) and interpreter exit flush what is pending.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TextIO

from recaudo.logging import mask_text

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGGER_NAME = "recaudo.access"
# A batch this long is written at once, whatever the time.
MAX_PENDING_LINES = 512


_LIVE: weakref.WeakSet[AccessLog] = weakref.WeakSet()


def flush_all() -> None:
    """Write what every access log of this process holds (tests read stderr right away)."""
    for log in list(_LIVE):
        log.flush()


def _flush_if_alive(ref: weakref.ref[AccessLog]) -> None:
    log = ref()
    if log is not None:
        log.flush()


class _Timestamps:
    """`logging`'s default asctime ("2026-11-22 05:40:01,123", local time), cheaply.

    strftime runs once per second, not once per request.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._prefix},{int((moment - second) * 1000):03d}"


class AccessLog:
    """Pure ASGI middleware: writes `client - "METHOD path HTTP/v" status` per request.

    Lines are written only while the `recaudo.access` logger is enabled for INFO, so
    `RECAUDO_LOG_LEVEL=WARNING` silences the access log as it silences the rest.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        flush_after_s: float = 0.25,
        stream: Callable[[], TextIO] | None = None,
    ) -> None:
        self.app = app
        self.flush_after_s = flush_after_s
        # Looked up at each write: test runners swap sys.stderr.
        self._stream = stream or (lambda: sys.stderr)
        self._logger = logging.getLogger(LOGGER_NAME)
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timestamps = _Timestamps()
        _LIVE.add(self)
        # Weakly: test suites build many apps, and exit must not keep them all alive.
        atexit.register(_flush_if_alive, weakref.ref(self))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._flushing_on_shutdown(receive), send)
            return
        if kind != "http" or not self._logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            # A request the client dropped before any answer logs status 0, as a hint.
            self._add(scope, status)

    def _add(self, scope: Scope, status: int) -> None:
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else ""
        path = urllib.parse.quote(scope.get("root_path", "") + scope["path"])
        if scope["query_string"]:
            path = f"{path}?{scope['query_string'].decode('ascii', 'replace')}"
        self._pending.append(
            f"{self._timestamps.now()} INFO    {LOGGER_NAME}: {address} - "
            f'"{scope["method"]} {mask_text(path)} HTTP/{scope["http_version"]}" {status}\n'
        )
        if len(self._pending) >= MAX_PENDING_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_after_s, self._due)

    def _due(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write every pending line in one write (safe to call from any thread)."""
        # Take the list before joining it: a line appended meanwhile by the server's
        # thread lands either in this batch or in the next, never nowhere.
        pending, self._pending = self._pending, []
        if not pending:
            return
        stream = self._stream()
        try:
            stream.write("".join(pending))
            stream.flush()
        except (OSError, ValueError):  # stderr closed (shutdown): nothing left to tell
            pass

    def _flushing_on_shutdown(self, receive: Receive) -> Receive:
        async def receive_and_flush() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.flush()
            return message

        return receive_and_flush
