"""The admin API served by a real uvicorn on a free loopback port, per test and per backend.

`api` starts the server in a thread against the `db_url` fixture (so every test runs on
SQLite and on PostgreSQL), with the test's frozen clock, and hands out httpx clients.
Set-up data goes straight through the services (`api.uow`), never through the API.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import Company, Customer, Debt
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.api import access_log, create_app
from recaudo.bootstrap import Container
from recaudo.config import Settings
from recaudo.logging import configure_logging
from recaudo.services.companies import NewCompany, create_company, issue_api_key
from recaudo.services.context import Actor, Role
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

# Small, so that the 413 tests need only a few hundred kilobytes.
MAX_UPLOAD_BYTES = 256 * 1024
ROOT_ACTOR = Actor("test:root", Role.ADMIN)


class Server:
    """uvicorn in a daemon thread, on a socket bound beforehand (so the port is known)."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        # log_config=None: leave the process's logging alone (pytest and the tests own it).
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@dataclass
class Api:
    """The running server, its data, and keys of two companies of the same country."""

    url: str
    uow: UnitOfWork
    clock: FrozenClock
    container: Container
    acme: Company
    beta: Company
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, key: str | None = "acme_admin", **headers: str) -> httpx.Client:
        """A client with `key` (a name in `keys`, or a raw Authorization value via headers)."""
        all_headers = dict(headers)
        if key is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.keys[key]}")
        client = httpx.Client(base_url=f"{self.url}/api/v1", headers=all_headers, timeout=30)
        self._clients.append(client)
        return client

    def issue(self, company: Company, role: Role, name: str) -> str:
        issued = issue_api_key(self.uow, company.slug, role, actor=ROOT_ACTOR, clock=self.clock)
        self.keys[name], self.key_ids[name] = issued.secret, issued.key_id
        return issued.secret

    def label(self, name: str) -> str:
        """What the audit trail and `recorded_by` show for the key `name`."""
        return f"api_key:{self.key_ids[name]}"

    def customer(self, company: Company, national_id: str, name: str) -> Customer:
        return add_customer(self.uow, company, national_id, name, self.clock)

    def debt(
        self,
        company: Company,
        customer: Customer,
        external_id: str,
        amount: str,
        due: date,
        *,
        status: str = "open",
    ) -> Debt:
        return add_debt(
            self.uow, company, customer, external_id, amount, due, self.clock, status=status
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def serve(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> Iterator[Callable[[Callable[[FastAPI], None] | None], tuple[Server, Container]]]:
    """Start the app; an optional hook may add routes first (to provoke failures)."""
    started: list[tuple[Server, Container]] = []

    def start(hook: Callable[[FastAPI], None] | None = None) -> tuple[Server, Container]:
        settings = Settings(
            database_url=db_url,
            data_dir=tmp_path / "data",
            max_upload_bytes=MAX_UPLOAD_BYTES,
            # Test receivers and pass-through endpoints listen on 127.0.0.1.
            webhook_allow_private_targets=True,
            # Test SFTP and SMTP servers too.
            delivery_allow_private_targets=True,
        )
        container = Container(settings=settings, engine=make_engine(db_url), clock=clock)
        app = create_app(container)
        if hook is not None:
            hook(app)
        server = Server(app)
        server.start()
        started.append((server, container))
        return server, container

    yield start
    for server, container in started:
        server.stop()
        container.engine.dispose()


@pytest.fixture
def api(
    serve: Callable[[Callable[[FastAPI], None] | None], tuple[Server, Container]],
    uow: UnitOfWork,
    clock: FrozenClock,
) -> Iterator[Api]:
    acme = create_company(
        uow, NewCompany("acme", "Acme Telecomunicaciones SpA", "CL"), actor=ROOT_ACTOR, clock=clock
    )
    beta = create_company(
        uow, NewCompany("beta", "Beta Servicios Ltda", "CL"), actor=ROOT_ACTOR, clock=clock
    )
    server, container = serve(None)
    api = Api(server.url, uow, clock, container, acme, beta)
    api.issue(acme, Role.ADMIN, "acme_admin")
    api.issue(acme, Role.OPERATOR, "acme_operator")
    api.issue(acme, Role.AUDITOR, "acme_auditor")
    api.issue(beta, Role.ADMIN, "beta_admin")
    yield api
    api.close()


class LogCapture:
    """What the server wrote to stderr; reading it first writes out the batched access log."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def readouterr(self) -> pytest.CaptureResult[str]:
        access_log.flush_all()
        return self.capsys.readouterr()


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[LogCapture]:
    """Recaudo's own logging set-up (the one `recaudo serve` uses), writing to stderr."""
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG")
    capture = LogCapture(capsys)
    capture.readouterr()
    yield capture
    root.removeHandler(handler)
    root.setLevel(level)


ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


class _Timestamp:
    """Equal to any ISO 8601 UTC timestamp string: for server-generated times."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(ISO_UTC.match(other))

    def __repr__(self) -> str:
        return "<ISO timestamp>"


TIMESTAMP: Any = _Timestamp()


def assert_problem(
    response: httpx.Response, status: int, code: str, detail: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:recaudo:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["instance"], str) and body["instance"]
    if detail is not None:
        assert body["detail"] == detail
    return body
