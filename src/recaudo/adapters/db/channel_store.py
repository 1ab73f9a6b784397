"""Raw-driver access for the bank channel's debt query, the one hot path.

The debt query must answer within a small multiple of a bare asyncpg endpoint (issue 3:
at least half its requests/s, p99 under 30 ms), so it bypasses SQLAlchemy here, with
hand-written SQL run on the event loop: asyncpg on PostgreSQL, the standard library's
`sqlite3` on SQLite (indexed lookups of well under a millisecond, as in the reference).
Everything else goes through SQLAlchemy. The read must keep meaning what
`balances.paid_of_debt()` means (same paid sum), and the quote row must read back
through the ORM exactly as `tables.Quote` describes it; the channel's tests check both
on both engines.

Quote rows are group-committed: concurrent requests queue their row and wait; one
flush writes every queued row in one transaction (`executemany`) and wakes them all.
Under load a batch holds tens of rows, so the commit is shared; an idle server writes
each row at once. Everything runs on the event loop, with no thread: a writer thread
would fight the loop for the GIL after every driver call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import Engine

from recaudo.adapters.db.engine import SQLITE_AUTOCHECKPOINT_PAGES
from recaudo.domain.debts import PAYABLE
from recaudo.domain.payments import PaymentStatus

logger = logging.getLogger(__name__)

_PAYABLE = tuple(sorted(s.value for s in PAYABLE))
_APPLIED = PaymentStatus.APPLIED.value


@dataclass(frozen=True, slots=True)
class OpenDebt:
    external_id: str
    due_date: date
    currency: str
    open_minor: int


@dataclass(frozen=True, slots=True)
class CustomerDebts:
    """A customer found by RUT and their oldest-due open debts (at most `limit`)."""

    customer_id: int
    name: str
    national_id: str
    debts: list[OpenDebt]


@dataclass(frozen=True, slots=True)
class NewQuote:
    company_id: int
    agreement_id: int
    transaction_id: str
    customer_id: int
    debts: list[str]
    total_minor: int
    currency: str
    due_date: date
    created_at: datetime  # aware
    expires_at: datetime  # aware


@dataclass(frozen=True, slots=True)
class NotificationFacts:
    """What a payment notification needs to know before it decides how to apply."""

    payment_exists: bool
    quote_customer_id: int | None
    quote_debts: list[str]
    quote_total_minor: int
    quote_currency: str
    customer: tuple[int, str, str, str] | None  # id, name, national id, id type
    company_holidays: list[date]


@dataclass(frozen=True, slots=True)
class DebtState:
    id: int
    external_id: str
    customer_id: int
    status: str
    amount_minor: int
    paid_minor: int


@dataclass(frozen=True, slots=True)
class NewPayment:
    company_id: int
    customer_id: int
    channel: str
    method: str
    external_id: str
    request_fingerprint: str
    amount_minor: int
    currency: str
    paid_at: datetime
    status: str
    recorded_by: str
    created_at: datetime
    agreement_id: int
    accounting_date: date


@dataclass(frozen=True, slots=True)
class NewAudit:
    company_id: int
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PaymentWrites:
    """Everything an applied payment writes besides its own row (which has the id)."""

    allocations: list[tuple[int, int]]  # (debt id, amount)
    debt_status: list[tuple[int, str]]  # (debt id, new status)
    debts_updated_at: datetime
    audit: list[NewAudit]
    event_type: str
    event_payload: dict[str, Any]
    event_created_at: datetime


# Given the locked debts' state: None when the payment cannot take the short way, else
# what to write once the payment row has its id.
Decide = Callable[[list[DebtState]], Callable[[int], PaymentWrites] | None]


class Outcome(Enum):
    APPLIED = "applied"
    NOT_APPLICABLE = "not_applicable"  # the debts changed: the general path decides
    DUPLICATE = "duplicate"  # the transaction id is already a payment


_QUOTE_COLUMNS = (
    "company_id, agreement_id, transaction_id, customer_id, debts, total_minor, currency, "
    "due_date, created_at, expires_at"
)


class ChannelStore(ABC):
    """Finds a customer by compact RUT and their oldest-due debts; records quotes."""

    @abstractmethod
    async def add_quote(self, quote: NewQuote) -> None:
        """Return once the quote is committed (with whatever else queued meanwhile)."""

    @abstractmethod
    async def customer_debts(
        self,
        company_id: int,
        candidates: Sequence[str],
        limit: int,
        only: Sequence[str] | None = None,
    ) -> CustomerDebts | None:
        """The first of `candidates` that is a customer of the company, or None.

        `only` restricts the debts to those company debt ids (pass-through agreements).
        """

    @abstractmethod
    async def notification_facts(
        self,
        company_id: int,
        channel: str,
        transaction_id: str,
        candidates: Sequence[str],
        holidays_from: date,
        holidays_to: date,
    ) -> NotificationFacts: ...

    @abstractmethod
    async def apply_payment(
        self, payment: NewPayment, debt_refs: Sequence[str], decide: Decide
    ) -> Outcome:
        """In one transaction: lock the named debts, let `decide` look at them, then write
        the payment and everything `decide` says; or nothing."""

    @abstractmethod
    async def close(self) -> None: ...


def _first_customer(rows: Sequence[Any], candidates: Sequence[str]) -> Any | None:
    """The row (national id third) of the first candidate RUT that is a customer."""
    by_rut = {row[2]: row for row in rows}
    return next((by_rut[c] for c in candidates if c in by_rut), None)


def _sqlite_customers(
    conn: sqlite3.Connection, company_id: int, candidates: Sequence[str]
) -> list[Any]:
    if not candidates:
        return []
    first, last = candidates[0], candidates[-1]  # at most two readings of one RUT
    return conn.execute(_SQLITE_CUSTOMERS, (company_id, first, last)).fetchall()


def _pick(rows: Sequence[Any], candidates: Sequence[str]) -> tuple[Any, list[Any]] | None:
    """The rows of the first candidate found (several RUT readings may exist)."""
    by_rut: dict[str, list[Any]] = {}
    for row in rows:
        by_rut.setdefault(row[2], []).append(row)
    for candidate in candidates:
        if candidate in by_rut:
            found = by_rut[candidate]
            return found[0], [r for r in found if r[3] is not None]
    return None


# PostgreSQL: one round trip. LATERAL keeps the paid sums to the customer's own debts.
_PG_SQL = f"""
SELECT c.id, c.name, c.national_id, x.external_id, x.due_date, x.currency, x.open
FROM customers c
LEFT JOIN LATERAL (
    SELECT * FROM (
        SELECT d.id, d.external_id, d.due_date, d.currency,
               d.amount_minor - COALESCE((
                   SELECT sum(a.amount_minor) FROM allocations a
                   JOIN payments p ON p.id = a.payment_id
                   WHERE a.debt_id = d.id AND p.status = '{_APPLIED}'), 0) AS open
        FROM debts d
        WHERE d.customer_id = c.id AND d.status = ANY($3::varchar[])
          AND ($4::varchar[] IS NULL OR d.external_id = ANY($4::varchar[]))
    ) o
    WHERE o.open > 0
    ORDER BY o.due_date, o.id
    LIMIT $5
) x ON true
WHERE c.company_id = $1 AND c.id_type = 'RUT' AND c.national_id = ANY($2::varchar[])
ORDER BY c.id, x.due_date, x.id
"""


# The whole batch in one statement (one round trip, atomic on its own): no BEGIN and
# COMMIT round trips around an executemany.
_PG_INSERT_QUOTES = f"""
INSERT INTO quotes ({_QUOTE_COLUMNS})
SELECT * FROM unnest(
    $1::bigint[], $2::bigint[], $3::varchar[], $4::bigint[], $5::json[], $6::bigint[],
    $7::varchar[], $8::date[], $9::timestamptz[], $10::timestamptz[])
"""


async def _keep_session(_connection: Any) -> None:
    """No reset query when a connection goes back to the pool.

    asyncpg's default runs `RESET ALL; UNLISTEN *; ...` on every release: a second round
    trip for each one-statement lookup. These connections only ever run the statements
    in this module, which change no session state (asyncpg still rolls back an open
    transaction itself).
    """


_PG_FACTS = """
SELECT
    EXISTS (SELECT 1 FROM payments
            WHERE company_id = $1 AND channel = $2 AND external_id = $3) AS paid,
    q.customer_id, q.debts::text, q.total_minor, q.currency,
    ARRAY(SELECT day FROM company_holidays
          WHERE company_id = $1 AND day >= $4 AND day < $5) AS holidays,
    c.id, c.name, c.national_id, c.id_type
FROM (SELECT 1) AS one
LEFT JOIN quotes q ON q.company_id = $1 AND q.transaction_id = $3
LEFT JOIN customers c
    ON c.company_id = $1 AND c.id_type = 'RUT' AND c.national_id = ANY($6::varchar[])
"""
_PG_LOCK_DEBTS = """
SELECT id, external_id, customer_id, status, amount_minor FROM debts
WHERE company_id = $1 AND external_id = ANY($2::varchar[])
ORDER BY id FOR UPDATE
"""
# A statement of its own, after the locks: under READ COMMITTED it sees what a payment
# we waited for committed. The payment's id is drawn here so that every row can be built
# before the one statement that writes them all.
_PG_PAID = f"""
SELECT 0, nextval(pg_get_serial_sequence('payments', 'id'))
UNION ALL
SELECT a.debt_id, sum(a.amount_minor)::bigint FROM allocations a
JOIN payments p ON p.id = a.payment_id
WHERE a.debt_id = ANY($1::bigint[]) AND p.status = '{_APPLIED}'
GROUP BY a.debt_id
"""
_PAYMENT_COLUMNS = (
    "company_id, customer_id, channel, method, external_id, request_fingerprint, amount_minor, "
    "currency, paid_at, status, recorded_by, created_at, agreement_id, accounting_date"
)
_AUDIT_COLUMNS = "company_id, occurred_at, actor, action, entity_type, entity_id, before, after"
# Everything a payment writes, in one round trip; nothing but the payment row when its
# transaction id is taken (the ON CONFLICT leaves `payment` empty and each later insert
# selects from it). One pending webhook delivery per enabled endpoint, as
# `outbox.add_event` does.
_PG_WRITE_PAYMENT = f"""
WITH payment AS (
    INSERT INTO payments (id, {_PAYMENT_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (company_id, channel, external_id) DO NOTHING
    RETURNING id
), allocation AS (
    INSERT INTO allocations (payment_id, debt_id, amount_minor)
    SELECT payment.id, a.debt_id, a.amount
    FROM payment, unnest($16::bigint[], $17::bigint[]) WITH ORDINALITY AS a(debt_id, amount, n)
    ORDER BY a.n
), debt AS (
    UPDATE debts SET status = v.status, updated_at = $20
    FROM payment, unnest($18::bigint[], $19::varchar[]) AS v(id, status) WHERE debts.id = v.id
), audit AS (
    INSERT INTO audit_events ({_AUDIT_COLUMNS})
    SELECT r.company_id, r.occurred_at, r.actor, r.action, r.entity_type, r.entity_id,
           r.before, r.after
    FROM payment, unnest($21::bigint[], $22::timestamptz[], $23::varchar[], $24::varchar[],
                         $25::varchar[], $26::varchar[], $27::json[], $28::json[])
         WITH ORDINALITY AS r(company_id, occurred_at, actor, action, entity_type, entity_id,
                              before, after, n)
    ORDER BY r.n
), event AS (
    INSERT INTO outbox_events (company_id, event_type, payload, created_at)
    SELECT $2, $29, $30::json, $31 FROM payment
    RETURNING id
), delivery AS (
    INSERT INTO webhook_deliveries
        (company_id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
    SELECT $2, event.id, e.id, 'pending', 0, $31, $31
    FROM event, webhook_endpoints e
    WHERE e.company_id = $2 AND e.enabled ORDER BY e.id
)
SELECT count(*), current_setting('synchronous_commit') FROM payment
"""


def _dumps(value: object) -> str:
    # orjson: a notification writes seven JSON documents; the standard library's encoder
    # was a tenth of its time. Same JSON (compact separators), read back by any parser.
    return orjson.dumps(value).decode()


def _json_text(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _dumps(value)


class _Rollback(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class PostgresChannelStore(ChannelStore):
    """asyncpg, one pool per process and event loop (created on first use)."""

    # Several quotes at once means load: a moment more gathers a bigger batch, and each
    # batch costs the database a commit.
    gather_s = 0.001

    def __init__(self, dsn: str, *, max_size: int = 16) -> None:
        self._pending: list[tuple[NewQuote, asyncio.Future[None]]] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None
        self.dsn = dsn
        self.max_size = max_size
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def add_quote(self, quote: NewQuote) -> None:
        """Return once the quote is committed (with whatever else queued meanwhile)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((quote, future))
        if not self._flushing:
            self._flushing = True
            # Kept: the loop holds only a weak reference to a task.
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the requests already running queue their rows
            if len(self._pending) > 1:
                await asyncio.sleep(self.gather_s)
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write_quotes([quote for quote, _ in batch])
                except Exception as error:
                    if len(batch) == 1:
                        batch[0][1].set_exception(error)
                    else:  # one bad row must fail only its own request
                        logger.warning("quote batch of %d failed; one by one", len(batch))
                        await self._write_one_by_one(batch)
                    continue
                for _, future in batch:
                    future.set_result(None)
        finally:
            self._flushing = False

    async def _write_one_by_one(self, batch: list[tuple[NewQuote, asyncio.Future[None]]]) -> None:
        for quote, future in batch:
            try:
                await self._write_quotes([quote])
            except Exception as error:
                future.set_exception(error)
            else:
                future.set_result(None)

    async def _get_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._pool = asyncio.Lock(), loop, None
        async with self._lock:
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.max_size,
                    # No per-statement timeout: asyncpg arms a timer for each one, and
                    # these are indexed single-row statements.
                    reset=_keep_session,
                    # The lookup is a prepared statement whose custom plans cost more than
                    # the generic one (sub-plans per debt), so PostgreSQL's default "auto"
                    # mode re-plans it on every call: 0.46 ms of planning for a 0.1 ms
                    # query. Its generic plan is index lookups whatever the arguments.
                    # A quote is what was offered, not money: should PostgreSQL crash in
                    # the half second before its WAL reaches the disk, the bank's payment
                    # notification still records the payment, as an exception for an
                    # operator ("never quoted"). Payments themselves are written through
                    # SQLAlchemy with PostgreSQL's full durability. This spares each
                    # quote batch a WAL flush while the request waits.
                    server_settings={
                        "plan_cache_mode": "force_generic_plan",
                        "synchronous_commit": "off",
                    },
                )
        return self._pool

    async def customer_debts(
        self,
        company_id: int,
        candidates: Sequence[str],
        limit: int,
        only: Sequence[str] | None = None,
    ) -> CustomerDebts | None:
        pool = await self._get_pool()
        rows = await pool.fetch(
            _PG_SQL,
            company_id,
            list(candidates),
            list(_PAYABLE),
            None if only is None else list(only),
            limit,
        )
        picked = _pick(rows, candidates)
        if picked is None:
            return None
        head, debts = picked
        return CustomerDebts(
            head[0],
            head[1],
            head[2],
            [OpenDebt(r[3], r[4], r[5], int(r[6])) for r in debts],
        )

    async def _write_quotes(self, quotes: list[NewQuote]) -> None:
        pool = await self._get_pool()
        await pool.execute(
            _PG_INSERT_QUOTES,
            [q.company_id for q in quotes],
            [q.agreement_id for q in quotes],
            [q.transaction_id for q in quotes],
            [q.customer_id for q in quotes],
            [_dumps(q.debts) for q in quotes],
            [q.total_minor for q in quotes],
            [q.currency for q in quotes],
            [q.due_date for q in quotes],
            [q.created_at for q in quotes],
            [q.expires_at for q in quotes],
        )

    async def notification_facts(
        self,
        company_id: int,
        channel: str,
        transaction_id: str,
        candidates: Sequence[str],
        holidays_from: date,
        holidays_to: date,
    ) -> NotificationFacts:
        pool = await self._get_pool()
        rows = await pool.fetch(
            _PG_FACTS,
            company_id,
            channel,
            transaction_id,
            holidays_from,
            holidays_to,
            list(candidates),
        )
        first = rows[0]  # one row per customer found (several RUT readings), at least one
        customers = [tuple(r[6:10]) for r in rows if r[6] is not None]
        return _facts(
            bool(first[0]),
            first[1],
            first[2],
            first[3],
            first[4],
            customers,
            candidates,
            list(first[5]),
        )

    async def apply_payment(
        self, payment: NewPayment, debt_refs: Sequence[str], decide: Decide
    ) -> Outcome:
        pool = await self._get_pool()
        p = payment
        try:
            async with pool.acquire() as conn:
                # BEGIN and the payment's durability in one round trip: this pool commits
                # quote batches without waiting for the WAL flush; a payment waits for it.
                await conn.execute("BEGIN; SET LOCAL synchronous_commit TO on")
                try:
                    # Only the debts are locked (in id order, as the general path does after
                    # its customer lock): a payment that names its debts needs nothing else,
                    # and never waiting for the customer while holding debts keeps the two
                    # paths free of deadlocks.
                    rows = await conn.fetch(_PG_LOCK_DEBTS, p.company_id, list(debt_refs))
                    paid = dict(await conn.fetch(_PG_PAID, [r[0] for r in rows]))
                    payment_id = paid.pop(0)
                    states = [
                        DebtState(r[0], r[1], r[2], r[3], r[4], paid.get(r[0], 0)) for r in rows
                    ]
                    build = decide(states)
                    if build is None:
                        raise _Rollback(Outcome.NOT_APPLICABLE)
                    w = build(payment_id)
                    written, durability = await conn.fetchrow(
                        _PG_WRITE_PAYMENT,
                        payment_id,
                        p.company_id,
                        p.customer_id,
                        p.channel,
                        p.method,
                        p.external_id,
                        p.request_fingerprint,
                        p.amount_minor,
                        p.currency,
                        p.paid_at,
                        p.status,
                        p.recorded_by,
                        p.created_at,
                        p.agreement_id,
                        p.accounting_date,
                        [d for d, _ in w.allocations],
                        [a for _, a in w.allocations],
                        [d for d, _ in w.debt_status],
                        [s for _, s in w.debt_status],
                        w.debts_updated_at,
                        [a.company_id for a in w.audit],
                        [a.occurred_at for a in w.audit],
                        [a.actor for a in w.audit],
                        [a.action for a in w.audit],
                        [a.entity_type for a in w.audit],
                        [a.entity_id for a in w.audit],
                        [_json_text(a.before) for a in w.audit],
                        [_json_text(a.after) for a in w.audit],
                        w.event_type,
                        _dumps(w.event_payload),
                        w.event_created_at,
                    )
                    if not written:
                        raise _Rollback(Outcome.DUPLICATE)
                    if durability != "on":  # never acknowledge a payment before its flush
                        raise RuntimeError("payment transaction without synchronous commit")
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        except _Rollback as rollback:
            return rollback.outcome
        return Outcome.APPLIED

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


_SQLITE_CUSTOMERS = """
SELECT id, name, national_id, id_type FROM customers
WHERE company_id = ? AND id_type = 'RUT' AND national_id IN (?, ?)
"""
# The open amount is worked out in Python: filtering on it in SQL would evaluate the
# paid-sum subquery twice per debt.
_SQLITE_DEBTS = f"""
SELECT d.external_id, d.due_date, d.currency, d.amount_minor, COALESCE((
           SELECT sum(a.amount_minor) FROM allocations a
           JOIN payments p ON p.id = a.payment_id
           WHERE a.debt_id = d.id AND p.status = '{_APPLIED}'), 0)
FROM debts d
WHERE d.customer_id = ? AND d.status IN ({", ".join("?" * len(_PAYABLE))})
ORDER BY d.due_date, d.id
"""
_SQLITE_INSERT_QUOTE = f"INSERT INTO quotes ({_QUOTE_COLUMNS}) VALUES ({', '.join('?' * 10)})"
# How long a quote batch keeps retrying while another process holds the write lock.
SQLITE_LOCK_WAIT_S = 60.0


_SQLITE_FACTS = """
SELECT
    EXISTS (SELECT 1 FROM payments
            WHERE company_id = ?1 AND channel = ?2 AND external_id = ?3),
    q.customer_id, q.debts, q.total_minor, q.currency
FROM (SELECT 1) AS one
LEFT JOIN quotes q ON q.company_id = ?1 AND q.transaction_id = ?3
"""
_SQLITE_HOLIDAYS = "SELECT day FROM company_holidays WHERE company_id = ? AND day >= ? AND day < ?"
_SQLITE_DEBT_STATES = f"""
SELECT d.id, d.external_id, d.customer_id, d.status, d.amount_minor, COALESCE((
           SELECT sum(a.amount_minor) FROM allocations a
           JOIN payments p ON p.id = a.payment_id
           WHERE a.debt_id = d.id AND p.status = '{_APPLIED}'), 0)
FROM debts d WHERE d.company_id = ? AND d.external_id IN (SELECT value FROM json_each(?))
ORDER BY d.id
"""
_SQLITE_INSERT_PAYMENT = f"""
INSERT INTO payments ({_PAYMENT_COLUMNS})
VALUES ({", ".join("?" * 14)})
ON CONFLICT (company_id, channel, external_id) DO NOTHING
RETURNING id
"""
_SQLITE_INSERT_ALLOCATION = (
    "INSERT INTO allocations (payment_id, debt_id, amount_minor) VALUES (?, ?, ?)"
)
_SQLITE_UPDATE_DEBT = "UPDATE debts SET status = ?, updated_at = ? WHERE id = ?"
_SQLITE_INSERT_AUDIT = f"INSERT INTO audit_events ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 8)})"
_SQLITE_INSERT_EVENT = """
INSERT INTO outbox_events (company_id, event_type, payload, created_at)
VALUES (?, ?, ?, ?) RETURNING id
"""
_SQLITE_INSERT_DELIVERIES = """
INSERT INTO webhook_deliveries
    (company_id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
SELECT ?1, ?2, e.id, 'pending', 0, ?3, ?3 FROM webhook_endpoints e
WHERE e.company_id = ?1 AND e.enabled ORDER BY e.id
"""


def _facts(
    payment_exists: bool,
    quote_customer_id: int | None,
    quote_debts: str | None,
    quote_total_minor: int | None,
    quote_currency: str | None,
    customers: list[tuple[Any, ...]],
    candidates: Sequence[str],
    holidays: list[date],
) -> NotificationFacts:
    found = _first_customer(customers, candidates)
    return NotificationFacts(
        payment_exists=payment_exists,
        quote_customer_id=quote_customer_id,
        quote_debts=list(json.loads(quote_debts)) if quote_debts else [],
        quote_total_minor=quote_total_minor or 0,
        quote_currency=quote_currency or "",
        customer=None if found is None else (found[0], found[1], found[2], found[3]),
        company_holidays=holidays,
    )


def _quote_row(q: NewQuote) -> tuple[object, ...]:
    return (
        q.company_id,
        q.agreement_id,
        q.transaction_id,
        q.customer_id,
        _dumps(q.debts),
        q.total_minor,
        q.currency,
        q.due_date.isoformat(),
        _sqlite_time(q.created_at),
        _sqlite_time(q.expires_at),
    )


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy stores for `UTCDateTime` on SQLite (naive UTC, microseconds).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class SqliteChannelStore(ChannelStore):
    """The standard library's sqlite3, one connection per process, on the loop.

    WAL readers never wait for the writer, and the reads are indexed lookups, so running
    them on the event loop costs less than a hop to a thread and back. Writes (quotes
    and payments) are batched per process, one transaction per batch with a savepoint
    per item, and must not block the loop while another process (an import, the other
    worker) holds the write lock: the batch asks for the lock without waiting and
    retries after a short asynchronous sleep.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None
        self._work: list[tuple[Any, asyncio.Future[object]]] = []
        self._writing = False
        self._writer: asyncio.Task[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        """The writer: never waits for the lock (the batch retries asynchronously)."""
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
            self._conn = conn
        return self._conn

    def _reader(self) -> sqlite3.Connection:
        """The reader: WAL readers do not wait for writers, but may briefly for the rare
        exclusive operations (a migration, a log recovery), so it gets a short timeout
        instead of failing the request at once."""
        if self._read is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=1000")
            conn.execute("PRAGMA query_only=ON")
            self._read = conn
        return self._read

    async def customer_debts(
        self,
        company_id: int,
        candidates: Sequence[str],
        limit: int,
        only: Sequence[str] | None = None,
    ) -> CustomerDebts | None:
        conn = self._reader()
        # Autocommit mode: each statement reads its own snapshot; the two together
        # are as consistent as the ORM path's (which also reads in two statements).
        head = _first_customer(_sqlite_customers(conn, company_id, candidates), candidates)
        if head is None:
            return None
        debts: list[OpenDebt] = []
        wanted = None if only is None else set(only)
        for external_id, due, currency, amount, paid in conn.execute(
            _SQLITE_DEBTS, (head[0], *_PAYABLE)
        ):
            if amount <= paid or (wanted is not None and external_id not in wanted):
                continue
            debts.append(OpenDebt(external_id, date.fromisoformat(due), currency, amount - paid))
            if len(debts) == limit:
                break
        return CustomerDebts(head[0], head[1], head[2], debts)

    async def notification_facts(
        self,
        company_id: int,
        channel: str,
        transaction_id: str,
        candidates: Sequence[str],
        holidays_from: date,
        holidays_to: date,
    ) -> NotificationFacts:
        conn = self._reader()
        facts = conn.execute(_SQLITE_FACTS, (company_id, channel, transaction_id)).fetchone()
        customers = _sqlite_customers(conn, company_id, candidates)
        holidays = [
            date.fromisoformat(day)
            for (day,) in conn.execute(
                _SQLITE_HOLIDAYS,
                (company_id, holidays_from.isoformat(), holidays_to.isoformat()),
            )
        ]
        return _facts(
            bool(facts[0]), facts[1], facts[2], facts[3], facts[4], customers, candidates, holidays
        )

    async def add_quote(self, quote: NewQuote) -> None:
        await self._submit(quote)

    async def apply_payment(
        self, payment: NewPayment, debt_refs: Sequence[str], decide: Decide
    ) -> Outcome:
        outcome = await self._submit((payment, list(debt_refs), decide))
        assert isinstance(outcome, Outcome)
        return outcome

    async def _submit(self, work: NewQuote | tuple[NewPayment, list[str], Decide]) -> object:
        """Queue a write; it commits with whatever else this process queued meanwhile.

        SQLite has one writer at a time: each process takes the lock once per batch of
        quotes and payments instead of once per request, and the connection never runs
        two transactions at once (a second BEGIN while the first waits for the lock).
        """
        future = asyncio.get_running_loop().create_future()
        self._work.append((work, future))
        if not self._writing:
            self._writing = True
            # Kept: the loop holds only a weak reference to a task.
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        try:
            await asyncio.sleep(0)  # let the requests already running queue their work
            while self._work:
                batch, self._work = self._work, []
                conn = self._connection()
                try:
                    await self._begin_immediate(conn)
                except Exception as error:
                    for _, future in batch:
                        future.set_exception(error)
                    continue
                results: list[tuple[asyncio.Future[object], object, BaseException | None]] = []
                try:  # no await from here to COMMIT: nothing else uses the connection
                    for work, future in batch:
                        conn.execute("SAVEPOINT work")
                        try:
                            result = self._do(conn, work)
                        except Exception as error:
                            conn.execute("ROLLBACK TO work")
                            results.append((future, None, error))
                        else:
                            if result is not None and result is not Outcome.APPLIED:
                                conn.execute("ROLLBACK TO work")
                            results.append((future, result, None))
                        conn.execute("RELEASE work")
                    conn.execute("COMMIT")
                except Exception as error:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    for _, future in batch:
                        future.set_exception(error)
                    continue
                for future, value, failure in results:
                    if failure is not None:
                        future.set_exception(failure)
                    else:
                        future.set_result(value)
        finally:
            self._writing = False

    def _do(
        self, conn: sqlite3.Connection, work: NewQuote | tuple[NewPayment, list[str], Decide]
    ) -> Outcome | None:
        if isinstance(work, NewQuote):
            conn.execute(_SQLITE_INSERT_QUOTE, _quote_row(work))
            return None
        payment, refs, decide = work
        return self._apply(conn, payment, refs, decide)

    def _apply(
        self, conn: sqlite3.Connection, p: NewPayment, debt_refs: list[str], decide: Decide
    ) -> Outcome:
        rows = conn.execute(_SQLITE_DEBT_STATES, (p.company_id, _dumps(debt_refs)))
        build = decide([DebtState(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows])
        if build is None:
            return Outcome.NOT_APPLICABLE
        inserted = conn.execute(
            _SQLITE_INSERT_PAYMENT,
            (
                p.company_id,
                p.customer_id,
                p.channel,
                p.method,
                p.external_id,
                p.request_fingerprint,
                p.amount_minor,
                p.currency,
                _sqlite_time(p.paid_at),
                p.status,
                p.recorded_by,
                _sqlite_time(p.created_at),
                p.agreement_id,
                p.accounting_date.isoformat(),
            ),
        ).fetchone()
        if inserted is None:
            return Outcome.DUPLICATE
        payment_id = inserted[0]
        w = build(payment_id)
        conn.executemany(_SQLITE_INSERT_ALLOCATION, [(payment_id, d, a) for d, a in w.allocations])
        updated_at = _sqlite_time(w.debts_updated_at)
        conn.executemany(_SQLITE_UPDATE_DEBT, [(s, updated_at, d) for d, s in w.debt_status])
        conn.executemany(
            _SQLITE_INSERT_AUDIT,
            [
                (
                    a.company_id,
                    _sqlite_time(a.occurred_at),
                    a.actor,
                    a.action,
                    a.entity_type,
                    a.entity_id,
                    _json_text(a.before),
                    _json_text(a.after),
                )
                for a in w.audit
            ],
        )
        created = _sqlite_time(w.event_created_at)
        event = conn.execute(
            _SQLITE_INSERT_EVENT,
            (p.company_id, w.event_type, _dumps(w.event_payload), created),
        ).fetchone()
        conn.execute(_SQLITE_INSERT_DELIVERIES, (p.company_id, event[0], created))
        return Outcome.APPLIED

    async def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """Take the write lock without blocking the loop while another writer holds it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_LOCK_WAIT_S
        pause = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or loop.time() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.002)  # the other writer holds it for about 1 ms

    async def close(self) -> None:
        for conn in (self._conn, self._read):
            if conn is not None:
                conn.close()
        self._conn = self._read = None


def channel_store(engine: Engine) -> ChannelStore:
    """The store for the database `engine` points at."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("the channel's fast reads need a SQLite file, not :memory:")
        return SqliteChannelStore(url.database)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresChannelStore(dsn)
