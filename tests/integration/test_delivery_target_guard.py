"""SFTP and e-mail delivery targets pass the network guard (SSRF), on SQLite and PostgreSQL.

With the default settings (`delivery_allow_private_targets` false) a host that is, or
resolves to, a loopback, private, link-local (cloud metadata), ... address is refused when
the target is created or its host changed, and again at every connection, which connects to
the address it checked (no DNS rebinding). The test servers listen on 127.0.0.1, so a
target to them is created with the setting on and then used with it off.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import asyncssh
import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from recaudo.adapters import netguard
from recaudo.adapters.db.tables import ChannelAgreement, Company, DeliveryAttempt
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.transfer import TargetConfig, TransferError, open_directory, send_mail
from recaudo.cli.main import app
from recaudo.config import Settings
from recaudo.domain.errors import ValidationFailed
from recaudo.services import agreements, deliveries
from recaudo.services.context import Actor
from recaudo.services.deliveries import TargetChanges, TargetSpec
from tests.conftest import FrozenClock
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401
from tests.integration.test_deliveries import (
    add_settlement_file,
    deliveries_of,
    mail_spec,
    sftp_spec,
)

REFUSED_ALWAYS = ["169.254.169.254", "0.0.0.0", "224.0.0.1", "fe80::1", "::ffff:169.254.169.254"]
PRIVATE = ["127.0.0.1", "localhost", "10.0.0.5", "172.16.3.4", "192.168.1.10", "::1", "fd00::5"]


def make_settings(db_url: str, tmp_path: Path, *, allow_private: bool) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=allow_private,
    )


@pytest.fixture
def strict(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, allow_private=False)


@pytest.fixture
def lenient(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, allow_private=True)


@pytest.fixture
def agreement(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> ChannelAgreement:
    return agreements.create_agreement(
        uow, company.slug, "caja-vecina", "4321", actor=admin, clock=clock
    ).agreement


def resolving(monkeypatch: pytest.MonkeyPatch, **names: str) -> None:
    """Make these host names resolve to these addresses (and nothing else resolve)."""

    def fake(host: str, port: int) -> list[netguard.IPAddress]:
        if host not in names:
            raise netguard.TargetUnresolved(f"{host} does not resolve")
        return [ipaddress.ip_address(names[host])]

    monkeypatch.setattr(netguard, "resolve", fake)


def test_create_refuses_private_and_metadata_hosts(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    strict: Settings,
    lenient: Settings,
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving(
        monkeypatch,
        **{"sftp.internal.test": "10.1.2.3", "rebind.test": "169.254.169.254"},
        localhost="127.0.0.1",
    )

    def create(spec: TargetSpec, settings: Settings) -> deliveries.TargetView:
        return deliveries.create_target(
            uow, company.id, spec, settings=settings, actor=admin, clock=clock
        )

    def spec(kind: str, host: str) -> TargetSpec:
        if kind == "sftp":
            return sftp_spec(
                sftp_server, None, settings={**sftp_server.target_settings(), "host": host}
            )
        return mail_spec(
            smtp_server, None, settings={**smtp_server.target_settings(), "host": host}
        )

    for kind in ("sftp", "email"):
        for host in [*PRIVATE, "sftp.internal.test", *REFUSED_ALWAYS, "rebind.test"]:
            with pytest.raises(ValidationFailed) as info:
                create(spec(kind, host), strict)
            assert info.value.details["field"] == "settings.host"
            assert "must reach a public internet address" in info.value.message
            assert "RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS" in info.value.message
        # Link-local (cloud metadata), multicast, unspecified: refused even when allowed.
        for host in [*REFUSED_ALWAYS, "rebind.test"]:
            with pytest.raises(ValidationFailed, match="must reach a public") as info:
                create(spec(kind, host), lenient)
            assert info.value.details["field"] == "settings.host"
    with pytest.raises(ValidationFailed) as info:
        create(spec("sftp", "169.254.169.254"), lenient)
    assert info.value.message.startswith("169.254.169.254 is a link-local address")
    with pytest.raises(ValidationFailed) as info:
        create(spec("email", "sftp.internal.test"), strict)
    assert info.value.message.startswith("sftp.internal.test resolves to 10.1.2.3, a private")
    with uow:
        assert deliveries.list_targets(uow, company.id) == []

    # Allowed: a public address; a name that does not resolve yet (every connection
    # checks anyway); a private one with the setting on.
    public = create(spec("sftp", "8.8.8.8"), strict)
    unresolved = create(
        sftp_spec(
            sftp_server,
            None,
            name="later",
            settings={**sftp_server.target_settings(), "host": "not-published-yet.test"},
        ),
        strict,
    )
    internal = create(
        sftp_spec(sftp_server, None, name="internal", settings=sftp_server.target_settings()),
        lenient,
    )
    assert {public.settings["host"], unresolved.settings["host"], internal.settings["host"]} == {
        "8.8.8.8",
        "not-published-yet.test",
        "127.0.0.1",
    }

    # Update: a new host is checked; other changes to a target refused since are not.
    def update(target_id: int, changes: TargetChanges) -> deliveries.TargetView:
        return deliveries.update_target(
            uow, company.id, target_id, changes, settings=strict, actor=admin, clock=clock
        )

    for host in ("10.0.0.5", "169.254.169.254"):
        with pytest.raises(ValidationFailed) as info:
            update(public.id, TargetChanges(settings={"host": host}))
        assert info.value.details["field"] == "settings.host"
    with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1 is a loopback address"):
        update(internal.id, TargetChanges(settings={"port": 2222}))
    assert update(internal.id, TargetChanges(name="internal-old", enabled=False)).enabled is False
    with uow:
        assert deliveries.get_target(uow, company.id, public.id).settings["host"] == "8.8.8.8"


def test_connect_time_refuses_a_target_created_when_private_was_allowed(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    strict: Settings,
    lenient: Settings,
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    (sftp_server.root / "in").mkdir()
    sftp = deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=lenient,
        actor=admin,
        clock=clock,
    )
    mail = deliveries.create_target(
        uow,
        company.id,
        mail_spec(smtp_server, agreement),
        settings=lenient,
        actor=admin,
        clock=clock,
    )
    sf = add_settlement_file(uow, lenient, agreement, "R.txt", b"data\r\n", clock)

    # The operator turns the setting off: nothing reaches the loopback servers.
    sftp_where = f"sftp://bank@127.0.0.1:{sftp_server.port}"
    for target, prefix in (
        (sftp, f"connecting to {sftp_where} refused"),
        (mail, f"connecting on smtp://127.0.0.1:{smtp_server.port} refused"),
    ):
        with pytest.raises(TransferError) as info:
            deliveries.check_target(uow, company.id, target.id, settings=strict, actor=admin)
        assert str(info.value) == (
            f"{prefix}: 127.0.0.1 is a loopback address "
            "(delivery targets must reach a public internet address)"
        )
    assert deliveries.deliver_due(uow, strict, clock) == 2
    rows = deliveries_of(uow, sf)
    assert [r.status for r in rows] == ["pending", "pending"]
    with uow:
        errors = sorted(
            a.error or ""
            for a in uow.session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))
        )
    assert len(errors) == 2
    assert all("127.0.0.1 is a loopback address" in e for e in errors)
    assert all(sftp_server.password not in e and smtp_server.password not in e for e in errors)
    assert list((sftp_server.root / "in").iterdir()) == []
    assert smtp_server.messages == []

    # With the setting on again the same targets work.
    assert "connected" in deliveries.check_target(
        uow, company.id, sftp.id, settings=lenient, actor=admin
    )
    assert "connected" in deliveries.check_target(
        uow, company.id, mail.id, settings=lenient, actor=admin
    )


def test_connection_goes_to_the_checked_address_and_still_verifies_the_name(
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving(
        monkeypatch,
        **{
            "sftp.partner.test": "127.0.0.1",
            "mail.partner.test": "127.0.0.1",
            "metadata.partner.test": "169.254.169.254",
            "office.partner.test": "192.168.0.20",
        },
        localhost="127.0.0.1",
    )
    sftp_settings = sftp_server.target_settings()

    def sftp(host: str, *, allow_private: bool = True) -> TargetConfig:
        return TargetConfig(
            "sftp",
            {**sftp_settings, "host": host},
            sftp_server.password,
            allow_private=allow_private,
        )

    # The name resolves only through the guard's one lookup: the connection went to the
    # address it checked, and the host key was verified as always.
    with open_directory(sftp("sftp.partner.test")) as directory:
        directory.write("f.txt", b"1")
    assert (sftp_server.root / "f.txt").read_bytes() == b"1"
    with pytest.raises(TransferError, match="host key is not the known host key"):
        other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        with open_directory(
            TargetConfig(
                "sftp",
                {**sftp_settings, "host": "sftp.partner.test", "host_key": other_key},
                sftp_server.password,
                allow_private=True,
            )
        ):
            pass
    for host, allow, reason in (
        ("metadata.partner.test", True, "resolves to 169.254.169.254, a link-local address"),
        ("office.partner.test", False, "resolves to 192.168.0.20, a private address"),
        ("127.0.0.1", False, "127.0.0.1 is a loopback address"),
    ):
        with pytest.raises(TransferError) as info, open_directory(sftp(host, allow_private=allow)):
            pass
        assert reason in str(info.value)
        assert str(info.value).startswith(f"connecting to sftp://bank@{host}:")
    with (
        pytest.raises(TransferError, match="failed: unknown host"),
        open_directory(sftp("nowhere.test")),
    ):
        pass

    # SMTP: connected to 127.0.0.1, but the certificate is checked against the name. It
    # names "localhost" and 127.0.0.1, not mail.partner.test: refused, nothing sent.
    mail_settings = smtp_server.target_settings()

    def mail(host: str, *, allow_private: bool = True) -> TargetConfig:
        return TargetConfig(
            "email",
            {**mail_settings, "host": host},
            smtp_server.password,
            allow_private=allow_private,
        )

    with pytest.raises(
        TransferError, match=r"starting TLS on smtp://mail\.partner\.test:.*TLS failed"
    ):
        send_mail(mail("mail.partner.test"), ["a@b.cl"], "s", "b")
    assert smtp_server.messages == []
    send_mail(mail("localhost"), ["a@b.cl"], "s", "b")
    [message] = smtp_server.messages
    assert message.tls is True
    with pytest.raises(TransferError) as info:
        send_mail(mail("metadata.partner.test"), ["a@b.cl"], "s", "b")
    assert str(info.value).startswith(
        f"connecting on smtp://metadata.partner.test:{smtp_server.port} refused: "
        "metadata.partner.test resolves to 169.254.169.254, a link-local address"
    )
    with pytest.raises(TransferError, match=r"localhost resolves to 127\.0\.0\.1, a loopback"):
        send_mail(mail("localhost", allow_private=False), ["a@b.cl"], "s", "b")
    assert len(smtp_server.messages) == 1


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_refuses_a_private_host_unless_the_setting_allows_it(
    db_url: str,
    tmp_path: Path,
    company: Company,
    sftp_server: SftpServer,  # noqa: F811
) -> None:
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_DATA_DIR": str(tmp_path / "data")}
    key = sftp_server.target_settings()["host_key"]

    def add(host: str, name: str, extra_env: dict[str, str] | None = None) -> Result:
        return run_cli(
            {**env, **(extra_env or {})},
            "delivery", "target", "add", "--company", "acme", "--name", name, "--kind", "sftp",
            "--host", host, "--username", "u", "--host-key", key, "--password-stdin",
            stdin="pw\n",
        )  # fmt: skip

    for host in ("10.0.0.5", "169.254.169.254", "127.0.0.1"):
        refused = add(host, "x")
        assert refused.exit_code == 2, refused.output
        assert "must reach a public internet address" in " ".join(refused.output.split())
    allowed = add("10.0.0.5", "internal", {"RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS": "true"})
    assert allowed.exit_code == 0, allowed.output
    metadata = add("169.254.169.254", "y", {"RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS": "true"})
    assert metadata.exit_code == 2
    assert "link-local" in " ".join(metadata.output.split())
