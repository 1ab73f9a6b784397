"""OAuth2 clients of the collections-management contract (client-credentials flow).

A partner gets a `client_id` and a `client_secret` bound to one company (the secret is
shown once and stored hashed, like channel agreement secrets); it exchanges them for a
bearer token at the token endpoint, and every contract call carries the three of them.
Tokens are stored hashed with their expiry; revoking a client kills its tokens.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from recaudo.adapters.db.tables import ContractClient, ContractToken
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import NotFound, Unauthenticated, ValidationFailed
from recaudo.services import audit
from recaudo.services.agreements import hash_secret
from recaudo.services.companies import company_by_slug
from recaudo.services.context import Actor, Clock, Role

DEFAULT_TOKEN_TTL_SECONDS = 3600
MIN_TOKEN_TTL_SECONDS = 60
MAX_TOKEN_TTL_SECONDS = 86400
MAX_SECRET_LENGTH = 200  # longer credentials are refused before hashing anything

_VISIBLE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces

# Actors behind contract calls may create and read negotiations, never administer.
CONTRACT_ROLE = Role.OPERATOR


@dataclass(frozen=True, slots=True)
class IssuedClient:
    id: int
    client_id: str
    client_secret: str  # shown once; only its hash is stored
    company_id: int
    token_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class ClientView:
    id: int
    company_id: int
    client_id: str
    label: str | None
    token_ttl_seconds: int
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str  # shown once; only its hash is stored
    expires_in: int  # seconds
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ContractCaller:
    """Who is calling the contract: the client and the company it is bound to."""

    client_pk: int
    client_id: str
    company_id: int

    @property
    def actor(self) -> Actor:
        return Actor(f"contract_client:{self.client_pk}", CONTRACT_ROLE, self.company_id)


def _view(c: ContractClient) -> ClientView:
    return ClientView(
        c.id,
        c.company_id,
        c.client_id,
        c.label,
        c.token_ttl_seconds,
        c.created_by,
        c.created_at,
        c.revoked_at,
    )


def create_client(
    uow: UnitOfWork,
    company_slug: str,
    *,
    actor: Actor,
    clock: Clock,
    label: str | None = None,
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
) -> IssuedClient:
    """A new client of the contract for a company; its secret is returned once."""
    actor.require(Role.ADMIN)
    if not MIN_TOKEN_TTL_SECONDS <= token_ttl_seconds <= MAX_TOKEN_TTL_SECONDS:
        raise ValidationFailed(
            f"the token lifetime must be {MIN_TOKEN_TTL_SECONDS} to {MAX_TOKEN_TTL_SECONDS}"
            f" seconds, got {token_ttl_seconds}",
            field="token_ttl_seconds",
        )
    label = (label or "").strip() or None
    if label is not None and len(label) > 100:
        raise ValidationFailed("the label must have at most 100 characters", field="label")
    with uow:
        company = company_by_slug(uow, company_slug)
        if not actor.can_see(company.id):
            raise NotFound(f"no company {company_slug!r}")
        client_id = secrets.token_hex(16)
        secret = secrets.token_hex(32)
        client = ContractClient(
            company_id=company.id,
            client_id=client_id,
            secret_hash=hash_secret(secret),
            label=label,
            token_ttl_seconds=token_ttl_seconds,
            created_by=actor.label,
            created_at=clock(),
        )
        uow.session.add(client)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="contract_client.created",
            entity_type="contract_client",
            entity_id=client.id,
            after={"client_id": client_id, "label": label, "token_ttl_seconds": token_ttl_seconds},
        )
        uow.commit()
        return IssuedClient(client.id, client_id, secret, company.id, token_ttl_seconds)


def list_clients(uow: UnitOfWork, company_id: int) -> list[ClientView]:
    """A company's contract clients, oldest first (revoked ones included)."""
    with uow:
        rows = uow.session.scalars(
            select(ContractClient)
            .where(ContractClient.company_id == company_id)
            .order_by(ContractClient.id)
        )
        return [_view(c) for c in rows]


def revoke_client(uow: UnitOfWork, client_id: str, *, actor: Actor, clock: Clock) -> ClientView:
    """Revoke a client: its secret and every token it obtained stop working at once."""
    actor.require(Role.ADMIN)
    with uow:
        client = uow.session.scalar(
            select(ContractClient).where(ContractClient.client_id == client_id.strip())
        )
        if client is None or not actor.can_see(client.company_id):
            raise NotFound(f"no contract client {client_id!r}")
        if client.revoked_at is None:
            client.revoked_at = clock()
            uow.session.execute(delete(ContractToken).where(ContractToken.client_pk == client.id))
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=client.company_id,
                action="contract_client.revoked",
                entity_type="contract_client",
                entity_id=client.id,
                before={"revoked": False},
                after={"revoked": True},
            )
        uow.commit()
        return _view(client)


def _client(uow: UnitOfWork, client_id: str, client_secret: str) -> ContractClient:
    """The active client with these credentials, or `Unauthenticated` (same message)."""
    if (
        not _VISIBLE.fullmatch(client_id)
        or not _VISIBLE.fullmatch(client_secret)
        or len(client_id) > 64
        or len(client_secret) > MAX_SECRET_LENGTH
    ):
        # Ours are hex: anything else (control characters, a NUL that PostgreSQL would
        # refuse in a query) is simply not a client.
        raise Unauthenticated("invalid client credentials")
    client = uow.session.scalar(select(ContractClient).where(ContractClient.client_id == client_id))
    expected = client.secret_hash if client is not None else hash_secret("")
    matches = hmac.compare_digest(expected, hash_secret(client_secret))
    if client is None or client.revoked_at is not None or not matches:
        raise Unauthenticated("invalid client credentials")
    return client


def issue_token(
    uow: UnitOfWork, client_id: str, client_secret: str, *, clock: Clock
) -> IssuedToken:
    """Client credentials → a bearer token valid for the client's token lifetime."""
    with uow:
        client = _client(uow, client_id, client_secret)
        now = clock()
        # The client's expired tokens are of no use to anyone: drop them here.
        uow.session.execute(
            delete(ContractToken).where(
                ContractToken.client_pk == client.id, ContractToken.expires_at <= now
            )
        )
        token = secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=client.token_ttl_seconds)
        uow.session.add(
            ContractToken(
                client_pk=client.id,
                token_hash=hash_secret(token),
                issued_at=now,
                expires_at=expires_at,
            )
        )
        uow.commit()
        return IssuedToken(token, client.token_ttl_seconds, expires_at)


def authenticate(
    uow: UnitOfWork, client_id: str, client_secret: str, token: str, *, clock: Clock
) -> ContractCaller:
    """The caller behind a contract request: its client credentials and a live token of
    that same client; anything else is `Unauthenticated`."""
    with uow:
        client = _client(uow, client_id, client_secret)
        if not _VISIBLE.fullmatch(token) or len(token) > MAX_SECRET_LENGTH:
            raise Unauthenticated("invalid or expired token")
        row = uow.session.scalar(
            select(ContractToken).where(ContractToken.token_hash == hash_secret(token))
        )
        if row is None or row.client_pk != client.id or row.expires_at <= clock():
            raise Unauthenticated("invalid or expired token")
        return ContractCaller(client.id, client.client_id, client.company_id)
