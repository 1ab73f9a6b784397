"""Benchmark of SEPA direct-debit remittance generation (pain.008.001.08) against sepaxml.

    .venv/bin/python bench/bench_sepa.py --payments 10000 100000 1000000 --runs 3
    .venv/bin/python bench/bench_sepa.py --quick          # 10,000 payments, one run

For each number of payments N, a database (SQLite, or PostgreSQL with `--backend`) is
loaded once with a company, its creditor account, N commitments with their mandates (one
in ten still FRST, the rest RCUR), their N payments and one open remittance holding them
all. Then, for each run, with the database restored to that state, each variant runs in its
own process so that its peak RSS (`ru_maxrss` from `os.wait4`) is its own:

- **recaudo**: `services.remittances.generate_remittance` — the aggregate and the
  streamed select, the per-payment checks, the lxml incremental writer, the XSD
  validation of the written file (`formats.sepa_write.validate_xml`), hashing and storing
  it, the bulk move of the payments to `remitted` and the audit row. The time is that
  call; the XSD validation's share is measured inside it.
- **writer**: `formats.sepa_write.write_pain008` then `validate_xml`, from the same
  in-memory list of payments sepaxml gets (no database): the writer's own cost.
- **writer-concurrent**: the same with `write_pain008(..., validate=True)`, which checks the
  bytes against the XSD in a second thread while they are written (libxml2 parses without
  the GIL): on two idle cores the check mostly overlaps the writing.
- **sepaxml** (reference, N ≤ `--sepaxml-max`): `sepaxml.SepaDD` (schema pain.008.001.08)
  building the same N transactions from an in-memory list, `add_payment` each, then
  `export(validate=False)` written to a file. sepaxml's own validation goes through the
  pure-Python `xmlschema` package and takes far longer than the build, so it is left out:
  the reference is the faster of its two modes. The list is built before the clock starts
  (it is counted in the peak RSS, as the input of the build).

Prints the medians as a Markdown table. Targets (issue 5): Recaudo's generation at least
2x faster than sepaxml, with at most a quarter of its peak memory, flat in N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_DB = "recaudo_bench_sepa_base"
RUN_DB = "recaudo_bench_sepa_run"
CHUNK = 20_000
VARIANTS = ("recaudo", "writer", "writer-concurrent", "sepaxml")
CREDITOR_ID = "ES77000B85626240"
CREDITOR_IBAN = "ES9121000418450200051332"
FIRST = ("María", "José", "Juan", "Ana", "Luis", "Carmen", "Íñigo", "Lucía", "Jordi", "Núria")
LAST = ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Muñoz", "Peña", "Ibáñez")
CONCEPTS = ("Cuota de socio", "Donación mensual", "Cuota escuela música", "Apadrinamiento")
PERIOD = date(2026, 12, 1)
SIGNED = date(2025, 6, 1)


# ----------------------------------------------------------------------------- data


def iban_for(k: int) -> str:
    """A valid Spanish IBAN for payment k (bank 2100, account number from k)."""
    bban = f"2100{k % 10000:04d}00{k:010d}"
    rearranged = bban + "ES00"
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return f"ES{98 - int(digits) % 97:02d}{bban}"


def name_for(k: int) -> str:
    return f"{FIRST[k % len(FIRST)]} {LAST[(k // 10) % len(LAST)]} {LAST[(k // 7) % len(LAST)]}"


def amount_minor_for(k: int) -> int:
    return 500 + (k * 37) % 20_000  # 5.00 to 204.99 EUR


def payment_facts(n: int) -> Iterator[tuple[int, str, int, str, str, str, str, date]]:
    """(k, e2e, amount_minor, mandate ref, name, iban, concept, signed) of payment k = 1..n."""
    from recaudo.domain.commitments import end_to_end_id

    for k in range(1, n + 1):
        yield (
            k,
            end_to_end_id(k, PERIOD),
            amount_minor_for(k),
            f"RCDM{k:010d}",
            name_for(k),
            iban_for(k),
            CONCEPTS[k % len(CONCEPTS)],
            SIGNED + timedelta(days=k % 300),
        )


def sequence_for(k: int) -> str:
    return "FRST" if k % 10 == 0 else "RCUR"


# ----------------------------------------------------------------------------- databases


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def charge_date() -> date:
    from recaudo.domain.sepa import earliest_charge_date

    return earliest_charge_date(datetime.now(UTC).date(), 5)


def load(url: str, n: int) -> None:
    """Company, creditor account, n customers/commitments/mandates/payments, one remittance."""
    from sqlalchemy import insert

    from recaudo.adapters.db import migrate
    from recaudo.adapters.db.engine import make_engine
    from recaudo.adapters.db.tables import (
        Commitment,
        CommitmentPayment,
        CreditorAccount,
        Customer,
        Mandate,
    )
    from recaudo.adapters.db.uow import UnitOfWork
    from recaudo.services import remittances
    from recaudo.services.companies import NewCompany, company_by_slug, create_company
    from recaudo.services.context import Actor, Role, system_clock

    actor = Actor("bench", Role.ADMIN)
    engine = make_engine(url)
    migrate.upgrade(engine)
    uow = UnitOfWork(engine)
    create_company(
        uow, NewCompany("bench-sepa", "Fundación Bench", "ES"), actor=actor, clock=system_clock
    )
    with uow:
        company_id = company_by_slug(uow, "bench-sepa").id
    now = datetime.now(UTC)
    with uow:
        account = CreditorAccount(
            company_id=company_id,
            name="Cuenta principal",
            iban=CREDITOR_IBAN,
            bic="CAIXESBBXXX",
            creditor_identifier=CREDITOR_ID,
            creditor_name="Fundación Bench",
            pain008_version="pain.008.001.08",
            pain001_version="pain.001.001.09",
            include_bic=False,
            lead_days=2,
            street="Calle Mayor 1",
            town="Madrid",
            postcode="28013",
            country="ES",
            active=True,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(account)
        uow.commit()
        account_id = account.id
    view = remittances.create_remittance(
        uow,
        company_id,
        remittances.NewRemittance("Cuotas diciembre", "direct_debit", charge_date(), account_id),
        actor=actor,
        clock=system_clock,
    )
    started = time.perf_counter()
    with engine.begin() as conn:
        batch: dict[str, list[dict[str, Any]]] = {"c": [], "cm": [], "m": [], "p": []}

        def flush() -> None:
            for key, table in (("c", Customer), ("cm", Commitment), ("m", Mandate)):
                if batch[key]:
                    conn.execute(insert(table), batch[key])
                    batch[key].clear()
            if batch["p"]:
                conn.execute(insert(CommitmentPayment), batch["p"])
                batch["p"].clear()

        for k, e2e, amount, reference, name, iban, concept, signed in payment_facts(n):
            batch["c"].append(
                {"id": k, "company_id": company_id, "id_type": "nif",
                 "national_id": f"{k:08d}B", "name": name, "email": None, "phone": None,
                 "created_at": now, "updated_at": now}
            )  # fmt: skip
            batch["cm"].append(
                {"id": k, "company_id": company_id, "payer_customer_id": k,
                 "beneficiary_customer_id": None, "beneficiary_label": None, "kind": "fee",
                 "method": "direct_debit", "periodicity": "monthly", "amount_minor": amount,
                 "currency": "EUR", "first_payment_on": SIGNED, "ends_on": None,
                 "concept": concept, "direction": "income", "channel_label": None,
                 "campaign_label": None, "iban": iban, "bic": None, "mandate_id": None,
                 "card_token": None, "card_expiry": None, "responsible_email": None,
                 "active": True, "ended_reason": None, "created_at": now, "updated_at": now}
            )  # fmt: skip
            batch["m"].append(
                {"id": k, "company_id": company_id, "commitment_id": k, "reference": reference,
                 "iban": iban, "bic": None, "scheme": "CORE", "signed_on": signed,
                 "status": "active", "invalid_reason": None,
                 "first_collection_done": sequence_for(k) == "RCUR", "created_at": now}
            )  # fmt: skip
            batch["p"].append(
                {"id": k, "company_id": company_id, "commitment_id": k, "customer_id": k,
                 "period_start": PERIOD, "due_on": PERIOD, "amount_minor": amount,
                 "currency": "EUR", "method": "direct_debit", "iban": iban, "bic": None,
                 "mandate_id": k, "sequence_type": None, "status": "not_remitted",
                 "remittance_id": view.id, "end_to_end_id": e2e, "return_reason_code": None,
                 "return_reason": None, "refund_requested": False, "gateway_reference": None,
                 "gateway_message": None, "paid_at": None, "created_at": now,
                 "updated_at": now}
            )  # fmt: skip
            if len(batch["p"]) >= CHUNK:
                flush()
        flush()
    engine.dispose()
    print(f"  loaded {n:,} payments in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def prepare(backend: str, workdir: Path, n: int) -> None:
    if backend == "postgresql":
        admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{BASE_DB}"')
        load(pg_url(BASE_DB), n)
        import psycopg

        with psycopg.connect(pg_url(BASE_DB).replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        return
    base = workdir / "base.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    load(f"sqlite:///{base}", n)
    with sqlite3.connect(base) as conn:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def reset(backend: str, workdir: Path) -> str:
    if backend == "postgresql":
        admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{BASE_DB}" STRATEGY FILE_COPY')
        return pg_url(RUN_DB)
    run = workdir / "run.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(workdir / "base.db", run)
    return f"sqlite:///{run}"


def drop_pg() -> None:
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    admin(f'DROP DATABASE IF EXISTS "{BASE_DB}" WITH (FORCE)')


# ----------------------------------------------------------------------------- children


def child_recaudo(url: str, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from recaudo.adapters.db.engine import make_engine
    from recaudo.adapters.db.tables import Remittance
    from recaudo.adapters.db.uow import UnitOfWork
    from recaudo.formats import sepa_write
    from recaudo.services import remittances
    from recaudo.services.context import Actor, Role, system_clock

    validation = [0.0]
    original = sepa_write.validate_xml

    def timed_validate(source: Any, message_name: str) -> None:
        started = time.perf_counter()
        original(source, message_name)
        validation[0] += time.perf_counter() - started

    sepa_write.validate_xml = timed_validate
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    with uow:
        row = uow.session.scalars(select(Remittance)).one()
        company_id, remittance_id = row.company_id, row.id
    data_dir = workdir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    result = remittances.generate_remittance(
        uow,
        company_id,
        remittance_id,
        data_dir=data_dir,
        actor=Actor("bench", Role.ADMIN),
        clock=system_clock,
    )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    engine.dispose()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "validate_seconds": validation[0],
        "transactions": result.transaction_count,
        "control_sum": str(result.control_sum),
        "groups": result.groups,
        "bytes": result.size_bytes,
    }


def child_writer(n: int, workdir: Path, concurrent: bool = False) -> dict[str, Any]:
    from recaudo.domain.sepa import Scheme, SequenceType
    from recaudo.formats import sepa_write

    facts = list(payment_facts(n))
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    header_total = Decimal(sum(f[2] for f in facts)).scaleb(-2)
    groups = []
    for sequence in ("FRST", "RCUR"):
        chosen = [f for f in facts if sequence_for(f[0]) == sequence]
        total = Decimal(sum(f[2] for f in chosen)).scaleb(-2)
        transactions = (
            sepa_write.DirectDebitTransaction(
                end_to_end_id=e2e,
                amount=Decimal(amount).scaleb(-2),
                mandate_id=reference,
                mandate_signed_on=signed,
                debtor_name=name,
                debtor_iban=iban,
                remittance_information=concept,
            )
            for _, e2e, amount, reference, name, iban, concept, signed in chosen
        )
        groups.append(
            sepa_write.DirectDebitGroup(
                f"BENCH-{sequence}",
                SequenceType(sequence),
                Scheme.CORE,
                charge_date(),
                len(chosen),
                total,
                transactions,
            )
        )
    header = sepa_write.MessageHeader(
        "BENCH-WRITER", datetime.now(UTC), "Fundacion Bench", n, header_total
    )
    creditor = sepa_write.Account(
        name="Fundación Bench", iban=CREDITOR_IBAN, creditor_identifier=CREDITOR_ID
    )
    path = workdir / "writer.xml"
    with path.open("wb") as out:
        sepa_write.write_pain008(out, header, creditor, groups, validate=concurrent)
    written = time.perf_counter()
    if not concurrent:
        sepa_write.validate_xml(path, "pain.008.001.08")
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu_started,
        "bytes": path.stat().st_size,
    }
    if not concurrent:
        result["validate_seconds"] = seconds - (written - started)
    return result


def child_sepaxml(n: int, workdir: Path) -> dict[str, Any]:
    from sepaxml import SepaDD

    when = charge_date()
    payments = [
        {
            "name": name,
            "IBAN": iban,
            "amount": amount,
            "type": sequence_for(k),
            "collection_date": when,
            "mandate_id": reference,
            "mandate_date": signed,
            "description": concept,
            "endtoend_id": e2e,
        }
        for k, e2e, amount, reference, name, iban, concept, signed in payment_facts(n)
    ]
    config = {
        "name": "Fundacion Bench",
        "IBAN": CREDITOR_IBAN,
        "BIC": "CAIXESBBXXX",
        "batch": True,
        "creditor_id": CREDITOR_ID,
        "currency": "EUR",
    }
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    document = SepaDD(config, schema="pain.008.001.08")
    for payment in payments:
        document.add_payment(payment)
    output = document.export(validate=False)
    path = workdir / "sepaxml.xml"
    path.write_bytes(output)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu_started, "bytes": len(output)}


def run_child(variant: str, target: str, workdir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, target, "--workdir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max of all).
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{variant} child failed with exit code {code}")
    result: dict[str, Any] = json.loads(output)
    # The child's own high-water mark (VmHWM is per address space, so it starts again at
    # exec; ru_maxrss would also count the parent's pages the child had before its exec).
    result["peak_rss_mb"] = result.pop("vmhwm_kib") / 1024
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the concurrent XSD check runs in a second one)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def high_water_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc/self/status")


# ----------------------------------------------------------------------------- driver


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import lxml.etree

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, lxml "
        f"{'.'.join(map(str, lxml.etree.LXML_VERSION[:3]))} (libxml2 "
        f"{'.'.join(map(str, lxml.etree.LIBXML_VERSION))}), SQLite {sqlite3.sqlite_version}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--sepaxml-max",
        type=int,
        default=100_000,
        help="largest N the reference runs at (it holds the whole tree)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="what to run (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 payments, one run")
    parser.add_argument("--workdir", default="/tmp/recaudo-bench-sepa")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "TARGET"), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        variant, target = args.child
        if variant == "recaudo":
            result = child_recaudo(target, workdir)
        elif variant in ("writer", "writer-concurrent"):
            result = child_writer(int(target), workdir, concurrent=variant != "writer")
        elif variant == "sepaxml":
            result = child_sepaxml(int(target), workdir)
        else:  # "load": fill the base database, out of the light parent process
            backend, n = target.split(":")
            prepare(backend, workdir, int(n))
            result = {}
        result["vmhwm_kib"] = high_water_kib()
        print(json.dumps(result))
        return
    if args.quick:
        args.payments, args.runs = [10_000], 1
    rows: list[Row] = []
    for n in args.payments:
        print(f"{n:,} payments: loading the {args.backend} database ...", file=sys.stderr)
        run_child("load", f"{args.backend}:{n}", workdir)
        variants = [v for v in args.variants if v != "sepaxml" or n <= args.sepaxml_max]
        samples: dict[str, dict[str, list[float]]] = {
            v: {"seconds": [], "cpu": [], "rss": [], "validate": []} for v in variants
        }
        sizes: dict[str, int] = {}
        for run in range(args.runs):
            for variant in variants:
                target = reset(args.backend, workdir) if variant == "recaudo" else str(n)
                result = run_child(variant, target, workdir)
                samples[variant]["seconds"].append(result["seconds"])
                samples[variant]["cpu"].append(result["cpu_seconds"])
                samples[variant]["rss"].append(result["peak_rss_mb"])
                if "validate_seconds" in result:
                    samples[variant]["validate"].append(result["validate_seconds"])
                sizes[variant] = int(result["bytes"])
                print(f"  run {run + 1} {variant}: {json.dumps(result)}", file=sys.stderr)
        for variant in variants:
            got = samples[variant]
            rows.append(
                Row(
                    n,
                    variant,
                    statistics.median(got["seconds"]),
                    statistics.median(got["cpu"]),
                    statistics.median(got["rss"]),
                    statistics.median(got["validate"]) if got["validate"] else None,
                    sizes[variant],
                )
            )
    if args.backend == "postgresql":
        drop_pg()
    print_table(rows, args)


@dataclass(frozen=True)
class Row:
    payments: int
    variant: str
    seconds: float
    cpu_seconds: float
    rss_mb: float
    validate_seconds: float | None
    size: int


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    reference = {r.payments: r for r in rows if r.variant == "sepaxml"}
    labels = {
        "recaudo": f"Recaudo `generate_remittance` ({args.backend})",
        "writer": "Recaudo writer, then XSD check (in-memory list)",
        "writer-concurrent": "Recaudo writer checking while writing (in-memory list)",
        "sepaxml": "sepaxml `SepaDD` (reference, no validation)",
    }
    print(f"\nMachine: {machine()}")
    print(f"Medians of {args.runs} run(s); each variant in its own process.\n")
    print(
        "| payments | variant | seconds | CPU s | of which XSD check | peak RSS (MB) "
        "| time vs sepaxml | CPU vs sepaxml | RSS vs sepaxml | file (MB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ref = reference.get(row.payments)
        time_ratio = f"{row.seconds / ref.seconds:.2f}" if ref else "—"
        cpu_ratio = f"{row.cpu_seconds / ref.cpu_seconds:.2f}" if ref else "—"
        rss_ratio = f"{row.rss_mb / ref.rss_mb:.2f}" if ref else "—"
        check = f"{row.validate_seconds:.2f}" if row.validate_seconds is not None else "—"
        print(
            f"| {row.payments:,} | {labels[row.variant]} | {row.seconds:.2f} "
            f"| {row.cpu_seconds:.2f} | {check} | {row.rss_mb:.0f} | {time_ratio} "
            f"| {cpu_ratio} | {rss_ratio} | {row.size / 1e6:.1f} |"
        )


if __name__ == "__main__":
    main()
