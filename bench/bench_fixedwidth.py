"""Benchmark of the declarative fixed-width engine against hand-coded writers and readers.

    .venv/bin/python bench/bench_fixedwidth.py --records 1000000 --runs 3

For each shipped layout (bancoestado-rendicion, asobancaria-2001) it writes and reads back
a file of `--records` detail records, once with `recaudo.formats.fixedwidth` and once with
the hand-coded f-string/slicing writer and reader of bench/reference_fixedwidth.py. Every
measurement runs in its own child process (time measured inside the child, around the
write or read loop only; peak RSS = the child's `ru_maxrss` from `os.wait4`). Reference and
engine measurements are interleaved (alternating which goes first) because the machine is
shared and noisy. Before timing, it checks both produce the same bytes and values, and
after the first full-size run that both output files are byte-identical.

Prints medians and engine/reference ratios as Markdown, plus peak RSS at `--rss-records`
(default 100,000) and at `--records`. Target: ratio ≤ 1.5 and flat memory.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_fixedwidth as ref
from recaudo.formats.fixedwidth import Record, load_layout

LAYOUTS = ("bancoestado-rendicion", "asobancaria-2001")
POOL = 1000  # distinct detail records, cycled: generating values must not be what we time
LOT = 1000  # Asobancaria details per lot
NAMES = ("José Pérez González", "María Muñoz", "Ana Díaz Soto", "Luis Rojas", "Camila Silva")
CHANNELS = ("CAJA VECINA", "INTERNET", "SERVIESTADO")


def item(kind: str, values: Mapping[str, Any], engine: bool) -> Any:
    return Record(kind, values) if engine else (kind, values)


def bancoestado_records(n: int, engine: bool = False) -> Iterator[Any]:
    header = {
        "company_rut": 76123456,
        "company_rut_dv": "K",
        "company_name": "Telecomunicaciones del Sur SpA",
        "convenio": "0012345",
        "accounting_date": date(2026, 11, 20),
        "generated_date": date(2026, 11, 20),
        "generated_time": dtime(18, 30, 0),
        "record_count": n,
        "payment_count": n // 2,
        "total_amount": 0,
    }
    pool = []
    for k in range(POOL):
        values = {
            "rut": 5_000_000 + k,
            "rut_dv": "0123456789K"[k % 11],
            "customer_name": f"{NAMES[k % len(NAMES)]} {k}",
            "debt_id": f"F{k:09d}",
            "debt_amount": 5_000 + k * 7,
            "debts_in_payment": 1 + k % 5,
            "payment_amount": 25_000 + k * 11,
            "paid_date": date(2026, 11, 19 + k % 2),
            "paid_time": dtime(k % 24, k % 60, (k * 7) % 60),
            "channel": CHANNELS[k % len(CHANNELS)],
            "transaction_id": f"BE{2026112000000 + k}",
            "convenio": "0012345",
            "accounting_date": date(2026, 11, 20),
            "sequence": k + 1,
        }
        pool.append(item("detail", values, engine))
    amounts = [5_000 + k * 7 for k in range(POOL)]
    header["total_amount"] = sum(amounts) * (n // POOL) + sum(amounts[: n % POOL])
    yield item("header", header, engine)
    yield from itertools.islice(itertools.cycle(pool), n)


def asobancaria_records(n: int, engine: bool = False) -> Iterator[Any]:
    yield item(
        "01",
        {
            "biller_nit": 9006491199,
            "collection_date": date(2024, 7, 24),
            "bank_code": 1,
            "account_number": 62912613,
            "file_date": date(2024, 7, 25),
            "file_time": dtime(10, 0),
            "file_modifier": "A",
            "account_type": 2,
        },
        engine,
    )
    details = [
        {
            "reference": f"{106096800000000009004345062402 + k}",
            "amount": 1_500_000 + k * 100,
            "payment_origin": 1,
            "payment_method": 1 + k % 2,
            "operation_number": k,
            "authorization_number": 0,
            "debited_bank_code": 999,
            "branch_code": k % 300,
            "sequence": k + 1,
            "return_cause": None,
        }
        for k in range(LOT)
    ]
    lot_total = sum(d["amount"] for d in details)
    detail_items = [item("06", d, engine) for d in details]
    left, lot_no, file_total = n, 0, 0
    while left > 0:
        lot_no += 1
        size = min(LOT, left)
        yield item("05", {"service_code": 7709998888487, "lot_number": lot_no}, engine)
        yield from detail_items[:size] if size < LOT else detail_items
        total = lot_total if size == LOT else sum(d["amount"] for d in details[:size])
        file_total += total
        values = {"detail_count": size, "total_amount": total, "lot_number": lot_no}
        yield item("08", values, engine)
        left -= size
    yield item("09", {"detail_count": n, "total_amount": file_total}, engine)


SOURCES = {"bancoestado-rendicion": bancoestado_records, "asobancaria-2001": asobancaria_records}
REF_WRITE = {
    "bancoestado-rendicion": ref.write_bancoestado,
    "asobancaria-2001": ref.write_asobancaria,
}
REF_READ = {"bancoestado-rendicion": ref.read_bancoestado, "asobancaria-2001": ref.read_asobancaria}


# ---------------------------------------------------------------------------- child


def child(mode: str, impl: str, layout_name: str, n: int, path: str) -> None:
    layout = load_layout(layout_name) if impl == "engine" else None
    if mode == "write":
        source = SOURCES[layout_name](n, layout is not None)
        if layout is not None:
            with open(path, "wb") as out:
                started, cpu = time.perf_counter(), time.process_time()
                lines = layout.write(source, out)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        else:
            with open(path, "wb") as out:
                started, cpu = time.perf_counter(), time.process_time()
                lines = REF_WRITE[layout_name](source, out)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    else:
        lines = bad = 0
        with open(path, "rb") as stream:
            started, cpu = time.perf_counter(), time.process_time()
            if layout is not None:
                for parsed in layout.read(stream):
                    lines += 1
                    if parsed.errors:
                        bad += 1
            else:
                for _kind, _values in REF_READ[layout_name](stream):
                    lines += 1
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert bad == 0, f"{bad} lines with errors"
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "lines": lines}))


def measure(mode: str, impl: str, layout_name: str, n: int, path: Path) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, impl, layout_name, str(n), str(path)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} {impl} {layout_name} failed ({proc.returncode})")
    result = json.loads(output)
    return {"seconds": result["seconds"], "cpu": result["cpu"], "rss_mb": usage.ru_maxrss / 1024}


def check_equivalence(layout_name: str) -> None:
    """Both implementations give the same bytes and the same values on a small file."""
    import io

    layout = load_layout(layout_name)
    pairs = list(SOURCES[layout_name](2500))
    expected = io.BytesIO()
    REF_WRITE[layout_name](iter(pairs), expected)
    got = layout.dumps(Record(kind, values) for kind, values in pairs)
    assert got == expected.getvalue(), f"{layout_name}: engine bytes differ from the reference"
    engine_values = [
        (p.record.kind, dict(p.record.values)) for p in layout.read(io.BytesIO(got)) if p.record
    ]
    ref_values = list(REF_READ[layout_name](io.BytesIO(got)))
    for (k1, v1), (k2, v2) in zip(engine_values, ref_values, strict=True):
        v1.pop("reference" if k1 == "detail" else "paid_date" if k1 == "01" else "", None)
        assert k1 == k2 and v1 == v2, (k1, v1, k2, v2)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rss-records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layout", choices=[*LAYOUTS, "all"], default="all")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=5, metavar=("MODE", "IMPL", "LAYOUT", "N", "PATH"))
    args = parser.parse_args()
    if args.child:
        mode, impl, layout_name, n, path = args.child
        child(mode, impl, layout_name, int(n), path)
        return
    layouts = LAYOUTS if args.layout == "all" else (args.layout,)
    # tmpfs when there is one: the files are 160-200 MB and disk writeback on a shared
    # machine would time the disk, not the code.
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="recaudo-bench-fw-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for name in layouts:
        check_equivalence(name)
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    rss_small: dict[tuple[str, str, str], float] = {}
    n = args.records
    try:
        for run in range(args.runs):
            for name in layouts:
                files = {impl: workdir / f"{name}.{impl}.txt" for impl in ("reference", "engine")}
                order = ("reference", "engine") if run % 2 == 0 else ("engine", "reference")
                for impl in order:
                    results.setdefault((name, "write", impl), []).append(
                        measure("write", impl, name, n, files[impl])
                    )
                if run == 0:
                    same = sha256(files["reference"]) == sha256(files["engine"])
                    assert same, f"{name}: engine and reference files differ"
                for impl in order:
                    results.setdefault((name, "read", impl), []).append(
                        measure("read", impl, name, n, files["reference"])
                    )
        for name in layouts:
            for op in ("write", "read"):
                for impl in ("reference", "engine"):
                    target = impl if op == "write" else "reference"
                    path = workdir / f"{name}.small.{target}.txt"
                    rss = measure(op, impl, name, args.rss_records, path)["rss_mb"]
                    rss_small[(name, op, impl)] = rss
    finally:
        for path in workdir.glob("*.txt"):
            path.unlink()
        if args.workdir is None:
            workdir.rmdir()
    elapsed = time.monotonic() - started
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {args.runs} runs, {n:,} records; "
        f"{elapsed:.0f} s in all\n"
    )
    small_k, big_k = args.rss_records // 1000, n // 1000
    print(
        "| layout | operation | reference s | engine s | ratio | reference CPU s | engine CPU s "
        f"| CPU ratio | peak RSS ref / engine, {small_k}k | peak RSS ref / engine, {big_k}k |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in layouts:
        for op in ("write", "read"):
            r = results[(name, op, "reference")]
            e = results[(name, op, "engine")]
            rs = statistics.median(x["seconds"] for x in r)
            es = statistics.median(x["seconds"] for x in e)
            rc = statistics.median(x["cpu"] for x in r)
            ec = statistics.median(x["cpu"] for x in e)
            rr = max(x["rss_mb"] for x in r)
            er = max(x["rss_mb"] for x in e)
            small = (
                f"{rss_small[(name, op, 'reference')]:.0f} / {rss_small[(name, op, 'engine')]:.0f}"
            )
            print(
                f"| {name} | {op} | {rs:.2f} | {es:.2f} | {es / rs:.2f} | {rc:.2f} | {ec:.2f} | "
                f"{ec / rc:.2f} | {small} MB | {rr:.0f} / {er:.0f} MB |"
            )
    print("\nAll runs, wall s (CPU s), reference / engine:")
    for name in layouts:
        for op in ("write", "read"):
            for impl in ("reference", "engine"):
                runs = " ".join(
                    f"{x['seconds']:.2f} ({x['cpu']:.2f})" for x in results[(name, op, impl)]
                )
                print(f"- {name} {op} {impl}: {runs}")


if __name__ == "__main__":
    main()
