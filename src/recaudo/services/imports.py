"""The daily debts file: upsert or replace a company's portfolio from CSV or XLSX.

One import is one transaction. The file is streamed through `import_rows` (checks) into
a staging table and applied by `import_sql` (set-based statements), so memory stays
flat whatever the file size and a crash at any point leaves the previous state.

- `upsert` adds new debts and updates changed ones; `replace` also cancels every open
  debt the file does not name (a debt `in_payment` survives: a channel is collecting it).
- A paid or written-off debt is never touched: a row naming it is a conflict. So is a
  change to a debt in payment, a debt of another customer, and a new amount below what
  is already paid. A cancelled debt named again is reopened.
- By default one bad row rejects the file: nothing changes but the import record and
  its issues. With `skip_invalid` the good rows are applied and the bad ones recorded.
- The same file (SHA-256) imported twice is a no-op: the second answer is `duplicate`.
- A `replace` with no data rows is refused: it is far likelier a truncated upload than
  an order to cancel the whole portfolio.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import Company, DebtImport, ImportIssue
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.formats.tabular import Table, open_table, write_table
from recaudo.services import audit
from recaudo.services.context import Actor, Clock
from recaudo.services.import_rows import DEBT_COLUMNS, DebtRowParser, StageRow
from recaudo.services.import_sql import ImportContext, ImportStore

log = logging.getLogger(__name__)

REPORT_ISSUES = 1_000  # issues carried in the report; all of them are in the database
RAW_PAGE = 10_000
PROGRESS_EVERY = 2_000  # rows between two progress callbacks
FILE_NAME_MAX = 255
COUNTS = (
    "rows_total",
    "added",
    "updated",
    "unchanged",
    "cancelled",
    "conflicts",
    "rejected",
    "customers_added",
)

Progress = Callable[[int, int], None]


class ImportMode(StrEnum):
    UPSERT = "upsert"
    REPLACE = "replace"


class ImportStatus(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # answered, never stored: the file was already imported


@dataclass(frozen=True)
class ImportIssueView:
    kind: str  # rejected | conflict
    row_number: int
    column: str | None
    debt_external_id: str | None
    reason: str


@dataclass(frozen=True)
class ImportReport:
    import_id: int | None
    status: str
    file_name: str
    file_sha256: str
    mode: str
    skip_invalid: bool
    rows_total: int
    added: int
    updated: int
    unchanged: int
    cancelled: int
    conflicts: int
    rejected: int
    customers_added: int
    duplicate_of: int | None
    started_at: datetime
    finished_at: datetime | None
    actor: str
    issues: list[ImportIssueView] = field(default_factory=list)


def import_debts(
    uow: UnitOfWork,
    company_id: int,
    path: Path,
    *,
    mode: ImportMode,
    actor: Actor,
    clock: Clock,
    file_name: str | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a debts file for `company_id`; see the module docstring for the rules.

    Raises `ValidationFailed` when the file cannot be read at all (not CSV/XLSX, no
    header, a required column missing), or is empty in `replace` mode: then nothing is
    recorded.
    """
    actor.require_write()
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    try:
        mode = ImportMode(mode)
    except ValueError:
        raise ValidationFailed(f"unknown import mode {mode!r} (upsert or replace)") from None
    name = Path(file_name or path.name).name[:FILE_NAME_MAX] or "debts"
    digest = file_sha256(path)
    started = clock()
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        store = ImportStore(uow)
        store.begin(company_id)
        done = _completed_with_hash(uow, company_id, digest)
        if done is not None:
            return _duplicate(done, name, digest, mode, skip_invalid, actor, started, clock())
        record = DebtImport(
            company_id=company_id,
            file_name=name,
            file_sha256=digest,
            mode=mode.value,
            skip_invalid=skip_invalid,
            status="running",  # never visible: the transaction ends completed or rejected
            actor=actor.label,
            started_at=started,
            **dict.fromkeys(COUNTS, 0),
        )
        parser = _stage_file(uow, store, record, company, path, progress)
        _decide(store, record, _context(record, company, actor, clock(), parser), mode)
        record.finished_at = clock()
        _audit(uow, record, actor, clock)
        store.drop_temp()
        report = _report(uow, record)
        uow.commit()
    log.info(
        "debts import %s of company %s %s: %s rows, %s added, %s updated, %s cancelled, "
        "%s conflicts, %s rejected",
        *(report.import_id, company_id, report.status, report.rows_total, report.added),
        *(report.updated, report.cancelled, report.conflicts, report.rejected),
    )
    return report


def _decide(store: ImportStore, record: DebtImport, ctx: ImportContext, mode: ImportMode) -> None:
    """All or nothing by default: any rejected row leaves the portfolio untouched."""
    record.rows_total, record.rejected = store.stage_counts()
    if mode is ImportMode.REPLACE and record.rows_total == 0:
        # A truncated upload looks exactly like this; cancelling the whole portfolio
        # on its word would be the worst reading of it.
        raise ValidationFailed("the file has no data rows: a replace would cancel every debt")
    store.record_rejected(record.id)
    if record.rejected and not record.skip_invalid:
        record.status = ImportStatus.REJECTED.value
    else:
        _apply(store, ctx, mode, record)
        record.status = ImportStatus.COMPLETED.value


def file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except FileNotFoundError:
        raise NotFound(f"no file {path.name!r}") from None
    except OSError as exc:
        raise ValidationFailed(f"cannot read the file: {exc.strerror}") from None


def _completed_with_hash(uow: UnitOfWork, company_id: int, digest: str) -> DebtImport | None:
    return uow.session.scalar(
        select(DebtImport).where(
            DebtImport.company_id == company_id,
            DebtImport.file_sha256 == digest,
            DebtImport.status == ImportStatus.COMPLETED.value,
        )
    )


def _stage_file(
    uow: UnitOfWork,
    store: ImportStore,
    record: DebtImport,
    company: Company,
    path: Path,
    progress: Progress | None,
) -> DebtRowParser:
    """Record the import and stream the file into the staging table.

    The header is checked before anything is written: an unreadable file leaves no
    trace. Repeated debt ids are then rejected in SQL, and their original cells fetched
    in a second pass (only when there are any) for the rejected-rows file.
    """
    with open_table(path, DEBT_COLUMNS) as table:
        parser = DebtRowParser(table.layout, company.country, company.currency)
        uow.session.add(record)
        uow.session.flush()  # its id is bound by the set-based statements
        store.create_stage()
        store.load(_parsed(table, parser, progress))
    store.index_stage()
    store.mark_duplicates(table.layout.label("external_id"))
    _fill_missing_raw(store, path, parser)
    return parser


def _parsed(table: Table, parser: DebtRowParser, progress: Progress | None) -> Iterator[StageRow]:
    parse = parser.parse
    for count, (number, cells) in enumerate(table.rows(), start=1):
        yield parse(number, cells)
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(table.bytes_read, table.size)
    if progress is not None:
        progress(table.size, table.size)


def _fill_missing_raw(store: ImportStore, path: Path, parser: DebtRowParser) -> None:
    pending = store.rows_missing_raw(0, RAW_PAGE)
    if not pending:
        return
    with open_table(path, DEBT_COLUMNS) as table:
        rows = table.rows()
        while pending:
            wanted = iter(pending)
            target = next(wanted, None)
            found: list[tuple[int, str]] = []
            for number, cells in rows:
                if number == target:
                    found.append((number, parser.raw(cells)))
                    target = next(wanted, None)
                    if target is None:
                        break
            store.set_raw(found)
            pending = store.rows_missing_raw(pending[-1], RAW_PAGE)


def _context(
    record: DebtImport, company: Company, actor: Actor, now: datetime, parser: DebtRowParser
) -> ImportContext:
    layout = parser.layout
    return ImportContext(
        company_id=company.id,
        currency=company.currency,
        import_id=record.id,
        currency_scale=money.exponent(company.currency),
        actor=actor.label,
        now=now,
        has_concept=parser.has("concept"),
        has_issue_date=parser.has("issue_date"),
        labels={key: layout.label(key) for key in ("external_id", "national_id", "amount")},
    )


def _apply(store: ImportStore, ctx: ImportContext, mode: ImportMode, record: DebtImport) -> None:
    replace = mode is ImportMode.REPLACE
    try:
        store.plan(ctx)
        if replace:
            store.find_absent(ctx)
        store.lock_and_recheck(replace)
        store.check_paid()
        plan = store.plan_counts()
        store.record_conflicts(ctx)
        record.customers_added = store.apply_customers(ctx)
        store.apply_updates(ctx)
        record.cancelled = store.apply_cancellations(ctx) if replace else 0
        store.apply_additions(ctx)
    except IntegrityError:
        # Only a concurrent writer (a debt or customer created meanwhile through the
        # API) can break a constraint here; the whole import rolls back.
        raise Conflict("the portfolio changed during the import; import the file again") from None
    record.added, record.updated, record.conflicts = plan.added, plan.updated, plan.conflicts
    record.unchanged = (
        record.rows_total - record.rejected - plan.added - plan.updated - plan.conflicts
    )


def _audit(uow: UnitOfWork, record: DebtImport, actor: Actor, clock: Clock) -> None:
    completed = record.status == ImportStatus.COMPLETED
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=record.company_id,
        action="debts.imported" if completed else "debts.import_rejected",
        entity_type="debt_import",
        entity_id=record.id,
        after=_counts(record),
    )


def _counts(record: DebtImport) -> dict[str, Any]:
    about = {
        "file_name": record.file_name,
        "file_sha256": record.file_sha256,
        "mode": record.mode,
        "skip_invalid": record.skip_invalid,
        "status": record.status,
    }
    return about | {name: getattr(record, name) for name in COUNTS}


def _report(uow: UnitOfWork, record: DebtImport) -> ImportReport:
    issues = _issues(uow, record.id, kind=None, offset=0, limit=REPORT_ISSUES)
    return ImportReport(
        import_id=record.id,
        status=record.status,
        file_name=record.file_name,
        file_sha256=record.file_sha256,
        mode=record.mode,
        skip_invalid=record.skip_invalid,
        rows_total=record.rows_total,
        added=record.added,
        updated=record.updated,
        unchanged=record.unchanged,
        cancelled=record.cancelled,
        conflicts=record.conflicts,
        rejected=record.rejected,
        customers_added=record.customers_added,
        duplicate_of=None,
        started_at=record.started_at,
        finished_at=record.finished_at,
        actor=record.actor,
        issues=issues,
    )


def _duplicate(
    done: DebtImport,
    name: str,
    digest: str,
    mode: ImportMode,
    skip_invalid: bool,
    actor: Actor,
    started: datetime,
    finished: datetime,
) -> ImportReport:
    return ImportReport(
        import_id=None,
        status=ImportStatus.DUPLICATE.value,
        file_name=name,
        file_sha256=digest,
        mode=mode.value,
        skip_invalid=skip_invalid,
        rows_total=0,
        added=0,
        updated=0,
        unchanged=0,
        cancelled=0,
        conflicts=0,
        rejected=0,
        customers_added=0,
        duplicate_of=done.id,
        started_at=started,
        finished_at=finished,
        actor=actor.label,
    )


# ---------------------------------------------------------------------- reading back


def get_import(uow: UnitOfWork, company_id: int, import_id: int) -> ImportReport:
    with uow:
        return _report(uow, _import_of(uow, company_id, import_id))


def list_import_issues(
    uow: UnitOfWork,
    company_id: int,
    import_id: int,
    *,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> list[ImportIssueView]:
    if kind not in (None, "rejected", "conflict"):
        raise ValidationFailed(f"unknown issue kind {kind!r} (rejected or conflict)")
    if offset < 0 or not 0 < limit <= 10_000:
        raise ValidationFailed("offset must be >= 0 and limit between 1 and 10000")
    with uow:
        _import_of(uow, company_id, import_id)
        return _issues(uow, import_id, kind=kind, offset=offset, limit=limit)


def write_rejected_rows(uow: UnitOfWork, company_id: int, import_id: int, out: BinaryIO) -> None:
    """CSV of the rejected rows: the file's own columns, then row_number, column, reason.

    Read in pages so that a file whose every row was rejected still streams flat.
    """
    with uow:
        _import_of(uow, company_id, import_id)
        pages = _rejected_pages(uow, import_id)
        first = next(pages, [])
        headers = list(first[0].raw_cells) if first and first[0].raw_cells else []

        def rows() -> Iterator[list[Any]]:
            for page in chain([first], pages):
                for issue in page:
                    cells = issue.raw_cells or {}
                    original = [cells.get(h, "") for h in headers]
                    yield [*original, issue.row_number, issue.column, issue.reason]

        write_table([*headers, "row_number", "column", "reason"], rows(), "csv", out)


@dataclass(frozen=True, slots=True)
class _RejectedRow:
    row_number: int
    column: str | None
    reason: str
    raw_cells: dict[str, str] | None


def _rejected_pages(uow: UnitOfWork, import_id: int) -> Iterator[list[_RejectedRow]]:
    after = (0, 0)
    while True:
        rows = uow.session.execute(
            select(ImportIssue.row_number, ImportIssue.id, ImportIssue.column)
            .add_columns(ImportIssue.reason, ImportIssue.raw)
            .where(
                ImportIssue.import_id == import_id,
                ImportIssue.kind == "rejected",
                (ImportIssue.row_number > after[0])
                | ((ImportIssue.row_number == after[0]) & (ImportIssue.id > after[1])),
            )
            .order_by(ImportIssue.row_number, ImportIssue.id)
            .limit(RAW_PAGE)
        ).all()
        if not rows:
            return
        after = (rows[-1].row_number, rows[-1].id)
        yield [
            _RejectedRow(r.row_number, r.column, r.reason, json.loads(r.raw) if r.raw else None)
            for r in rows
        ]


def _import_of(uow: UnitOfWork, company_id: int, import_id: int) -> DebtImport:
    record = uow.session.get(DebtImport, import_id)
    if record is None or record.company_id != company_id:
        raise NotFound(f"no import {import_id}")
    return record


def _issues(
    uow: UnitOfWork, import_id: int, *, kind: str | None, offset: int, limit: int
) -> list[ImportIssueView]:
    query = select(ImportIssue).where(ImportIssue.import_id == import_id)
    if kind is not None:
        query = query.where(ImportIssue.kind == kind)
    query = query.order_by(ImportIssue.row_number, ImportIssue.id).offset(offset).limit(limit)
    return [
        ImportIssueView(i.kind, i.row_number, i.column, i.debt_external_id, i.reason)
        for i in uow.session.scalars(query)
    ]
