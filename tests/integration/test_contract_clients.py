"""Contract clients: secrets shown once and kept hashed, tokens with expiry, revocation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.tables import AuditEvent, Company, ContractClient, ContractToken
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.domain.errors import NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from recaudo.services import contract_clients as cc
from recaudo.services.context import Actor, Role
from tests.conftest import FrozenClock


def _create(uow: UnitOfWork, admin: Actor, clock: FrozenClock, **kw: object) -> cc.IssuedClient:
    return cc.create_client(uow, "acme", actor=admin, clock=clock, **kw)  # type: ignore[arg-type]


def test_create_stores_only_the_hash(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    issued = _create(uow, admin, clock, label="Partner A")
    assert len(issued.client_id) == 32 and len(issued.client_secret) == 64
    assert issued.company_id == company.id and issued.token_ttl_seconds == 3600
    with uow:
        row = uow.session.scalars(select(ContractClient)).one()
        assert row.client_id == issued.client_id
        assert row.secret_hash == hashlib.sha256(issued.client_secret.encode()).hexdigest()
        assert issued.client_secret not in repr(row.__dict__)
        assert (row.label, row.created_by, row.revoked_at) == ("Partner A", "test:admin", None)
        event = uow.session.scalars(select(AuditEvent)).all()[-1]
        assert event.action == "contract_client.created"
        assert event.after == {
            "client_id": issued.client_id,
            "label": "Partner A",
            "token_ttl_seconds": 3600,
        }
    views = cc.list_clients(uow, company.id)
    assert [(v.client_id, v.label, v.token_ttl_seconds) for v in views] == [
        (issued.client_id, "Partner A", 3600)
    ]


def test_create_refusals(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    with pytest.raises(PermissionDenied):
        cc.create_client(uow, "acme", actor=Actor("op", Role.OPERATOR), clock=clock)
    with pytest.raises(NotFound):
        cc.create_client(uow, "nope", actor=admin, clock=clock)
    with pytest.raises(NotFound):
        cc.create_client(uow, "acme", actor=Actor("other", Role.ADMIN, company.id + 1), clock=clock)
    with pytest.raises(ValidationFailed, match="token lifetime"):
        _create(uow, admin, clock, token_ttl_seconds=59)
    with pytest.raises(ValidationFailed, match="token lifetime"):
        _create(uow, admin, clock, token_ttl_seconds=86401)
    with pytest.raises(ValidationFailed, match="label"):
        _create(uow, admin, clock, label="x" * 101)


def test_token_issue_and_authenticate(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    issued = _create(uow, admin, clock, token_ttl_seconds=600)
    token = cc.issue_token(uow, issued.client_id, issued.client_secret, clock=clock)
    assert token.expires_in == 600
    with uow:
        row = uow.session.scalars(select(ContractToken)).one()
        assert row.token_hash == hashlib.sha256(token.access_token.encode()).hexdigest()
        assert row.expires_at - row.issued_at == timedelta(seconds=600)
    caller = cc.authenticate(
        uow, issued.client_id, issued.client_secret, token.access_token, clock=clock
    )
    assert (caller.client_id, caller.company_id) == (issued.client_id, company.id)
    assert caller.actor == Actor(f"contract_client:{caller.client_pk}", Role.OPERATOR, company.id)
    # One second before expiry it still works; at expiry it does not.
    clock.advance(seconds=599)
    cc.authenticate(uow, issued.client_id, issued.client_secret, token.access_token, clock=clock)
    clock.advance(seconds=1)
    with pytest.raises(Unauthenticated, match="invalid or expired token"):
        cc.authenticate(
            uow, issued.client_id, issued.client_secret, token.access_token, clock=clock
        )
    # A new token drops the expired one.
    fresh = cc.issue_token(uow, issued.client_id, issued.client_secret, clock=clock)
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(ContractToken)) == 1
    cc.authenticate(uow, issued.client_id, issued.client_secret, fresh.access_token, clock=clock)


def test_wrong_credentials(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    a = _create(uow, admin, clock)
    b = _create(uow, admin, clock)
    for client_id, secret in (
        (a.client_id, b.client_secret),
        ("unknown", a.client_secret),
        (a.client_id, ""),
        ("", a.client_secret),
        (a.client_id, "x" * 500),
        ("a\x00b", a.client_secret),
        (a.client_id + "\n", a.client_secret),
        (a.client_id, a.client_secret + " "),
    ):
        with pytest.raises(Unauthenticated, match="invalid client credentials"):
            cc.issue_token(uow, client_id, secret, clock=clock)
    token_a = cc.issue_token(uow, a.client_id, a.client_secret, clock=clock).access_token
    # Another client's token, a made-up token, no token.
    for token in (token_a + "x", "", "y" * 300, token_a + "\n", "\x00"):
        with pytest.raises(Unauthenticated):
            cc.authenticate(uow, a.client_id, a.client_secret, token, clock=clock)
    with pytest.raises(Unauthenticated, match="invalid or expired token"):
        cc.authenticate(uow, b.client_id, b.client_secret, token_a, clock=clock)


def test_revoke_kills_secret_and_tokens(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock
) -> None:
    issued = _create(uow, admin, clock)
    token = cc.issue_token(uow, issued.client_id, issued.client_secret, clock=clock)
    with pytest.raises(PermissionDenied):
        cc.revoke_client(uow, issued.client_id, actor=Actor("op", Role.OPERATOR), clock=clock)
    with pytest.raises(NotFound):
        cc.revoke_client(uow, "nope", actor=admin, clock=clock)
    view = cc.revoke_client(uow, issued.client_id, actor=admin, clock=clock)
    assert view.revoked_at is not None
    with pytest.raises(Unauthenticated):
        cc.authenticate(
            uow, issued.client_id, issued.client_secret, token.access_token, clock=clock
        )
    with pytest.raises(Unauthenticated):
        cc.issue_token(uow, issued.client_id, issued.client_secret, clock=clock)
    # Revoking twice is harmless and audited once.
    cc.revoke_client(uow, issued.client_id, actor=admin, clock=clock)
    with uow:
        actions = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_type == "contract_client")
        ).all()
        assert actions == ["contract_client.created", "contract_client.revoked"]
        assert uow.session.scalar(select(func.count()).select_from(ContractToken)) == 0


# --- CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def run(db_url: str, *args: str) -> Result:
    result = runner.invoke(app, list(args), env={"RECAUDO_DATABASE_URL": db_url, "COLUMNS": "240"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_create_list_revoke(db_url: str, uow: UnitOfWork, company: Company) -> None:
    created = run(
        db_url, "contract-client", "create", "--company", "acme", "--label", "Partner",
        "--token-ttl", "900",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    client_id, secret = created.stdout.splitlines()
    assert len(client_id) == 32 and len(secret) == 64
    assert f"Contract client {client_id} for acme (tokens last 900 s)" in created.stderr
    with uow:
        row = uow.session.scalars(select(ContractClient)).one()
        assert (row.client_id, row.label, row.token_ttl_seconds) == (client_id, "Partner", 900)
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.created_by.startswith("cli:")
    listing = run(db_url, "contract-client", "list", "--company", "acme")
    assert listing.exit_code == 0, listing.output
    assert client_id in listing.stdout and "Partner" in listing.stdout and "900" in listing.stdout
    assert secret not in listing.stdout
    revoked = run(db_url, "contract-client", "revoke", client_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"Contract client {client_id} revoked." in revoked.stdout
    with uow:
        assert uow.session.scalars(select(ContractClient)).one().revoked_at is not None
    unknown = run(db_url, "contract-client", "revoke", "nope")
    assert unknown.exit_code == 1
    assert "no contract client 'nope'" in unknown.stderr
    bad = run(db_url, "contract-client", "create", "--company", "acme", "--token-ttl", "5")
    assert bad.exit_code == 2
    assert "token lifetime must be 60 to 86400 seconds, got 5" in bad.stderr
    nobody = run(db_url, "contract-client", "list", "--company", "nope")
    assert nobody.exit_code == 1
