"""Webhook and pass-through URLs may not reach loopback, private or metadata addresses.

With the default settings (`webhook_allow_private_targets` false) such a URL is refused
when registered, and a delivery whose host resolves to one is refused when sent: a
failed attempt with the reason, nothing sent. Real receivers on 127.0.0.1 (HTTP and
HTTPS), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from typer.testing import CliRunner

from recaudo.adapters.db.tables import AuditEvent, Company, WebhookEndpoint
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender
from recaudo.cli import app
from recaudo.domain.errors import ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.services import webhooks
from recaudo.services.agreements import AgreementSettings, create_agreement, update_agreement
from recaudo.services.context import Actor
from recaudo.services.payments import ApplyPayment, apply_payment
from recaudo.services.webhooks import DeliveryStatus
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_cli import one_line_error, run

PUBLIC_HINT = ": webhook URLs must reach a public internet address"
REFUSED = [
    ("http://127.0.0.1:8000/hooks", "127.0.0.1 is a loopback address"),
    ("http://127.8.9.10/hooks", "127.8.9.10 is a loopback address"),
    ("http://localhost:8000/hooks", "localhost is a loopback name"),
    ("http://api.localhost/hooks", "api.localhost is a loopback name"),
    ("http://[::1]:8000/hooks", "::1 is a loopback address"),
    ("http://2130706433/hooks", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("http://10.0.0.5/hooks", "10.0.0.5 is a private address"),
    ("http://172.16.0.1/hooks", "172.16.0.1 is a private address"),
    ("https://192.168.1.10/hooks", "192.168.1.10 is a private address"),
    ("http://[fd00::1]/hooks", "fd00::1 is a private address"),
    ("http://100.64.0.1/hooks", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is a link-local address",
    ),
    ("http://[fe80::1]/hooks", "fe80::1 is a link-local address"),
    ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe is a link-local address"),
    ("http://0.0.0.0:8000/hooks", "0.0.0.0 is an unspecified address"),
    ("http://[::]/hooks", ":: is an unspecified address"),
    ("http://224.0.0.1/hooks", "224.0.0.1 is a multicast address"),
    ("http://255.255.255.255/hooks", "255.255.255.255 is a broadcast address"),
    ("http://240.0.0.1/hooks", "240.0.0.1 is a reserved address"),
    ("http://192.0.2.10/hooks", "192.0.2.10 is a non-public address"),
]
# Refused even when private targets are allowed (development, tests).
ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://0.0.0.0:8000/hooks", "0.0.0.0 is an unspecified address"),
    ("http://224.0.0.1/hooks", "224.0.0.1 is a multicast address"),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def endpoints_and_audit(uow: UnitOfWork) -> tuple[int, int]:
    with uow:
        return (
            int(uow.session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0),
            int(
                uow.session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "webhook_endpoint.created")
                )
                or 0
            ),
        )


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_registration_refuses_non_public_targets_by_default(
    uow, company, admin, clock, url, reason
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as info:
        webhooks.create_endpoint(uow, company.id, url, actor=admin, clock=clock)
    assert (info.value.message, info.value.details) == (reason + PUBLIC_HINT, {"field": "url"})
    assert endpoints_and_audit(uow) == (0, 0)


@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
def test_allowing_private_targets_still_refuses_metadata_and_the_like(
    uow, company, admin, clock, url, reason
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as info:
        webhooks.create_endpoint(uow, company.id, url, actor=admin, clock=clock, allow_private=True)
    assert info.value.message == reason + PUBLIC_HINT


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "http://10.0.0.5/hooks",
        "http://[fd00::1]/hooks",
        "http://100.64.0.1/hooks",
    ],
)
def test_allowing_private_targets_accepts_loopback_and_private(
    uow, company, admin, clock, url
) -> None:  # type: ignore[no-untyped-def]
    created = webhooks.create_endpoint(
        uow, company.id, url, actor=admin, clock=clock, allow_private=True
    )
    assert created.endpoint.url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        # A name that does not resolve now is accepted: every delivery checks it again.
        "https://hooks.example.invalid/recaudo",
    ],
)
def test_public_and_unresolvable_targets_are_accepted(uow, company, admin, clock, url) -> None:  # type: ignore[no-untyped-def]
    created = webhooks.create_endpoint(uow, company.id, url, actor=admin, clock=clock)
    assert created.endpoint.url == url
    assert endpoints_and_audit(uow) == (1, 1)


# --- at delivery --------------------------------------------------------------------------


def endpoint_row(uow: UnitOfWork, company: Company, url: str, clock: FrozenClock) -> int:
    """An endpoint as stored when it was registered (its name may have resolved to a
    public address then: DNS rebinding), or by a server that allowed private targets."""
    with uow:
        row = WebhookEndpoint(
            company_id=company.id,
            url=url,
            secret="whsec_test",
            enabled=True,
            created_at=clock(),
        )
        uow.session.add(row)
        uow.commit()
        return row.id


def a_payment(uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock) -> None:
    customer = add_customer(uow, company, "12.345.678-5", "Juana Pérez", clock)
    add_debt(uow, company, customer, "B-1", "1000", date(2026, 1, 10), clock)
    cmd = ApplyPayment(company.id, customer.id, "1000", PaymentMethod.CASH, "caja-1")
    apply_payment(uow, cmd, actor=admin, clock=clock)


def only_delivery(uow: UnitOfWork, company: Company) -> webhooks.DeliveryView:
    with uow:
        [item] = webhooks.list_deliveries(uow, company.id).items
        return webhooks.get_delivery(uow, company.id, item.id)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("http://127.0.0.1:{port}/hooks", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/hooks", "localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_delivery_to_a_refused_address_is_a_failed_attempt_and_nothing_is_sent(
    uow, company, admin, clock, receiver, path, reason
) -> None:  # type: ignore[no-untyped-def]
    port = receiver.url.rsplit(":", 1)[1]
    endpoint_row(uow, company, path.format(port=port), clock)
    a_payment(uow, company, admin, clock)
    sender = HttpSender(timeout_s=5)  # the default: private targets refused
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
        view = only_delivery(uow, company)
        assert (view.status, view.attempts, view.last_status_code, view.last_error) == (
            DeliveryStatus.PENDING,
            1,
            None,
            f"refused target: {reason}",
        )
        assert [(a.status_code, a.error) for a in view.attempt_log] == [
            (None, f"refused target: {reason}")
        ]
        assert receiver.received == []
        # Retried like any failure, and refused again each time; then `failed`.
        clock.advance(hours=1)
        assert webhooks.deliver_due(uow, sender, clock, max_attempts=2) == 1
        view = only_delivery(uow, company)
        assert (view.status, view.attempts) == (DeliveryStatus.FAILED, 2)
        assert receiver.received == []
    finally:
        sender.close()


def test_metadata_address_is_refused_at_delivery_even_when_private_is_allowed(
    uow, company, admin, clock
) -> None:  # type: ignore[no-untyped-def]
    endpoint_row(uow, company, "http://169.254.169.254/latest/meta-data/", clock)
    a_payment(uow, company, admin, clock)
    sender = HttpSender(timeout_s=5, allow_private=True)
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
    finally:
        sender.close()
    view = only_delivery(uow, company)
    assert view.last_error == "refused target: 169.254.169.254 is a link-local address"


def test_the_sender_connects_to_the_checked_address_with_the_url_host(
    uow, company, admin, clock, receiver
) -> None:  # type: ignore[no-untyped-def]
    port = receiver.url.rsplit(":", 1)[1]
    endpoint_row(uow, company, f"http://localhost:{port}/hooks?x=1", clock)
    a_payment(uow, company, admin, clock)
    sender = HttpSender(timeout_s=5, allow_private=True)
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
    finally:
        sender.close()
    [request] = receiver.posts
    assert (request.path, request.headers["Host"]) == ("/hooks?x=1", f"localhost:{port}")
    assert only_delivery(uow, company).status is DeliveryStatus.DELIVERED


# --- HTTPS: the certificate is checked against the URL's host, not the address ------------


@dataclass
class TlsReceiver:
    url: str = ""
    hosts: list[str] = field(default_factory=list)  # Host headers received
    server_names: list[str | None] = field(default_factory=list)  # SNI of each handshake


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[TlsReceiver, ssl.SSLContext]]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names only `localhost`; and the
    client context that trusts that certificate."""
    cert_path, key_path = _certificate(tmp_path, "localhost")
    got = TlsReceiver()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)

    def sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        got.server_names.append(name)

    server_context.sni_callback = sni  # type: ignore[assignment]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    got.url = f"https://localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield got, ssl.create_default_context(cafile=str(cert_path))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_https_sends_the_host_as_sni_and_verifies_the_certificate_for_it(
    uow, company, admin, clock, tls_receiver
) -> None:  # type: ignore[no-untyped-def]
    got, trust = tls_receiver
    endpoint_row(uow, company, f"{got.url}/hooks", clock)
    a_payment(uow, company, admin, clock)
    sender = HttpSender(timeout_s=5, allow_private=True, verify=trust)
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
    finally:
        sender.close()
    port = got.url.rsplit(":", 1)[1]
    assert (got.server_names, got.hosts) == (["localhost"], [f"localhost:{port}"])
    view = only_delivery(uow, company)
    assert (view.status, view.last_status_code) == (DeliveryStatus.DELIVERED, 200)


def test_https_to_the_bare_address_fails_the_certificate_check(
    uow, company, admin, clock, tls_receiver
) -> None:  # type: ignore[no-untyped-def]
    got, trust = tls_receiver
    port = got.url.rsplit(":", 1)[1]
    endpoint_row(uow, company, f"https://127.0.0.1:{port}/hooks", clock)
    a_payment(uow, company, admin, clock)
    sender = HttpSender(timeout_s=5, allow_private=True, verify=trust)
    try:
        assert webhooks.deliver_due(uow, sender, clock) == 1
    finally:
        sender.close()
    assert got.hosts == []  # the certificate names localhost, not 127.0.0.1
    view = only_delivery(uow, company)
    assert (view.status, view.last_status_code, view.last_error) == (
        DeliveryStatus.PENDING,
        None,
        "connection error: ConnectError",
    )


# --- the CLI ------------------------------------------------------------------------------


def test_cli_refuses_a_loopback_url_with_the_default_settings(db_url: str) -> None:
    created = run(
        db_url, "company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "CL"
    )
    assert created.exit_code == 0, created.output
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "false"}
    args = ["webhooks", "create", "--company", "acme", "--url", "http://127.0.0.1:9/h"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2
    assert one_line_error(result) == ("Error: 127.0.0.1 is a loopback address" + PUBLIC_HINT)
    assert result.stdout == ""
    allowed = run(db_url, *args)  # the test settings allow private targets
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.startswith("whsec_")


# --- the pass-through URL of a bank agreement ---------------------------------------------


PASSTHROUGH_HINT = ": the pass-through URL must reach a public internet address"


@pytest.mark.parametrize(("url", "reason"), REFUSED[:1] + REFUSED[6:7] + REFUSED[11:12])
def test_passthrough_url_refuses_non_public_targets(
    uow, company, admin, clock, url, reason
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as info:
        create_agreement(
            uow,
            "acme",
            "caja-vecina",
            "11223",
            AgreementSettings(passthrough_url=url),
            actor=admin,
            clock=clock,
        )
    assert (info.value.message, info.value.details) == (
        reason + PASSTHROUGH_HINT,
        {"field": "passthrough_url"},
    )

    issued = create_agreement(uow, "acme", "caja-vecina", "11223", actor=admin, clock=clock)
    with pytest.raises(ValidationFailed) as info:
        update_agreement(
            uow,
            company.id,
            issued.agreement.id,
            AgreementSettings(passthrough_url=url),
            actor=admin,
            clock=clock,
        )
    assert info.value.message == reason + PASSTHROUGH_HINT


def test_passthrough_url_allows_private_only_when_told(uow, company, admin, clock) -> None:  # type: ignore[no-untyped-def]
    issued = create_agreement(uow, "acme", "internet", "44556", actor=admin, clock=clock)
    agreement = update_agreement(
        uow,
        company.id,
        issued.agreement.id,
        AgreementSettings(passthrough_url="http://10.0.0.5/deudas"),
        actor=admin,
        clock=clock,
        allow_private_targets=True,
    )
    assert agreement.passthrough_url == "http://10.0.0.5/deudas"
    with pytest.raises(ValidationFailed) as info:
        update_agreement(
            uow,
            company.id,
            issued.agreement.id,
            AgreementSettings(passthrough_url="http://169.254.169.254/deudas"),
            actor=admin,
            clock=clock,
            allow_private_targets=True,
        )
    assert info.value.message == "169.254.169.254 is a link-local address" + PASSTHROUGH_HINT
    # Turning pass-through off ("") needs no check.
    off = update_agreement(
        uow,
        company.id,
        issued.agreement.id,
        AgreementSettings(passthrough_url=""),
        actor=admin,
        clock=clock,
    )
    assert off.passthrough_url is None
