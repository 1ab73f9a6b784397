"""The bank channel commands: agreement, exceptions, incidents, company availability."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.tables import AuditEvent, ChannelAgreement, Company, CreditEntry
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.services import collections_online as online
from recaudo.services.agreements import hash_secret
from recaudo.services.balances import credit_balance
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

runner = CliRunner()


def run(db_url: str, *args: str) -> Result:
    result = runner.invoke(app, list(args), env={"RECAUDO_DATABASE_URL": db_url, "COLUMNS": "240"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_agreement_create_prints_only_the_secret(
    db_url: str, uow: UnitOfWork, company: Company
) -> None:
    result = run(
        db_url,
        "agreement", "create", "--company", "acme", "--channel", "caja-vecina",
        "--convenio", "11223", "--voucher-name", "Acme Telecom", "--cutoff", "15:30",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("ca_") and "\n" not in secret
    with uow:
        agreement = uow.session.scalar(select(ChannelAgreement))
        assert agreement is not None
        assert (agreement.channel, agreement.convenio, agreement.voucher_name) == (
            "caja-vecina",
            "11223",
            "Acme Telecom",
        )
        assert agreement.cutoff.strftime("%H:%M") == "15:30"
        assert agreement.secret_hash == hash_secret(secret) != secret
    listing = run(db_url, "agreement", "list", "--company", "acme")
    assert listing.exit_code == 0, listing.stderr
    assert "11223" in listing.stdout and "15:30" in listing.stdout and secret not in listing.stdout
    again = run(
        db_url, "agreement", "create", "--company", "acme", "--channel", "caja-vecina",
        "--convenio", "1",
    )  # fmt: skip
    assert again.exit_code == 1
    assert "already has a bancoestado caja-vecina agreement" in again.stderr
    bad = run(
        db_url, "agreement", "create", "--company", "acme", "--channel", "internet",
        "--convenio", "1", "--cutoff", "25:00",
    )  # fmt: skip
    assert (bad.exit_code, bad.stderr.strip()) == (2, "Error: cut-off '25:00' is not HH:MM")


def quote(uow: UnitOfWork, caller: online.Caller, rut: str, clock: FrozenClock) -> online.Quoted:
    """The channel's debt query, as the HTTP route runs it (on an event loop)."""

    async def ask() -> online.Quoted:
        channel = online.OnlineChannel(uow.engine, clock)
        try:
            return await channel.quote(caller, rut)
        finally:
            await channel.close()

    return asyncio.run(ask())


def test_availability_and_incidents(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock
) -> None:
    run(db_url, "agreement", "create", "--company", "acme", "--channel", "internet",
        "--convenio", "9")  # fmt: skip
    no_reason = run(db_url, "company", "availability", "acme", "--unavailable")
    assert no_reason.exit_code == 2
    closed = run(db_url, "company", "availability", "acme", "--unavailable", "--reason", "corte")
    assert closed.stdout.strip() == "Company acme is unavailable (corte)."
    with uow:
        lookup = online.find_agreement(uow, "acme", "internet", None)
    assert lookup.caller is not None
    with pytest.raises(online.CompanyUnavailable):
        quote(uow, lookup.caller, "12345678-5", clock)
    listing = run(db_url, "incidents", "--company", "acme")
    assert "unavailable" in listing.stdout
    assert "debt query while unavailable: corte" in listing.stdout
    opened = run(db_url, "company", "availability", "acme", "--available")
    assert opened.stdout.strip() == "Company acme is available."


def test_exceptions_list_and_resolve(
    db_url: str, uow: UnitOfWork, company: Company, clock: FrozenClock
) -> None:
    run(db_url, "agreement", "create", "--company", "acme", "--channel", "caja-vecina",
        "--convenio", "9")  # fmt: skip
    ana = add_customer(uow, company, "12.345.678-5", "Ana Rojas", clock)
    add_debt(uow, company, ana, "F-1", "1000", date(2026, 1, 10), clock)
    add_debt(uow, company, ana, "F-2", "700", date(2026, 2, 10), clock)
    with uow:
        lookup = online.find_agreement(uow, "acme", "caja-vecina", None)
    assert lookup.caller is not None
    quoted = quote(uow, lookup.caller, "12345678-5", clock)
    note = online.Notification(
        quoted.transaction_id, "12345678-5", clock.now.replace(tzinfo=None), "2000", ()
    )
    online.notify_payment(uow, lookup.caller, note, clock=clock)
    listing = run(db_url, "exceptions", "list", "--company", "acme", "--status", "open")
    assert "amount_mismatch" in listing.stdout and "300" in listing.stdout
    add_debt(uow, company, ana, "F-3", "200", date(2026, 3, 10), clock)
    no_comment = run(db_url, "exceptions", "resolve", "1", "--company", "acme",
                     "--resolution", "applied", "--comment", " ", "--debt", "F-3")  # fmt: skip
    assert no_comment.exit_code == 2
    done = run(db_url, "exceptions", "resolve", "1", "--company", "acme",
               "--resolution", "applied", "--comment", "abono", "--debt", "F-3")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "Exception 1 resolved (applied); credit left 100 CLP."
    with uow:
        assert credit_balance(uow.session, ana.id) == 100
        reasons = [e.reason for e in uow.session.scalars(select(CreditEntry))]
        assert reasons == ["overpayment", "applied"]
        event = uow.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "payment_exception.resolved")
        )
        assert event is not None and event.actor.startswith("cli:")
    twice = run(db_url, "exceptions", "resolve", "1", "--company", "acme",
                "--resolution", "refunded", "--comment", "x")  # fmt: skip
    assert (twice.exit_code, twice.stderr.strip()) == (
        1,
        "Error: exception 1 is already resolved",
    )
