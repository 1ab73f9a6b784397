"""A real SFTP server (asyncssh) on 127.0.0.1 for tests, serving a local directory.

It runs on its own event loop in a daemon thread, with a host key generated for the test
and users that log in with a password and/or a public key. `stop()` closes the listener
(the "server is down" case: connections are refused) and `start()` opens it again on the
same port.

Use the context manager, or the `sftp_server` fixture (import it into the test module):

    from tests.integration.sftp_server import running_sftp_server, sftp_server  # noqa: F401

    def test_x(sftp_server: SftpServer) -> None:
        sftp_server.root          # the directory served (a tmp dir); "/" on the SFTP side
        sftp_server.host_key      # "ssh-ed25519 AAAA..." to put in the target's known host key
        sftp_server.password      # the password of user sftp_server.user ("bank")
        sftp_server.client_key    # an OpenSSH private key accepted for user "bank"
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

DEFAULT_USER = "bank"
DEFAULT_PASSWORD = "correct horse battery staple"


@dataclass
class SftpServer:
    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    host_key: str = ""  # the server's public host key, OpenSSH one-line format
    client_key: str = ""  # a private key (OpenSSH format) that `user` may log in with
    client_public_key: str = ""
    passwords: dict[str, str] = field(default_factory=dict)
    authorized_keys: dict[str, list[str]] = field(default_factory=dict)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _acceptor: Any = None
    _host_private_key: Any = None

    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _server_factory(self) -> asyncssh.SSHServer:
        server = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn

            def begin_auth(self, username: str) -> bool:
                keys = server.authorized_keys.get(username)
                if keys:
                    self._conn.set_authorized_keys(asyncssh.import_authorized_keys("\n".join(keys)))
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                ok = username in server.passwords and server.passwords[username] == password
                server.logins.append((username, ok))
                return ok

            def public_key_auth_supported(self) -> bool:
                return True

        return _Server()

    async def _listen(self) -> None:
        root = str(self.root).encode()
        self._acceptor = await asyncssh.create_server(
            self._server_factory,
            self.host,
            self.port,
            server_host_keys=[self._host_private_key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()

    async def _close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    def start(self) -> None:
        """Listen (again, on the same port once it has one)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="test-sftp", daemon=True
            )
            self._thread.start()
        self._run(self._listen())

    def stop(self) -> None:
        """Stop listening: new connections are refused (the server is "down")."""
        self._run(self._close())

    def shutdown(self) -> None:
        if self._loop is None:
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def target_settings(self, directory: str = "/", *, auth: str = "password") -> dict[str, Any]:
        """Settings of an SFTP delivery target pointing at this server."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "auth": auth,
            "host_key": self.host_key,
            "directory": directory,
        }


@contextmanager
def running_sftp_server(root: Path) -> Iterator[SftpServer]:
    """An SFTP server serving `root` (as "/"), with user `bank` (password and key)."""
    root.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_public = client_key.export_public_key().decode().strip()
    server = SftpServer(
        root=root,
        host_key=host_key.export_public_key().decode().strip(),
        client_key=client_key.export_private_key().decode(),
        client_public_key=client_public,
        passwords={DEFAULT_USER: DEFAULT_PASSWORD},
        authorized_keys={DEFAULT_USER: [client_public]},
        _host_private_key=host_key,
    )
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    with running_sftp_server(tmp_path / "sftp-root") as server:
        yield server
