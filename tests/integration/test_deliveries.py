"""Delivery of stored files to SFTP, e-mail and local targets, on SQLite and PostgreSQL,
against real servers on loopback: retries with backoff, incidents, re-delivery, retention,
and secrets kept encrypted and out of logs."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    ChannelAgreement,
    Company,
    Delivery,
    DeliveryAttempt,
    DeliveryTarget,
    Incident,
    SettlementFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recaudo.services import agreements, deliveries, storage
from recaudo.services.context import Actor, Role
from recaudo.services.deliveries import DeliveryStatus, TargetChanges, TargetSpec
from tests.conftest import FrozenClock
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401

# Latin-1 text with CRLF, as a BancoEstado file is: what arrives must be these exact bytes.
FILE_A = "01Ñuñoa      0000012345\r\n02Peñalolén   0000067890\r\n".encode("latin-1")
FILE_B = b"second file\r\n" * 100
FILE_C = bytes(range(256)) * 4
T = TypeVar("T")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # The test SFTP and SMTP servers listen on 127.0.0.1 (RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS).
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,
    )


@pytest.fixture
def agreement(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> ChannelAgreement:
    return agreements.create_agreement(
        uow, company.slug, "caja-vecina", "4321", actor=admin, clock=clock
    ).agreement


def add_settlement_file(
    uow: UnitOfWork,
    settings: Settings,
    agreement: ChannelAgreement,
    name: str,
    data: bytes,
    clock: FrozenClock,
    *,
    day: date = date(2026, 3, 2),
    enqueue: bool = True,
) -> SettlementFile:
    """A settlement file stored and recorded directly (not through the settlement service),
    queued for the agreement's targets like the settlement service does."""
    path = f"files/settlements/{agreement.company_id}/{agreement.id}/{day}/{name}"
    sha = storage.store_bytes(settings.data_dir, path, data)
    with uow:
        version = 1 + (
            uow.session.scalar(
                select(func.max(SettlementFile.version)).where(
                    SettlementFile.agreement_id == agreement.id,
                    SettlementFile.accounting_date == day,
                )
            )
            or 0
        )
        sf = SettlementFile(
            company_id=agreement.company_id,
            agreement_id=agreement.id,
            accounting_date=day,
            version=version,
            layout="bancoestado-rendicion",
            file_name=name,
            sha256=sha,
            size_bytes=len(data),
            payment_count=2,
            record_count=2,
            total_minor=80235,
            currency="CLP",
            storage_path=path,
            status="generated",
            generated_by="test",
            generated_at=clock(),
        )
        uow.session.add(sf)
        uow.session.flush()
        if enqueue:
            deliveries.enqueue_settlement_file(uow, sf, actor=Actor("test:settle"), clock=clock)
        uow.commit()
    return sf


def sftp_spec(server: SftpServer, agreement: ChannelAgreement | None, **kw: object) -> TargetSpec:
    values: dict[str, object] = {
        "name": "banco-sftp",
        "kind": "sftp",
        "settings": server.target_settings("/in"),
        "secret": server.password,
        "agreement_id": agreement.id if agreement else None,
    }
    values.update(kw)
    return TargetSpec(**values)  # type: ignore[arg-type]


def mail_spec(server: SmtpServer, agreement: ChannelAgreement | None, **kw: object) -> TargetSpec:
    values: dict[str, object] = {
        "name": "banco-mail",
        "kind": "email",
        "settings": server.target_settings(["rendiciones@bank.example"]),
        "secret": server.password,
        "agreement_id": agreement.id if agreement else None,
    }
    values.update(kw)
    return TargetSpec(**values)  # type: ignore[arg-type]


def local_spec(directory: Path, agreement: ChannelAgreement | None, **kw: object) -> TargetSpec:
    directory.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "name": "carpeta",
        "kind": "local",
        "settings": {"directory": str(directory)},
        "agreement_id": agreement.id if agreement else None,
    }
    values.update(kw)
    return TargetSpec(**values)  # type: ignore[arg-type]


def detached(uow: UnitOfWork, rows: list[T]) -> list[T]:
    """Rows still readable after the block (leaving it rolls back, which expires them)."""
    uow.session.expunge_all()
    return rows


def deliveries_of(uow: UnitOfWork, sf: SettlementFile) -> list[Delivery]:
    with uow:
        return detached(
            uow,
            list(
                uow.session.scalars(
                    select(Delivery)
                    .where(Delivery.settlement_file_id == sf.id)
                    .order_by(Delivery.id)
                )
            ),
        )


def attempts_of(uow: UnitOfWork, delivery_id: int) -> list[DeliveryAttempt]:
    with uow:
        return detached(
            uow,
            list(
                uow.session.scalars(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery_id)
                    .order_by(DeliveryAttempt.id)
                )
            ),
        )


def incidents_of(uow: UnitOfWork, company: Company) -> list[Incident]:
    with uow:
        return detached(
            uow,
            list(
                uow.session.scalars(
                    select(Incident).where(Incident.company_id == company.id).order_by(Incident.id)
                )
            ),
        )


def reload(uow: UnitOfWork, sf: SettlementFile) -> SettlementFile:
    with uow:
        row = uow.session.get(SettlementFile, sf.id)
        assert row is not None
        return detached(uow, [row])[0]


# --- targets and secrets -------------------------------------------------------------------


def test_secret_is_stored_encrypted_with_a_generated_key_and_never_shown(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
) -> None:
    view = deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    key_file = settings.data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert view.has_secret is True
    assert sftp_server.password not in repr(view)
    with uow:
        row = uow.session.get(DeliveryTarget, view.id)
        assert row is not None
        assert row.secret_encrypted is not None
        assert sftp_server.password not in row.secret_encrypted
        assert sftp_server.password not in json.dumps(row.settings)
        key = key_file.read_bytes().strip()
        assert Fernet(key).decrypt(row.secret_encrypted.encode()).decode() == sftp_server.password
        assert deliveries.target_config(row, settings).secret == sftp_server.password
        audit_text = json.dumps(
            [[e.action, e.before, e.after] for e in uow.session.scalars(select(AuditEvent))]
        )
    assert "delivery_target.created" in audit_text
    assert sftp_server.password not in audit_text
    # The same key is used again, not regenerated.
    assert deliveries.server_keys(settings) == [key]


def test_configured_secret_key_and_rotation(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_old = settings.model_copy(update={"secret_key": SecretStr(old)})
    view = deliveries.create_target(
        uow,
        company.id,
        mail_spec_plain(secret="pw-0ld-key", username="u"),
        settings=with_old,
        actor=admin,
        clock=clock,
    )
    assert not (settings.data_dir / "secret.key").exists()
    rotated = settings.model_copy(update={"secret_key": SecretStr(f"{new},{old}")})
    with uow:
        row = uow.session.get(DeliveryTarget, view.id)
        assert row is not None
        assert deliveries.target_config(row, rotated).secret == "pw-0ld-key"
        only_new = settings.model_copy(update={"secret_key": SecretStr(new)})
        with pytest.raises(Exception, match="cannot be decrypted") as info:
            deliveries.target_config(row, only_new)
        assert "pw-0ld-key" not in str(info.value)
        broken = settings.model_copy(update={"secret_key": SecretStr("not-a-fernet-key")})
        with pytest.raises(Exception, match="is not a Fernet key") as info:
            deliveries.target_config(row, broken)
        assert "not-a-fernet-key" not in str(info.value)


def mail_spec_plain(**settings_overrides: object) -> TargetSpec:
    secret = settings_overrides.pop("secret", None)
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 2525,
        "security": "none",
        "from": "recaudo@example.test",
        "recipients": ["a@bank.example"],
    }
    base.update(settings_overrides)
    return TargetSpec("mail", "email", base, secret=secret)  # type: ignore[arg-type]


def test_target_validation(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    def create(spec: TargetSpec, company_id: int = company.id) -> deliveries.TargetView:
        return deliveries.create_target(
            uow, company_id, spec, settings=settings, actor=admin, clock=clock
        )

    good = sftp_server.target_settings("/in")
    cases: list[tuple[TargetSpec, str]] = [
        (TargetSpec("x", "ftp", {}), "kind must be one of"),
        (
            TargetSpec("x", "sftp", {**good, "password": "p"}, "p"),
            "unknown sftp settings: password",
        ),
        (TargetSpec("x", "sftp", {**good, "host_key": ""}, "p"), "host_key is required"),
        (TargetSpec("x", "sftp", {**good, "host_key": "ssh-rsa nope"}, "p"), "not an OpenSSH"),
        (TargetSpec("x", "sftp", {**good, "port": 70000}, "p"), "port must be between"),
        (TargetSpec("x", "sftp", good, None), "needs its password"),
        (TargetSpec("x", "sftp", {**good, "auth": "key"}, "not a key"), "cannot read the private"),
        (mail_spec_plain(host="smtp.example.com"), "allowed only to a loopback"),
        (mail_spec_plain(recipients=[]), "recipients must be"),
        (mail_spec_plain(**{"from": "nobody"}), "from must be an e-mail"),
        (mail_spec_plain(username="u"), "needs its password"),
        (TargetSpec("x", "local", {"directory": "relative/dir"}), "absolute path"),
        (TargetSpec("../bad", "local", {"directory": str(tmp_path)}), "a target name"),
        (TargetSpec("x", "local", {"directory": str(tmp_path)}, retention_days=0), "retention"),
    ]
    for spec, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            create(spec)
    create(local_spec(tmp_path / "out", agreement))
    with pytest.raises(Conflict, match="exists already"):
        create(local_spec(tmp_path / "out", agreement))
    # Another company's agreement is not found.
    with pytest.raises(NotFound, match="no agreement"):
        create(local_spec(tmp_path / "out", agreement), company_es.id)
    auditor = Actor("test:auditor", Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        deliveries.create_target(
            uow,
            company.id,
            local_spec(tmp_path, None, name="n2"),
            settings=settings,
            actor=auditor,
            clock=clock,
        )
    bound = Actor("test:other", Role.ADMIN, company_id=company_es.id)
    with pytest.raises(NotFound):
        deliveries.create_target(
            uow,
            company.id,
            local_spec(tmp_path, None, name="n3"),
            settings=settings,
            actor=bound,
            clock=clock,
        )


def test_update_list_and_remove_targets(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    view = deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    updated = deliveries.update_target(
        uow,
        company.id,
        view.id,
        TargetChanges(settings={"directory": "/other", "timeout_s": 5}, retention_days=30),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    assert updated.settings["directory"] == "/other"
    assert updated.settings["timeout_s"] == 5.0
    assert updated.retention_days == 30
    with pytest.raises(ValidationFailed, match="needs the new secret"):
        deliveries.update_target(
            uow,
            company.id,
            view.id,
            TargetChanges(settings={"auth": "key"}),
            settings=settings,
            actor=admin,
            clock=clock,
        )
    keyed = deliveries.update_target(
        uow,
        company.id,
        view.id,
        TargetChanges(settings={"auth": "key"}, secret=sftp_server.client_key),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    assert keyed.settings["auth"] == "key"
    with uow:
        assert [t.id for t in deliveries.list_targets(uow, company.id)] == [view.id]
        audit_text = json.dumps(
            [[e.before, e.after] for e in uow.session.scalars(select(AuditEvent))]
        )
    assert "secret_changed" in audit_text
    assert "PRIVATE KEY" not in audit_text
    assert sftp_server.password not in audit_text
    # A target with deliveries is kept (history); one without is removed.
    add_settlement_file(uow, settings, agreement, "R1.txt", FILE_A, clock)
    with pytest.raises(Conflict, match="disable it instead"):
        deliveries.remove_target(uow, company.id, view.id, actor=admin, clock=clock)
    spare = deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "x", None),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    deliveries.remove_target(uow, company.id, spare.id, actor=admin, clock=clock)
    with uow, pytest.raises(NotFound):
        deliveries.get_target(uow, company.id, spare.id)


# --- delivery ------------------------------------------------------------------------------


def test_file_arrives_byte_identical_over_sftp_email_and_local(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    (sftp_server.root / "in").mkdir()
    for spec in [
        sftp_spec(sftp_server, agreement),
        mail_spec(smtp_server, agreement),
        local_spec(tmp_path / "outbox", agreement),
    ]:
        deliveries.create_target(uow, company.id, spec, settings=settings, actor=admin, clock=clock)
    sf = add_settlement_file(uow, settings, agreement, "RENDICION_4321_20260302.txt", FILE_A, clock)
    queued = deliveries_of(uow, sf)
    assert [d.status for d in queued] == ["pending"] * 3
    outcomes: list[deliveries.AttemptOutcome] = []
    assert deliveries.deliver_due(uow, settings, clock, on_attempt=outcomes.append) == 3
    assert [(o.ok, o.status) for o in outcomes] == [(True, DeliveryStatus.DELIVERED)] * 3

    assert (sftp_server.root / "in" / "RENDICION_4321_20260302.txt").read_bytes() == FILE_A
    [mail] = smtp_server.messages
    assert mail.tls is True
    assert mail.rcpt_tos == ("rendiciones@bank.example",)
    assert mail.attachments() == [("RENDICION_4321_20260302.txt", FILE_A)]
    assert mail.message["Subject"] == "Recaudo: RENDICION_4321_20260302.txt"
    assert (tmp_path / "outbox" / "RENDICION_4321_20260302.txt").read_bytes() == FILE_A

    done = deliveries_of(uow, sf)
    assert [d.status for d in done] == ["delivered"] * 3
    assert [d.attempts for d in done] == [1, 1, 1]
    assert [d.remote_path for d in done] == [
        "/in/RENDICION_4321_20260302.txt",
        None,
        str(tmp_path / "outbox" / "RENDICION_4321_20260302.txt"),
    ]
    for d in done:
        [attempt] = attempts_of(uow, d.id)
        assert attempt.ok is True
        assert attempt.error is None
    assert reload(uow, sf).status == "delivered"
    assert incidents_of(uow, company) == []
    # Nothing more is due.
    assert deliveries.deliver_due(uow, settings, clock) == 0


def test_refused_login_retries_with_backoff_then_gives_up_with_incidents(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    (sftp_server.root / "in").mkdir()
    bad_password = "not-the-right-pa55word"
    target = deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement, secret=bad_password),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_A, clock)
    [delivery] = deliveries_of(uow, sf)
    expected_error = (
        f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: "
        "login refused (permission denied)"
    )
    waits = [timedelta(minutes=1), timedelta(minutes=2)]
    for n, wait in enumerate(waits, start=1):
        assert deliveries.deliver_due(uow, settings, clock, max_attempts=3) == 1
        [row] = deliveries_of(uow, sf)
        attempts = attempts_of(uow, delivery.id)
        assert [a.ok for a in attempts] == [False] * n
        assert attempts[-1].error == expected_error
        assert row.status == "pending"
        assert row.attempts == n
        assert row.last_error == expected_error
        assert row.next_attempt_at is not None
        # The backoff, from the frozen clock (each reading moves it 1 µs).
        assert (
            wait
            <= row.next_attempt_at - attempts[-1].attempted_at
            < wait + timedelta(milliseconds=1)
        )
        assert reload(uow, sf).status == "generated"
        # Not due before its time.
        assert deliveries.deliver_due(uow, settings, clock, max_attempts=3) == 0
        clock.advance(seconds=wait.total_seconds())
    # The first failure was an incident; the retries were not.
    [first] = incidents_of(uow, company)
    assert first.kind == "delivery_failed"
    assert first.agreement_id == agreement.id
    assert first.cause.startswith(
        f"delivery {delivery.id} of R.txt to banco-sftp failed (attempt 1 of 3), retrying at "
    )
    assert first.cause.endswith(expected_error)
    # The third attempt gives up: failed, a second incident, the file marked.
    assert deliveries.deliver_due(uow, settings, clock, max_attempts=3) == 1
    [row] = deliveries_of(uow, sf)
    assert row.status == "failed"
    assert row.next_attempt_at is None
    assert len(attempts_of(uow, delivery.id)) == 3
    incidents = incidents_of(uow, company)
    assert len(incidents) == 2
    assert incidents[1].cause == (
        f"delivery {delivery.id} of R.txt to banco-sftp gave up after 3 attempts: {expected_error}"
    )
    assert reload(uow, sf).status == "delivery_failed"
    assert sftp_server.logins == [("bank", False)] * 3
    assert not (sftp_server.root / "in" / "R.txt").exists()

    # Fixed password, re-delivery on demand: it arrives, the history stays.
    deliveries.update_target(
        uow,
        company.id,
        target.id,
        TargetChanges(secret=sftp_server.password),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    [again] = deliveries.redeliver(
        uow, company.id, settlement_file_id=sf.id, actor=admin, clock=clock
    )
    assert again.id == delivery.id
    assert again.status == DeliveryStatus.PENDING
    assert again.attempts == 0
    assert reload(uow, sf).status == "generated"
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert (sftp_server.root / "in" / "R.txt").read_bytes() == FILE_A
    with uow:
        view = deliveries.get_delivery(uow, company.id, delivery.id)
    assert view.status == DeliveryStatus.DELIVERED
    assert [a.ok for a in view.attempt_log] == [False, False, False, True]
    assert reload(uow, sf).status == "delivered"
    # No password in any log record, incident or attempt.
    assert bad_password not in caplog.text
    assert sftp_server.password not in caplog.text
    assert all(bad_password not in i.cause for i in incidents_of(uow, company))


def test_server_down_is_retried_and_never_lost(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    (sftp_server.root / "in").mkdir()
    deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    deliveries.create_target(
        uow,
        company.id,
        mail_spec(smtp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    sftp_server.stop()
    smtp_server.stop()
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_B, clock)
    assert deliveries.deliver_due(uow, settings, clock) == 2
    sftp_row, mail_row = deliveries_of(uow, sf)
    assert sftp_row.last_error == (
        f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: connection refused"
    )
    assert mail_row.last_error == (
        f"connecting on smtp://127.0.0.1:{smtp_server.port} failed: connection refused"
    )
    assert [i.kind for i in incidents_of(uow, company)] == ["delivery_failed"] * 2
    # Back up; after the backoff both arrive.
    sftp_server.start()
    smtp_server.start()
    clock.advance(minutes=1, seconds=1)
    assert deliveries.deliver_due(uow, settings, clock) == 2
    assert (sftp_server.root / "in" / "R.txt").read_bytes() == FILE_B
    assert smtp_server.messages[0].attachments() == [("R.txt", FILE_B)]
    assert [d.status for d in deliveries_of(uow, sf)] == ["delivered", "delivered"]
    assert [len(attempts_of(uow, d.id)) for d in deliveries_of(uow, sf)] == [2, 2]
    assert reload(uow, sf).status == "delivered"


def test_redeliver_one_delivery_on_demand(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_C, clock)
    deliveries.deliver_due(uow, settings, clock)
    (tmp_path / "out" / "R.txt").unlink()  # the bank lost it
    [delivery] = deliveries_of(uow, sf)
    operator = Actor("test:operator", Role.OPERATOR)
    [view] = deliveries.redeliver(
        uow, company.id, delivery_id=delivery.id, actor=operator, clock=clock
    )
    assert view.status == DeliveryStatus.PENDING
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert (tmp_path / "out" / "R.txt").read_bytes() == FILE_C
    assert [a.ok for a in attempts_of(uow, delivery.id)] == [True, True]
    with uow:
        actions = list(
            uow.session.scalars(
                select(AuditEvent.actor).where(AuditEvent.action == "delivery.redelivery_requested")
            )
        )
    assert actions == ["test:operator"]
    auditor = Actor("test:auditor", Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        deliveries.redeliver(uow, company.id, delivery_id=delivery.id, actor=auditor, clock=clock)
    with pytest.raises(NotFound):
        deliveries.redeliver(
            uow, company.id, delivery_id=delivery.id + 99, actor=admin, clock=clock
        )
    with pytest.raises(NotFound):
        deliveries.redeliver(uow, company.id + 1, delivery_id=delivery.id, actor=admin, clock=clock)


def test_redeliver_a_file_reaches_a_target_added_later(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_A, clock)
    assert deliveries_of(uow, sf) == []
    with pytest.raises(Conflict, match="no enabled delivery target"):
        deliveries.redeliver(uow, company.id, settlement_file_id=sf.id, actor=admin, clock=clock)
    deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    [view] = deliveries.redeliver(
        uow, company.id, settlement_file_id=sf.id, actor=admin, clock=clock
    )
    assert view.requested_by == "test:admin"
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert (tmp_path / "out" / "R.txt").read_bytes() == FILE_A


def test_enqueue_file_for_another_use(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    target = deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", None),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    storage.store_bytes(settings.data_dir, "files/exchange/pagos.csv", b"a;b\r\n1;2\r\n")
    with uow:
        d = deliveries.enqueue_file(
            uow,
            company_id=company.id,
            target_id=target.id,
            file_name="pagos_20260302.csv",
            storage_path="files/exchange/pagos.csv",
            actor=admin,
            clock=clock,
        )
        uow.commit()
    with uow, pytest.raises(NotFound):
        deliveries.enqueue_file(
            uow,
            company_id=company_es.id,
            target_id=target.id,
            file_name="x.csv",
            storage_path="files/exchange/pagos.csv",
            actor=admin,
            clock=clock,
        )
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert (tmp_path / "out" / "pagos_20260302.csv").read_bytes() == b"a;b\r\n1;2\r\n"
    with uow:
        page = deliveries.list_deliveries(uow, company.id, status=DeliveryStatus.DELIVERED)
    assert [v.id for v in page.items] == [d.id]
    assert page.items[0].settlement_file_id is None


def test_changed_stored_file_or_lost_key_is_a_failed_attempt_not_a_wrong_file(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_A, clock)
    (settings.data_dir / sf.storage_path).write_bytes(b"tampered")
    deliveries.deliver_due(uow, settings, clock)
    [row] = deliveries_of(uow, sf)
    assert (
        row.last_error == f"the stored file {sf.storage_path} does not match its SHA-256 (not sent)"
    )
    assert not (tmp_path / "out" / "R.txt").exists()
    # A target whose secret the server key cannot open: the attempt says so.
    deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    other_key = settings.model_copy(
        update={"secret_key": SecretStr(Fernet.generate_key().decode())}
    )
    sf2 = add_settlement_file(uow, settings, agreement, "R2.txt", FILE_B, clock)
    deliveries.deliver_due(uow, other_key, clock)
    local_row, sftp_row = deliveries_of(uow, sf2)
    assert local_row.status == "delivered"  # the local target needs no secret
    assert sftp_row.last_error is not None
    assert sftp_row.last_error.startswith("the target's secret cannot be decrypted")


@pytest.mark.postgres_only
def test_two_workers_never_send_a_delivery_twice(
    engine: Engine,
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    for n in range(6):
        add_settlement_file(uow, settings, agreement, f"R{n}.txt", FILE_A, clock)
    tried: list[int] = []

    def work() -> None:
        tried.append(deliveries.deliver_due(UnitOfWork(engine), settings, clock))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(tried) == 6
    with uow:
        assert len(list(uow.session.scalars(select(DeliveryAttempt)))) == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"R{n}.txt" for n in range(6)]


# --- retention -----------------------------------------------------------------------------


def test_retention_removes_only_old_delivered_files(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    (sftp_server.root / "in").mkdir()
    deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement),
        settings=settings,
        actor=admin,
        clock=clock,
    )  # 60 days (default)
    deliveries.create_target(
        uow,
        company.id,
        local_spec(tmp_path / "out", agreement, retention_days=90),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    remote, local = sftp_server.root / "in", tmp_path / "out"
    # Old: delivered now. Someone else's file sits in the remote directory too.
    old = add_settlement_file(uow, settings, agreement, "OLD.txt", FILE_A, clock)
    (remote / "bank-own-file.txt").write_bytes(b"not ours")
    assert deliveries.deliver_due(uow, settings, clock) == 2
    clock.advance(days=50)
    recent = add_settlement_file(uow, settings, agreement, "RECENT.txt", FILE_B, clock)
    assert deliveries.deliver_due(uow, settings, clock) == 2
    # Undelivered: the SFTP server is down when it is due, so it never arrives there.
    sftp_server.stop()
    undelivered = add_settlement_file(uow, settings, agreement, "UNSENT.txt", FILE_C, clock)
    assert deliveries.deliver_due(uow, settings, clock) == 2
    sftp_server.start()
    clock.advance(days=11)  # OLD is 61 days old, RECENT 11, UNSENT 11 (and not delivered)

    result = deliveries.purge(uow, settings, clock, actor=admin)
    assert result == deliveries.PurgeResult(remote_removed=1, local_removed=0, errors=())
    # Gone from the SFTP directory (60 days) but not from the local one (90 days) yet;
    # the stored copy stays until every delivery of it has aged out.
    assert sorted(p.name for p in remote.iterdir()) == ["RECENT.txt", "bank-own-file.txt"]
    assert sorted(p.name for p in local.iterdir()) == ["OLD.txt", "RECENT.txt", "UNSENT.txt"]
    assert storage.exists(settings.data_dir, old.storage_path)
    assert reload(uow, old).deleted_at is None
    old_sftp, old_local = deliveries_of(uow, old)
    assert old_sftp.removed_at is not None
    assert old_local.removed_at is None

    clock.advance(days=30)  # OLD 91 days, RECENT 41, UNSENT 41 (still not on the SFTP)
    result = deliveries.purge(uow, settings, clock, actor=admin)
    assert result == deliveries.PurgeResult(remote_removed=1, local_removed=1, errors=())
    assert sorted(p.name for p in local.iterdir()) == ["RECENT.txt", "UNSENT.txt"]
    assert sorted(p.name for p in remote.iterdir()) == ["RECENT.txt", "bank-own-file.txt"]
    assert not storage.exists(settings.data_dir, old.storage_path)
    assert reload(uow, old).deleted_at is not None
    assert storage.read_bytes(settings.data_dir, recent.storage_path) == FILE_B
    assert storage.read_bytes(settings.data_dir, undelivered.storage_path) == FILE_C
    assert reload(uow, recent).deleted_at is None
    assert reload(uow, undelivered).deleted_at is None
    assert [d.status for d in deliveries_of(uow, undelivered)] == ["pending", "delivered"]

    # Idempotent: nothing more to do.
    assert deliveries.purge(uow, settings, clock, actor=admin) == deliveries.PurgeResult(0, 0, ())
    # A removed file cannot be re-delivered.
    with pytest.raises(Conflict, match="removed by retention"):
        deliveries.redeliver(uow, company.id, settlement_file_id=old.id, actor=admin, clock=clock)
    with uow:
        removed = list(
            uow.session.scalars(
                select(AuditEvent.entity_id).where(AuditEvent.action == "settlement_file.deleted")
            )
        )
    assert removed == [str(old.id)]


def test_retention_keeps_a_newer_copy_of_the_same_name_and_reports_unreachable_targets(
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    sftp_server: SftpServer,  # noqa: F811
) -> None:
    (sftp_server.root / "in").mkdir()
    deliveries.create_target(
        uow,
        company.id,
        sftp_spec(sftp_server, agreement, retention_days=10),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    first = add_settlement_file(uow, settings, agreement, "SAME.txt", FILE_A, clock)
    deliveries.deliver_due(uow, settings, clock)
    clock.advance(days=5)
    second = add_settlement_file(
        uow, settings, agreement, "SAME.txt", FILE_B, clock, day=date(2026, 3, 3)
    )
    deliveries.deliver_due(uow, settings, clock)
    clock.advance(days=6)  # the first is 11 days old, the second 6
    sftp_server.stop()
    # The first's remote name now holds the second's bytes: nothing is deleted remotely,
    # so the server being down does not matter for it.
    result = deliveries.purge(uow, settings, clock, actor=admin)
    assert result == deliveries.PurgeResult(remote_removed=1, local_removed=1, errors=())
    assert (sftp_server.root / "in" / "SAME.txt").read_bytes() == FILE_B
    assert reload(uow, first).deleted_at is not None
    assert reload(uow, second).deleted_at is None
    clock.advance(days=5)  # now the second is due, and the server is down
    result = deliveries.purge(uow, settings, clock, actor=admin)
    assert result.remote_removed == 0
    assert result.errors == (
        f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: connection refused",
    )
    assert (sftp_server.root / "in" / "SAME.txt").exists()
    sftp_server.start()
    result = deliveries.purge(uow, settings, clock, actor=admin)
    assert result == deliveries.PurgeResult(remote_removed=1, local_removed=1, errors=())
    assert list((sftp_server.root / "in").iterdir()) == []


def test_the_periodic_jobs_send_and_purge(
    engine: Engine,
    uow: UnitOfWork,
    company: Company,
    agreement: ChannelAgreement,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    from recaudo.bootstrap import Container
    from recaudo.jobs.delivery import DELIVERY_JOB, RETENTION_JOB
    from recaudo.jobs.schedule import PERIODIC_JOBS

    assert DELIVERY_JOB in PERIODIC_JOBS and RETENTION_JOB in PERIODIC_JOBS
    container = Container(settings=settings, engine=engine, clock=clock)
    deliveries.create_target(
        uow, company.id, local_spec(tmp_path / "out", agreement, retention_days=1),
        settings=settings, actor=admin, clock=clock,
    )  # fmt: skip
    sf = add_settlement_file(uow, settings, agreement, "R.txt", FILE_A, clock)
    assert DELIVERY_JOB.run(container) == 1
    assert DELIVERY_JOB.run(container) == 0
    assert (tmp_path / "out" / "R.txt").read_bytes() == FILE_A
    assert RETENTION_JOB.run(container) == 0  # not a day old yet
    clock.advance(days=1, seconds=1)
    assert RETENTION_JOB.run(container) == 2  # the remote copy and the stored one
    assert not (tmp_path / "out" / "R.txt").exists()
    assert not storage.exists(settings.data_dir, sf.storage_path)
    with uow:
        actors = set(
            uow.session.scalars(
                select(AuditEvent.actor).where(AuditEvent.action == "settlement_file.deleted")
            )
        )
    assert actors == {"system:retention"}
