"""The bare reference for the BancoEstado channel benchmark (`bench_channel.py`).

A Starlette app with hand-written SQL on Recaudo's own tables and none of Recaudo's
layers: no SQLAlchemy, no pydantic, no audit, no unit of work. Run by the bench as

    REF_DATABASE=postgresql://postgres@127.0.0.1:5432/db REF_SECRET=... REF_COMPANY=bench \\
        uvicorn --factory reference_channel:create_app --workers 2

- `GET /consulta/caja-vecina/{slug}/?rut_cliente=...`: customer by national id, then up
  to 5 oldest open debts with what was already paid on each, recorded as a quote row
  (as Recaudo's endpoint must), answered as the contract's JSON. One round trip for the
  lookup, one for the quote.
- `GET /consulta-sin-cotizacion/caja-vecina/{slug}/...`: the same lookup without the
  quote insert (the issue's "same indexed lookup").
- `POST /webhook/caja-vecina/{slug}/`: in one transaction, the customer, the payment
  (unique per transaccion, a replay changes nothing), the debts of the quote with that
  transaccion (or the named ones) locked in primary-key order with their paid sums, the
  allocations, and the debts it pays in full marked paid.

PostgreSQL goes through asyncpg (a pool per worker process). SQLite goes through the
standard library's sqlite3, one connection per worker process called straight from the
event loop (each statement takes microseconds; a writer waits for the lock with
`busy_timeout`, as Recaudo's engine does): the cheapest correct thing a bare app can do.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

OPEN = ("open", "in_payment")
QUOTE_TTL = timedelta(minutes=30)
NOT_FOUND = {"codigo_error": 1004, "descripcion": "Cliente sin deuda"}
PAID_OK = {"resultado": "Informacion obtenida con exito", "codigo_resultado": 1000}

PG_LOOKUP = """
SELECT c.id AS customer_id, c.name, d.id, d.external_id, d.amount_minor, d.due_date,
    COALESCE((SELECT sum(a.amount_minor) FROM allocations a
              JOIN payments p ON p.id = a.payment_id
              WHERE a.debt_id = d.id AND p.status = 'applied'), 0) AS paid
FROM customers c
LEFT JOIN LATERAL (
    SELECT id, external_id, amount_minor, due_date FROM debts
    WHERE customer_id = c.id AND status IN ('open', 'in_payment')
    ORDER BY due_date, id LIMIT 5
) d ON true
WHERE c.company_id = $1 AND c.id_type = 'RUT' AND c.national_id = $2
"""
SQLITE_CUSTOMER = (
    "SELECT id, name FROM customers WHERE company_id = ? AND id_type = 'RUT' AND national_id = ?"
)
SQLITE_DEBTS = """
SELECT d.id, d.external_id, d.amount_minor, d.due_date,
    COALESCE((SELECT sum(a.amount_minor) FROM allocations a
              JOIN payments p ON p.id = a.payment_id
              WHERE a.debt_id = d.id AND p.status = 'applied'), 0) AS paid
FROM debts d WHERE d.customer_id = ? AND d.status IN ('open', 'in_payment')
ORDER BY d.due_date, d.id LIMIT 5
"""
QUOTE_COLUMNS = (
    "company_id, agreement_id, transaction_id, customer_id, debts, total_minor, currency,"
    " due_date, created_at, expires_at"
)


def compact_rut(raw: str) -> str | None:
    """`12.345.678-5` -> `123456785` when the check digit is right, else None."""
    text = raw.strip().replace(".", "").replace("-", "").upper()
    if len(text) < 2 or not text[:-1].isdigit():
        return None
    body, digit = text[:-1], text[-1]
    total = sum(int(c) * (2 + i % 6) for i, c in enumerate(reversed(body)))
    expected = "0123456789K"[(11 - total % 11) % 11]
    return text if digit == expected else None


def formatted_rut(compact: str) -> str:
    return f"{compact[:-1]}-{compact[-1]}"


def json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def quote_answer(rut: str, rows: list[Any]) -> tuple[dict[str, Any], list[str], int, date]:
    debts = [r for r in rows if r["id"] is not None]
    total = sum(r["amount_minor"] - r["paid"] for r in debts)
    due = min(date.fromisoformat(str(r["due_date"])) for r in debts)
    ids = [r["external_id"] for r in debts]
    answer = {
        "transaccion": uuid.uuid4().hex,
        "rut_cliente": formatted_rut(rut),
        "vencimiento": due.isoformat(),
        "facturas_pagar": len(ids),
        "id_facturas": ids,
        "nombre": rows[0]["name"],
        "total": str(total),
    }
    return answer, ids, total, due


class Backend:
    """What the routes need from a database."""

    company_id: int
    agreement_id: int

    async def lookup(self, rut: str) -> list[Any]:
        raise NotImplementedError

    async def record_quote(self, values: tuple[Any, ...]) -> None:
        raise NotImplementedError

    async def pay(self, rut: str, body: dict[str, Any], amount: int) -> bool:
        raise NotImplementedError


async def _keep_session(_connection: Any) -> None:
    return None


class PostgresBackend(Backend):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None

    async def start(self, slug: str) -> None:
        # No reset query on release (asyncpg's default costs a round trip per request):
        # the same setting Recaudo's channel store uses, so the two compare like for like.
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=16, max_size=16, reset=_keep_session
        )
        assert self.pool is not None
        row = await self.pool.fetchrow(
            "SELECT c.id, a.id FROM companies c JOIN channel_agreements a ON a.company_id = c.id"
            " WHERE c.slug = $1 AND a.channel = 'caja-vecina'",
            slug,
        )
        assert row is not None, f"no company {slug!r} with a caja-vecina agreement"
        self.company_id, self.agreement_id = row[0], row[1]

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def lookup(self, rut: str) -> list[Any]:
        assert self.pool is not None
        return list(await self.pool.fetch(PG_LOOKUP, self.company_id, rut))

    async def record_quote(self, values: tuple[Any, ...]) -> None:
        assert self.pool is not None
        await self.pool.execute(
            f"INSERT INTO quotes ({QUOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5::json, $6, $7,"
            " $8, $9, $10)",
            *values,
        )

    async def pay(self, rut: str, body: dict[str, Any], amount: int) -> bool:
        assert self.pool is not None
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            customer = await conn.fetchval(
                "SELECT id FROM customers WHERE company_id = $1 AND id_type = 'RUT'"
                " AND national_id = $2",
                self.company_id,
                rut,
            )
            if customer is None:
                return False
            payment = await conn.fetchval(
                "INSERT INTO payments (company_id, customer_id, channel, method, external_id,"
                " request_fingerprint, amount_minor, currency, paid_at, status, recorded_by,"
                " created_at, agreement_id, accounting_date) VALUES ($1, $2, 'caja-vecina',"
                " 'cash', $3, 'reference', $4, 'CLP', $5, 'applied', 'reference', $5, $6, $7)"
                " ON CONFLICT (company_id, channel, external_id) DO NOTHING RETURNING id",
                self.company_id,
                customer,
                body["transaccion"],
                amount,
                now,
                self.agreement_id,
                now.date(),
            )
            if payment is None:
                return True  # a replay: the first answer stands
            quoted = await conn.fetchval(
                "SELECT debts FROM quotes WHERE company_id = $1 AND transaction_id = $2",
                self.company_id,
                body["transaccion"],
            )
            names = orjson.loads(quoted) if quoted else [str(x) for x in body["id_facturas"]]
            debts = await conn.fetch(
                "SELECT id, amount_minor, COALESCE((SELECT sum(a.amount_minor)"
                " FROM allocations a JOIN payments p ON p.id = a.payment_id"
                " WHERE a.debt_id = d.id AND p.status = 'applied'), 0) AS paid"
                " FROM debts d WHERE company_id = $1 AND customer_id = $2"
                " AND external_id = ANY($3::text[]) AND status IN ('open', 'in_payment')"
                " ORDER BY id FOR UPDATE",
                self.company_id,
                customer,
                names,
            )
            allocations, paid_off = allocate(amount, debts)
            await conn.executemany(
                "INSERT INTO allocations (payment_id, debt_id, amount_minor) VALUES ($1, $2, $3)",
                [(payment, debt, part) for debt, part in allocations],
            )
            if paid_off:
                await conn.execute(
                    "UPDATE debts SET status = 'paid', updated_at = $2 WHERE id = ANY($1)",
                    paid_off,
                    now,
                )
        return True


class SqliteBackend(Backend):
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=60000"):
            self.db.execute(f"PRAGMA {pragma}")

    async def start(self, slug: str) -> None:
        row = self.db.execute(
            "SELECT c.id, a.id FROM companies c JOIN channel_agreements a ON a.company_id = c.id"
            " WHERE c.slug = ? AND a.channel = 'caja-vecina'",
            (slug,),
        ).fetchone()
        assert row is not None, f"no company {slug!r} with a caja-vecina agreement"
        self.company_id, self.agreement_id = row[0], row[1]

    async def stop(self) -> None:
        self.db.close()

    async def lookup(self, rut: str) -> list[Any]:
        customer = self.db.execute(SQLITE_CUSTOMER, (self.company_id, rut)).fetchone()
        if customer is None:
            return []
        head = {"customer_id": customer[0], "name": customer[1]}
        debts = self.db.execute(SQLITE_DEBTS, (customer[0],)).fetchall()
        return [{**head, **dict(d)} for d in debts] or [{**head, "id": None}]

    async def record_quote(self, values: tuple[Any, ...]) -> None:
        self.db.execute(
            f"INSERT INTO quotes ({QUOTE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", values
        )

    async def pay(self, rut: str, body: dict[str, Any], amount: int) -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT id FROM customers WHERE company_id = ? AND id_type = 'RUT'"
                " AND national_id = ?",
                (self.company_id, rut),
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return False
            customer = row[0]
            cursor = db.execute(
                "INSERT INTO payments (company_id, customer_id, channel, method, external_id,"
                " request_fingerprint, amount_minor, currency, paid_at, status, recorded_by,"
                " created_at, agreement_id, accounting_date) VALUES (?, ?, 'caja-vecina',"
                " 'cash', ?, 'reference', ?, 'CLP', ?, 'applied', 'reference', ?, ?, ?)"
                " ON CONFLICT (company_id, channel, external_id) DO NOTHING",
                (
                    self.company_id,
                    customer,
                    body["transaccion"],
                    amount,
                    now,
                    now,
                    self.agreement_id,
                    now.date(),
                ),
            )
            if cursor.rowcount == 0:
                db.execute("COMMIT")
                return True
            payment = cursor.lastrowid
            quoted = db.execute(
                "SELECT debts FROM quotes WHERE company_id = ? AND transaction_id = ?",
                (self.company_id, body["transaccion"]),
            ).fetchone()
            ids = orjson.loads(quoted[0]) if quoted else [str(x) for x in body["id_facturas"]]
            debts = db.execute(
                "SELECT id, amount_minor, COALESCE((SELECT sum(a.amount_minor)"
                " FROM allocations a JOIN payments p ON p.id = a.payment_id"
                " WHERE a.debt_id = d.id AND p.status = 'applied'), 0) AS paid"
                f" FROM debts d WHERE company_id = ? AND customer_id = ?"
                f" AND external_id IN ({','.join('?' * len(ids))})"
                " AND status IN ('open', 'in_payment') ORDER BY id",
                (self.company_id, customer, *ids),
            ).fetchall()
            allocations, paid_off = allocate(amount, debts)
            db.executemany(
                "INSERT INTO allocations (payment_id, debt_id, amount_minor) VALUES (?, ?, ?)",
                [(payment, debt, part) for debt, part in allocations],
            )
            db.executemany(
                "UPDATE debts SET status = 'paid', updated_at = ? WHERE id = ?",
                [(now, debt) for debt in paid_off],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True


def allocate(amount: int, debts: list[Any]) -> tuple[list[tuple[int, int]], list[int]]:
    """Oldest first: each debt gets what it still owes while the money lasts."""
    allocations: list[tuple[int, int]] = []
    paid_off: list[int] = []
    left = amount
    for debt in debts:
        owed = debt["amount_minor"] - debt["paid"]
        part = min(owed, left)
        if part <= 0:
            continue
        allocations.append((debt["id"], part))
        left -= part
        if part == owed:
            paid_off.append(debt["id"])
    return allocations, paid_off


def create_app() -> Starlette:
    database = os.environ["REF_DATABASE"]
    secret = os.environ["REF_SECRET"].encode()
    slug = os.environ.get("REF_COMPANY", "bench")
    backend: PostgresBackend | SqliteBackend = (
        PostgresBackend(database)
        if database.startswith("postgresql://")
        else SqliteBackend(database.removeprefix("sqlite:///"))
    )

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        given = given or request.headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), secret)

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.path_params["slug"] != slug or not authorized(request):
                return json({"codigo_error": 1001, "descripcion": "No autorizado"}, 401)
            return await handler(request)

        return endpoint

    async def query(request: Request, *, record: bool = True) -> Response:
        rut = compact_rut(request.query_params.get("rut_cliente", ""))
        if rut is None:
            return json({"codigo_error": 1002, "descripcion": "RUT invalido"}, 400)
        rows = await backend.lookup(rut)
        if not rows or rows[0]["id"] is None:
            return json(NOT_FOUND)  # errors as HTTP 200, the agreement default
        answer, ids, total, due = quote_answer(rut, rows)
        if record:
            now = datetime.now(UTC)
            stamp: datetime = (
                now if isinstance(backend, PostgresBackend) else now.replace(tzinfo=None)
            )
            await backend.record_quote(
                (
                    backend.company_id,
                    backend.agreement_id,
                    answer["transaccion"],
                    rows[0]["customer_id"],
                    orjson.dumps(ids).decode(),
                    total,
                    "CLP",
                    due,
                    stamp,
                    stamp + QUOTE_TTL,
                )
            )
        return json(answer)

    async def lookup_only(request: Request) -> Response:
        return await query(request, record=False)

    async def notify(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            rut = compact_rut(str(body["rut_cliente"]))
            amount = int(str(body["total"]))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            return json({"codigo_resultado": 1002, "resultado": "Datos invalidos"}, 400)
        if rut is None or not await backend.pay(rut, body, amount):
            return json({"codigo_resultado": 1004, "resultado": "Cliente no existe"})
        return json(PAID_OK)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await backend.start(slug)
        yield
        await backend.stop()

    return Starlette(
        routes=[
            Route("/consulta/caja-vecina/{slug}/", guarded(query)),
            Route("/consulta-sin-cotizacion/caja-vecina/{slug}/", guarded(lookup_only)),
            Route("/webhook/caja-vecina/{slug}/", guarded(notify), methods=["POST"]),
            Route("/healthz", lambda _: Response("ok")),
        ],
        lifespan=lifespan,
    )
