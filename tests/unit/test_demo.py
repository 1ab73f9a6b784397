"""The demo data is realistic, valid and the same on every run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from stdnum.cl import rut

from recaudo.services.demo import DEMO_PAYMENTS, demo_customers, write_demo_file

ANCHOR = date(2026, 3, 2)


def test_customers_have_valid_unique_ruts_and_full_names() -> None:
    people = demo_customers(1000, ANCHOR)
    assert len(people) == 1000
    assert all(rut.is_valid(p.rut) for p in people)
    assert len({rut.compact(p.rut) for p in people}) == 1000
    assert all(len(p.name.split()) >= 3 for p in people)
    assert len({p.name for p in people}) > 900


def test_debts_are_varied_and_dated_around_the_anchor() -> None:
    people = demo_customers(1000, ANCHOR)
    debts = [d for p in people for d in p.debts]
    assert {len(p.debts) for p in people} == {1, 2, 3, 4}
    assert len({d.external_id for d in debts}) == len(debts)
    assert all(d.amount > 0 and d.issue_date < d.due_date for d in debts)
    overdue = sum(d.due_date < ANCHOR for d in debts)
    assert 0.3 * len(debts) < overdue < 0.95 * len(debts)
    assert min(d.due_date for d in debts) >= date(2025, 10, 1)
    assert max(d.due_date for d in debts) <= date(2026, 4, 30)


def test_a_smaller_demo_is_a_prefix_of_a_larger_one() -> None:
    assert demo_customers(40, ANCHOR) == demo_customers(100, ANCHOR)[:40]


def test_the_file_is_the_same_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_demo_file(demo_customers(200, ANCHOR), first)
    write_demo_file(demo_customers(200, ANCHOR), second)
    assert first.read_bytes() == second.read_bytes()
    header = first.read_text(encoding="utf-8-sig").splitlines()[0]
    assert header == "rut,nombre,id_deuda,emision,vencimiento,monto,concepto"


def test_demo_payments_have_fixed_distinct_keys() -> None:
    keys = [p.key for p in DEMO_PAYMENTS]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("demo-pago-") for key in keys)
