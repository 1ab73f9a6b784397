"""Benchmark of the daily debts import against PostgreSQL's own best upsert.

    .venv/bin/python bench/bench_import.py --rows 1000000 --runs 3 --backend all

Generates two deterministic debts files (yesterday's and today's: 90 % of today's rows
exist, a tenth of those with a new amount, 10 % are new), loads a company with
yesterday's file, then for each run restores that state and times:

- reference: PostgreSQL `COPY` of today's file into a staging table, then one
  `INSERT ... ON CONFLICT DO UPDATE` into an equivalent plain table holding the same
  rows (no validation, no customers, no audit: the floor for this much data);
- Recaudo's `import_debts` (upsert) on PostgreSQL and on SQLite, each in its own
  process so that its peak RSS is measured alone (`os.wait4`).

Prints medians as a Markdown table; `--rows 20000 --runs 1` is a quick run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from stdnum.cl import rut

from recaudo.adapters.db import migrate
from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.companies import NewCompany, company_by_slug, create_company
from recaudo.services.context import Actor, Role, system_clock
from recaudo.services.imports import ImportMode, import_debts

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_DB = "recaudo_bench_base"
RUN_DB = "recaudo_bench_run"
HEADER = ("rut", "nombre", "id_deuda", "emision", "vencimiento", "monto", "concepto")
FIRST = ("María", "José", "Juan", "Ana", "Luis", "Carolina", "Diego", "Camila", "Felipe")
LAST = ("González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva")
CONCEPTS = ("Plan hogar 300 Mbps", "Telefonía fija", "Plan móvil 40 GB", "Arriendo equipo")
ACTOR = Actor("bench", Role.ADMIN)


# ----------------------------------------------------------------------------- files


def debt_row(k: int, today: bool) -> tuple[str, ...]:
    """Debt number k; customer k // 3 (a customer's debts sit together, as billers export)."""
    customer = k // 3
    body = str(5_000_000 + customer)
    national = f"{body[:-6]}.{body[-6:-3]}.{body[-3:]}-{rut.calc_check_digit(body)}"
    rng = random.Random(k)
    name = f"{FIRST[customer % len(FIRST)]} {LAST[customer % len(LAST)]} {customer}"
    amount = 5_000 + rng.randrange(200) * 100
    if today and k % 10 == 0:
        amount += 990  # a tenth of the debts both days have a new amount today
    month = 1 + k % 12
    return (
        national,
        name,
        f"F{k:09d}",
        f"2026-{month:02d}-01",
        f"10-{month:02d}-2026",
        str(amount),
        CONCEPTS[k % len(CONCEPTS)],
    )


def write_file(path: Path, rows: int, today: bool) -> None:
    """Yesterday holds debts [0, rows); today [rows/10, rows + rows/10)."""
    start = rows // 10 if today else 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(HEADER) + "\n")
        for k in range(start, start + rows):
            out.write(",".join(debt_row(k, today)) + "\n")


# ----------------------------------------------------------------------------- state


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"


def admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def prepare_pg(yesterday: Path) -> float:
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{BASE_DB}"')
    engine = make_engine(pg_url(BASE_DB))
    migrate.upgrade(engine)
    engine.dispose()
    seconds = load_company(pg_url(BASE_DB), yesterday)
    with psycopg.connect(pg_url(BASE_DB).replace("+psycopg", "")) as conn:
        create_reference_table(conn)
        reference_upsert(conn, yesterday)
    with psycopg.connect(pg_url(BASE_DB).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return seconds


def prepare_sqlite(workdir: Path, yesterday: Path) -> float:
    base = workdir / "base.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{base}")
    migrate.upgrade(engine)
    engine.dispose()
    seconds = load_company(f"sqlite:///{base}", yesterday)
    with sqlite3.connect(base) as conn:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return seconds


def load_company(url: str, yesterday: Path) -> float:
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    create_company(
        uow, NewCompany("bench", "Bench Telecom SpA", "CL"), actor=ACTOR, clock=system_clock
    )
    engine.dispose()
    result = run_child(url, yesterday, profile=None)
    return float(result["seconds"])


def reset_pg() -> None:
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    # FILE_COPY clones the preloaded database in seconds (the default WAL_LOG writes it all).
    admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{BASE_DB}" STRATEGY FILE_COPY')


def reset_sqlite(workdir: Path) -> Path:
    run = workdir / "run.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(workdir / "base.db", run)
    return run


# ----------------------------------------------------------------------------- reference


def create_reference_table(conn: psycopg.Connection[Any]) -> None:
    """The same columns and indexes as `debts`, with the customer's RUT inline."""
    conn.execute(
        """
        CREATE TABLE ref_debts (
            id bigserial PRIMARY KEY,
            company_id bigint NOT NULL,
            customer_rut varchar(30) NOT NULL,
            customer_name varchar(200) NOT NULL,
            external_id varchar(64) NOT NULL,
            concept varchar(200),
            amount_minor bigint NOT NULL,
            currency varchar(3) NOT NULL,
            issue_date date,
            due_date date NOT NULL,
            status varchar(16) NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (company_id, external_id)
        )
        """
    )
    conn.execute("CREATE INDEX ON ref_debts (customer_rut, status, due_date)")
    conn.execute("CREATE INDEX ON ref_debts (company_id, status, due_date)")


def reference_upsert(conn: psycopg.Connection[Any], path: Path) -> float:
    started = time.perf_counter()
    conn.execute(
        """
        CREATE TEMP TABLE ref_stage (rut text, nombre text, id_deuda text, emision date,
            vencimiento date, monto bigint, concepto text) ON COMMIT DROP
        """
    )
    conn.execute("SET LOCAL datestyle = 'ISO, DMY'")  # the file's DD-MM-YYYY due dates
    with (
        conn.cursor() as cursor,
        cursor.copy("COPY ref_stage FROM STDIN (FORMAT csv, HEADER true)") as copy,
        path.open("rb") as stream,
    ):
        while chunk := stream.read(1 << 20):
            copy.write(chunk)
    conn.execute(
        """
        INSERT INTO ref_debts AS d (company_id, customer_rut, customer_name, external_id,
            concept, amount_minor, currency, issue_date, due_date, status, created_at,
            updated_at)
        SELECT 1, rut, nombre, id_deuda, concepto, monto, 'CLP', emision, vencimiento,
            'open', now(), now()
        FROM ref_stage
        ON CONFLICT (company_id, external_id) DO UPDATE SET
            amount_minor = excluded.amount_minor, due_date = excluded.due_date,
            issue_date = excluded.issue_date, concept = excluded.concept,
            customer_name = excluded.customer_name, updated_at = excluded.updated_at
        """
    )
    conn.commit()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- Recaudo


def child_main(url: str, path: Path, profile: str | None) -> None:
    """Runs in its own process: one import, its time and counts as JSON on stdout."""
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    with uow:
        company_id = company_by_slug(uow, "bench").id
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    report = import_debts(
        uow, company_id, path, mode=ImportMode.UPSERT, actor=ACTOR, clock=system_clock
    )
    seconds = time.perf_counter() - started
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    engine.dispose()
    counts = {
        k: getattr(report, k)
        for k in ("status", "rows_total", "added", "updated", "unchanged", "conflicts")
    }
    print(json.dumps({"seconds": seconds, **counts, "rejected": report.rejected}))


def run_child(url: str, path: Path, profile: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", url, str(path)]
    if profile:
        command += ["--profile-out", profile]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max of all).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"import child failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


# ----------------------------------------------------------------------------- driver


@dataclass
class Sample:
    seconds: list[float]
    rss: list[float]

    def median(self) -> tuple[float, float | None]:
        rss = statistics.median(self.rss) if self.rss else None
        return statistics.median(self.seconds), rss


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    pg = row[0] if row else "?"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, PostgreSQL {pg} "
        f"(default settings, same machine), SQLite {sqlite3.sqlite_version}"
    )


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args.child[0], Path(args.child[1]), args.profile_out)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    yesterday, today = workdir / "yesterday.csv", workdir / "today.csv"
    backends = ["postgresql", "sqlite"] if args.backend == "all" else [args.backend]
    samples = {name: Sample([], []) for name in ("reference", *backends)}
    loads: dict[str, float] = {}
    if not args.reuse:
        print(f"generating {args.rows:,} rows per file in {workdir} ...", file=sys.stderr)
        write_file(yesterday, args.rows, today=False)
        write_file(today, args.rows, today=True)
        if "postgresql" in backends:
            loads["postgresql"] = prepare_pg(yesterday)
        if "sqlite" in backends:
            loads["sqlite"] = prepare_sqlite(workdir, yesterday)
        if "postgresql" not in backends:  # the reference still needs its table
            prepare_reference_only(yesterday)
    for run in range(args.runs):
        reset_pg()
        with psycopg.connect(pg_url(RUN_DB).replace("+psycopg", "")) as conn:
            samples["reference"].seconds.append(reference_upsert(conn, today))
        for backend in backends:
            if backend == "postgresql":
                reset_pg()
                url = pg_url(RUN_DB)
            else:
                url = f"sqlite:///{reset_sqlite(workdir)}"
            profile = str(workdir / f"{backend}.prof") if args.profile else None
            result = run_child(url, today, profile)
            samples[backend].seconds.append(result["seconds"])
            samples[backend].rss.append(result["peak_rss_mb"])
            print(f"run {run + 1} {backend}: {json.dumps(result)}", file=sys.stderr)
        print(f"run {run + 1} reference: {samples['reference'].seconds[-1]:.2f} s", file=sys.stderr)
    print(report(args, samples, loads))
    if not args.keep:
        admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')


def prepare_reference_only(yesterday: Path) -> None:
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{BASE_DB}"')
    with psycopg.connect(pg_url(BASE_DB).replace("+psycopg", "")) as conn:
        create_reference_table(conn)
        reference_upsert(conn, yesterday)
    with psycopg.connect(pg_url(BASE_DB).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def report(args: argparse.Namespace, samples: dict[str, Sample], loads: dict[str, float]) -> str:
    reference, _ = samples["reference"].median()
    lines = [
        f"Machine: {machine()}",
        "",
        f"{args.rows:,} rows, median of {args.runs} run(s):",
        "",
        "| import (upsert, 90 % existing, 9 % of rows changed, 10 % new) "
        "| seconds | rows/s | peak RSS | × reference |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "reference": "PostgreSQL reference: COPY + INSERT … ON CONFLICT DO UPDATE",
        "postgresql": "Recaudo `import_debts` on PostgreSQL",
        "sqlite": "Recaudo `import_debts` on SQLite",
    }
    for name, sample in samples.items():
        seconds, rss = sample.median()
        rss_text = f"{rss:.0f} MB" if rss is not None else "—"
        ratio = seconds / reference if reference else float("nan")
        lines.append(
            f"| {names[name]} | {seconds:.2f} | {args.rows / seconds:,.0f} | {rss_text} "
            f"| {ratio:.2f} |"
        )
    for backend, seconds in loads.items():
        lines.append("")
        lines.append(
            f"Initial load of {args.rows:,} new debts into an empty company "
            f"({backend}): {seconds:.2f} s ({args.rows / seconds:,.0f} rows/s)."
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("all", "postgresql", "sqlite"), default="all")
    parser.add_argument("--workdir", default="/tmp/recaudo-bench")
    parser.add_argument("--profile", action="store_true", help="cProfile each import")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the files and databases of a --keep run"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
