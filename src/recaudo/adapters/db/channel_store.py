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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

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


_QUOTE_COLUMNS = (
    "company_id, agreement_id, transaction_id, customer_id, debts, total_minor, currency, "
    "due_date, created_at, expires_at"
)


class ChannelStore(ABC):
    """Finds a customer by compact RUT and their oldest-due debts; records quotes."""

    gather_s = 0.0

    def __init__(self) -> None:
        self._pending: list[tuple[NewQuote, asyncio.Future[None]]] = []
        self._flushing = False

    async def add_quote(self, quote: NewQuote) -> None:
        """Return once the quote is committed (with whatever else queued meanwhile)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((quote, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the requests already running queue their rows
            if len(self._pending) > 1 and self.gather_s:
                # Several at once means load: a moment more gathers a bigger batch, and
                # each batch costs the database a commit (a WAL flush on PostgreSQL).
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

    @abstractmethod
    async def _write_quotes(self, quotes: list[NewQuote]) -> None: ...

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
    async def close(self) -> None: ...


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


class PostgresChannelStore(ChannelStore):
    """asyncpg, one pool per process and event loop (created on first use)."""

    gather_s = 0.001

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
        super().__init__()
        self.dsn = dsn
        self.max_size = max_size
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

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
                    command_timeout=30,
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
            [json.dumps(q.debts) for q in quotes],
            [q.total_minor for q in quotes],
            [q.currency for q in quotes],
            [q.due_date for q in quotes],
            [q.created_at for q in quotes],
            [q.expires_at for q in quotes],
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


_SQLITE_CUSTOMER = """
SELECT id, name, national_id FROM customers
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


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy stores for `UTCDateTime` on SQLite (naive UTC, microseconds).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class SqliteChannelStore(ChannelStore):
    """The standard library's sqlite3, one connection per process, on the loop.

    WAL readers never wait for the writer, and the reads are indexed lookups, so running
    them on the event loop costs less than a hop to a thread and back. The quote batch
    must not block the loop while another process (an import, the other worker) holds
    the write lock: it asks for the lock without waiting and retries after a short
    asynchronous sleep.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    async def _write_quotes(self, quotes: list[NewQuote]) -> None:
        conn = self._connection()
        rows = [
            (
                q.company_id,
                q.agreement_id,
                q.transaction_id,
                q.customer_id,
                json.dumps(q.debts),
                q.total_minor,
                q.currency,
                q.due_date.isoformat(),
                _sqlite_time(q.created_at),
                _sqlite_time(q.expires_at),
            )
            for q in quotes
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_LOCK_WAIT_S
        pause = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or loop.time() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.002)  # the other writer holds it for about 1 ms
        try:
            conn.executemany(_SQLITE_INSERT_QUOTE, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def customer_debts(
        self,
        company_id: int,
        candidates: Sequence[str],
        limit: int,
        only: Sequence[str] | None = None,
    ) -> CustomerDebts | None:
        conn = self._connection()
        # Autocommit mode: each statement reads its own snapshot; the two together
        # are as consistent as the ORM path's (which also reads in two statements).
        first, second = candidates[0], candidates[-1]
        rows = conn.execute(_SQLITE_CUSTOMER, (company_id, first, second)).fetchall()
        picked = _pick([(*r, None) for r in rows], candidates)
        if picked is None:
            return None
        head, _ = picked
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

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def channel_store(engine: Engine) -> ChannelStore:
    """The store for the database `engine` points at."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("the channel's fast reads need a SQLite file, not :memory:")
        return SqliteChannelStore(url.database)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresChannelStore(dsn)
