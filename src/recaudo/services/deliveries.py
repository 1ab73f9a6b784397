"""Delivery targets of a company and the delivery of stored files to them.

A target is an SFTP directory, a mailbox (SMTP) or a local directory (`adapters.transfer`).
Its password or private key is encrypted with the server's secret key (Fernet; see
`server_fernet`) because Recaudo must present it to the other side; it is never shown back.

Files (settlement files, file-exchange outbox files) are queued as `Delivery` rows
(`enqueue_settlement_file`, `enqueue_file`) and sent by `deliver_due` the way webhook
deliveries are (`services.webhooks`), in three short steps that never hold a transaction
during the transfer:

1. **claim** the oldest due delivery (PostgreSQL: `FOR UPDATE SKIP LOCKED`) and push its
   `next_attempt_at` a lease ahead, so no other worker takes it; commit;
2. **send** the stored bytes (checked against the settlement file's SHA-256 first);
3. **record** a `DeliveryAttempt` and the outcome: `delivered`, or a retry after
   1 min·2^(n-1) (at most 6 h), or `failed` after `max_attempts`. The first failure and
   the giving up are incidents (kind `delivery_failed`): a file is never lost silently.

Retention (`purge`): a delivered file older than its target's `retention_days` is removed
from the remote directory, and a settlement file's local copy once every delivery of it
has aged out. Files not delivered are never removed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Select, case, select

from recaudo.adapters import netguard, transfer
from recaudo.adapters.db.tables import (
    ChannelAgreement,
    Company,
    Delivery,
    DeliveryAttempt,
    DeliveryTarget,
    FileExchange,
    Incident,
    SettlementFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import audit, storage
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

logger = logging.getLogger("recaudo.deliveries")

INCIDENT_KIND = "delivery_failed"
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
# Longer than any transfer should take (each network step has the target's timeout,
# 30 s by default): while it runs, no other worker takes the delivery.
LEASE = timedelta(minutes=15)
MAX_ERROR_CHARS = 500
DEFAULT_RETENTION_DAYS = 60
SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


PENDING = DeliveryStatus.PENDING.value
DELIVERED = DeliveryStatus.DELIVERED.value
FAILED = DeliveryStatus.FAILED.value


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 1, 2, 4, 8 ... minutes, at most 6 h."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 32)), MAX_RETRY)


# --- the server's secret key ---------------------------------------------------------------


def _key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / SECRET_KEY_FILE


def server_keys(settings: Settings) -> list[bytes]:
    """The Fernet keys: RECAUDO_SECRET_KEY (comma-separated, first one encrypts), else the
    key in data_dir/secret.key, generated there (mode 0600) the first time it is needed."""
    if settings.secret_key is not None:
        raw = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
        if raw:
            return [k.encode() for k in raw]
    path = _key_file(settings)
    try:
        return [path.read_bytes().strip()]
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return [path.read_bytes().strip()]
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    logger.info("generated the server's secret key in %s", path)
    return [key]


def server_fernet(settings: Settings) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k) for k in server_keys(settings)])
    except ValueError:
        # Never echo the key itself.
        raise ValidationFailed(
            "the server's secret key is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def encrypt_secret(settings: Settings, secret: str) -> str:
    return server_fernet(settings).encrypt(secret.encode()).decode()


def decrypt_secret(settings: Settings, token: str) -> str:
    try:
        fernet = server_fernet(settings)
    except ValidationFailed as exc:  # a misconfigured server: each attempt says so
        raise transfer.TransferError(exc.message) from None
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken:
        raise transfer.TransferError(
            "the target's secret cannot be decrypted with the server's secret key "
            "(was RECAUDO_SECRET_KEY or secret.key changed?); set the secret again"
        ) from None


def company_mail_target(
    uow: UnitOfWork, company_id: int, *, preferred_name: str | None = None
) -> DeliveryTarget | None:
    """The target a company's notices and reports are e-mailed through: its enabled e-mail
    target not bound to an agreement — the one named `preferred_name` if there is one,
    else the oldest."""
    query = select(DeliveryTarget).where(
        DeliveryTarget.company_id == company_id,
        DeliveryTarget.kind == "email",
        DeliveryTarget.enabled.is_(True),
        DeliveryTarget.agreement_id.is_(None),
    )
    if preferred_name is not None:
        query = query.order_by(case((DeliveryTarget.name == preferred_name, 0), else_=1))
    return uow.session.scalar(query.order_by(DeliveryTarget.id).limit(1))


def target_config(row: DeliveryTarget, settings: Settings) -> transfer.TargetConfig:
    """What the transfer adapters need for a target: kind, settings, decrypted secret.
    Raises `TransferError` when the secret cannot be decrypted."""
    secret = (
        None if row.secret_encrypted is None else decrypt_secret(settings, row.secret_encrypted)
    )
    return transfer.TargetConfig(
        row.kind,
        dict(row.settings or {}),
        secret,
        allow_private=settings.delivery_allow_private_targets,
    )


# --- targets -------------------------------------------------------------------------------

KINDS = ("sftp", "email", "local")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_SETTING_KEYS = {
    "sftp": {"host", "port", "username", "auth", "host_key", "directory", "timeout_s"},
    "email": {
        "host",
        "port",
        "security",
        "username",
        "from",
        "recipients",
        "cafile",
        "subject",
        "timeout_s",
    },
    "local": {"directory"},
}


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A new target. `secret`: the SFTP password or private key, or the SMTP password."""

    name: str
    kind: str
    settings: Mapping[str, Any]
    secret: str | None = field(default=None, repr=False)
    agreement_id: int | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TargetChanges:
    """A partial update: None leaves a field as it is. `settings` is merged key by key (a
    None value drops the key); `secret` replaces the secret ("" removes it);
    `agreement_id` 0 detaches the target from its agreement."""

    name: str | None = None
    settings: Mapping[str, Any] | None = None
    secret: str | None = field(default=None, repr=False)
    agreement_id: int | None = None
    retention_days: int | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class TargetView:
    id: int
    company_id: int
    agreement_id: int | None
    name: str
    kind: str
    settings: dict[str, Any]
    has_secret: bool  # the secret itself is never shown
    retention_days: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


def target_view(t: DeliveryTarget) -> TargetView:
    return TargetView(
        id=t.id,
        company_id=t.company_id,
        agreement_id=t.agreement_id,
        name=t.name,
        kind=t.kind,
        settings=dict(t.settings or {}),
        has_secret=t.secret_encrypted is not None,
        retention_days=t.retention_days,
        enabled=t.enabled,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


def _invalid(message: str, name: str) -> ValidationFailed:
    return ValidationFailed(message, field=f"settings.{name}")


def _text(settings: Mapping[str, Any], name: str, *, required: bool, max_len: int = 500) -> str:
    value = settings.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _invalid(f"{name} is required", name)
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{name} must be text", name)
    value = value.strip()
    if len(value) > max_len or any(ord(c) < 32 for c in value):
        raise _invalid(f"{name} is not valid (at most {max_len} printable characters)", name)
    return value


def _port(settings: Mapping[str, Any], default: int) -> int:
    value = settings.get("port", default)
    if value is None:
        return default
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise _invalid("port must be a number", "port") from None
    if not 1 <= port <= 65535 or isinstance(value, bool):
        raise _invalid("port must be between 1 and 65535", "port")
    return port


def _timeout(settings: Mapping[str, Any], out: dict[str, Any]) -> None:
    value = settings.get("timeout_s")
    if value is None:
        return
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise _invalid("timeout_s must be a number of seconds", "timeout_s") from None
    if not 1 <= seconds <= 300:
        raise _invalid("timeout_s must be between 1 and 300 seconds", "timeout_s")
    out["timeout_s"] = seconds


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_settings(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The target's settings, checked and normalised; unknown keys are refused (a password
    put in the settings by mistake would otherwise be shown back)."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not isinstance(settings, Mapping):
        raise ValidationFailed("settings must be an object", field="settings")
    unknown = sorted(set(settings) - _SETTING_KEYS[kind])
    if unknown:
        raise ValidationFailed(
            f"unknown {kind} settings: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(_SETTING_KEYS[kind]))}; the password or key "
            "goes in the secret)",
            field="settings",
        )
    out: dict[str, Any] = {}
    if kind == "local":
        directory = _text(settings, "directory", required=True)
        if not Path(directory).is_absolute():
            raise _invalid("directory must be an absolute path", "directory")
        out["directory"] = directory
        return out
    out["host"] = _text(settings, "host", required=True, max_len=255)
    _timeout(settings, out)
    if kind == "sftp":
        out["port"] = _port(settings, 22)
        out["username"] = _text(settings, "username", required=True, max_len=100)
        auth = _text(settings, "auth", required=False) or "password"
        if auth not in ("password", "key"):
            raise _invalid("auth must be password or key", "auth")
        out["auth"] = auth
        host_key = _text(settings, "host_key", required=True, max_len=4000)
        try:
            transfer.parse_host_key(host_key)
        except transfer.TransferError as exc:
            raise _invalid(str(exc), "host_key") from None
        out["host_key"] = " ".join(host_key.split())
        out["directory"] = _text(settings, "directory", required=False) or "."
        return out
    security = _text(settings, "security", required=False) or "starttls"
    if security not in ("starttls", "ssl", "none"):
        raise _invalid("security must be starttls, ssl or none", "security")
    if security == "none" and not _is_loopback(out["host"]):
        raise _invalid("security none (no TLS) is allowed only to a loopback address", "security")
    out["security"] = security
    out["port"] = _port(settings, 465 if security == "ssl" else 587)
    username = _text(settings, "username", required=False, max_len=200)
    if username:
        out["username"] = username
    sender = _text(settings, "from", required=True, max_len=254)
    if not _EMAIL.match(sender):
        raise _invalid("from must be an e-mail address", "from")
    out["from"] = sender
    recipients = settings.get("recipients")
    if isinstance(recipients, str):
        recipients = [r for r in re.split(r"[,;\s]+", recipients) if r]
    if not isinstance(recipients, list) or not recipients:
        raise _invalid("recipients must be a non-empty list of e-mail addresses", "recipients")
    if len(recipients) > 20 or not all(
        isinstance(r, str) and len(r) <= 254 and _EMAIL.match(r) for r in recipients
    ):
        raise _invalid("recipients must be 1 to 20 e-mail addresses", "recipients")
    out["recipients"] = list(recipients)
    cafile = _text(settings, "cafile", required=False)
    if cafile:
        out["cafile"] = cafile
    subject = _text(settings, "subject", required=False, max_len=200)
    if subject:
        out["subject"] = subject
    return out


def check_host(kind: str, clean: Mapping[str, Any], *, allow_private: bool) -> None:
    """Refuse an SFTP or SMTP host that is, or resolves to, an address Recaudo must not
    connect to (loopback, private, link-local, ...: `adapters.netguard`, the webhooks'
    policy); `allow_private` is the setting `delivery_allow_private_targets`. Every
    connection checks the address again (`adapters.transfer`)."""
    if kind not in ("sftp", "email"):
        return
    try:
        netguard.check_host(str(clean["host"]), int(clean["port"]), allow_private=allow_private)
    except netguard.TargetRefused as exc:
        raise _invalid(
            f"{exc}: SFTP and e-mail targets must reach a public internet address "
            "(an internal server needs the operator's setting "
            "RECAUDO_DELIVERY_ALLOW_PRIVATE_TARGETS)",
            "host",
        ) from None


def _validate_secret(kind: str, settings: Mapping[str, Any], secret: str | None) -> None:
    needs = kind == "sftp" or (kind == "email" and settings.get("username"))
    if needs and not secret:
        what = "private key" if settings.get("auth") == "key" else "password"
        raise ValidationFailed(f"a {kind} target needs its {what} (the secret)", field="secret")
    if secret is not None and len(secret) > 20_000:
        raise ValidationFailed("the secret is too long", field="secret")
    if kind == "sftp" and settings.get("auth") == "key" and secret:
        try:
            transfer.check_private_key(secret)
        except transfer.TransferError as exc:
            raise ValidationFailed(str(exc), field="secret") from None


def _validate_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ValidationFailed(
            "a target name has 1 to 100 letters, digits, spaces, '.', '_' or '-'", field="name"
        )
    return name


def _validate_retention(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise ValidationFailed("retention_days must be between 1 and 3650", field="retention_days")
    return days


def _check_agreement(uow: UnitOfWork, company_id: int, agreement_id: int | None) -> None:
    if agreement_id is None:
        return
    agreement = uow.session.get(ChannelAgreement, agreement_id)
    if agreement is None or agreement.company_id != company_id:
        raise NotFound(f"no agreement {agreement_id}")


def _name_taken(uow: UnitOfWork, company_id: int, name: str, exclude: int | None = None) -> bool:
    stmt = select(DeliveryTarget.id).where(
        DeliveryTarget.company_id == company_id, DeliveryTarget.name == name
    )
    if exclude is not None:
        stmt = stmt.where(DeliveryTarget.id != exclude)
    return uow.session.scalar(stmt) is not None


def _snapshot(t: DeliveryTarget) -> dict[str, Any]:
    """What the audit trail keeps of a target: never the secret, only whether it is set."""
    return {
        "name": t.name,
        "kind": t.kind,
        "agreement_id": t.agreement_id,
        "settings": dict(t.settings or {}),
        "has_secret": t.secret_encrypted is not None,
        "retention_days": t.retention_days,
        "enabled": t.enabled,
    }


def create_target(
    uow: UnitOfWork,
    company_id: int,
    spec: TargetSpec,
    *,
    settings: Settings,
    actor: Actor,
    clock: Clock,
) -> TargetView:
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    name = _validate_name(spec.name)
    clean = validate_settings(spec.kind, spec.settings)
    secret = spec.secret or None
    _validate_secret(spec.kind, clean, secret)
    check_host(spec.kind, clean, allow_private=settings.delivery_allow_private_targets)
    retention = _validate_retention(spec.retention_days)
    with uow:
        if uow.session.get(Company, company_id) is None:
            raise NotFound(f"no company {company_id}")
        _check_agreement(uow, company_id, spec.agreement_id)
        if _name_taken(uow, company_id, name):
            raise Conflict(f"a delivery target named {name!r} exists already")
        now = clock()
        target = DeliveryTarget(
            company_id=company_id,
            agreement_id=spec.agreement_id,
            name=name,
            kind=spec.kind,
            settings=clean,
            secret_encrypted=None if secret is None else encrypt_secret(settings, secret),
            retention_days=retention,
            enabled=spec.enabled,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(target)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="delivery_target.created",
            entity_type="delivery_target",
            entity_id=target.id,
            after=_snapshot(target),
        )
        uow.commit()
        return target_view(target)


def _load_target(
    uow: UnitOfWork, company_id: int | None, target_id: int, actor: Actor | None = None
) -> DeliveryTarget:
    target = uow.session.get(DeliveryTarget, target_id)
    if (
        target is None
        or (company_id is not None and target.company_id != company_id)
        or (actor is not None and not actor.can_see(target.company_id))
    ):
        raise NotFound(f"no delivery target {target_id}")
    return target


def update_target(
    uow: UnitOfWork,
    company_id: int | None,
    target_id: int,
    changes: TargetChanges,
    *,
    settings: Settings,
    actor: Actor,
    clock: Clock,
) -> TargetView:
    actor.require(Role.ADMIN)
    with uow:
        target = _load_target(uow, company_id, target_id, actor)
        before = _snapshot(target)
        secret_changed = False
        if changes.name is not None:
            name = _validate_name(changes.name)
            if _name_taken(uow, target.company_id, name, exclude=target.id):
                raise Conflict(f"a delivery target named {name!r} exists already")
            target.name = name
        merged = dict(target.settings or {})
        if changes.settings is not None:
            for key, value in changes.settings.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        clean = validate_settings(target.kind, merged)
        if (clean.get("host"), clean.get("port")) != (
            before["settings"].get("host"),
            before["settings"].get("port"),
        ):
            # Only a new host or port: a target refused since (the setting was turned off)
            # can still be renamed or disabled; connecting to it is refused anyway.
            check_host(target.kind, clean, allow_private=settings.delivery_allow_private_targets)
        if changes.secret is not None:
            secret = changes.secret or None
            target.secret_encrypted = None if secret is None else encrypt_secret(settings, secret)
            secret_changed = True
            _validate_secret(target.kind, clean, secret)
        elif target.secret_encrypted is None:
            _validate_secret(target.kind, clean, None)
        elif target.kind == "sftp" and clean.get("auth") != before["settings"].get("auth"):
            raise ValidationFailed(
                "changing auth needs the new secret (password or private key)", field="secret"
            )
        target.settings = clean
        if changes.agreement_id is not None:
            agreement_id = changes.agreement_id or None
            _check_agreement(uow, target.company_id, agreement_id)
            target.agreement_id = agreement_id
        if changes.retention_days is not None:
            target.retention_days = _validate_retention(changes.retention_days)
        if changes.enabled is not None:
            target.enabled = changes.enabled
        after = _snapshot(target)
        if after != before or secret_changed:
            target.updated_at = clock()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=target.company_id,
                action="delivery_target.updated",
                entity_type="delivery_target",
                entity_id=target.id,
                before=before,
                after={**after, "secret_changed": secret_changed},
            )
        uow.commit()
        return target_view(target)


def list_targets(
    uow: UnitOfWork, company_id: int | None, *, kind: str | None = None
) -> list[TargetView]:
    """A company's targets (every company's when `company_id` is None: the CLI)."""
    stmt = select(DeliveryTarget).order_by(DeliveryTarget.id)
    if company_id is not None:
        stmt = stmt.where(DeliveryTarget.company_id == company_id)
    if kind is not None:
        stmt = stmt.where(DeliveryTarget.kind == kind)
    return [target_view(t) for t in uow.session.scalars(stmt)]


def get_target(uow: UnitOfWork, company_id: int | None, target_id: int) -> TargetView:
    return target_view(_load_target(uow, company_id, target_id))


def remove_target(
    uow: UnitOfWork, company_id: int | None, target_id: int, *, actor: Actor, clock: Clock
) -> None:
    """Delete a target nothing refers to; one with deliveries or a file exchange is kept
    (its history stays readable): disable it instead."""
    actor.require(Role.ADMIN)
    with uow:
        target = _load_target(uow, company_id, target_id, actor)
        used = uow.session.scalar(
            select(Delivery.id).where(Delivery.target_id == target.id).limit(1)
        )
        exchange = uow.session.scalar(
            select(FileExchange.id).where(FileExchange.target_id == target.id).limit(1)
        )
        if used is not None or exchange is not None:
            what = "deliveries" if used is not None else "a file exchange"
            raise Conflict(
                f"delivery target {target.id} has {what}; disable it instead (its history is kept)"
            )
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=target.company_id,
            action="delivery_target.removed",
            entity_type="delivery_target",
            entity_id=target.id,
            before=_snapshot(target),
        )
        uow.session.delete(target)
        uow.commit()


def check_target(
    uow: UnitOfWork, company_id: int | None, target_id: int, *, settings: Settings, actor: Actor
) -> str:
    """Connect to the target without delivering anything (SFTP/local: list the directory;
    e-mail: connect, TLS, log in); what was checked. Raises `TransferError`."""
    actor.require_write()
    with UnitOfWork(uow.engine, write=False) as reader:
        row = _load_target(reader, company_id, target_id, actor)
        config = target_config(row, settings)
    if config.kind == "email":
        return transfer.check_mail(config)
    with transfer.open_directory(config) as directory:
        files = directory.list_files()
    where = config.settings.get("directory", "")
    if config.kind == "sftp":
        where = f"sftp://{config.settings.get('username')}@{config.settings.get('host')}:" + (
            f"{config.settings.get('port')}{'' if where.startswith('/') else '/'}{where}"
        )
    return f"{where}: connected, {len(files)} file(s) there"


# --- queueing ------------------------------------------------------------------------------


def _new_delivery(
    uow: UnitOfWork,
    *,
    company_id: int,
    target_id: int,
    file_name: str,
    storage_path: str,
    actor: Actor,
    clock: Clock,
    settlement_file_id: int | None = None,
    exchange_file_id: int | None = None,
) -> Delivery:
    now = clock()
    delivery = Delivery(
        company_id=company_id,
        target_id=target_id,
        settlement_file_id=settlement_file_id,
        exchange_file_id=exchange_file_id,
        file_name=file_name,
        storage_path=storage_path,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        requested_by=actor.label,
        created_at=now,
    )
    uow.session.add(delivery)
    uow.session.flush()
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=company_id,
        action="delivery.enqueued",
        entity_type="delivery",
        entity_id=delivery.id,
        after={"target_id": target_id, "file_name": file_name},
    )
    return delivery


def _agreement_targets(uow: UnitOfWork, sf: SettlementFile) -> Sequence[DeliveryTarget]:
    return uow.session.scalars(
        select(DeliveryTarget)
        .where(
            DeliveryTarget.company_id == sf.company_id,
            DeliveryTarget.agreement_id == sf.agreement_id,
            DeliveryTarget.enabled.is_(True),
        )
        .order_by(DeliveryTarget.id)
    ).all()


def enqueue_settlement_file(
    uow: UnitOfWork, settlement_file: SettlementFile, *, actor: Actor, clock: Clock
) -> list[Delivery]:
    """Queue one pending delivery of `settlement_file` per enabled target of its agreement.

    Runs inside the caller's open unit of work and does not commit: the deliveries exist
    only if the settlement file does.
    """
    return [
        _new_delivery(
            uow,
            company_id=settlement_file.company_id,
            target_id=target.id,
            file_name=settlement_file.file_name,
            storage_path=settlement_file.storage_path,
            actor=actor,
            clock=clock,
            settlement_file_id=settlement_file.id,
        )
        for target in _agreement_targets(uow, settlement_file)
    ]


def enqueue_file(
    uow: UnitOfWork,
    *,
    company_id: int,
    target_id: int,
    file_name: str,
    storage_path: str,
    actor: Actor,
    clock: Clock,
    exchange_file_id: int | None = None,
) -> Delivery:
    """Queue one pending delivery of a stored file (`storage_path`, relative to the data
    directory) to one of the company's targets. Inside the caller's unit of work, no commit.
    """
    target = uow.session.get(DeliveryTarget, target_id)
    if target is None or target.company_id != company_id:
        raise NotFound(f"no delivery target {target_id}")
    return _new_delivery(
        uow,
        company_id=company_id,
        target_id=target_id,
        file_name=file_name,
        storage_path=storage_path,
        actor=actor,
        clock=clock,
        exchange_file_id=exchange_file_id,
    )


# --- reading deliveries --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: int
    attempted_at: datetime
    ok: bool
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    company_id: int
    target_id: int
    target_name: str
    target_kind: str
    settlement_file_id: int | None
    exchange_file_id: int | None
    file_name: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    remote_path: str | None
    delivered_at: datetime | None
    removed_at: datetime | None
    requested_by: str
    created_at: datetime
    attempt_log: tuple[AttemptView, ...] = ()


def _delivery_query() -> Select[Delivery, str, str]:
    return select(Delivery, DeliveryTarget.name, DeliveryTarget.kind).join(
        DeliveryTarget, DeliveryTarget.id == Delivery.target_id
    )


def _delivery_view(
    d: Delivery, target_name: str, kind: str, attempts: Iterable[DeliveryAttempt] = ()
) -> DeliveryView:
    return DeliveryView(
        id=d.id,
        company_id=d.company_id,
        target_id=d.target_id,
        target_name=target_name,
        target_kind=kind,
        settlement_file_id=d.settlement_file_id,
        exchange_file_id=d.exchange_file_id,
        file_name=d.file_name,
        status=DeliveryStatus(d.status),
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_error=d.last_error,
        remote_path=d.remote_path,
        delivered_at=d.delivered_at,
        removed_at=d.removed_at,
        requested_by=d.requested_by,
        created_at=d.created_at,
        attempt_log=tuple(
            AttemptView(a.id, a.attempted_at, a.ok, a.error, a.duration_ms) for a in attempts
        ),
    )


def list_deliveries(
    uow: UnitOfWork,
    company_id: int | None,
    *,
    status: DeliveryStatus | None = None,
    target_id: int | None = None,
    settlement_file_id: int | None = None,
    paging: Paging | None = None,
) -> Page[DeliveryView]:
    """Deliveries, newest first (every company's when `company_id` is None: the CLI)."""
    paging = paging or Paging()
    stmt = _delivery_query()
    if company_id is not None:
        stmt = stmt.where(Delivery.company_id == company_id)
    if status is not None:
        stmt = stmt.where(Delivery.status == status.value)
    if target_id is not None:
        stmt = stmt.where(Delivery.target_id == target_id)
    if settlement_file_id is not None:
        stmt = stmt.where(Delivery.settlement_file_id == settlement_file_id)
    total = _count(uow.session, stmt.with_only_columns(Delivery.id))
    rows = uow.session.execute(
        stmt.order_by(Delivery.id.desc()).offset(paging.offset).limit(paging.page_size)
    ).all()
    return Page([_delivery_view(*row) for row in rows], total, paging.page, paging.page_size)


def get_delivery(uow: UnitOfWork, company_id: int | None, delivery_id: int) -> DeliveryView:
    """One delivery with every attempt, oldest first."""
    stmt = _delivery_query().where(Delivery.id == delivery_id)
    if company_id is not None:
        stmt = stmt.where(Delivery.company_id == company_id)
    row = uow.session.execute(stmt).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    delivery, name, kind = row
    attempts = uow.session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery.id)
        .order_by(DeliveryAttempt.id)
    ).all()
    return _delivery_view(delivery, name, kind, attempts)


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: int
    lease_until: datetime
    company_id: int
    agreement_id: int | None
    target_name: str
    target: transfer.TargetConfig | None  # None: its secret could not be decrypted
    problem: str | None
    file_name: str
    storage_path: str
    sha256: str | None  # the settlement file's, checked before sending
    removed: bool  # the stored copy was removed by retention


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt did (for progress displays)."""

    delivery_id: int
    file_name: str
    target_name: str
    ok: bool
    error: str | None
    status: DeliveryStatus
    next_attempt_at: datetime | None
    superseded: bool


def _due(now: datetime) -> Select[Delivery]:
    return (
        select(Delivery)
        .join(DeliveryTarget, DeliveryTarget.id == Delivery.target_id)
        .where(
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            DeliveryTarget.enabled.is_(True),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(1)
    )


def _claim(uow: UnitOfWork, settings: Settings, clock: Clock) -> _Claim | None:
    # Look first without a write transaction: an idle runner must not take SQLite's write
    # lock (nor a PostgreSQL row lock) when nothing is due.
    with UnitOfWork(uow.engine, write=False) as reader:
        if reader.session.scalar(_due(clock()).with_only_columns(Delivery.id)) is None:
            return None
    with uow:
        now = clock()
        delivery = uow.session.scalar(_due(now).with_for_update(skip_locked=True, of=Delivery))
        if delivery is None:
            return None
        target = uow.session.get(DeliveryTarget, delivery.target_id)
        assert target is not None
        sf = (
            None
            if delivery.settlement_file_id is None
            else uow.session.get(SettlementFile, delivery.settlement_file_id)
        )
        config: transfer.TargetConfig | None
        problem = None
        try:
            config = target_config(target, settings)
        except transfer.TransferError as exc:
            config, problem = None, str(exc)
        lease_until = now + _lease(settings, delivery.storage_path)
        delivery.next_attempt_at = lease_until
        claim = _Claim(
            delivery_id=delivery.id,
            lease_until=lease_until,
            company_id=delivery.company_id,
            agreement_id=target.agreement_id or (sf.agreement_id if sf is not None else None),
            target_name=target.name,
            target=config,
            problem=problem,
            file_name=delivery.file_name,
            storage_path=delivery.storage_path,
            sha256=sf.sha256 if sf is not None else None,
            removed=sf is not None and sf.deleted_at is not None,
        )
        uow.commit()
        return claim


def _lease(settings: Settings, storage_path: str) -> timedelta:
    """LEASE, plus time for a large file at a slow 64 KiB/s (a transfer is bounded per
    chunk, not as a whole): the lease must outlast the attempt."""
    try:
        size = storage.resolve(settings.data_dir, storage_path).stat().st_size
    except (OSError, ValidationFailed):
        size = 0
    return LEASE + timedelta(seconds=size / (64 * 1024))


def _mail_text(claim: _Claim, data: bytes) -> tuple[str, str]:
    assert claim.target is not None
    subject = str(claim.target.setting("subject", "")) or f"Recaudo: {claim.file_name}"
    body = (
        f"Attached: {claim.file_name}\n"
        f"Size: {len(data)} bytes\n"
        f"SHA-256: {hashlib.sha256(data).hexdigest()}\n\n"
        "Sent by Recaudo.\n"
    )
    return subject, body


def _send(claim: _Claim, settings: Settings) -> str | None:
    """Transfer the file; the remote path written (None for e-mail). Raises TransferError."""
    if claim.problem is not None or claim.target is None:
        raise transfer.TransferError(claim.problem or "the target cannot be used")
    if claim.removed:
        raise transfer.TransferError("the stored file was removed by retention")
    try:
        data = storage.read_bytes(settings.data_dir, claim.storage_path)
    except (OSError, ValidationFailed):
        raise transfer.TransferError(f"the stored file {claim.storage_path} is missing") from None
    if claim.sha256 is not None and hashlib.sha256(data).hexdigest() != claim.sha256:
        raise transfer.TransferError(
            f"the stored file {claim.storage_path} does not match its SHA-256 (not sent)"
        )
    target = claim.target
    if target.kind == "email":
        subject, body = _mail_text(claim, data)
        recipients = list(target.setting("recipients", []))
        transfer.send_mail(target, recipients, subject, body, [(claim.file_name, data)])
        return None
    with transfer.open_directory(target) as directory:
        return directory.write(claim.file_name, data)


def _refresh_settlement_status(uow: UnitOfWork, settlement_file_id: int | None) -> None:
    """A settlement file is `delivered` once every delivery of it is, `delivery_failed`
    while one has failed, else `generated` (pending)."""
    if settlement_file_id is None:
        return
    sf = uow.session.get(SettlementFile, settlement_file_id)
    if sf is None:
        return
    statuses = set(
        uow.session.scalars(
            select(Delivery.status).where(Delivery.settlement_file_id == settlement_file_id)
        )
    )
    if FAILED in statuses:
        sf.status = "delivery_failed"
    elif statuses == {DELIVERED}:
        sf.status = "delivered"
    else:
        sf.status = "generated"


def _record(
    uow: UnitOfWork,
    claim: _Claim,
    remote_path: str | None,
    error: str | None,
    attempted_at: datetime,
    duration_ms: int,
    *,
    clock: Clock,
    max_attempts: int,
) -> AttemptOutcome:
    ok = error is None
    error = None if error is None else error[:MAX_ERROR_CHARS]
    with uow:
        uow.session.add(
            DeliveryAttempt(
                delivery_id=claim.delivery_id,
                attempted_at=attempted_at,
                ok=ok,
                error=error,
                duration_ms=duration_ms,
            )
        )
        delivery = uow.session.scalar(
            select(Delivery).where(Delivery.id == claim.delivery_id).with_for_update()
        )
        assert delivery is not None
        # Re-delivered (or re-claimed after the lease ran out) meanwhile: the attempt is
        # logged but the newer state of the delivery stands.
        ours = delivery.status == PENDING and delivery.next_attempt_at == claim.lease_until
        if ours:
            now = clock()
            delivery.attempts += 1
            delivery.last_error = error
            if ok:
                delivery.status = DELIVERED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                delivery.remote_path = remote_path
                delivery.removed_at = None
            else:
                where = f"delivery {delivery.id} of {delivery.file_name} to {claim.target_name}"
                if delivery.attempts >= max_attempts:
                    delivery.status = FAILED
                    delivery.next_attempt_at = None
                    cause = f"{where} gave up after {delivery.attempts} attempts: {error}"
                else:
                    delivery.next_attempt_at = now + backoff(delivery.attempts)
                    cause = (
                        f"{where} failed (attempt {delivery.attempts} of {max_attempts}), "
                        f"retrying at {delivery.next_attempt_at.isoformat()}: {error}"
                    )
                # The first failure and the last: an operator hears of it early, and again
                # when it needs a hand (re-delivery), without an incident per retry.
                if delivery.attempts == 1 or delivery.status == FAILED:
                    uow.session.add(
                        Incident(
                            company_id=claim.company_id,
                            agreement_id=claim.agreement_id,
                            occurred_at=now,
                            kind=INCIDENT_KIND,
                            cause=cause[:2000],
                        )
                    )
            _refresh_settlement_status(uow, delivery.settlement_file_id)
        outcome = AttemptOutcome(
            delivery_id=delivery.id,
            file_name=delivery.file_name,
            target_name=claim.target_name,
            ok=ok,
            error=error,
            status=DeliveryStatus(delivery.status),
            next_attempt_at=delivery.next_attempt_at,
            superseded=not ours,
        )
        uow.commit()
    if ok:
        logger.info(
            "delivery %s of %s to %s: delivered%s",
            claim.delivery_id,
            claim.file_name,
            claim.target_name,
            "" if ours else " (superseded)",
        )
    else:
        logger.warning(
            "delivery %s of %s to %s failed: %s%s",
            claim.delivery_id,
            claim.file_name,
            claim.target_name,
            error,
            "" if ours else " (superseded)",
        )
    return outcome


def deliver_due(
    uow: UnitOfWork,
    settings: Settings,
    clock: Clock,
    limit: int = 20,
    *,
    max_attempts: int | None = None,
    on_attempt: Callable[[AttemptOutcome], None] | None = None,
) -> int:
    """Try up to `limit` due deliveries, one at a time; returns how many were tried."""
    max_attempts = max_attempts or settings.delivery_max_attempts
    tried = 0
    while tried < limit:
        claim = _claim(uow, settings, clock)
        if claim is None:
            break
        attempted_at = clock()
        started = time.monotonic()
        remote_path: str | None = None
        error: str | None = None
        try:
            remote_path = _send(claim, settings)
        except transfer.TransferError as exc:
            error = transfer.scrub(str(exc), claim.target.secret if claim.target else None)
        except Exception as exc:  # a bug must not leave the delivery claimed and unlogged
            logger.exception("delivery %s: unexpected error", claim.delivery_id)
            error = f"internal error ({type(exc).__name__})"
        duration_ms = max(0, int((time.monotonic() - started) * 1000))
        outcome = _record(
            uow,
            claim,
            remote_path,
            error,
            attempted_at,
            duration_ms,
            clock=clock,
            max_attempts=max_attempts,
        )
        tried += 1
        if on_attempt is not None:
            on_attempt(outcome)
    return tried


def count_due(uow: UnitOfWork, clock: Clock) -> int:
    """How many deliveries are due now (for progress displays)."""
    stmt = _due(clock()).limit(None).with_only_columns(Delivery.id)
    return _count(uow.session, stmt)


# --- re-delivery ---------------------------------------------------------------------------


def _reset(
    uow: UnitOfWork, delivery: Delivery, target: DeliveryTarget, *, actor: Actor, clock: Clock
) -> None:
    if not target.enabled:
        raise Conflict(f"delivery target {target.name!r} is disabled")
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = clock()
    delivery.delivered_at = None
    delivery.removed_at = None
    delivery.last_error = None
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=delivery.company_id,
        action="delivery.redelivery_requested",
        entity_type="delivery",
        entity_id=delivery.id,
        before=before,
        after={"status": PENDING},
    )


def redeliver(
    uow: UnitOfWork,
    company_id: int | None,
    *,
    delivery_id: int | None = None,
    settlement_file_id: int | None = None,
    actor: Actor,
    clock: Clock,
) -> list[DeliveryView]:
    """Send again, now, with a fresh attempt budget (the attempt log keeps the history):
    one delivery, or every delivery of a settlement file — plus a new one for each enabled
    target of its agreement that has none yet (a target added after the file was made)."""
    actor.require_write()
    if (delivery_id is None) == (settlement_file_id is None):
        raise ValidationFailed("give a delivery id or a settlement file id")
    ids: list[int] = []
    with uow:
        if delivery_id is not None:
            delivery = uow.session.scalar(
                select(Delivery).where(Delivery.id == delivery_id).with_for_update()
            )
            if (
                delivery is None
                or (company_id is not None and delivery.company_id != company_id)
                or not actor.can_see(delivery.company_id)
            ):
                raise NotFound(f"no delivery {delivery_id}")
            if delivery.settlement_file_id is not None:
                sf = uow.session.get(SettlementFile, delivery.settlement_file_id)
                if sf is not None and sf.deleted_at is not None:
                    raise Conflict(f"settlement file {sf.id} was removed by retention")
            target = uow.session.get(DeliveryTarget, delivery.target_id)
            assert target is not None
            _reset(uow, delivery, target, actor=actor, clock=clock)
            _refresh_settlement_status(uow, delivery.settlement_file_id)
            ids.append(delivery.id)
        else:
            sf = uow.session.scalar(
                select(SettlementFile)
                .where(SettlementFile.id == settlement_file_id)
                .with_for_update()
            )
            if (
                sf is None
                or (company_id is not None and sf.company_id != company_id)
                or not actor.can_see(sf.company_id)
            ):
                raise NotFound(f"no settlement file {settlement_file_id}")
            if sf.deleted_at is not None:
                raise Conflict(f"settlement file {sf.id} was removed by retention")
            existing = uow.session.scalars(
                select(Delivery)
                .where(Delivery.settlement_file_id == sf.id)
                .order_by(Delivery.id)
                .with_for_update()
            ).all()
            # The newest delivery per target: older ones are history.
            latest = {d.target_id: d for d in existing}
            for target in _agreement_targets(uow, sf):
                if target.id in latest:
                    _reset(uow, latest[target.id], target, actor=actor, clock=clock)
                    ids.append(latest[target.id].id)
                else:
                    created = _new_delivery(
                        uow,
                        company_id=sf.company_id,
                        target_id=target.id,
                        file_name=sf.file_name,
                        storage_path=sf.storage_path,
                        actor=actor,
                        clock=clock,
                        settlement_file_id=sf.id,
                    )
                    ids.append(created.id)
            if not ids:
                raise Conflict(
                    f"settlement file {sf.id} has no enabled delivery target to send it to"
                )
            _refresh_settlement_status(uow, sf.id)
        uow.commit()
    with UnitOfWork(uow.engine, write=False) as reader:
        return [get_delivery(reader, None, i) for i in ids]


# --- retention -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeResult:
    remote_removed: int  # deliveries whose remote copy was deleted (or replaced by a newer one)
    local_removed: int  # settlement files whose stored copy was deleted
    errors: tuple[str, ...]  # targets that could not be reached: tried again next time


@dataclass(frozen=True, slots=True)
class _Aged:
    delivery_id: int
    delivered_at: datetime
    file_name: str
    delete_remote: bool  # False: a newer delivery of the same name replaced it already


def _aged(d: Delivery, target: DeliveryTarget, now: datetime) -> bool:
    return (
        d.delivered_at is not None and d.delivered_at + timedelta(days=target.retention_days) <= now
    )


def purge(
    uow: UnitOfWork,
    settings: Settings,
    clock: Clock,
    *,
    actor: Actor,
    company_id: int | None = None,
) -> PurgeResult:
    """Apply retention: delete delivered files older than their target's `retention_days`
    from the remote directory (SFTP, local targets), then the local copy of each settlement
    file all of whose deliveries have aged out. Never touches a file not delivered.
    Idempotent, so two servers may run it at once; the network is used outside any
    transaction."""
    now = clock()
    plan: dict[int, list[_Aged]] = {}
    configs: dict[int, transfer.TargetConfig] = {}
    errors: list[str] = []
    with UnitOfWork(uow.engine, write=False) as reader:
        stmt = (
            select(Delivery, DeliveryTarget)
            .join(DeliveryTarget, DeliveryTarget.id == Delivery.target_id)
            .where(
                Delivery.status == DELIVERED,
                Delivery.removed_at.is_(None),
                Delivery.delivered_at <= now - timedelta(days=1),
                DeliveryTarget.kind.in_(("sftp", "local")),
            )
            .order_by(Delivery.id)
        )
        if company_id is not None:
            stmt = stmt.where(Delivery.company_id == company_id)
        for delivery, target in reader.session.execute(stmt).all():
            if not _aged(delivery, target, now):
                continue
            assert delivery.delivered_at is not None
            # The same name sent to the same target again: while that one is pending, wait
            # (deleting could remove the new copy); once it has arrived, the remote file is
            # the newer one and must stay.
            others = reader.session.execute(
                select(Delivery.status, Delivery.delivered_at).where(
                    Delivery.target_id == target.id,
                    Delivery.file_name == delivery.file_name,
                    Delivery.id != delivery.id,
                    Delivery.status.in_((PENDING, DELIVERED)),
                )
            ).all()
            if any(status == PENDING for status, _ in others):
                continue
            newer = any(at is not None and at > delivery.delivered_at for status, at in others)
            if target.id not in configs and not newer:
                try:
                    configs[target.id] = target_config(target, settings)
                except transfer.TransferError as exc:
                    errors.append(f"target {target.name}: {exc}")
                    continue
            plan.setdefault(target.id, []).append(
                _Aged(delivery.id, delivery.delivered_at, delivery.file_name, not newer)
            )
    removed: list[_Aged] = []
    for target_id, items in plan.items():
        to_delete = [a for a in items if a.delete_remote]
        if not to_delete:
            removed.extend(items)
            continue
        config = configs.get(target_id)
        if config is None:
            continue
        try:
            with transfer.open_directory(config) as directory:
                for aged in to_delete:
                    directory.delete(aged.file_name)
        except transfer.TransferError as exc:
            message = transfer.scrub(str(exc), config.secret)
            errors.append(message)
            logger.warning("retention on target %s failed: %s", target_id, message)
            continue
        removed.extend(items)
    local = 0
    with uow:
        for aged in removed:
            row = uow.session.scalar(
                select(Delivery).where(Delivery.id == aged.delivery_id).with_for_update()
            )
            if row is None or row.removed_at is not None:
                continue
            if row.status != DELIVERED or row.delivered_at != aged.delivered_at:
                # Sent again while we deleted: make sure the new copy is really there.
                if row.status == DELIVERED:
                    row.status = PENDING
                    row.attempts = 0
                    row.next_attempt_at = now
                continue
            row.removed_at = now
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=row.company_id,
                action="delivery.removed",
                entity_type="delivery",
                entity_id=row.id,
                after={"file_name": row.file_name, "remote_path": row.remote_path},
            )
        local = _purge_local(uow, settings, now, actor=actor, clock=clock, company_id=company_id)
        uow.commit()
    remote = len(removed)
    if remote or local:
        logger.info("retention: %s remote file(s) and %s stored file(s) removed", remote, local)
    return PurgeResult(remote, local, tuple(errors))


def _purge_local(
    uow: UnitOfWork,
    settings: Settings,
    now: datetime,
    *,
    actor: Actor,
    clock: Clock,
    company_id: int | None,
) -> int:
    """Mark settlement files whose every delivery has aged out as deleted, and remove their
    bytes once the transaction has committed."""
    stmt = (
        select(SettlementFile)
        .where(SettlementFile.deleted_at.is_(None), SettlementFile.status == "delivered")
        .order_by(SettlementFile.id)
        .with_for_update(skip_locked=True)
    )
    if company_id is not None:
        stmt = stmt.where(SettlementFile.company_id == company_id)
    done: list[SettlementFile] = []
    for sf in uow.session.scalars(stmt).all():
        pairs = uow.session.execute(
            select(Delivery, DeliveryTarget)
            .join(DeliveryTarget, DeliveryTarget.id == Delivery.target_id)
            .where(Delivery.settlement_file_id == sf.id)
        ).all()
        if not pairs:
            continue
        if all(
            d.status == DELIVERED
            and _aged(d, t, now)
            and (d.removed_at is not None or t.kind == "email")
            for d, t in pairs
        ):
            sf.deleted_at = now
            done.append(sf)
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=sf.company_id,
                action="settlement_file.deleted",
                entity_type="settlement_file",
                entity_id=sf.id,
                after={"file_name": sf.file_name, "storage_path": sf.storage_path},
            )
    uow.session.flush()
    data_dir = Path(settings.data_dir)
    for sf in done:
        # Identical bytes can be shared by several versions' rows: keep them while one lives.
        shared = uow.session.scalar(
            select(SettlementFile.id).where(
                SettlementFile.storage_path == sf.storage_path,
                SettlementFile.deleted_at.is_(None),
            )
        )
        if shared is None:
            uow.after_commit(_remover(data_dir, sf.storage_path))
    return len(done)


def _remover(data_dir: Path, relative_path: str) -> Callable[[], None]:
    return lambda: storage.remove(data_dir, relative_path)
