"""`recaudo delivery ...` against real databases and loopback SFTP/SMTP servers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import ChannelAgreement, Delivery, DeliveryTarget, SettlementFile
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.config import Settings
from recaudo.services import agreements, deliveries, storage
from recaudo.services.context import Actor, system_clock
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401
from tests.integration.test_cli import one_line_error

runner = CliRunner()
DATA = "Ñuñoa;12345\r\nPeñalolén;67890\r\n".encode("latin-1")


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "RECAUDO_DATABASE_URL": db_url,
        "RECAUDO_DATA_DIR": str(tmp_path / "data"),
        # The test SFTP and SMTP servers listen on 127.0.0.1.
        "RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS": "true",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    result = runner.invoke(app, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def agreement_id(env: dict[str, str]) -> int:
    created = run(
        env, "company", "create", "--slug", "acme", "--name", "Acme SpA", "--country", "CL"
    )
    assert created.exit_code == 0, created.output
    engine = make_engine(env["RECAUDO_DATABASE_URL"])
    try:
        issued = agreements.create_agreement(
            UnitOfWork(engine),
            "acme",
            "caja-vecina",
            "4321",
            actor=Actor("test"),
            clock=system_clock,
        )
    finally:
        engine.dispose()
    return issued.agreement.id


def settle(env: dict[str, str], agreement_id: int, name: str) -> SettlementFile:
    """A settlement file stored and queued directly, as the settlement service does."""
    data_dir = Path(env["RECAUDO_DATA_DIR"])
    path = f"files/settlements/{name}"
    sha = storage.store_bytes(data_dir, path, DATA)
    engine = make_engine(env["RECAUDO_DATABASE_URL"])
    uow = UnitOfWork(engine)
    try:
        with uow:
            agreement = uow.session.get(ChannelAgreement, agreement_id)
            assert agreement is not None
            sf = SettlementFile(
                company_id=agreement.company_id,
                agreement_id=agreement_id,
                accounting_date=date(2026, 3, 2),
                version=int(name.split(".")[0][-1]),
                layout="bancoestado-rendicion",
                file_name=name,
                sha256=sha,
                size_bytes=len(DATA),
                payment_count=2,
                record_count=2,
                total_minor=80235,
                currency="CLP",
                storage_path=path,
                status="generated",
                generated_by="test",
                generated_at=datetime.now(UTC),
            )
            uow.session.add(sf)
            uow.session.flush()
            deliveries.enqueue_settlement_file(uow, sf, actor=Actor("test"), clock=system_clock)
            uow.commit()
        return sf
    finally:
        engine.dispose()


def test_delivery_commands(
    env: dict[str, str],
    agreement_id: int,
    sftp_server: SftpServer,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    (sftp_server.root / "in").mkdir()
    outputs: list[str] = []

    def ok(*args: str, stdin: str | None = None) -> Result:
        result = run(env, *args, stdin=stdin)
        outputs.append(result.output)
        assert result.exit_code == 0, result.output
        return result

    added = ok(
        "delivery", "target", "add", "--company", "acme", "--name", "banco-sftp",
        "--kind", "sftp", "--agreement", str(agreement_id), "--host", "127.0.0.1",
        "--port", str(sftp_server.port), "--username", "bank",
        "--host-key", sftp_server.host_key, "--directory", "/in", "--password-stdin",
        stdin=sftp_server.password + "\n",
    )  # fmt: skip
    assert "Delivery target 1 (banco-sftp, sftp)" in added.stdout
    assert "Trusted host key: SHA256:" in added.stdout
    key_file = tmp_path / "client_key"
    key_file.write_text(sftp_server.client_key)
    ok(
        "delivery", "target", "add", "--company", "acme", "--name", "banco-sftp-key",
        "--kind", "sftp", "--agreement", str(agreement_id), "--host", "127.0.0.1",
        "--port", str(sftp_server.port), "--username", "bank",
        "--host-key", sftp_server.host_key, "--directory", "/in", "--key-file", str(key_file),
        "--disabled",
    )  # fmt: skip
    ok(
        "delivery", "target", "add", "--company", "acme", "--name", "banco-mail",
        "--kind", "email", "--agreement", str(agreement_id), "--host", "127.0.0.1",
        "--port", str(smtp_server.port), "--username", smtp_server.user,
        "--from", "recaudo@example.test", "--to", "a@bank.example", "--to", "b@bank.example",
        "--cafile", str(smtp_server.cafile), "--password-stdin",
        stdin=smtp_server.password + "\n",
    )  # fmt: skip
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    ok(
        "delivery", "target", "add", "--company", "acme", "--name", "carpeta",
        "--kind", "local", "--agreement", str(agreement_id), "--directory", str(outbox),
    )  # fmt: skip
    listed = ok("delivery", "target", "list", "--company", "acme")
    for name in ["banco-sftp", "banco-sftp-key", "banco-mail", "carpeta"]:
        assert name in listed.stdout
    assert "set" in listed.stdout

    updated = ok(
        "delivery", "target", "update", "4", "--name", "carpeta-2", "--retention-days", "30"
    )  # fmt: skip
    assert updated.stdout.strip() == f"Delivery target 4 (carpeta-2, local): {outbox}"
    moved = run(env, "delivery", "target", "update", "4", "--directory", "relative")
    assert moved.exit_code == 2
    assert one_line_error(moved) == "Error: directory must be an absolute path"

    tested = ok("delivery", "target", "test", "1")
    assert tested.stdout.startswith(f"OK sftp://bank@127.0.0.1:{sftp_server.port}/in: connected")
    assert ok("delivery", "target", "test", "2").stdout.startswith("OK sftp://")  # by key
    mail = ok("delivery", "target", "test", "3")
    assert mail.stdout.strip() == (
        f"OK smtp://127.0.0.1:{smtp_server.port}: connected, logged in as recaudo"
    )
    assert smtp_server.messages == []  # the test sends nothing

    settle(env, agreement_id, "R_20260302_v1.txt")
    ran = ok("delivery", "run")
    assert ran.stdout.strip().splitlines()[-1] == "3 delivered, 0 failed."
    assert (sftp_server.root / "in" / "R_20260302_v1.txt").read_bytes() == DATA
    assert (outbox / "R_20260302_v1.txt").read_bytes() == DATA
    assert smtp_server.messages[0].attachments() == [("R_20260302_v1.txt", DATA)]
    assert smtp_server.messages[0].rcpt_tos == ("a@bank.example", "b@bank.example")
    assert ok("delivery", "run").stdout.strip() == "Nothing is due."

    delivered = ok("delivery", "list", "--status", "delivered")
    assert delivered.stdout.count("R_20260302_v1.txt") == 3

    # The SFTP server goes down; a retry fails, is shown, and exits 1.
    sftp_server.stop()
    retried = ok("delivery", "retry", "1")
    assert "Delivery 1 of R_20260302_v1.txt to banco-sftp is pending." in retried.stdout
    failed = run(env, "delivery", "run")
    outputs.append(failed.output)
    assert failed.exit_code == 1
    assert "0 delivered, 1 failed." in failed.stdout
    assert "connection refused" in failed.output
    down = run(env, "delivery", "target", "test", "1")
    outputs.append(down.output)
    assert down.exit_code == 1
    assert one_line_error(down) == (
        f"Error: connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: connection refused"
    )
    shown = ok("delivery", "show", "1")
    assert "pending" in shown.stdout
    assert "connection refused" in shown.stdout
    sftp_server.start()
    ok("delivery", "retry", "--settlement-file", "1")
    again = ok("delivery", "run")
    assert "3 delivered, 0 failed." in again.stdout

    # A used target is kept (disable it); an unused one can be removed.
    used = run(env, "delivery", "target", "remove", "1")
    assert used.exit_code == 1
    assert "disable it instead" in one_line_error(used)
    assert "disabled" in ok("delivery", "target", "disable", "1").stdout
    assert "removed" in ok("delivery", "target", "remove", "2").stdout

    # Retention: pretend the deliveries were made 61 days ago.
    engine = make_engine(env["RECAUDO_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(
                update(Delivery).values(delivered_at=datetime.now(UTC) - timedelta(days=61))
            )
    finally:
        engine.dispose()
    purged = ok("delivery", "purge")
    assert purged.stdout.splitlines()[0] == (
        "2 delivered file(s) removed from their targets, "
        "1 settlement file(s) removed from local storage."
    )
    assert not (outbox / "R_20260302_v1.txt").exists()
    assert not (sftp_server.root / "in" / "R_20260302_v1.txt").exists()

    # Secrets never appear in any output.
    everything = "\n".join(outputs)
    assert sftp_server.password not in everything
    assert smtp_server.password not in everything
    assert "PRIVATE KEY" not in everything


def test_target_add_errors(env: dict[str, str], agreement_id: int) -> None:
    missing = run(
        env, "delivery", "target", "add", "--company", "acme", "--name", "x", "--kind", "sftp",
        "--host", "h", "--username", "u", "--host-key", "ssh-ed25519 AAAA", "--password-stdin",
        stdin="pw\n",
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "host key is not an OpenSSH public key" in one_line_error(missing)
    no_secret = run(
        env, "delivery", "target", "add", "--company", "acme", "--name", "x", "--kind", "sftp",
        "--host", "h", "--username", "u", "--host-key", "ssh-ed25519 AAAA",
    )  # fmt: skip
    assert no_secret.exit_code == 2
    unknown = run(env, "delivery", "target", "test", "99")
    assert unknown.exit_code == 1
    assert one_line_error(unknown) == "Error: no delivery target 99"
    retry = run(env, "delivery", "retry")
    assert retry.exit_code == 2
    with UnitOfWork(make_engine(env["RECAUDO_DATABASE_URL"])) as uow:
        assert list(uow.session.scalars(select(DeliveryTarget))) == []


def test_secret_key_file_is_created_once(env: dict[str, str], agreement_id: int) -> None:
    data_dir = Path(env["RECAUDO_DATA_DIR"])
    result = run(
        env, "delivery", "target", "add", "--company", "acme", "--name", "mail",
        "--kind", "email", "--host", "127.0.0.1", "--port", "2525", "--security", "none",
        "--username", "u", "--from", "r@example.test", "--to", "a@bank.example",
        "--password-stdin", stdin="mail-secret-1\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    key = (data_dir / "secret.key").read_bytes()
    settings = Settings(_env_file=None, database_url=env["RECAUDO_DATABASE_URL"], data_dir=data_dir)  # type: ignore[call-arg]
    with UnitOfWork(make_engine(settings.database_url)) as uow:
        [row] = uow.session.scalars(select(DeliveryTarget))
        assert deliveries.target_config(row, settings).secret == "mail-secret-1"
        assert "mail-secret-1" not in (row.secret_encrypted or "")
    assert (data_dir / "secret.key").read_bytes() == key
