"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: records every message it accepts.

By default it offers STARTTLS with a self-signed certificate generated for the test
(`cafile` is that certificate, for the client to trust), requires it, and requires a
login (`user` / `password`) after it. `starttls=False` gives a plain server (loopback
tests of the "plain" setting). `stop()` closes it (connections are refused), `start()`
opens it again on the same port.

    from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401

    def test_x(smtp_server: SmtpServer) -> None:
        ...
        [mail] = smtp_server.messages
        assert mail.attachments() == [("file.txt", b"...")]
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_USER = "recaudo"
DEFAULT_PASSWORD = "smtp-pa55word"


def make_self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (IP and "localhost"); returns (cert, key) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    tls: bool  # whether the message came over a STARTTLS-protected session
    login: str | None

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def attachments(self) -> list[tuple[str, bytes]]:
        out = []
        for part in self.message.iter_attachments():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.append((part.get_filename() or "", payload))
        return out


@dataclass
class SmtpServer:
    host: str = "127.0.0.1"
    port: int = 0
    starttls: bool = True
    implicit_tls: bool = False  # TLS from the first byte (port 465 style) instead of STARTTLS
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    cafile: Path | None = None  # the server's certificate, to trust on the client side
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)
    _tls_context: ssl.SSLContext | None = None
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd handler hook
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=bytes(envelope.original_content or envelope.content),
            tls=session.ssl is not None or self.implicit_tls,
            login=login.decode() if isinstance(login, bytes) else login,
        )
        with self._lock:
            self.messages.append(mail)
        return "250 Message accepted"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        ok = user == self.user and auth_data.password.decode() == self.password
        with self._lock:
            self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    def start(self) -> None:
        if not self.port:
            self.port = free_port(self.host)
        kwargs: dict[str, Any] = {}
        if self.implicit_tls:
            kwargs = {
                "ssl_context": self._tls_context,
                "authenticator": self._authenticate,
                "auth_required": True,
                # aiosmtpd counts only STARTTLS as TLS here (and warns); the whole session
                # is TLS already.
                "auth_require_tls": False,
            }
        elif self.starttls:
            kwargs = {
                "tls_context": self._tls_context,
                "require_starttls": True,
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": True,
            }
        self._controller = Controller(self, hostname=self.host, port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def target_settings(self, recipients: list[str] | None = None) -> dict[str, Any]:
        """Settings of an e-mail delivery target pointing at this server."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "from": "recaudo@example.test",
            "recipients": recipients or ["tesoreria@bank.example"],
            "security": "ssl" if self.implicit_tls else "starttls" if self.starttls else "none",
        }
        if self.starttls or self.implicit_tls:
            settings["username"] = self.user
            settings["cafile"] = str(self.cafile)
        return settings


@contextmanager
def running_smtp_server(
    directory: Path, *, starttls: bool = True, implicit_tls: bool = False
) -> Iterator[SmtpServer]:
    """`implicit_tls`: TLS from the first byte (security "ssl") instead of STARTTLS."""
    server = SmtpServer(starttls=starttls and not implicit_tls, implicit_tls=implicit_tls)
    if starttls or implicit_tls:
        cert, key = make_self_signed_cert(directory)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        server.cafile = cert
        server._tls_context = ctx
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def plain_smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path / "smtp", starttls=False) as server:
        yield server


@pytest.fixture
def ssl_smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path / "smtp", implicit_tls=True) as server:
        yield server
