"""Benchmark of the BancoEstado channel (debt query, payment notification) under `wrk`.

    .venv/bin/python bench/bench_channel.py --runs 3

Loads a company with 1,000,000 customers (valid RUTs) and 2,000,000 debts (a mix of
open, partly paid and paid) straight into Recaudo's tables with set-based SQL, on
PostgreSQL and on SQLite, then for each run restores that state and loads, with `wrk`
(2 threads, 64 connections):

- the bare reference (`bench/reference_channel.py`: Starlette + asyncpg or sqlite3,
  hand-written SQL on the same tables), and
- `recaudo serve` with its production settings,

each with the same number of worker processes, on the debt query (random existing RUTs
plus 10 % unknown) and the payment notification (a new `transaccion` and a customer not
paid before in every request). Prints the medians as a Markdown table; `--customers
20000 --duration 5 --runs 1` is a quick run. Needs `wrk` (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex
from stdnum.cl import rut

from recaudo.adapters.db import migrate, tables
from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.agreements import create_agreement
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role, system_clock

BENCH = Path(__file__).resolve().parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_DB = "recaudo_bench_channel"
RUN_DB = "recaudo_bench_channel_run"
SLUG = "bench"
REFERENCE_PORT, RECAUDO_PORT = 18081, 18082
FIRST_BODY, UNKNOWN_BODY = 10_000_000, 40_000_000
DUE_BASE = date(2026, 1, 1)
PAID_AT = "2026-11-20 10:15"
FIRST = ("María", "José", "Juan", "Ana", "Luis", "Carolina", "Diego", "Camila", "Felipe")
LAST = ("González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva")
ACTOR = Actor("bench", Role.ADMIN)
QUERY_PATH = "/consulta/caja-vecina/{slug}/?type=String&rut_cliente="
LOOKUP_ONLY_PATH = "/consulta-sin-cotizacion/caja-vecina/{slug}/?type=String&rut_cliente="
NOTIFY_PATH = "/webhook/caja-vecina/{slug}/"

# ----------------------------------------------------------------------------- data
#
# Customer c (ids 1..N) has RUT body 10,000,000 + c and two debts, F<c>-0 (older) and
# F<c>-1: F<c>-0 is paid in full for c % 4 == 0 and half paid for c % 10 == 1; every
# other debt is open. Debt ids are 2c - 1 and 2c; payment and allocation ids equal the
# id of the debt they pay.


def national_id(c: int) -> str:
    body = str(FIRST_BODY + c)
    return f"{body}{rut.calc_check_digit(body)}"


def shown_rut(compact: str) -> str:
    return f"{compact[:-1]}-{compact[-1]}"


def name(c: int) -> str:
    return f"{FIRST[c % len(FIRST)]} {LAST[c % len(LAST)]} {c}"


def amount(c: int, n: int) -> int:
    return 10_000 + ((c * 7 + n * 13) % 200) * 100


def due(c: int, n: int) -> date:
    return DUE_BASE + timedelta(days=c % 300 + n * 30)


def open_debts(c: int) -> list[tuple[str, int, date]]:
    """(external id, amount still owed, due date) of customer c's open debts, oldest first."""
    debts = []
    if c % 4 != 0:
        owed = amount(c, 0) - (amount(c, 0) // 2 if c % 10 == 1 else 0)
        debts.append((f"F{c}-0", owed, due(c, 0)))
    debts.append((f"F{c}-1", amount(c, 1), due(c, 1)))
    return debts


def transaction_id(c: int) -> str:
    """The transaccion of customer c's prepared quote (as if the bank had queried)."""
    return f"Q{c}"


def notification(c: int, transaction: str | None = None) -> str:
    """The bank's notification paying customer c's quote, as one line of JSON."""
    debts = open_debts(c)
    ids = ",".join(f'"{d[0]}"' for d in debts)
    return (
        f'{{"fecha-pago":"{PAID_AT}","transaccion":"{transaction or transaction_id(c)}",'
        f'"rut_cliente":"{shown_rut(national_id(c))}","vencimiento":"{debts[0][2]}",'
        f'"facturas_pagar":{len(debts)},"id_facturas":[{ids}],"nombre":"{name(c)}",'
        f'"total":"{sum(d[1] for d in debts)}"}}'
    )


def write_request_files(workdir: Path, customers: int) -> None:
    """RUTs to query (90 % existing, 10 % unknown) and notifications in a shuffled order."""
    rng = random.Random(20261122)
    with (workdir / "ruts.txt").open("w") as out:
        for _ in range(200_000):
            if rng.random() < 0.9:
                out.write(shown_rut(national_id(rng.randint(1, customers))) + "\n")
            else:
                body = str(UNKNOWN_BODY + rng.randrange(10_000_000))
                out.write(f"{body}-{rut.calc_check_digit(body)}\n")
    order = list(range(1, customers + 1))
    rng.shuffle(order)
    # The last customers of the order are kept for the checks made before each load.
    with (workdir / "notifications.txt").open("w") as out:
        for c in order[:-16]:
            out.write(notification(c) + "\n")
    (workdir / "check-customers.txt").write_text("\n".join(map(str, order[-16:])) + "\n")


def customer_rows(customers: int, now: Any) -> Iterator[tuple[Any, ...]]:
    for c in range(1, customers + 1):
        yield (c, 1, "RUT", national_id(c), name(c), now, now)


def quote_rows(customers: int, now: Any, expires: Any) -> Iterator[tuple[Any, ...]]:
    """One quote per customer for its open debts, valid for a year (agreement 1)."""
    for c in range(1, customers + 1):
        debts = open_debts(c)
        ids = "[" + ",".join(f'"{d[0]}"' for d in debts) + "]"
        total = sum(d[1] for d in debts)
        yield (1, 1, transaction_id(c), c, ids, total, "CLP", debts[0][2], now, expires)


CUSTOMER_COLUMNS = "id, company_id, id_type, national_id, name, created_at, updated_at"
QUOTE_COLUMNS = (
    "company_id, agreement_id, transaction_id, customer_id, debts, total_minor, currency,"
    " due_date, created_at, expires_at"
)
DEBTS_SQL = """
INSERT INTO debts (id, company_id, customer_id, external_id, concept, amount_minor,
    currency, issue_date, due_date, status, created_at, updated_at)
SELECT 2 * c.id - 1 + v.n, c.company_id, c.id, 'F' || c.id || '-' || v.n, 'Plan hogar',
    10000 + ((c.id * 7 + v.n * 13) % 200) * 100, 'CLP', {issue}, {due},
    CASE WHEN v.n = 0 AND c.id % 4 = 0 THEN 'paid' ELSE 'open' END, {now}, {now}
FROM customers c CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1) v
"""
PAYMENTS_SQL = """
INSERT INTO payments (id, company_id, customer_id, channel, method, external_id,
    request_fingerprint, amount_minor, currency, paid_at, status, recorded_by, created_at)
SELECT d.id, d.company_id, d.customer_id, 'office', 'cash', 'P' || d.id, 'bench',
    CASE WHEN d.status = 'paid' THEN d.amount_minor ELSE d.amount_minor / 2 END, 'CLP',
    {now}, 'applied', 'bench', {now}
FROM debts d
WHERE d.id % 2 = 1 AND (d.customer_id % 4 = 0 OR d.customer_id % 10 = 1)
"""
ALLOCATIONS_SQL = """
INSERT INTO allocations (id, payment_id, debt_id, amount_minor)
SELECT id, id, id, amount_minor FROM payments WHERE recorded_by = 'bench'
"""


def pg_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


def admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def prepare_company(url: str, workdir: Path, backend: str) -> None:
    """Schema, the company and its Caja Vecina agreement through Recaudo's own code."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    uow = UnitOfWork(engine)
    create_company(uow, NewCompany(SLUG, "Bench Telecom SpA", "CL"), actor=ACTOR, clock=now)
    issued = create_agreement(uow, SLUG, "caja-vecina", "123", actor=ACTOR, clock=now)
    (workdir / f"secret-{backend}.txt").write_text(issued.secret)
    engine.dispose()


def now() -> datetime:
    return system_clock()


def prepare_pg(workdir: Path, customers: int) -> float:
    started = time.perf_counter()
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{BASE_DB}"')
    prepare_company(pg_url(BASE_DB), workdir, "postgresql")
    moment = datetime.now(UTC)
    with psycopg.connect(pg_url(BASE_DB)) as conn:
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY customers ({CUSTOMER_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in customer_rows(customers, moment):
                copy.write_row(row)
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY quotes ({QUOTE_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in quote_rows(customers, moment, moment + timedelta(days=365)):
                copy.write_row(row)
        # Building the debts' secondary indexes once is faster than 2,000,000 inserts into them.
        indexes = tables.Base.metadata.tables["debts"].indexes
        for index in indexes:
            conn.execute(f'DROP INDEX "{index.name}"')
        # psycopg's placeholders are %(name)s: the modulo operator is written %%.
        due_sql = f"date '{DUE_BASE}' + (c.id %% 300 + v.n * 30)::int"
        conn.execute(
            DEBTS_SQL.replace("%", "%%").format(
                issue=f"{due_sql} - 20", due=due_sql, now="%(now)s"
            ),
            {"now": moment},
        )
        conn.execute(PAYMENTS_SQL.replace("%", "%%").format(now="%(now)s"), {"now": moment})
        conn.execute(ALLOCATIONS_SQL)
        for index in indexes:
            conn.execute(str(CreateIndex(index).compile(dialect=postgresql.dialect())))  # type: ignore[no-untyped-call]
        for table in ("customers", "debts", "payments", "allocations"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
    with psycopg.connect(pg_url(BASE_DB), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def prepare_sqlite(workdir: Path, customers: int) -> float:
    started = time.perf_counter()
    base = workdir / "base.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    prepare_company(f"sqlite:///{base}", workdir, "sqlite")
    moment = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    with sqlite3.connect(base) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executemany(
            f"INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            customer_rows(customers, moment),
        )
        expires = (datetime.now(UTC) + timedelta(days=365)).replace(tzinfo=None).isoformat(" ")
        conn.executemany(
            f"INSERT INTO quotes ({QUOTE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (*row[:7], row[7].isoformat(), *row[8:])
                for row in quote_rows(customers, moment, expires)
            ),
        )
        days = "(c.id % 300 + v.n * 30)"
        conn.execute(
            DEBTS_SQL.format(
                issue=f"date('{DUE_BASE}', '+' || ({days} - 20) || ' days')",
                due=f"date('{DUE_BASE}', '+' || {days} || ' days')",
                now="?1",
            ),
            (moment,),
        )
        conn.execute(PAYMENTS_SQL.format(now="?1"), (moment,))
        conn.execute(ALLOCATIONS_SQL)
    with sqlite3.connect(base) as conn:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def pg_prepared() -> str | None:
    """What the prepared PostgreSQL database holds (`<customers> <revision>`), if any."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (BASE_DB,),
        ).fetchone()
    return row[0] if row else None


def reset(backend: str, workdir: Path) -> str:
    """A fresh copy of the prepared database; returns its URL."""
    if backend == "postgresql":
        admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{BASE_DB}" STRATEGY FILE_COPY')
        return pg_url(RUN_DB)
    run = workdir / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(workdir / "base.db", run)
    return f"sqlite:///{run}"


# ----------------------------------------------------------------------------- wrk

QUERY_LUA = """
local ruts, headers, path = {}, nil, nil
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(args[1]) do ruts[#ruts + 1] = line end
  headers = {["Authorization"] = "Bearer " .. args[2]}
  path = args[3]
  math.randomseed(os.time() * 7 + tid)
end
function request()
  return wrk.format("GET", path .. ruts[math.random(#ruts)], headers)
end
"""

NOTIFY_LUA = """
local tails, headers, path = {}, nil, nil
local offset, stride, n = 0, 1, 0
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(args[1]) do tails[#tails + 1] = line end
  headers = {["Authorization"] = "Bearer " .. args[2],
             ["Content-Type"] = "application/json"}
  path = args[3]
  offset, stride = tonumber(args[4]), tonumber(args[5])
end
function request()
  local body = tails[(offset + tid + n * stride) % #tails + 1]
  n = n + 1
  return wrk.format("POST", path, headers, body)
end
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors, timeouts and non-2xx answers
    # Server CPU (all its processes, user + system) per request during the measured load:
    # what a request costs, whatever else the machine is doing.
    cpu_us: float = 0.0

    @staticmethod
    def parse(output: str) -> Result:
        def ms(label: str) -> float:
            match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
            if not match:
                raise ValueError(f"no {label}% latency in wrk output:\n{output}")
            value, unit = float(match[1]), match[2]
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

        rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
        total = re.search(r"(\d+) requests in", output)
        errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        return Result(
            rps=float(rps[1]) if rps else 0.0,
            p50_ms=ms("50"),
            p99_ms=ms("99"),
            requests=int(total[1]) if total else 0,
            errors=errors + (int(non2xx[1]) if non2xx else 0),
        )


def wrk(url: str, script: Path, args: list[str], seconds: float, opts: argparse.Namespace) -> str:
    command = [
        "wrk",
        f"-t{opts.threads}",
        f"-c{opts.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


# ----------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str  # reference | recaudo
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(name: str, url: str, secret: str, workdir: Path, workers: int) -> Server:
    env = dict(os.environ)
    log = workdir / f"server-{name}.log"
    if name == "reference":
        port = REFERENCE_PORT
        env.update(REF_DATABASE=url, REF_SECRET=secret, REF_COMPANY=SLUG)
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "reference_channel:create_app",
            "--app-dir",
            str(BENCH),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        port = RECAUDO_PORT
        env["RECAUDO_DATABASE_URL"] = url
        command = [str(Path(sys.executable).parent / "recaudo"), "serve", "--port", str(port)]
        command += ["--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} server exited with {process.returncode}: see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    server.stop()
    raise SystemExit(f"{name} server did not answer /healthz within 90 s: see {log}")


def call(url: str, secret: str, body: bytes | None = None) -> str:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return f"{answer.status} {answer.read().decode()}"
    except urllib.error.HTTPError as error:
        return f"{error.code} {error.read().decode()}"


def check(server: Server, secret: str, workdir: Path, run: int) -> None:
    """One query and one notification, printed, so a broken endpoint is seen at once."""
    base = f"http://127.0.0.1:{server.port}"
    c = int((workdir / "check-customers.txt").read_text().split()[run % 16])
    query = call(base + QUERY_PATH.format(slug=SLUG) + shown_rut(national_id(c)), secret)
    body = notification(c).encode()
    paid = call(base + NOTIFY_PATH.format(slug=SLUG), secret, body)
    print(f"  check {server.name}: query -> {query}\n  notify -> {paid}", file=sys.stderr)
    if not query.startswith("200") or not paid.startswith("200") or "1000" not in paid:
        raise SystemExit(f"{server.name}: the endpoints do not answer as expected")


# ----------------------------------------------------------------------------- driver


@dataclass
class Series:
    results: list[Result] = field(default_factory=list)

    def median(self) -> Result:
        runs = sorted(self.results, key=lambda r: r.rps)
        return runs[len(runs) // 2]


def measure(
    server: Server,
    phase: str,
    secret: str,
    workdir: Path,
    opts: argparse.Namespace,
    run: int,
) -> Result:
    lua = workdir / "lua"
    base = f"http://127.0.0.1:{server.port}"
    if phase == "notify":
        script = lua / "notify.lua"
        count = sum(1 for _ in (workdir / "notifications.txt").open())

        def args(offset: int) -> list[str]:
            path = NOTIFY_PATH.format(slug=SLUG)
            notifications = str(workdir / "notifications.txt")
            return [notifications, secret, path, str(offset), str(opts.threads)]

        # The warm-up pays the first customers, the measured load those from the middle.
        warm, measured = args(0), args(count // 2)
    else:
        script = lua / "query.lua"
        path = (LOOKUP_ONLY_PATH if phase == "lookup" else QUERY_PATH).format(slug=SLUG)
        warm = measured = [str(workdir / "ruts.txt"), secret, path]
    if opts.warmup > 0:
        wrk(base, script, warm, opts.warmup, opts)
    profiler = start_profile(server, phase, workdir, opts) if opts.profile else None
    cpu_before = server_cpu_seconds(server)
    output = wrk(base, script, measured, opts.duration, opts)
    cpu = server_cpu_seconds(server) - cpu_before
    if profiler is not None:
        profiler.wait()
    result = Result.parse(output)
    result.cpu_us = cpu / max(result.requests, 1) * 1e6
    print(
        f"  {server.name} {phase}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.requests:,} requests, {result.errors} errors, "
        f"server CPU {result.cpu_us:,.0f} us/request",
        file=sys.stderr,
    )
    return result


def start_profile(
    server: Server, phase: str, workdir: Path, opts: argparse.Namespace
) -> subprocess.Popen[bytes]:
    """py-spy samples every worker of the server while wrk loads it (collapsed stacks)."""
    out = workdir / f"profile-{server.name}-{phase}.txt"
    command = ["py-spy", "record", "--pid", str(server.process.pid), "--subprocesses"]
    command += ["--duration", str(int(opts.duration)), "--format", "raw", "-o", str(out)]
    command += ["--rate", "200", "--nonblocking"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command[0] = spy
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PHASES = {"reference": ("lookup", "query", "notify"), "recaudo": ("query", "notify")}


def run_backend(
    backend: str, workdir: Path, opts: argparse.Namespace
) -> dict[tuple[str, str], Series]:
    secret = (workdir / f"secret-{backend}.txt").read_text().strip()
    series: dict[tuple[str, str], Series] = {}
    for run in range(opts.runs):
        order = ("reference", "recaudo") if run % 2 == 0 else ("recaudo", "reference")
        for name in order:
            if opts.only and name != opts.only:
                continue
            print(f"{backend} run {run + 1} {name}:", file=sys.stderr)
            url = reset(backend, workdir)
            server = start_server(name, url, secret, workdir, opts.workers)
            try:
                check(server, secret, workdir, run * 2 + (name == "recaudo"))
                for phase in PHASES[name]:
                    if opts.endpoint != "both" and (phase == "notify") != (
                        opts.endpoint == "notify"
                    ):
                        continue
                    result = measure(server, phase, secret, workdir, opts, run)
                    series.setdefault((name, phase), Series()).results.append(result)
                    settle(backend, server)
            finally:
                server.stop()
    return series


def server_cpu_seconds(server: Server) -> float:
    processes = [psutil.Process(server.process.pid)]
    processes += processes[0].children(recursive=True)
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def settle(backend: str, server: Server) -> None:
    """Wait for the work a load left queued (requests past wrk's timeout) to drain.

    uvicorn does not cancel a request whose client went away: the server goes on with
    its backlog, so the next load waits until the server is idle (and PostgreSQL too).
    """
    deadline = time.monotonic() + 120
    before = server_cpu_seconds(server)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = server_cpu_seconds(server)
        if now - before < 0.1:
            break
        before = now
    while backend == "postgresql" and time.monotonic() < deadline:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
                (RUN_DB,),
            ).fetchone()
        if not row or row[0] == 0:
            break
        time.sleep(0.5)
    time.sleep(2)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, PostgreSQL "
        f"{row[0] if row else '?'} (default settings, same machine), SQLite "
        f"{sqlite3.sqlite_version}; {wrk_version.split(' [')[0].strip()} on the same machine"
    )


def share_text(value: float, reference: float) -> str:
    if not reference:
        return "?"
    ratio = value / reference
    return f"{ratio:.2f}" if ratio >= 0.01 else f"{ratio:.4f}"


def report(opts: argparse.Namespace, results: dict[str, dict[tuple[str, str], Series]]) -> str:
    lines = [
        f"Machine: {machine()}",
        "",
        f"{opts.customers:,} customers, {2 * opts.customers:,} debts; wrk -t{opts.threads} "
        f"-c{opts.connections}, {opts.duration:g} s per run after {opts.warmup:g} s of "
        f"warm-up, {opts.workers} worker processes per server; median of {opts.runs} run(s):",
        "",
        "| backend | endpoint | server | requests/s | p50 ms | p99 ms | × reference "
        "| target | met |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    names = {
        ("reference", "lookup"): "reference: lookup only",
        ("reference", "query"): "reference: lookup + quote row",
        ("recaudo", "query"): "Recaudo",
        ("reference", "notify"): "reference: payment + allocations + debts",
        ("recaudo", "notify"): "Recaudo",
    }
    for backend, series in results.items():
        for phase, label in (("query", "debt query"), ("notify", "payment notification")):
            keys = [("reference", "lookup"), ("reference", phase)] if phase == "query" else []
            keys = keys or [("reference", phase)]
            reference = series.get(keys[0])
            for key in [*keys, ("recaudo", phase)]:
                if key not in series:
                    continue
                r = series[key].median()
                ratio, target, met = "1.00", "", ""
                if key[0] == "recaudo" and reference:
                    ref = reference.median()
                    ratio = f"**{share_text(r.rps, ref.rps)}**"
                    share, p99 = (0.5, 30.0) if phase == "query" else (0.3, 100.0)
                    target = f"≥ {share:.2f}×, p99 < {p99:g} ms"
                    ok = ref.rps and r.rps / ref.rps >= share and r.p99_ms < p99
                    met = "yes" if ok else "**no**"
                    if phase == "query" and ("reference", "query") in series:
                        with_quote = series[("reference", "query")].median().rps
                        ratio += f" ({share_text(r.rps, with_quote)} of lookup + quote)"
                lines.append(
                    f"| {backend} | {label} | {names[key]} | {r.rps:,.0f} | {r.p50_ms:.1f} "
                    f"| {r.p99_ms:.1f} | {ratio} | {target} | {met} |"
                )
    lines.append("")
    for backend, series in results.items():
        for (name, phase), s in series.items():
            runs = " / ".join(f"{r.rps:,.0f}" for r in s.results)
            errors = sum(r.errors for r in s.results)
            lines.append(f"- {backend} {name} {phase}: {runs} req/s; {errors} errors")
    return "\n".join(lines)


def main() -> None:
    opts = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk (HTTP load generator): apt-get install -y wrk")
    workdir = Path(opts.workdir)
    (workdir / "lua").mkdir(parents=True, exist_ok=True)
    (workdir / "lua" / "query.lua").write_text(QUERY_LUA)
    (workdir / "lua" / "notify.lua").write_text(NOTIFY_LUA)
    backends = ["postgresql", "sqlite"] if opts.backend == "all" else [opts.backend]
    # The prepared databases are reused only for the same size and schema revision.
    stamp, wanted = workdir / "prepared.txt", f"{opts.customers} {migrate.head_revision()}"
    if (
        not opts.reuse
        or not stamp.exists()
        or stamp.read_text().strip() != wanted
        or ("postgresql" in backends and pg_prepared() != wanted)
    ):
        print(f"preparing {opts.customers:,} customers in {workdir} ...", file=sys.stderr)
        write_request_files(workdir, opts.customers)
        for backend in ("postgresql", "sqlite"):
            seconds = (prepare_pg if backend == "postgresql" else prepare_sqlite)(
                workdir, opts.customers
            )
            print(f"  {backend} prepared in {seconds:.1f} s", file=sys.stderr)
        stamp.write_text(wanted + "\n")
        # The PostgreSQL database is shared by every work directory: it carries its own mark.
        admin(f"COMMENT ON DATABASE \"{BASE_DB}\" IS '{wanted}'")
    results = {backend: run_backend(backend, workdir, opts) for backend in backends}
    print(report(opts, results))
    # The prepared databases stay for --reuse (PostgreSQL template, SQLite base file).
    if not opts.keep or opts.clean:
        admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    if opts.clean:
        admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')
        shutil.rmtree(workdir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured load")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--backend", choices=("all", "postgresql", "sqlite"), default="all")
    parser.add_argument("--only", choices=("reference", "recaudo"), help="load one server only")
    parser.add_argument("--endpoint", choices=("both", "query", "notify"), default="both")
    parser.add_argument("--workdir", default="/tmp/recaudo-bench-channel")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the databases prepared by an earlier run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the last run's database")
    parser.add_argument(
        "--clean", action="store_true", help="drop the prepared databases and files at the end"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every measured load (slows it down)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
