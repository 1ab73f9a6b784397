"""Raw-driver reads for the bank channel's debt query, the one hot read path.

The debt query must answer within a small multiple of a bare asyncpg endpoint (issue 3:
at least half its requests/s, p99 under 30 ms), so it bypasses SQLAlchemy here: one
hand-written statement per engine, run on the event loop with asyncpg (PostgreSQL) or
the standard library's `sqlite3` (an indexed lookup of well under a millisecond, as in
the reference). Everything else, writes included, goes through SQLAlchemy; these two
statements must keep meaning what `balances.paid_of_debt()` and
`collections_online.query_debts` mean (same paid sum, same order, same limit), which
the channel's tests check on both engines.
"""

from __future__ import annotations

import asyncio
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from recaudo.domain.debts import PAYABLE
from recaudo.domain.payments import PaymentStatus

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


class DebtReader(ABC):
    """Finds a customer by compact RUT and their oldest-due debts that still owe money."""

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


class PostgresDebtReader(DebtReader):
    """asyncpg, one pool per process and event loop (created on first use)."""

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
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
                    self.dsn, min_size=1, max_size=self.max_size, command_timeout=30
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

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


_SQLITE_CUSTOMER = """
SELECT id, name, national_id FROM customers
WHERE company_id = ? AND id_type = 'RUT' AND national_id IN (?, ?)
"""
_SQLITE_DEBTS = f"""
SELECT external_id, due_date, currency, open FROM (
    SELECT d.id, d.external_id, d.due_date, d.currency,
           d.amount_minor - COALESCE((
               SELECT sum(a.amount_minor) FROM allocations a
               JOIN payments p ON p.id = a.payment_id
               WHERE a.debt_id = d.id AND p.status = '{_APPLIED}'), 0) AS open
    FROM debts d
    WHERE d.customer_id = ? AND d.status IN ({", ".join("?" * len(_PAYABLE))})
) WHERE open > 0
ORDER BY due_date, id
"""


class SqliteDebtReader(DebtReader):
    """The standard library's sqlite3, one read connection per process, on the loop.

    WAL readers never wait for the writer, and these are two indexed lookups, so
    running them on the event loop costs less than a hop to a thread and back.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=60000")
            self._conn = conn
        return self._conn

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
        for external_id, due, currency, open_minor in conn.execute(
            _SQLITE_DEBTS, (head[0], *_PAYABLE)
        ):
            if wanted is not None and external_id not in wanted:
                continue
            debts.append(OpenDebt(external_id, date.fromisoformat(due), currency, int(open_minor)))
            if len(debts) == limit:
                break
        return CustomerDebts(head[0], head[1], head[2], debts)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def debt_reader(engine: Engine) -> DebtReader:
    """The reader for the database `engine` points at."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("the channel's fast reads need a SQLite file, not :memory:")
        return SqliteDebtReader(url.database)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresDebtReader(dsn)
