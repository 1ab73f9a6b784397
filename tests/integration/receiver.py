"""A real HTTP server on 127.0.0.1 for tests: records what it gets, fails on demand.

It plays the company's system: the webhook receiver (POST) and the pass-through debt
endpoint (GET). `fail_next` answers 500 that many times; `delay_s` sleeps before each
answer; `get_answers` maps a RUT to (status, raw body) for GET requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500
    delay_s: float = 0.0
    get_answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> tuple[int, bytes]:
        with self.lock:
            self.received.append(request)
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if failing:
            return self.fail_status, b'{"error":"down"}'
        if request.method == "GET":
            rut = parse_qs(urlsplit(request.path).query).get("rut", [""])[0]
            return self.get_answers.get(rut, (404, b'{"error":"unknown"}'))
        return 200, b'{"ok":true}'

    @property
    def posts(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "POST"]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Received(self.command, self.path, dict(self.headers.items()), body)
            status, payload = receiver.answer(request)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out
                pass

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
