"""Channel agreements (convenios): a company's contract with one bank channel and its secret."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters import netguard
from recaudo.adapters.db.tables import ChannelAgreement
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.accounting_day import DEFAULT_CUTOFF
from recaudo.domain.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from recaudo.services import audit, channel_cache
from recaudo.services.companies import company_by_slug
from recaudo.services.context import Actor, Clock, Role

BANK = "bancoestado"
CHANNELS = ("caja-vecina", "internet")
SECRET_PREFIX = "ca_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_QUOTE_TTL_SECONDS = 3600
DEFAULT_PASSTHROUGH_TIMEOUT_MS = 3000


@dataclass(frozen=True, slots=True)
class AgreementSettings:
    """What an operator may set on an agreement; `None` keeps the current value."""

    voucher_name: str | None = None
    cutoff: time | None = None
    enabled: bool | None = None
    allow_query_token: bool | None = None
    ip_allowlist: tuple[str, ...] | None = None
    errors_as_http_200: bool | None = None
    quote_ttl_seconds: int | None = None
    # Pass-through: ask the company's own endpoint for the debts ("" turns it off).
    passthrough_url: str | None = None
    passthrough_timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedAgreement:
    agreement: ChannelAgreement
    secret: str  # shown once; only its hash is stored


def hash_secret(secret: str) -> str:
    # 256-bit random secrets: a fast hash is safe, as for API keys.
    return hashlib.sha256(secret.encode()).hexdigest()


def snapshot(a: ChannelAgreement) -> dict[str, object]:
    return {
        "bank": a.bank,
        "channel": a.channel,
        "convenio": a.convenio,
        "voucher_name": a.voucher_name,
        "cutoff": a.cutoff.strftime("%H:%M"),
        "enabled": a.enabled,
        "allow_query_token": a.allow_query_token,
        "ip_allowlist": a.ip_allowlist,
        "errors_as_http_200": a.errors_as_http_200,
        "quote_ttl_seconds": a.quote_ttl_seconds,
        "passthrough_url": a.passthrough_url,
        "passthrough_timeout_ms": a.passthrough_timeout_ms,
        "prefix": a.secret_prefix,
    }


def _channel(text: str) -> str:
    channel = text.strip().lower()
    if channel not in CHANNELS:
        raise ValidationFailed(
            f"unknown channel {text!r} (caja-vecina or internet)", field="channel"
        )
    return channel


def _convenio(text: str) -> str:
    value = text.strip()
    if not value.isdigit() or len(value) > 20:
        raise ValidationFailed("convenio must be 1 to 20 digits", field="convenio")
    return value


def _allowlist(values: tuple[str, ...]) -> list[str] | None:
    cleaned: list[str] = []
    for raw in values:
        try:
            cleaned.append(str(ipaddress.ip_network(raw.strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(f"{raw!r} is not an IP network", field="ip_allowlist") from None
    return cleaned or None


def _check_target(s: AgreementSettings, *, allow_private_targets: bool) -> None:
    """The webhooks' address policy for the pass-through URL (no loopback, private or
    cloud-metadata host); before any transaction, as it may ask DNS."""
    url = (s.passthrough_url or "").strip()
    if not url.startswith(("http://", "https://")):
        return  # nothing to check, or `_apply` refuses it
    try:
        netguard.check_url(url, allow_private=allow_private_targets)
    except netguard.TargetRefused as exc:
        raise ValidationFailed(
            f"{exc}: the pass-through URL must reach a public internet address",
            field="passthrough_url",
        ) from None


def _apply(a: ChannelAgreement, s: AgreementSettings) -> None:
    if s.voucher_name is not None:
        name = " ".join(s.voucher_name.split())
        if len(name) > 100:
            raise ValidationFailed("voucher name is longer than 100 characters", field="voucher")
        a.voucher_name = name or None
    if s.cutoff is not None:
        a.cutoff = s.cutoff.replace(second=0, microsecond=0, tzinfo=None)
    if s.enabled is not None:
        a.enabled = s.enabled
    if s.allow_query_token is not None:
        a.allow_query_token = s.allow_query_token
    if s.ip_allowlist is not None:
        a.ip_allowlist = _allowlist(s.ip_allowlist)
    if s.errors_as_http_200 is not None:
        a.errors_as_http_200 = s.errors_as_http_200
    if s.quote_ttl_seconds is not None:
        if not 60 <= s.quote_ttl_seconds <= 7 * 86400:
            raise ValidationFailed(
                "quote validity must be 60 seconds to 7 days", field="quote_ttl_seconds"
            )
        a.quote_ttl_seconds = s.quote_ttl_seconds
    if s.passthrough_url is not None:
        url = s.passthrough_url.strip()
        if url and (not url.startswith(("http://", "https://")) or len(url) > 500):
            raise ValidationFailed(
                "pass-through URL must be http(s) and at most 500 characters",
                field="passthrough_url",
            )
        a.passthrough_url = url or None
    if s.passthrough_timeout_ms is not None:
        if not 100 <= s.passthrough_timeout_ms <= 30_000:
            raise ValidationFailed(
                "pass-through timeout must be 100 to 30000 ms", field="passthrough_timeout_ms"
            )
        a.passthrough_timeout_ms = s.passthrough_timeout_ms


def create_agreement(
    uow: UnitOfWork,
    company_slug: str,
    channel: str,
    convenio: str,
    settings: AgreementSettings = AgreementSettings(),
    *,
    actor: Actor,
    clock: Clock,
    allow_private_targets: bool = False,
) -> IssuedAgreement:
    """Enable a bank channel for a company; returns the secret, shown once."""
    actor.require(Role.ADMIN)
    channel, convenio = _channel(channel), _convenio(convenio)
    _check_target(settings, allow_private_targets=allow_private_targets)
    with uow:
        company = company_by_slug(uow, company_slug)
        if not actor.can_see(company.id):
            raise NotFound(f"no company {company_slug!r}")
        taken = Conflict(
            f"{company.slug} already has a {BANK} {channel} agreement", field="channel"
        )
        exists = select(ChannelAgreement.id).where(
            ChannelAgreement.company_id == company.id,
            ChannelAgreement.bank == BANK,
            ChannelAgreement.channel == channel,
        )
        if uow.session.scalar(exists) is not None:
            raise taken
        prefix = secrets.token_hex(6)
        secret = f"{SECRET_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        now = clock()
        agreement = ChannelAgreement(
            company_id=company.id,
            bank=BANK,
            channel=channel,
            convenio=convenio,
            voucher_name=None,
            cutoff=DEFAULT_CUTOFF,
            secret_prefix=prefix,
            secret_hash=hash_secret(secret),
            allow_query_token=False,
            ip_allowlist=None,
            enabled=True,
            errors_as_http_200=True,
            quote_ttl_seconds=DEFAULT_QUOTE_TTL_SECONDS,
            passthrough_url=None,
            passthrough_timeout_ms=DEFAULT_PASSTHROUGH_TIMEOUT_MS,
            created_at=now,
            updated_at=now,
        )
        _apply(agreement, settings)
        uow.session.add(agreement)
        try:
            uow.session.flush()
        except IntegrityError:
            raise taken from None
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="agreement.created",
            entity_type="agreement",
            entity_id=agreement.id,
            after=snapshot(agreement),
        )
        uow.after_commit(channel_cache.bump)
        uow.commit()
    return IssuedAgreement(agreement, secret)


def update_agreement(
    uow: UnitOfWork,
    company_id: int,
    agreement_id: int,
    settings: AgreementSettings,
    *,
    actor: Actor,
    clock: Clock,
    allow_private_targets: bool = False,
) -> ChannelAgreement:
    actor.require(Role.ADMIN)
    _check_target(settings, allow_private_targets=allow_private_targets)
    with uow:
        agreement = uow.session.get(ChannelAgreement, agreement_id)
        if agreement is None or agreement.company_id != company_id or not actor.can_see(company_id):
            raise NotFound(f"no agreement {agreement_id}")
        before = snapshot(agreement)
        _apply(agreement, settings)
        agreement.updated_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="agreement.updated",
            entity_type="agreement",
            entity_id=agreement.id,
            before=before,
            after=snapshot(agreement),
        )
        uow.after_commit(channel_cache.bump)
        uow.commit()
    return agreement


def list_agreements(uow: UnitOfWork, company_id: int) -> list[ChannelAgreement]:
    return list(
        uow.session.scalars(
            select(ChannelAgreement)
            .where(ChannelAgreement.company_id == company_id)
            .order_by(ChannelAgreement.id)
        )
    )


def secret_prefix(secret: str) -> str | None:
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(SECRET_PREFIX) or len(parts[1]) > 16:
        return None
    return parts[1]


def check_credentials(
    secret_hash: str,
    ip_allowlist: list[str] | None,
    secret: str | None,
    client_ip: str | None,
) -> None:
    """Refuse a missing or wrong secret, or a caller outside the allow-list."""
    if not secret or not hmac.compare_digest(secret_hash, hash_secret(secret)):
        raise Unauthenticated("missing or wrong channel credential")
    if ip_allowlist:
        try:
            address = ipaddress.ip_address(client_ip or "")
        except ValueError:
            raise Unauthenticated("caller address unknown") from None
        if not any(address in ipaddress.ip_network(net) for net in ip_allowlist):
            raise Unauthenticated("caller address not in the agreement's allow-list")
