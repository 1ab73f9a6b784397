"""Company file exchange: an inbox of debts files and an outbox of payments files.

**Inbox.** A company drops its daily debts file in a directory Recaudo polls (an SFTP
directory or a local folder: a `DeliveryTarget` of kind `sftp` or `local`). Each new file
(by name and SHA-256) is imported once with the exchange's mode through
`imports.import_debts` (all or nothing), then moved to `processed/`; a file that fails
validation is moved to `rejected/` with its report beside it (`<name>.report.csv`, the
rejected rows, or `<name>.report.txt`, why the file could not be read). The report goes
by e-mail to the exchange's `report_recipients`.

- *Half-written files are not taken*: names starting with `.` or ending in `.part`,
  `.tmp`, `.filepart`, `.partial` or `.crdownload` are skipped, and so is any file
  modified less than `QUIET` (60 s) ago.
- *Once*: the `exchange_files` row (unique exchange, name, SHA-256) is inserted and
  committed before the import starts, so two servers polling the same inbox never import
  the same file twice; a claim left by a crashed server is taken over after
  `STALE_CLAIM`. The same file dropped again is filed away, not imported again.
- A transient failure (the portfolio changed during the import, a database error) gives
  the claim back and leaves the file where it is for the next poll; an incident records it.

**Outbox.** Every day at `write_time` (company local time) Recaudo writes the payments
file of that day (CSV, XLSX or a fixed-width layout), stores it and queues its delivery
(`deliveries.enqueue_file`) to the exchange's target. The file of day D holds the payments
recorded, or reversed, from D-1 at `write_time` up to D at `write_time`: consecutive files
never overlap and never leave a gap, whatever the payments' accounting dates. One file per
day, never twice; days missed while no server ran are written when one comes back (at most
`CATCH_UP_DAYS`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from recaudo.adapters import transfer
from recaudo.adapters.db.tables import (
    Allocation,
    ChannelAgreement,
    Company,
    Customer,
    Debt,
    DebtImport,
    Delivery,
    DeliveryTarget,
    ExchangeFile,
    FileExchange,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, RecaudoError, ValidationFailed
from recaudo.domain.ids import IdType, format_national_id
from recaudo.formats.tabular import Cell, write_table
from recaudo.services import audit, deliveries, incidents, storage
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.imports import ImportMode, ImportReport, import_debts, write_rejected_rows

logger = logging.getLogger("recaudo.exchange")

QUIET = timedelta(seconds=60)  # a file modified more recently may still be being written
STALE_CLAIM = timedelta(minutes=30)  # a claim this old belongs to a server that died
PARTIAL_SUFFIXES = (".part", ".tmp", ".filepart", ".partial", ".crdownload")
REPORT_SUFFIXES = (".report.csv", ".report.txt")
LATER, AGAIN = "later", "again"  # what became of an inbox file that was not imported now
DEFAULT_WRITE_TIME = time(23, 30)
CATCH_UP_DAYS = 7
MIN_POLL_SECONDS = 10
MAX_POLL_SECONDS = 86_400
MAX_RECIPIENTS = 20
ISSUES_IN_MAIL = 20
INCIDENT_KIND = "file_exchange"
TARGET_KINDS = {"inbox": ("sftp", "local"), "outbox": ("sftp", "local", "email")}
TABLE_FORMATS = ("csv", "xlsx")
# The payments file's columns (Spanish, like the debts file the company sends).
OUTBOX_HEADERS = (
    "id_cliente",
    "id_deuda",
    "vencimiento",
    "monto",
    "canal",
    "estado_pago",
    "fecha_contable",
    "id_pago",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


class Direction(StrEnum):
    INBOX = "inbox"
    OUTBOX = "outbox"


class FileStatus(StrEnum):
    PROCESSING = "processing"  # inbox: claimed, being imported
    IMPORTED = "imported"
    DUPLICATE = "duplicate"  # inbox: same content as a completed import; nothing changed
    REJECTED = "rejected"
    WRITTEN = "written"  # outbox: stored and queued for delivery


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """What configures an exchange (see `create_exchange`)."""

    name: str
    direction: Direction
    target: str | int  # the delivery target: its id, or its name
    import_mode: ImportMode | None = None  # inbox: default upsert
    file_format: str = "csv"  # outbox: csv | xlsx | a fixed-width layout name
    report_recipients: Sequence[str] = ()
    poll_seconds: int = 300
    write_time: time | None = None  # outbox: default 23:30 local
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ExchangeView:
    id: int
    company_id: int
    name: str
    direction: Direction
    target_id: int
    target_name: str
    target_kind: str
    import_mode: str | None
    file_format: str
    report_recipients: tuple[str, ...]
    poll_seconds: int
    write_time: time | None
    enabled: bool
    last_run_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ImportCounts:
    rows_total: int
    added: int
    updated: int
    unchanged: int
    cancelled: int
    conflicts: int
    rejected: int


@dataclass(frozen=True, slots=True)
class ExchangeFileView:
    id: int
    exchange_id: int
    file_name: str
    sha256: str
    status: FileStatus
    detail: str | None
    processed_at: datetime
    debt_import_id: int | None = None
    counts: ImportCounts | None = None  # inbox: the import's report
    accounting_date: date | None = None  # outbox: the day written
    delivery_status: str | None = None  # outbox: pending | delivered | failed


@dataclass(frozen=True, slots=True)
class RunResult:
    exchange_id: int
    name: str
    direction: Direction
    files: list[ExchangeFileView] = field(default_factory=list)
    skipped: int = 0  # inbox: files left for a later poll (being written, or failed)


# ------------------------------------------------------------------------- configuration


def create_exchange(
    uow: UnitOfWork,
    company_id: int,
    spec: ExchangeSpec,
    *,
    actor: Actor,
    clock: Clock,
    allow_layout_files: bool = False,
) -> ExchangeView:
    """Configure an inbox or an outbox of the company (admin)."""
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    name = spec.name.strip()
    if not _NAME.match(name):
        raise ValidationFailed("a name has 1 to 100 letters, digits, '.', '_' or '-'", field="name")
    try:
        direction = Direction(spec.direction)
    except ValueError:
        raise ValidationFailed("direction is inbox or outbox", field="direction") from None
    if not MIN_POLL_SECONDS <= spec.poll_seconds <= MAX_POLL_SECONDS:
        raise ValidationFailed(
            f"poll_seconds is between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS}",
            field="poll_seconds",
        )
    recipients = _recipients(spec.report_recipients)
    if direction is Direction.INBOX:
        mode = ImportMode(spec.import_mode or ImportMode.UPSERT)
        file_format, write_time = "csv", None  # the importer reads CSV and XLSX alike
    else:
        if spec.import_mode is not None:
            raise ValidationFailed("an outbox imports nothing: no import mode", field="import_mode")
        mode = None
        file_format = check_file_format(spec.file_format, allow_layout_files=allow_layout_files)
        write_time = (spec.write_time or DEFAULT_WRITE_TIME).replace(tzinfo=None)
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        target = _target_named(uow, company_id, spec.target)
        if target.kind not in TARGET_KINDS[direction]:
            allowed = " or ".join(TARGET_KINDS[direction])
            raise ValidationFailed(
                f"an {direction} uses a {allowed} target, not {target.kind}", field="target"
            )
        taken = uow.session.scalar(
            select(FileExchange.id).where(
                FileExchange.company_id == company_id, FileExchange.name == name
            )
        )
        if taken is not None:
            raise Conflict(f"the company already has an exchange named {name!r}")
        now = clock()
        exchange = FileExchange(
            company_id=company_id,
            name=name,
            direction=direction.value,
            target_id=target.id,
            import_mode=None if mode is None else mode.value,
            file_format=file_format,
            report_recipients=list(recipients),
            poll_seconds=spec.poll_seconds,
            write_time=write_time,
            enabled=spec.enabled,
            last_run_at=None,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(exchange)
        try:
            uow.session.flush()
        except IntegrityError:
            raise Conflict(f"the company already has an exchange named {name!r}") from None
        view = _view(exchange, target)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="file_exchange.created",
            entity_type="file_exchange",
            entity_id=exchange.id,
            after=_snapshot(view),
        )
        uow.commit()
    return view


@dataclass(frozen=True, slots=True)
class ExchangeChanges:
    """A partial update: None leaves a field as it is."""

    import_mode: ImportMode | None = None  # inbox
    file_format: str | None = None  # outbox
    report_recipients: Sequence[str] | None = None  # inbox
    poll_seconds: int | None = None  # inbox
    write_time: time | None = None  # outbox
    enabled: bool | None = None


def update_exchange(
    uow: UnitOfWork,
    company_id: int | None,
    exchange_id: int,
    changes: ExchangeChanges,
    *,
    actor: Actor,
    clock: Clock,
    allow_layout_files: bool = False,
) -> ExchangeView:
    """Change an exchange's settings or enable/disable it (admin). Files already handled
    keep their records: an outbox's written days are not written again."""
    actor.require(Role.ADMIN)
    with uow:
        exchange = _exchange_of(uow, company_id, exchange_id, for_update=True)
        if not actor.can_see(exchange.company_id):
            raise NotFound(f"no exchange {exchange_id}")
        target = uow.session.get(DeliveryTarget, exchange.target_id)
        assert target is not None
        before = _snapshot(_view(exchange, target))
        inbox = Direction(exchange.direction) is Direction.INBOX
        only = "inbox" if inbox else "outbox"
        for name, value in (
            ("import_mode", changes.import_mode if not inbox else None),
            ("report_recipients", changes.report_recipients if not inbox else None),
            ("poll_seconds", changes.poll_seconds if not inbox else None),
            ("file_format", changes.file_format if inbox else None),
            ("write_time", changes.write_time if inbox else None),
        ):
            if value is not None:
                other = "outbox" if inbox else "inbox"
                raise ValidationFailed(f"{name} is for an {other}, not an {only}", field=name)
        if changes.import_mode is not None:
            exchange.import_mode = ImportMode(changes.import_mode).value
        if changes.report_recipients is not None:
            exchange.report_recipients = list(_recipients(changes.report_recipients))
        if changes.poll_seconds is not None:
            if not MIN_POLL_SECONDS <= changes.poll_seconds <= MAX_POLL_SECONDS:
                raise ValidationFailed(
                    f"poll_seconds is between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS}",
                    field="poll_seconds",
                )
            exchange.poll_seconds = changes.poll_seconds
        if changes.file_format is not None:
            exchange.file_format = check_file_format(
                changes.file_format, allow_layout_files=allow_layout_files
            )
        if changes.write_time is not None:
            exchange.write_time = changes.write_time.replace(tzinfo=None)
        if changes.enabled is not None:
            exchange.enabled = changes.enabled
        view = _view(exchange, target)
        after = _snapshot(view)
        if after != before:
            exchange.updated_at = clock()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=exchange.company_id,
                action="file_exchange.updated",
                entity_type="file_exchange",
                entity_id=exchange.id,
                before={k: v for k, v in before.items() if after[k] != v},
                after={k: v for k, v in after.items() if before[k] != v},
            )
        uow.commit()
    return view


def check_file_format(file_format: str, *, allow_layout_files: bool = False) -> str:
    """`csv`, `xlsx`, or a fixed-width layout (a shipped name; a .toml/.yaml file only when
    `allow_layout_files`: the CLI, run by whoever administers the server) that can write
    the payments file: it has a `detail` record type."""
    value = file_format.strip()
    if value.lower() in TABLE_FORMATS:
        return value.lower()
    from recaudo.formats import fixedwidth

    if not allow_layout_files and value not in fixedwidth.available_layouts():
        shipped = ", ".join(fixedwidth.available_layouts())
        raise ValidationFailed(
            f"file_format is csv, xlsx or a layout ({shipped})", field="file_format"
        )
    try:
        layout = fixedwidth.load_layout(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="file_format") from None
    if "detail" not in layout.records:
        raise ValidationFailed(
            f"layout {layout.name} has no detail record type", field="file_format"
        )
    return value


def list_exchanges(uow: UnitOfWork, company_id: int | None) -> list[ExchangeView]:
    """The company's exchanges (every company's when `company_id` is None: the CLI)."""
    stmt = select(FileExchange, DeliveryTarget).join(
        DeliveryTarget, DeliveryTarget.id == FileExchange.target_id
    )
    if company_id is not None:
        stmt = stmt.where(FileExchange.company_id == company_id)
    rows = uow.session.execute(stmt.order_by(FileExchange.id)).all()
    return [_view(e, t) for e, t in rows]


def get_exchange(uow: UnitOfWork, company_id: int | None, exchange_id: int) -> ExchangeView:
    exchange = _exchange_of(uow, company_id, exchange_id)
    target = uow.session.get(DeliveryTarget, exchange.target_id)
    assert target is not None
    return _view(exchange, target)


def find_exchange(uow: UnitOfWork, company_id: int, name: str) -> ExchangeView:
    exchange = uow.session.scalar(
        select(FileExchange).where(FileExchange.company_id == company_id, FileExchange.name == name)
    )
    if exchange is None:
        raise NotFound(f"no exchange named {name!r}")
    return get_exchange(uow, company_id, exchange.id)


def remove_exchange(
    uow: UnitOfWork, company_id: int | None, exchange_id: int, *, actor: Actor, clock: Clock
) -> ExchangeView:
    """Delete an exchange and its file records (admin). Deliveries already queued stay and
    lose only their link to the record; stored files stay until retention removes them."""
    actor.require(Role.ADMIN)
    with uow:
        exchange = _exchange_of(uow, company_id, exchange_id, for_update=True)
        if not actor.can_see(exchange.company_id):
            raise NotFound(f"no exchange {exchange_id}")
        target = uow.session.get(DeliveryTarget, exchange.target_id)
        assert target is not None
        view = _view(exchange, target)
        files = select(ExchangeFile.id).where(ExchangeFile.exchange_id == exchange.id)
        uow.session.execute(
            update(Delivery)
            .where(Delivery.exchange_file_id.in_(files.scalar_subquery()))
            .values(exchange_file_id=None)
        )
        uow.session.execute(delete(ExchangeFile).where(ExchangeFile.exchange_id == exchange.id))
        uow.session.delete(exchange)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=view.company_id,
            action="file_exchange.removed",
            entity_type="file_exchange",
            entity_id=view.id,
            before=_snapshot(view),
        )
        uow.commit()
    return view


def list_files(
    uow: UnitOfWork,
    company_id: int | None,
    exchange_id: int,
    *,
    status: FileStatus | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[ExchangeFileView], int]:
    """The files an exchange processed or wrote, newest first, and how many there are."""
    _exchange_of(uow, company_id, exchange_id)
    base = select(ExchangeFile).where(ExchangeFile.exchange_id == exchange_id)
    if status is not None:
        base = base.where(ExchangeFile.status == status.value)
    total = int(
        uow.session.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0
    )
    rows = uow.session.scalars(
        base.order_by(ExchangeFile.id.desc()).offset(offset).limit(limit)
    ).all()
    return [_file_view(uow, f) for f in rows], total


def get_file(
    uow: UnitOfWork, company_id: int | None, exchange_id: int, file_id: int
) -> ExchangeFileView:
    return _file_view(uow, _file_of(uow, company_id, exchange_id, file_id))


def file_report(
    uow: UnitOfWork, company_id: int | None, exchange_id: int, file_id: int
) -> tuple[str, bytes]:
    """An inbox file's report as (name, bytes): the rejected rows as CSV when the import
    rejected rows, else a text page with the outcome."""
    with uow:
        record = _file_of(uow, company_id, exchange_id, file_id)
        if record.status in (FileStatus.WRITTEN, FileStatus.PROCESSING):
            raise NotFound(f"file {file_id} has no report")
        view = _file_view(uow, record)
        owner = record.company_id
    if view.counts is not None and view.counts.rejected and view.debt_import_id is not None:
        out = io.BytesIO()
        write_rejected_rows(uow, owner, view.debt_import_id, out)
        return f"{view.file_name}.report.csv", out.getvalue()
    return f"{view.file_name}.report.txt", _report_text(view).encode("utf-8")


# ------------------------------------------------------------------------------ running


def run_exchange(
    uow: UnitOfWork,
    company_id: int | None,
    exchange_id: int,
    *,
    settings: Settings,
    actor: Actor,
    clock: Clock,
    day: date | None = None,
) -> RunResult:
    """Run one exchange now: poll the inbox, or write the outbox's due days (or `day`)."""
    actor.require_write()
    with uow:
        exchange = _exchange_of(uow, company_id, exchange_id)
        if not actor.can_see(exchange.company_id):
            raise NotFound(f"no exchange {exchange_id}")
        direction = Direction(exchange.direction)
    if direction is Direction.INBOX:
        if day is not None:
            raise ValidationFailed("a date is only for an outbox", field="date")
        try:
            return poll_inbox(uow, exchange_id, settings=settings, actor=actor, clock=clock)
        except transfer.TransferError as exc:  # the server is down, the login refused ...
            raise Conflict(f"the inbox cannot be read: {exc}") from None
    return write_outbox(uow, exchange_id, settings=settings, actor=actor, clock=clock, day=day)


def run_due(uow: UnitOfWork, *, settings: Settings, clock: Clock) -> int:
    """The periodic job: poll each enabled inbox whose `poll_seconds` have passed and write
    each outbox's due days. Safe on several servers at once. Returns the files handled."""
    with uow:
        ids = uow.session.execute(
            select(FileExchange.id, FileExchange.company_id, FileExchange.name)
            .where(FileExchange.enabled.is_(True))
            .order_by(FileExchange.id)
        ).all()
    done = 0
    for exchange_id, company_id, name in ids:
        actor = Actor(f"exchange:{name}", Role.ADMIN, company_id)
        try:
            if _claim_poll(uow, exchange_id, clock):
                result = run_exchange(
                    uow, company_id, exchange_id, settings=settings, actor=actor, clock=clock
                )
                done += len(result.files)
        except Exception as exc:  # one exchange's failure must not stop the others
            if isinstance(exc, RecaudoError):  # expected (an inbox unreachable): no traceback
                logger.warning("file exchange %s failed: %s", exchange_id, exc.message)
            else:
                logger.exception("file exchange %s failed", exchange_id)
            _incident(uow, company_id, f"exchange {name}: {_safe(exc)}", clock)
    return done


def _claim_poll(uow: UnitOfWork, exchange_id: int, clock: Clock) -> bool:
    """Whether this server should run the exchange now (compare-and-set on last_run_at).

    An inbox is due every `poll_seconds`; an outbox when a day's file is due. Two
    servers racing update the same `last_run_at` value: only one sees its update land.
    """
    with uow:
        exchange = uow.session.get(FileExchange, exchange_id)
        if exchange is None or not exchange.enabled:
            return False
        now = clock()
        last = exchange.last_run_at
        # An outbox too waits `poll_seconds` after a run: a write that fails (and is an
        # incident) is retried at that pace, not at every tick of the job.
        if last is not None and now < last + timedelta(seconds=exchange.poll_seconds):
            return False
        if Direction(exchange.direction) is Direction.OUTBOX:
            company = uow.session.get(Company, exchange.company_id)
            assert company is not None
            if not _days_due(uow, exchange, company, now):
                return False
        claimed = uow.session.execute(
            update(FileExchange)
            .where(
                FileExchange.id == exchange_id,
                FileExchange.last_run_at.is_(None)
                if last is None
                else FileExchange.last_run_at == last,
            )
            .values(last_run_at=now)
            .execution_options(synchronize_session=False)
        )
        uow.commit()
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


# -------------------------------------------------------------------------------- inbox


@dataclass(frozen=True, slots=True)
class _Inbox:
    id: int
    company_id: int
    company_slug: str
    name: str
    mode: ImportMode
    recipients: tuple[str, ...]
    target: transfer.TargetConfig


def poll_inbox(
    uow: UnitOfWork, exchange_id: int, *, settings: Settings, actor: Actor, clock: Clock
) -> RunResult:
    """Look at the inbox once: import every new, settled file and file it away."""
    actor.require_write()
    with uow:
        exchange = _exchange_of(uow, None, exchange_id)
        if Direction(exchange.direction) is not Direction.INBOX:
            raise ValidationFailed(f"exchange {exchange_id} is not an inbox")
        company = uow.session.get(Company, exchange.company_id)
        target = uow.session.get(DeliveryTarget, exchange.target_id)
        assert company is not None and target is not None
        inbox = _Inbox(
            id=exchange.id,
            company_id=exchange.company_id,
            company_slug=company.slug,
            name=exchange.name,
            mode=ImportMode(exchange.import_mode or ImportMode.UPSERT),
            recipients=tuple(exchange.report_recipients or ()),
            target=deliveries.target_config(target, settings),
        )
        exchange.last_run_at = clock()
        uow.commit()
    result = RunResult(inbox.id, inbox.name, Direction.INBOX)
    skipped = 0
    with transfer.open_directory(inbox.target) as directory:
        for remote in sorted(directory.list_files(), key=lambda f: (f.modified_at, f.name)):
            if not _settled(remote, clock()):
                skipped += 1
                continue
            if remote.size > settings.max_upload_bytes:  # the API's limit for a debts file
                logger.warning(
                    "exchange %s: %s has %s bytes, more than %s: left in place",
                    *(inbox.id, remote.name, remote.size, settings.max_upload_bytes),
                )
                skipped += 1
                continue
            try:
                handled = _take(uow, inbox, directory, remote.name, settings, actor, clock)
            except transfer.TransferError as exc:  # gone meanwhile, unreadable: next poll
                logger.warning("exchange %s: %s", inbox.id, exc)
                handled = LATER
            if handled == LATER:
                skipped += 1
            elif isinstance(handled, ExchangeFileView):
                result.files.append(handled)
    return RunResult(result.exchange_id, result.name, result.direction, result.files, skipped)


def _settled(remote: transfer.RemoteFile, now: datetime) -> bool:
    """Whether a file is complete: not a temporary name, not modified within `QUIET`."""
    name = remote.name.lower()
    if name.startswith(".") or name.endswith(PARTIAL_SUFFIXES + REPORT_SUFFIXES):
        return False
    modified = remote.modified_at
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return modified <= now - QUIET


def _take(
    uow: UnitOfWork,
    inbox: _Inbox,
    directory: transfer.RemoteDirectory,
    name: str,
    settings: Settings,
    actor: Actor,
    clock: Clock,
) -> ExchangeFileView | str:
    """Import one file: the view of its record; `AGAIN` when it had been handled before
    (filed away again); `LATER` when it stays for a later poll."""
    data = directory.read(name)
    digest = hashlib.sha256(data).hexdigest()
    claim = _claim_file(uow, inbox, name, digest, clock)
    if isinstance(claim, FileStatus):  # seen before: only file it away
        logger.info("exchange %s: %s was already %s; filed away", inbox.id, name, claim)
        _file_away(directory, name, claim, None, inbox)
        return AGAIN
    if claim is None:
        return LATER
    try:
        report = _import(uow, inbox, name, data, claim, settings, actor, clock)
    except ValidationFailed as exc:  # not a readable debts file: nothing was recorded
        view = _finish(uow, inbox, claim, FileStatus.REJECTED, None, exc.message, actor, clock)
        text = (f"{name}.report.txt", _report_text(view).encode("utf-8"))
        _file_away(directory, name, FileStatus.REJECTED, text, inbox)
        _mail(uow, inbox, view, None, text, settings, clock)
        return view
    except Exception as exc:  # transient: give the claim back, try again next poll
        _release(uow, claim)
        logger.warning("exchange %s: %s left for the next poll: %s", inbox.id, name, _safe(exc))
        _incident(uow, inbox.company_id, f"exchange {inbox.name}: {name}: {_safe(exc)}", clock)
        return LATER
    status = {
        "completed": FileStatus.IMPORTED,
        "duplicate": FileStatus.DUPLICATE,
    }.get(report.status, FileStatus.REJECTED)
    import_id = report.duplicate_of if status is FileStatus.DUPLICATE else report.import_id
    detail = _summary(report)
    view = _finish(uow, inbox, claim, status, import_id, detail, actor, clock)
    report_file: tuple[str, bytes] | None = None
    if status is FileStatus.REJECTED and import_id is not None:
        out = io.BytesIO()
        write_rejected_rows(uow, inbox.company_id, import_id, out)
        report_file = (f"{name}.report.csv", out.getvalue())
    _file_away(directory, name, status, report_file, inbox)
    _mail(uow, inbox, view, report, report_file, settings, clock)
    return view


def _claim_file(
    uow: UnitOfWork, inbox: _Inbox, name: str, digest: str, clock: Clock
) -> int | FileStatus | None:
    """Insert the file's record before importing it: its id when this server takes the
    file; the final status when it was handled before; None when another server has it."""
    with uow:
        now = clock()
        found = uow.session.scalar(
            select(ExchangeFile)
            .where(
                ExchangeFile.exchange_id == inbox.id,
                ExchangeFile.file_name == name,
                ExchangeFile.sha256 == digest,
            )
            .with_for_update(skip_locked=True)
        )
        if found is not None:
            if found.status != FileStatus.PROCESSING:
                return FileStatus(found.status)
            if found.processed_at > now - STALE_CLAIM:
                return None
            found.processed_at = now  # its server died mid-import: take it over
            uow.commit()
            return found.id
        record = ExchangeFile(
            exchange_id=inbox.id,
            company_id=inbox.company_id,
            file_name=name,
            sha256=digest,
            status=FileStatus.PROCESSING.value,
            processed_at=now,
        )
        uow.session.add(record)
        try:
            uow.session.flush()
        except IntegrityError:  # another server inserted it first
            return None
        uow.commit()
        return record.id


def _release(uow: UnitOfWork, file_id: int) -> None:
    with uow:
        uow.session.execute(
            delete(ExchangeFile).where(
                ExchangeFile.id == file_id, ExchangeFile.status == FileStatus.PROCESSING.value
            )
        )
        uow.commit()


def _import(
    uow: UnitOfWork,
    inbox: _Inbox,
    name: str,
    data: bytes,
    file_id: int,
    settings: Settings,
    actor: Actor,
    clock: Clock,
) -> ImportReport:
    """The importer reads a path: spool the bytes under the data directory meanwhile."""
    spool = Path(settings.data_dir) / "spool" / "exchange"
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{file_id}-{uuid.uuid4().hex}"
    path.write_bytes(data)
    try:
        return import_debts(
            uow, inbox.company_id, path, mode=inbox.mode, actor=actor, clock=clock, file_name=name
        )
    finally:
        path.unlink(missing_ok=True)


def _finish(
    uow: UnitOfWork,
    inbox: _Inbox,
    file_id: int,
    status: FileStatus,
    import_id: int | None,
    detail: str,
    actor: Actor,
    clock: Clock,
) -> ExchangeFileView:
    with uow:
        record = uow.session.get(ExchangeFile, file_id)
        assert record is not None
        record.status = status.value
        record.debt_import_id = import_id
        record.detail = detail
        record.processed_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=inbox.company_id,
            action=f"exchange_file.{status.value}",
            entity_type="exchange_file",
            entity_id=record.id,
            after={"exchange_id": inbox.id, "file_name": record.file_name, "detail": detail},
        )
        uow.commit()
        view = _file_view(uow, record)
    logger.info("exchange %s: %s %s (%s)", inbox.id, view.file_name, status.value, detail)
    return view


def _file_away(
    directory: transfer.RemoteDirectory,
    name: str,
    status: FileStatus,
    report: tuple[str, bytes] | None,
    inbox: _Inbox,
) -> None:
    """Move the file to processed/ or rejected/ (its report beside it). A failure here is
    logged only: the record is final, so the next poll files the file away again."""
    subdir = "rejected" if status is FileStatus.REJECTED else "processed"
    try:
        if report is not None:
            directory.write(report[0], report[1])
            directory.move(report[0], subdir)
        directory.move(name, subdir)
    except transfer.TransferError as exc:
        logger.warning("exchange %s: could not move %s to %s/: %s", inbox.id, name, subdir, exc)


def _summary(report: ImportReport) -> str:
    if report.status == "duplicate":
        return f"same content as import {report.duplicate_of}: nothing changed"
    counts = ", ".join(
        f"{getattr(report, n)} {n}"
        for n in ("rows_total", "added", "updated", "cancelled", "conflicts", "rejected")
    )
    verb = "imported" if report.status == "completed" else "rejected, nothing imported"
    return f"{verb} ({report.mode}): {counts.replace('rows_total', 'rows')}"


def _report_text(view: ExchangeFileView) -> str:
    lines = [f"File: {view.file_name}", f"SHA-256: {view.sha256}", f"Status: {view.status}"]
    if view.detail:
        lines.append(f"Detail: {view.detail}")
    if view.debt_import_id is not None:
        lines.append(f"Import: {view.debt_import_id}")
    return "\n".join(lines) + "\n"


def _mail(
    uow: UnitOfWork,
    inbox: _Inbox,
    view: ExchangeFileView,
    report: ImportReport | None,
    attachment: tuple[str, bytes] | None,
    settings: Settings,
    clock: Clock,
) -> None:
    """E-mail the outcome to the exchange's recipients through the company's mail target:
    its enabled e-mail target not bound to an agreement, the oldest if several."""
    if not inbox.recipients:
        return
    config: transfer.TargetConfig | None = None
    problem = "no e-mail target to send the report of"
    with uow:
        target = deliveries.company_mail_target(uow, inbox.company_id)
        if target is not None:
            try:
                config = deliveries.target_config(target, settings)
            except transfer.TransferError as exc:
                problem = f"{exc}; no report sent for"
    subject = f"Recaudo {inbox.company_slug}: {view.file_name} {view.status}"
    try:
        if config is None:
            raise transfer.TransferError(f"{problem} {view.file_name}")
        transfer.send_mail(
            config,
            list(inbox.recipients),
            subject,
            _mail_body(inbox, view, report),
            [attachment] if attachment is not None else [],
        )
    except transfer.TransferError as exc:
        cause = f"exchange {inbox.name}: report e-mail: {exc}"
        logger.warning("%s", cause)
        _incident(uow, inbox.company_id, cause, clock)


def _mail_body(inbox: _Inbox, view: ExchangeFileView, report: ImportReport | None) -> str:
    lines = [
        f"Exchange: {inbox.name}",
        f"File: {view.file_name}",
        f"SHA-256: {view.sha256}",
        f"Status: {view.status}",
        f"Mode: {inbox.mode}",
    ]
    if report is not None and report.status != "duplicate":
        for key in ("rows_total", "added", "updated", "unchanged", "cancelled"):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {getattr(report, key)}")
        lines += [f"Conflicts: {report.conflicts}", f"Rejected: {report.rejected}"]
        if report.import_id is not None:
            lines.append(f"Import: {report.import_id}")
        if report.issues:
            lines.append("")
            lines.append("Issues:")
            for issue in report.issues[:ISSUES_IN_MAIL]:
                column = f" [{issue.column}]" if issue.column else ""
                lines.append(f"  row {issue.row_number}{column} {issue.kind}: {issue.reason}")
            extra = report.rejected + report.conflicts - min(len(report.issues), ISSUES_IN_MAIL)
            if extra > 0:
                lines.append(f"  ... and {extra} more (see the attachment or the API)")
    elif view.detail:
        lines.append(f"Detail: {view.detail}")
    if view.status is FileStatus.REJECTED:
        lines += ["", "Nothing was imported. The file was moved to rejected/ with its report."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- outbox


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One line of the payments file: one debt a payment paid (or its unapplied rest)."""

    customer_id: str
    debt_id: str
    due_date: date | None
    amount: Decimal
    amount_minor: int
    channel: str
    payment_state: str
    accounting_date: date | None
    payment_id: int
    # For fixed-width layouts that want them (see `_detail_values`).
    customer_name: str = ""
    payment_minor: int = 0
    debts_in_payment: int = 0
    paid_at: datetime | None = None  # company local time
    transaction_id: str = ""
    convenio: str = ""  # the agreement's, for a payment through a bank channel agreement


def write_outbox(
    uow: UnitOfWork,
    exchange_id: int,
    *,
    settings: Settings,
    actor: Actor,
    clock: Clock,
    day: date | None = None,
) -> RunResult:
    """Write the payments file of `day`, or of every due day not written yet."""
    actor.require_write()
    with uow:
        exchange = _exchange_of(uow, None, exchange_id)
        if Direction(exchange.direction) is not Direction.OUTBOX:
            raise ValidationFailed(f"exchange {exchange_id} is not an outbox")
        company = uow.session.get(Company, exchange.company_id)
        assert company is not None
        now = clock()
        if day is None:
            days = _days_due(uow, exchange, company, now)
        else:
            closes = _window(company, exchange, day)[1]
            if closes > now:
                raise ValidationFailed(
                    f"the file of {day} can be written from {closes.isoformat()} on", field="date"
                )
            days = [day]
        name = exchange.name
    result = RunResult(exchange_id, name, Direction.OUTBOX)
    for each in days:
        view = _write_day(uow, exchange_id, each, settings=settings, actor=actor, clock=clock)
        if view is not None:
            result.files.append(view)
    return result


def _days_due(
    uow: UnitOfWork, exchange: FileExchange, company: Company, now: datetime
) -> list[date]:
    """Days whose window has closed and whose file is missing, oldest first (bounded)."""
    tz = ZoneInfo(company.timezone)
    write_time = exchange.write_time or DEFAULT_WRITE_TIME
    local_now = now.astimezone(tz)
    last = local_now.date() if local_now.time() >= write_time else local_now.date() - _DAY
    first = max(exchange.created_at.astimezone(tz).date(), last - _DAY * (CATCH_UP_DAYS - 1))
    if last < first:
        return []
    written = set(
        uow.session.scalars(
            select(ExchangeFile.accounting_date).where(
                ExchangeFile.exchange_id == exchange.id,
                ExchangeFile.accounting_date >= first,
            )
        )
    )
    days = [first + _DAY * n for n in range((last - first).days + 1)]
    return [d for d in days if d not in written]


_DAY = timedelta(days=1)


def _window(company: Company, exchange: FileExchange, day: date) -> tuple[datetime, datetime]:
    """[D-1 at write_time, D at write_time) in UTC, from the company's local clock."""
    tz = ZoneInfo(company.timezone)
    at = exchange.write_time or DEFAULT_WRITE_TIME
    start = datetime.combine(day - _DAY, at, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    return start, end


def _write_day(
    uow: UnitOfWork,
    exchange_id: int,
    day: date,
    *,
    settings: Settings,
    actor: Actor,
    clock: Clock,
) -> ExchangeFileView | None:
    with uow:
        # The row lock serialises two servers on PostgreSQL; SQLite writes one at a time.
        exchange = uow.session.scalar(
            select(FileExchange).where(FileExchange.id == exchange_id).with_for_update()
        )
        assert exchange is not None
        written = uow.session.scalar(
            select(ExchangeFile.id).where(
                ExchangeFile.exchange_id == exchange_id, ExchangeFile.accounting_date == day
            )
        )
        if written is not None:
            return None  # one file per day, never twice
        company = uow.session.get(Company, exchange.company_id)
        assert company is not None
        rows = payment_rows(uow, company, *_window(company, exchange, day))
        data = encode_payments(
            rows, exchange.file_format, company, day, convenio=_company_convenio(uow, company)
        )
        name = outbox_file_name(company.slug, exchange.file_format, day)
        relative = f"files/exchanges/{company.id}/{exchange.id}/{name}"
        digest = storage.store_bytes(settings.data_dir, relative, data)
        record = ExchangeFile(
            exchange_id=exchange.id,
            company_id=company.id,
            file_name=name,
            sha256=digest,
            status=FileStatus.WRITTEN.value,
            accounting_date=day,
            storage_path=relative,
            detail=f"{len(rows)} lines, {len({r.payment_id for r in rows})} payments",
            processed_at=clock(),
        )
        uow.session.add(record)
        uow.session.flush()
        deliveries.enqueue_file(
            uow,
            company_id=company.id,
            target_id=exchange.target_id,
            file_name=name,
            storage_path=relative,
            actor=actor,
            clock=clock,
            exchange_file_id=record.id,
        )
        exchange.last_run_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="exchange_file.written",
            entity_type="exchange_file",
            entity_id=record.id,
            after={"exchange_id": exchange.id, "file_name": name, "day": day, "sha256": digest},
        )
        uow.commit()
        view = _file_view(uow, record)
    logger.info("exchange %s: wrote %s (%s)", exchange_id, name, view.detail)
    return view


def payment_rows(
    uow: UnitOfWork, company: Company, start: datetime, end: datetime
) -> list[PaymentRow]:
    """The payments recorded or reversed in [start, end): one row per debt each paid, plus
    one row without a debt for any amount not applied to a debt (credit, exception)."""
    in_window = or_(
        (Payment.created_at >= start) & (Payment.created_at < end),
        (Payment.reversed_at >= start) & (Payment.reversed_at < end),
    )
    payments = uow.session.execute(
        select(
            Payment,
            Customer.id_type,
            Customer.national_id,
            Customer.name,
            ChannelAgreement.convenio,
        )
        .outerjoin(Customer, Customer.id == Payment.customer_id)
        .outerjoin(ChannelAgreement, ChannelAgreement.id == Payment.agreement_id)
        .where(Payment.company_id == company.id, in_window)
        .order_by(Payment.id)
    ).all()
    if not payments:
        return []
    ids = [p.id for p, *_ in payments]
    tz = ZoneInfo(company.timezone)
    allocations: dict[int, list[tuple[int, str, date]]] = {}
    for payment_id, amount, external_id, due in uow.session.execute(
        select(Allocation.payment_id, Allocation.amount_minor, Debt.external_id, Debt.due_date)
        .join(Debt, Debt.id == Allocation.debt_id)
        .where(Allocation.payment_id.in_(ids))
        .order_by(Allocation.payment_id, Allocation.id)
    ):
        allocations.setdefault(payment_id, []).append((amount, external_id, due))
    rows: list[PaymentRow] = []
    for p, id_type, national_id, customer_name, convenio in payments:
        applied = allocations.get(p.id, [])
        rest = p.amount_minor - sum(a for a, _, _ in applied)
        parts: list[tuple[int, str, date | None]] = [*applied]
        if rest > 0:
            parts.append((rest, "", None))
        base = PaymentRow(
            customer_id="" if national_id is None else _customer_id(id_type, national_id),
            debt_id="",
            due_date=None,
            amount=Decimal(0),
            amount_minor=0,
            channel=p.channel,
            payment_state=p.status,
            accounting_date=p.accounting_date,
            payment_id=p.id,
            customer_name=customer_name or "",
            payment_minor=p.amount_minor,
            # Lines of this payment, as the settlement files count *Cuota* (the unapplied
            # rest is a line of its own).
            debts_in_payment=len(parts),
            paid_at=p.paid_at.astimezone(tz).replace(tzinfo=None),
            transaction_id=p.external_id,
            convenio=convenio or "",
        )
        for minor, debt_id, due_date in parts:
            decimal = money.from_minor(minor, p.currency)
            rows.append(
                replace(
                    base, debt_id=debt_id, due_date=due_date, amount=decimal, amount_minor=minor
                )
            )
    return rows


def _customer_id(id_type: str, national_id: str) -> str:
    try:
        return format_national_id(IdType(id_type), national_id)
    except Exception:  # an id that no longer formats is shown as stored
        return national_id


def outbox_file_name(slug: str, file_format: str, day: date) -> str:
    suffix = file_format if file_format in TABLE_FORMATS else "txt"
    return f"pagos_{slug}_{day:%Y%m%d}.{suffix}"


def encode_payments(
    rows: Sequence[PaymentRow], file_format: str, company: Company, day: date, convenio: str = ""
) -> bytes:
    """The file's bytes: CSV/XLSX with `OUTBOX_HEADERS`, or a fixed-width layout whose
    `detail` records take the attributes `customer_id`, `debt_id`, `due_date`, `amount`
    (minor units), `channel`, `payment_state`, `accounting_date`, `payment_id`, `sequence`
    (and the settlement writer's names, see `_detail_values`); `convenio` is the header's."""
    if file_format in TABLE_FORMATS:
        out = io.BytesIO()
        write_table(OUTBOX_HEADERS, _table_rows(rows), file_format, out)
        return out.getvalue()
    return _fixed_width(rows, file_format, company, day, convenio)


def _table_rows(rows: Sequence[PaymentRow]) -> Iterator[list[Cell]]:
    for r in rows:
        yield [
            r.customer_id,
            r.debt_id,
            r.due_date,
            r.amount,
            r.channel,
            r.payment_state,
            r.accounting_date,
            r.payment_id,
        ]


def _fixed_width(
    rows: Sequence[PaymentRow], layout_name: str, company: Company, day: date, convenio: str
) -> bytes:
    from recaudo.formats import fixedwidth

    layout = fixedwidth.load_layout(layout_name)
    common: dict[str, Any] = {
        "company_name": company.legal_name,
        "company_rut": _rut_body(company.tax_id or ""),
        "company_rut_dv": _rut_dv(company.tax_id or ""),
        "convenio": convenio,
        "accounting_date": day,
        "generated_date": day,
        "generated_time": time(0, 0),
        "record_count": len(rows),
        "payment_count": len({r.payment_id for r in rows}),
        "total_amount": sum(r.amount_minor for r in rows),
    }
    # A header when the layout has one, then the details; no control record (settlement
    # layouts make it optional, and a company layout can carry the totals in its header).
    records = (
        [fixedwidth.Record("header", _none_as_zero(layout, "header", common))]
        if "header" in layout.records
        else []
    )
    records += [
        fixedwidth.Record("detail", _none_as_zero(layout, "detail", _detail_values(r, n, day)))
        for n, r in enumerate(rows, 1)
    ]
    try:
        return layout.dumps(records)
    except ValueError as exc:
        raise ValidationFailed(
            f"the layout {layout_name!r} cannot write this file: {exc}"
        ) from None


def _detail_values(r: PaymentRow, sequence: int, day: date) -> dict[str, object]:
    """A detail record's attributes: the outbox's own names, plus the settlement writer's
    names for the same facts, so that a settlement layout can be used as is. Fixed-width
    fields rarely may be empty: a payment without a bank accounting date gets the file's."""
    return {
        "customer_id": r.customer_id,
        "debt_id": r.debt_id,
        "due_date": r.due_date,
        "amount": r.amount_minor,
        "channel": r.channel,
        "payment_state": r.payment_state,
        "accounting_date": r.accounting_date or day,
        "payment_id": r.payment_id,
        "sequence": sequence,
        "rut": _rut_body(r.customer_id),
        "rut_dv": _rut_dv(r.customer_id),
        "customer_name": r.customer_name,
        "reference": r.debt_id,
        "debt_amount": r.amount_minor,
        "payment_amount": r.payment_minor,
        "debts_in_payment": r.debts_in_payment,
        "paid_date": None if r.paid_at is None else r.paid_at.date(),
        "paid_time": None if r.paid_at is None else r.paid_at.time().replace(microsecond=0),
        "transaction_id": r.transaction_id,
        "convenio": r.convenio,
    }


# Facts Recaudo may not have for a line: the payer's RUT (a payer nobody knows, or a
# customer with another kind of id), the debt (money no debt took: credit, an exception),
# the agreement (an office payment), the company's RUT. Where the layout REQUIRES such a
# field it gets a zero, which is how a zero-filled bank field says "none" (the settlement
# files do the same); a field the layout lets be empty stays blank.
NONE_AS_ZERO = frozenset(
    {"rut", "rut_dv", "customer_id", "debt_id", "reference", "convenio"}
    | {"company_rut", "company_rut_dv"}
)


def _none_as_zero(layout: Any, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    for f in layout.records[kind].fields:
        attribute = f.source or f.name
        if (
            attribute in NONE_AS_ZERO
            and values.get(attribute) in ("", None)
            and not f.null
            and f.value is None
            and f.type in ("Num", "Alfa")
        ):
            values[attribute] = 0 if f.type == "Num" else "0"
    return values


def _company_convenio(uow: UnitOfWork, company: Company) -> str:
    """The header's agreement number: the company's one bank channel agreement's; with
    none or several there is no single one (each detail names its own)."""
    convenios = uow.session.scalars(
        select(ChannelAgreement.convenio).where(ChannelAgreement.company_id == company.id).limit(2)
    ).all()
    return convenios[0] if len(convenios) == 1 else ""


def _rut_body(text: str) -> str:
    body = text.replace(".", "").rpartition("-")[0]
    return body if body.isdigit() else ""


def _rut_dv(text: str) -> str:
    return text.rpartition("-")[2] if _rut_body(text) else ""


# ------------------------------------------------------------------------------ helpers


def _recipients(values: Sequence[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for value in values:
        address = value.strip()
        if not address:
            continue
        if len(address) > 254 or not _EMAIL.match(address):
            raise ValidationFailed(
                f"{address!r} is not an e-mail address", field="report_recipients"
            )
        if address not in cleaned:
            cleaned.append(address)
    if len(cleaned) > MAX_RECIPIENTS:
        raise ValidationFailed(
            f"at most {MAX_RECIPIENTS} report recipients", field="report_recipients"
        )
    return tuple(cleaned)


def _target_named(uow: UnitOfWork, company_id: int, target: str | int) -> DeliveryTarget:
    """A target of the company by id (an int) or by name (a str; digits also try the id)."""
    stmt = select(DeliveryTarget).where(DeliveryTarget.company_id == company_id)
    found, ref = None, target
    if isinstance(ref, str):
        ref = ref.strip()
        found = uow.session.scalar(stmt.where(DeliveryTarget.name == ref))
        target = int(ref) if ref.isdigit() and len(ref) < 19 else 0
    if found is None and target:
        found = uow.session.scalar(stmt.where(DeliveryTarget.id == target))
    if found is None:
        raise NotFound(f"no delivery target {ref!r}")
    return found


def _exchange_of(
    uow: UnitOfWork, company_id: int | None, exchange_id: int, *, for_update: bool = False
) -> FileExchange:
    stmt = select(FileExchange).where(FileExchange.id == exchange_id)
    if company_id is not None:
        stmt = stmt.where(FileExchange.company_id == company_id)
    if for_update:
        stmt = stmt.with_for_update()
    exchange = uow.session.scalar(stmt)
    if exchange is None:
        raise NotFound(f"no exchange {exchange_id}")
    return exchange


def _file_of(
    uow: UnitOfWork, company_id: int | None, exchange_id: int, file_id: int
) -> ExchangeFile:
    _exchange_of(uow, company_id, exchange_id)
    record = uow.session.get(ExchangeFile, file_id)
    if record is None or record.exchange_id != exchange_id:
        raise NotFound(f"no file {file_id} in exchange {exchange_id}")
    return record


def _view(e: FileExchange, t: DeliveryTarget) -> ExchangeView:
    return ExchangeView(
        id=e.id,
        company_id=e.company_id,
        name=e.name,
        direction=Direction(e.direction),
        target_id=t.id,
        target_name=t.name,
        target_kind=t.kind,
        import_mode=e.import_mode,
        file_format=e.file_format,
        report_recipients=tuple(e.report_recipients or ()),
        poll_seconds=e.poll_seconds,
        write_time=e.write_time,
        enabled=e.enabled,
        last_run_at=e.last_run_at,
        created_at=e.created_at,
    )


def _snapshot(v: ExchangeView) -> dict[str, Any]:
    return {
        "name": v.name,
        "direction": v.direction.value,
        "target_id": v.target_id,
        "import_mode": v.import_mode,
        "file_format": v.file_format,
        "report_recipients": list(v.report_recipients),
        "poll_seconds": v.poll_seconds,
        "write_time": None if v.write_time is None else v.write_time.isoformat(),
        "enabled": v.enabled,
    }


def _file_view(uow: UnitOfWork, f: ExchangeFile) -> ExchangeFileView:
    counts = None
    if f.debt_import_id is not None:
        imported = uow.session.get(DebtImport, f.debt_import_id)
        if imported is not None:
            counts = ImportCounts(
                rows_total=imported.rows_total,
                added=imported.added,
                updated=imported.updated,
                unchanged=imported.unchanged,
                cancelled=imported.cancelled,
                conflicts=imported.conflicts,
                rejected=imported.rejected,
            )
    delivery_status = None
    if f.status == FileStatus.WRITTEN:
        delivery_status = uow.session.scalar(
            select(Delivery.status)
            .where(Delivery.exchange_file_id == f.id)
            .order_by(Delivery.id.desc())
            .limit(1)
        )
    return ExchangeFileView(
        id=f.id,
        exchange_id=f.exchange_id,
        file_name=f.file_name,
        sha256=f.sha256,
        status=FileStatus(f.status),
        detail=f.detail,
        processed_at=f.processed_at,
        debt_import_id=f.debt_import_id,
        counts=counts,
        accounting_date=f.accounting_date,
        delivery_status=delivery_status,
    )


def _incident(uow: UnitOfWork, company_id: int, cause: str, clock: Clock) -> None:
    try:
        incidents.record_incident(uow, company_id, None, INCIDENT_KIND, cause, clock)
    except Exception:  # the database may be what failed; the log has it
        logger.exception("could not record the incident")


def _safe(exc: BaseException) -> str:
    """An error for logs and incidents: one line, no SQL parameters (they carry data)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
