"""The daily debts file import on SQLite and PostgreSQL: exact counts and money, all or nothing."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select, text, update
from stdnum.cl import rut

from recaudo.adapters.db.tables import (
    AuditEvent,
    Base,
    Company,
    Customer,
    Debt,
    DebtImport,
    ImportIssue,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.services import imports
from recaudo.services.context import Actor, Role
from recaudo.services.import_sql import ImportStore
from recaudo.services.imports import (
    ImportIssueView,
    ImportMode,
    ImportReport,
    get_import,
    import_debts,
    list_import_issues,
    write_rejected_rows,
)
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.conftest import FrozenClock

HEADER = ("rut", "nombre", "id_deuda", "vencimiento", "monto", "concepto")
WORKER = Path(__file__).with_name("import_worker.py")


def rut_of(body: int) -> str:
    """A valid RUT as billers type it: `12.345.678-5`."""
    digits = str(body)
    dotted = f"{int(digits):,}".replace(",", ".")
    return f"{dotted}-{rut.calc_check_digit(digits)}"


def compact(formatted: str) -> str:
    return formatted.replace(".", "").replace("-", "")


ANA = rut_of(12345678)
BETO = rut_of(11111111)
CARLA = rut_of(7654321)


def csv_file(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(row) for row in rows)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def run(
    uow: UnitOfWork,
    company: Company,
    path: Path,
    clock: FrozenClock,
    actor: Actor,
    mode: ImportMode = ImportMode.UPSERT,
    **kw: Any,
) -> ImportReport:
    clock.advance(minutes=1)
    return import_debts(uow, company.id, path, mode=mode, actor=actor, clock=clock, **kw)


def debts_of(uow: UnitOfWork, company: Company) -> dict[str, tuple[Any, ...]]:
    """external id -> (status, amount minor, due date, concept, customer id, last import)."""
    with uow:
        rows = uow.session.execute(
            select(
                Debt.external_id,
                Debt.status,
                Debt.amount_minor,
                Debt.due_date,
                Debt.concept,
                Customer.national_id,
                Debt.last_import_id,
            )
            .join(Customer, Customer.id == Debt.customer_id)
            .where(Debt.company_id == company.id)
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def customers_of(uow: UnitOfWork, company: Company) -> dict[str, tuple[Any, ...]]:
    with uow:
        rows = uow.session.execute(
            select(Customer.national_id, Customer.id_type, Customer.name, Customer.email)
            .add_columns(Customer.phone)
            .where(Customer.company_id == company.id)
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def audit_of(uow: UnitOfWork, company: Company, *actions: str) -> list[tuple[Any, ...]]:
    with uow:
        rows = uow.session.execute(
            select(AuditEvent.action, AuditEvent.entity_id, AuditEvent.before, AuditEvent.after)
            .where(AuditEvent.company_id == company.id, AuditEvent.action.in_(actions))
            .order_by(AuditEvent.id)
        ).all()
    return [tuple(r) for r in rows]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def debt_id_of(uow: UnitOfWork, company: Company, external_id: str) -> int:
    with uow:
        found = uow.session.scalar(
            select(Debt.id).where(Debt.company_id == company.id, Debt.external_id == external_id)
        )
    assert found is not None
    return found


def set_status(uow: UnitOfWork, company: Company, status: str, *external_ids: str) -> None:
    with uow:
        uow.session.execute(
            update(Debt)
            .where(Debt.company_id == company.id, Debt.external_id.in_(external_ids))
            .values(status=status)
        )
        uow.commit()


def pay(
    uow: UnitOfWork,
    company: Company,
    external_id: str,
    amount: str,
    admin: Actor,
    clock: FrozenClock,
) -> None:
    with uow:
        debt = uow.session.scalar(
            select(Debt).where(Debt.company_id == company.id, Debt.external_id == external_id)
        )
        assert debt is not None
        customer_id = debt.customer_id
    cmd = ApplyPayment(
        company.id,
        customer_id,
        amount,
        PaymentMethod.CASH,
        f"pay-{external_id}-{amount}",
        debts=(external_id,),
    )
    apply_payment(uow, cmd, actor=admin, clock=clock)


def counts(report: ImportReport) -> dict[str, int]:
    names = ("rows_total", "added", "updated", "unchanged", "cancelled", "conflicts")
    return {n: getattr(report, n) for n in (*names, "rejected", "customers_added")}


def expected_counts(**given: int) -> dict[str, int]:
    names = ("rows_total", "added", "updated", "unchanged", "cancelled", "conflicts")
    return dict.fromkeys((*names, "rejected", "customers_added"), 0) | given


FIRST_FILE = [
    (ANA, "Ana Pérez", "D-1", "2026-03-10", "15990", "Plan hogar"),
    (ANA, "Ana Pérez", "D-2", "10-04-2026", "8000", ""),
    (BETO, "Beto Soto", "D-3", "15/03/2026", "12000", "Telefonía"),
]


# ----------------------------------------------------------------------------- upsert


def test_upsert_adds_debts_and_customers_with_exact_counts(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    path = csv_file(tmp_path / "cartera.csv", FIRST_FILE)
    report = run(uow, company, path, clock, admin)
    assert report.status == "completed"
    assert counts(report) == expected_counts(rows_total=3, added=3, customers_added=2)
    assert (report.file_name, report.mode, report.skip_invalid) == ("cartera.csv", "upsert", False)
    assert report.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (report.actor, report.duplicate_of, report.issues) == ("test:admin", None, [])
    assert report.finished_at is not None and report.started_at < report.finished_at
    first = report.import_id
    assert debts_of(uow, company) == {
        "D-1": ("open", 15990, date(2026, 3, 10), "Plan hogar", compact(ANA), first),
        "D-2": ("open", 8000, date(2026, 4, 10), None, compact(ANA), first),
        "D-3": ("open", 12000, date(2026, 3, 15), "Telefonía", compact(BETO), first),
    }
    assert customers_of(uow, company) == {
        compact(ANA): ("RUT", "Ana Pérez", None, None),
        compact(BETO): ("RUT", "Beto Soto", None, None),
    }
    assert audit_of(uow, company, "debts.imported", "debt.updated", "debt.cancelled") == [
        (
            "debts.imported",
            str(first),
            None,
            {
                "file_name": "cartera.csv",
                "file_sha256": report.file_sha256,
                "mode": "upsert",
                "skip_invalid": False,
                "status": "completed",
            }
            | expected_counts(rows_total=3, added=3, customers_added=2),
        )
    ]
    assert get_import(uow, company.id, first or 0) == report


def test_upsert_updates_changed_debts_leaves_others_and_audits_before_after(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    first = run(uow, company, csv_file(tmp_path / "a.csv", FIRST_FILE), clock, admin).import_id
    second_file = [
        (ANA, "Ana María  Pérez", "D-1", "2026-03-10", "15990", "Plan hogar"),
        (ANA, "Ana María Pérez", "D-2", "2026-04-10", "9000", "Cuota"),
        (CARLA, "Carla Díaz", "D-4", "2026-05-01", "3000", "Arriendo"),
    ]
    report = run(uow, company, csv_file(tmp_path / "b.csv", second_file), clock, admin)
    assert counts(report) == expected_counts(
        rows_total=3, added=1, updated=1, unchanged=1, customers_added=1
    )
    second = report.import_id
    assert debts_of(uow, company) == {
        "D-1": ("open", 15990, date(2026, 3, 10), "Plan hogar", compact(ANA), first),
        "D-2": ("open", 9000, date(2026, 4, 10), "Cuota", compact(ANA), second),
        "D-3": ("open", 12000, date(2026, 3, 15), "Telefonía", compact(BETO), first),
        "D-4": ("open", 3000, date(2026, 5, 1), "Arriendo", compact(CARLA), second),
    }
    assert customers_of(uow, company)[compact(ANA)] == ("RUT", "Ana María Pérez", None, None)
    d2 = str(debt_id_of(uow, company, "D-2"))
    with uow:
        ana = uow.session.scalar(select(Customer.id).where(Customer.national_id == compact(ANA)))
    assert audit_of(uow, company, "debt.updated", "customer.updated") == [
        (
            "customer.updated",
            str(ana),
            {"name": "Ana Pérez", "email": None, "phone": None},
            {"name": "Ana María Pérez", "email": None, "phone": None},
        ),
        (
            "debt.updated",
            d2,
            {"amount_minor": 8000, "due_date": "2026-04-10", "concept": None, "status": "open"},
            {
                "amount_minor": 9000,
                "due_date": "2026-04-10",
                "concept": "Cuota",
                "status": "open",
            },
        ),
    ]


def test_the_last_row_of_a_customer_gives_its_name_and_contact_data(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    header = (*HEADER, "email", "telefono")
    rows = [
        (ANA, "Ana P", "D-1", "2026-03-10", "100", "", "ana@example.cl", "+56911111111"),
        (BETO, "Beto", "D-2", "2026-03-10", "100", "", "", ""),
        (ANA, "Ana Pérez", "D-3", "2026-03-10", "100", "", "", "+56922222222"),
    ]
    report = run(uow, company, csv_file(tmp_path / "a.csv", rows, header), clock, admin)
    assert (report.added, report.customers_added) == (3, 2)
    assert customers_of(uow, company) == {
        compact(ANA): ("RUT", "Ana Pérez", None, "+56922222222"),
        compact(BETO): ("RUT", "Beto", None, None),
    }
    # An empty e-mail or phone keeps what the customer already had.
    rows = [(ANA, "Ana Pérez", "D-1", "2026-03-10", "100", "", "ana@example.cl", "")]
    report = run(uow, company, csv_file(tmp_path / "b.csv", rows, header), clock, admin)
    assert (report.unchanged, report.customers_added) == (1, 0)
    assert customers_of(uow, company)[compact(ANA)] == (
        "RUT",
        "Ana Pérez",
        "ana@example.cl",
        "+56922222222",
    )


# ----------------------------------------------------------------------------- replace


def test_replace_cancels_absent_open_debts_but_never_in_payment_or_paid(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    rows = [
        *FIRST_FILE,
        (BETO, "Beto Soto", "D-4", "2026-03-20", "5000", ""),
        (BETO, "Beto Soto", "D-5", "2026-03-25", "7000", ""),
    ]
    first = run(uow, company, csv_file(tmp_path / "a.csv", rows), clock, admin).import_id
    set_status(uow, company, "in_payment", "D-3")
    pay(uow, company, "D-4", "5000", admin, clock)
    before = debts_of(uow, company)
    assert before["D-4"][0] == "paid"
    today = [FIRST_FILE[0], (CARLA, "Carla Díaz", "D-6", "2026-04-01", "4500", "")]
    report = run(
        uow, company, csv_file(tmp_path / "b.csv", today), clock, admin, ImportMode.REPLACE
    )
    assert counts(report) == expected_counts(
        rows_total=2, added=1, unchanged=1, cancelled=2, customers_added=1
    )
    second = report.import_id
    after = debts_of(uow, company)
    assert after == {
        "D-1": before["D-1"],
        "D-2": ("cancelled", 8000, date(2026, 4, 10), None, compact(ANA), second),
        "D-3": ("in_payment", 12000, date(2026, 3, 15), "Telefonía", compact(BETO), first),
        "D-4": before["D-4"],
        "D-5": ("cancelled", 7000, date(2026, 3, 25), None, compact(BETO), second),
        "D-6": ("open", 4500, date(2026, 4, 1), None, compact(CARLA), second),
    }
    assert audit_of(uow, company, "debt.cancelled") == [
        (
            "debt.cancelled",
            str(debt_id_of(uow, company, name)),
            {"external_id": name, "amount_minor": amount, "status": "open"},
            {"external_id": name, "amount_minor": amount, "status": "cancelled"},
        )
        for name, amount in (("D-2", 8000), ("D-5", 7000))
    ]


def test_a_replace_with_no_rows_is_refused_rather_than_cancelling_everything(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    tmp_path: Path,
) -> None:
    run(uow, company, csv_file(tmp_path / "a.csv", FIRST_FILE), clock, admin)
    before = dump(engine)
    empty = csv_file(tmp_path / "empty.csv", [])
    with pytest.raises(ValidationFailed, match="no data rows"):
        run(uow, company, empty, clock, admin, ImportMode.REPLACE)
    assert dump(engine) == before
    report = run(uow, company, empty, clock, admin)  # an empty upsert changes nothing
    assert counts(report) == expected_counts()


def test_replace_keeps_debts_named_by_rejected_rows(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    run(uow, company, csv_file(tmp_path / "a.csv", FIRST_FILE), clock, admin)
    today = [FIRST_FILE[0], (BETO, "Beto Soto", "D-3", "2026-03-15", "12000.5", "")]
    path = csv_file(tmp_path / "b.csv", today)
    report = run(uow, company, path, clock, admin, ImportMode.REPLACE, skip_invalid=True)
    assert counts(report) == expected_counts(rows_total=2, unchanged=1, cancelled=1, rejected=1)
    assert {k: v[0] for k, v in debts_of(uow, company).items()} == {
        "D-1": "open",
        "D-2": "cancelled",
        "D-3": "open",  # its row had a typo: the debt is not cancelled for it
    }


# ----------------------------------------------------------------------------- conflicts


def test_settled_in_payment_and_foreign_debts_are_conflicts_and_never_change(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    setup = [
        (ANA, "Ana Pérez", name, "2026-03-10", amount, "")
        for name, amount in (
            ("D-1", "10000"),
            ("D-2", "20000"),
            ("D-3", "5000"),
            ("D-4", "7000"),
            ("D-5", "3000"),
            ("D-6", "4000"),
            ("D-7", "6000"),
            ("D-8", "10000"),
            ("D-9", "10000"),
        )
    ]
    first = run(uow, company, csv_file(tmp_path / "a.csv", setup), clock, admin).import_id
    pay(uow, company, "D-1", "10000", admin, clock)  # paid in full
    pay(uow, company, "D-2", "15000", admin, clock)  # partly paid
    pay(uow, company, "D-8", "4000", admin, clock)
    pay(uow, company, "D-9", "4000", admin, clock)
    set_status(uow, company, "in_payment", "D-3", "D-4")
    set_status(uow, company, "cancelled", "D-5")
    set_status(uow, company, "written_off", "D-6")
    today = [
        (ANA, "Ana Pérez", "D-1", "2026-03-10", "10000", ""),  # paid, even if identical
        (ANA, "Ana Pérez", "D-2", "2026-03-10", "12000", ""),  # below the 15000 paid
        (ANA, "Ana Pérez", "D-3", "2026-03-10", "5000", ""),  # in payment, identical
        (ANA, "Ana Pérez", "D-4", "2026-03-10", "7500", ""),  # in payment, changed
        (ANA, "Ana Pérez", "D-5", "2026-03-10", "3000", ""),  # cancelled: reopened
        (ANA, "Ana Pérez", "D-6", "2026-03-10", "4000", ""),  # written off
        (BETO, "Beto Nuevo", "D-7", "2026-03-10", "6000", ""),  # another customer's
        (ANA, "Ana Pérez", "D-8", "2026-03-10", "11000", ""),  # above what is paid
        (ANA, "Ana Pérez", "D-9", "2026-03-10", "4000", ""),  # exactly what is paid
    ]
    report = run(uow, company, csv_file(tmp_path / "b.csv", today), clock, admin)
    assert counts(report) == expected_counts(rows_total=9, updated=3, unchanged=1, conflicts=5)
    never = ": an import never changes it"
    below = "amount 12000 is below the 15000 already paid"
    assert report.issues == [
        ImportIssueView("conflict", 2, "id_deuda", "D-1", "debt is paid" + never),
        ImportIssueView("conflict", 3, "monto", "D-2", below),
        ImportIssueView("conflict", 5, "id_deuda", "D-4", "debt is in payment" + never),
        ImportIssueView("conflict", 7, "id_deuda", "D-6", "debt is written off" + never),
        ImportIssueView("conflict", 8, "rut", "D-7", "debt belongs to another customer"),
    ]  # fmt: skip
    second = report.import_id
    march = date(2026, 3, 10)
    assert debts_of(uow, company) == {
        "D-1": ("paid", 10000, march, None, compact(ANA), first),
        "D-2": ("open", 20000, march, None, compact(ANA), first),
        "D-3": ("in_payment", 5000, march, None, compact(ANA), first),
        "D-4": ("in_payment", 7000, march, None, compact(ANA), first),
        "D-5": ("open", 3000, march, None, compact(ANA), second),
        "D-6": ("written_off", 4000, march, None, compact(ANA), first),
        "D-7": ("open", 6000, march, None, compact(ANA), first),
        "D-8": ("open", 11000, march, None, compact(ANA), second),
        "D-9": ("paid", 4000, march, None, compact(ANA), second),
    }
    # A conflicting row changes nothing, not even the customer it names.
    assert compact(BETO) not in customers_of(uow, company)


def test_conflict_amounts_are_written_in_the_currency(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    header = ("nif", "name", "debt_id", "due_date", "amount")
    rows = [("12345678Z", "Ana", "R-1", "2026-03-10", "20.00")]
    run(uow, company_es, csv_file(tmp_path / "a.csv", rows, header), clock, admin)
    pay(uow, company_es, "R-1", "12.50", admin, clock)
    rows = [("12345678-z", "Ana", "R-1", "2026-03-10", "10,5")]
    path = csv_file(tmp_path / "b.csv", rows, header, delimiter=";")
    report = run(uow, company_es, path, clock, admin)
    reason = "amount 10.50 is below the 12.50 already paid"
    assert report.issues == [ImportIssueView("conflict", 2, "amount", "R-1", reason)]
    assert debts_of(uow, company_es)["R-1"][:2] == ("open", 2000)


@pytest.mark.postgres_only
def test_payments_that_land_while_the_plan_is_made_win_over_the_file(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [(ANA, "Ana", f"D-{n}", "2026-03-10", "10000", "") for n in (1, 2, 3)]
    first = run(uow, company, csv_file(tmp_path / "a.csv", rows), clock, admin).import_id
    lock = ImportStore.lock_and_recheck

    def pay_first(store: ImportStore, replace: bool) -> None:
        # Another connection commits payments after the plan's snapshot, before the lock.
        other = UnitOfWork(engine)
        pay(other, company, "D-1", "10000", admin, clock)  # now paid
        pay(other, company, "D-2", "6000", admin, clock)  # more than the file's amount
        pay(other, company, "D-3", "10000", admin, clock)  # the replace would cancel it
        lock(store, replace)

    monkeypatch.setattr(ImportStore, "lock_and_recheck", pay_first)
    today = [
        (ANA, "Ana", "D-1", "2026-03-10", "12000", ""),
        (ANA, "Ana", "D-2", "2026-03-10", "5000", ""),
    ]
    path = csv_file(tmp_path / "b.csv", today)
    report = run(uow, company, path, clock, admin, ImportMode.REPLACE)
    assert counts(report) == expected_counts(rows_total=2, conflicts=2)
    moved = "debt changed while the file was being imported; import it again"
    below = "amount 5000 is below the 6000 already paid"
    assert report.issues == [
        ImportIssueView("conflict", 2, "id_deuda", "D-1", moved),
        ImportIssueView("conflict", 3, "monto", "D-2", below),
    ]
    assert {k: v[:2] + v[-1:] for k, v in debts_of(uow, company).items()} == {
        "D-1": ("paid", 10000, first),
        "D-2": ("open", 10000, first),
        "D-3": ("paid", 10000, first),
    }
    assert audit_of(uow, company, "debt.updated", "debt.cancelled") == []


# ----------------------------------------------------------------------------- formats


def test_latin1_semicolon_file(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    header = ("RUT", "Nombre", "ID Deuda", "Fecha Vencimiento", "Monto", "Concepto", "Emisión")
    rows = [(ANA, "Begoña Muñoz", "D-1", "01-03-2026", "15990", "Peñalolén año 2026", "01/02/2026")]
    path = csv_file(tmp_path / "a.csv", rows, header, delimiter=";", encoding="latin-1")
    assert "ñ".encode("latin-1") in path.read_bytes()
    report = run(uow, company, path, clock, admin)
    assert counts(report) == expected_counts(rows_total=1, added=1, customers_added=1)
    assert customers_of(uow, company)[compact(ANA)][1] == "Begoña Muñoz"
    with uow:
        debt = uow.session.scalar(select(Debt).where(Debt.external_id == "D-1"))
        assert debt is not None
        assert (debt.concept, debt.issue_date, debt.due_date, debt.currency) == (
            "Peñalolén año 2026",
            date(2026, 2, 1),
            date(2026, 3, 1),
            "CLP",
        )


def test_xlsx_file_with_english_headers_and_typed_cells(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer_id", "id_type", "name", "debt_id", "due_date", "amount", "email"])
    sheet.append([ANA, "RUT", "Ana Pérez", "X-1", datetime(2026, 3, 10), 15990, "ana@example.cl"])
    sheet.append([compact(BETO), "", "Beto Soto", 1002, "15/03/2026", 12000.0, None])
    path = tmp_path / "cartera.xlsx"
    book.save(path)
    report = run(uow, company, path, clock, admin)
    assert counts(report) == expected_counts(rows_total=2, added=2, customers_added=2)
    debts = debts_of(uow, company)
    assert debts["X-1"][:4] == ("open", 15990, date(2026, 3, 10), None)
    assert debts["1002"][:4] == ("open", 12000, date(2026, 3, 15), None)
    assert customers_of(uow, company)[compact(ANA)] == ("RUT", "Ana Pérez", "ana@example.cl", None)


# ----------------------------------------------------------------------------- bad rows

BAD_FILE = [
    (ANA, "Ana Pérez", "D-2", "2026-03-10", "1000", ""),  # row 2: good
    (rut_of(12345678)[:-1] + "9", "Ana", "D-3", "2026-03-10", "1000", ""),  # 3: check digit
    (BETO, "", "D-4", "2026-03-10", "1000", ""),  # 4: missing name
    (BETO, "Beto", "D-5", "2026-13-01", "1000", ""),  # 5: bad date
    (BETO, "Beto", "D-6", "2026-03-10", "mil", ""),  # 6: bad amount
    (BETO, "Beto", "D-7", "2026-03-10", "-1000", ""),  # 7: negative
    (BETO, "Beto", "D-8", "2026-03-10", "1000.50", ""),  # 8: decimals in CLP
    (BETO, "Beto", "D-2", "2026-03-10", "1000", ""),  # 9: duplicate of row 2
    (BETO, "Beto", "D" * 65, "2026-03-10", "1000", ""),  # 10: id too long
    (BETO, "Beto", "D-9", "2026-03-10", "0", ""),  # 11: zero
]
BAD_DATE = "due date '2026-13-01' is not a valid date (YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY)"
BAD_ISSUES = [
    ImportIssueView("rejected", 3, "rut", "D-3", "'12.345.678-9' has a wrong check digit for RUT"),
    ImportIssueView("rejected", 4, "nombre", "D-4", "name is required"),
    ImportIssueView("rejected", 5, "vencimiento", "D-5", BAD_DATE),
    ImportIssueView("rejected", 6, "monto", "D-6", "not an amount: 'mil'"),
    ImportIssueView("rejected", 7, "monto", "D-7", "negative amount: '-1000'"),
    ImportIssueView("rejected", 8, "monto", "D-8", "'1000.50' has more than 0 decimals for CLP"),
    ImportIssueView("rejected", 9, "id_deuda", "D-2", "duplicate debt id, first at row 2"),
    ImportIssueView("rejected", 10, "id_deuda", None, "debt id is longer than 64 characters"),
    ImportIssueView("rejected", 11, "monto", "D-9", "amount must be greater than zero"),
]  # fmt: skip


def test_one_bad_row_rejects_the_whole_file_and_changes_nothing(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    tmp_path: Path,
) -> None:
    run(uow, company, csv_file(tmp_path / "a.csv", FIRST_FILE), clock, admin)
    before = dump(engine)
    report = run(uow, company, csv_file(tmp_path / "bad.csv", BAD_FILE), clock, admin)
    assert report.status == "rejected"
    assert counts(report) == expected_counts(rows_total=10, rejected=9)
    assert report.issues == BAD_ISSUES
    after = dump(engine)
    recorded = {"debt_imports", "import_issues", "audit_events"}
    assert {k: v for k, v in after.items() if k not in recorded} == {
        k: v for k, v in before.items() if k not in recorded
    }
    assert len(after["debt_imports"]) == len(before["debt_imports"]) + 1
    assert len(after["import_issues"]) == len(before["import_issues"]) + 9
    assert [a[0] for a in audit_of(uow, company, "debts.import_rejected")] == [
        "debts.import_rejected"
    ]
    assert get_import(uow, company.id, report.import_id or 0) == report


def test_skip_invalid_applies_the_good_rows_and_lists_the_rejected_ones(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    path = csv_file(tmp_path / "bad.csv", BAD_FILE)
    rejected = run(uow, company, path, clock, admin)
    assert rejected.status == "rejected"
    # The same file again with skip_invalid is not a duplicate: nothing was imported.
    report = run(uow, company, path, clock, admin, skip_invalid=True)
    assert report.status == "completed"
    assert counts(report) == expected_counts(rows_total=10, added=1, rejected=9, customers_added=1)
    assert report.issues == BAD_ISSUES
    assert list(debts_of(uow, company)) == ["D-2"]
    assert compact(BETO) not in customers_of(uow, company)  # all of Beto's rows were bad
    out = io.BytesIO()
    write_rejected_rows(uow, company.id, report.import_id or 0, out)
    lines = out.getvalue().decode("utf-8-sig").splitlines()
    assert lines[0] == "rut,nombre,id_deuda,vencimiento,monto,concepto,row_number,column,reason"
    beto = "11.111.111-1,Beto"
    assert lines[1:] == [
        "12.345.678-9,Ana,D-3,2026-03-10,1000,,3,rut,"
        "'12.345.678-9' has a wrong check digit for RUT",
        "11.111.111-1,,D-4,2026-03-10,1000,,4,nombre,name is required",
        f'{beto},D-5,2026-13-01,1000,,5,vencimiento,"{BAD_DATE}"',  # it holds commas
        f"{beto},D-6,2026-03-10,mil,,6,monto,not an amount: 'mil'",
        f"{beto},D-7,2026-03-10,-1000,,7,monto,negative amount: '-1000'",
        f"{beto},D-8,2026-03-10,1000.50,,8,monto,'1000.50' has more than 0 decimals for CLP",
        f'{beto},D-2,2026-03-10,1000,,9,id_deuda,"duplicate debt id, first at row 2"',
        f"{beto},{'D' * 65},2026-03-10,1000,,10,id_deuda,debt id is longer than 64 characters",
        f"{beto},D-9,2026-03-10,0,,11,monto,amount must be greater than zero",
    ]


def test_original_cells_of_many_duplicates_are_fetched_page_by_page(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imports, "RAW_PAGE", 2)
    rows = [(ANA, f"Ana {n}", f"D-{n % 2}", "2026-03-10", str(100 + n), "") for n in range(7)]
    report = run(uow, company, csv_file(tmp_path / "a.csv", rows), clock, admin, skip_invalid=True)
    assert counts(report) == expected_counts(rows_total=7, added=2, rejected=5, customers_added=1)
    out = io.BytesIO()
    write_rejected_rows(uow, company.id, report.import_id or 0, out)
    lines = out.getvalue().decode("utf-8-sig").splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == [f"Ana {n}" for n in range(2, 7)]
    with uow:
        raws = uow.session.scalars(select(ImportIssue.raw).order_by(ImportIssue.row_number))
        assert all(raws)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"nombre,monto\nAna,100\n", "missing required column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"", "the file is empty"),
    ],
)
def test_an_unreadable_file_is_refused_and_leaves_no_trace(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    tmp_path: Path,
    content: bytes,
    message: str,
) -> None:
    before = dump(engine)
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed, match=message):
        run(uow, company, path, clock, admin)
    assert dump(engine) == before


# ----------------------------------------------------------------------------- once only


def test_the_same_file_twice_is_a_no_op(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    tmp_path: Path,
) -> None:
    path = csv_file(tmp_path / "a.csv", FIRST_FILE)
    first = run(uow, company, path, clock, admin, ImportMode.REPLACE)
    before = dump(engine)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    again = run(uow, company, copy, clock, admin, ImportMode.REPLACE)
    assert (again.status, again.import_id, again.duplicate_of) == (
        "duplicate",
        None,
        first.import_id,
    )
    assert (again.file_name, again.file_sha256) == ("renamed.csv", first.file_sha256)
    assert counts(again) == expected_counts()
    assert dump(engine) == before


# ----------------------------------------------------------------------------- access


def test_reports_and_issues_are_scoped_to_the_company(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
) -> None:
    path = csv_file(tmp_path / "bad.csv", BAD_FILE)
    report = run(uow, company, path, clock, admin, skip_invalid=True)
    import_id = report.import_id or 0
    with pytest.raises(NotFound):
        get_import(uow, company_es.id, import_id)
    with pytest.raises(NotFound):
        list_import_issues(uow, company_es.id, import_id)
    with pytest.raises(NotFound):
        write_rejected_rows(uow, company_es.id, import_id, io.BytesIO())
    page = list_import_issues(uow, company.id, import_id, kind="rejected", offset=2, limit=3)
    assert page == BAD_ISSUES[2:5]
    assert list_import_issues(uow, company.id, import_id, kind="conflict") == []
    with pytest.raises(ValidationFailed):
        list_import_issues(uow, company.id, import_id, kind="other")


def test_only_writers_of_the_company_may_import(
    uow: UnitOfWork, company: Company, clock: FrozenClock, tmp_path: Path
) -> None:
    path = csv_file(tmp_path / "a.csv", FIRST_FILE)
    with pytest.raises(PermissionDenied):
        run(uow, company, path, clock, Actor("auditor", Role.AUDITOR, company.id))
    with pytest.raises(NotFound):
        run(uow, company, path, clock, Actor("other", Role.OPERATOR, company.id + 1))
    report = run(uow, company, path, clock, Actor("operator", Role.OPERATOR, company.id))
    assert (report.status, report.actor) == ("completed", "operator")


def test_progress_is_reported_in_bytes_up_to_the_file_size(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    rows = [(ANA, "Ana", f"D-{n}", "2026-03-10", "100", "") for n in range(5_000)]
    path = csv_file(tmp_path / "a.csv", rows)
    seen: list[tuple[int, int]] = []
    run(uow, company, path, clock, admin, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert len(seen) == 5_000 // imports.PROGRESS_EVERY + 1
    assert all(total == size for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (size, size)


# ----------------------------------------------------------------------------- crash


def kill_file(path: Path, rows: int) -> Path:
    """Every existing debt changes and as many new ones arrive: a crash would show."""
    return csv_file(
        path,
        [(ANA, "Ana", f"K-{n}", "2026-06-01", str(1_000 + n), "") for n in range(rows)],
    )


@pytest.mark.parametrize("where", ["half", "commit"])
def test_killing_the_import_leaves_the_database_exactly_as_before(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    engine: Engine,
    db_url: str,
    backend: str,
    tmp_path: Path,
    where: str,
) -> None:
    start = [(ANA, "Ana", f"K-{n}", "2026-05-01", "500", "") for n in range(0, 40_000, 2)]
    run(uow, company, csv_file(tmp_path / "start.csv", start), clock, admin)
    path = kill_file(tmp_path / "today.csv", 40_000)
    before = dump(engine)
    url = db_url + ("?application_name=recaudo-kill-test" if backend == "postgresql" else "")
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), url, str(company.id), str(path), where],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    progress = []
    for line in worker.stdout:
        if line.startswith("PAUSED"):
            break
        progress.append(tuple(int(n) for n in line.split()[1:]))
    else:
        pytest.fail(f"the worker ended without pausing (exit {worker.wait()})")
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    done, total = progress[-1]
    if where == "half":
        assert total / 2 <= done < total  # killed mid-file
    else:
        assert done == total  # killed after every statement, before the commit
    if backend == "postgresql":
        wait_for_backend_exit(engine)
    assert dump(engine) == before
    # Nothing is left behind: the same import now runs to completion.
    report = run(uow, company, path, clock, admin, ImportMode.REPLACE)
    assert counts(report) == expected_counts(rows_total=40_000, added=20_000, updated=20_000)


def wait_for_backend_exit(engine: Engine) -> None:
    """The server notices the dead client's socket and rolls back its transaction."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    for _ in range(200):
        with engine.connect() as conn:
            if conn.execute(query, {"name": "recaudo-kill-test"}).scalar() == 0:
                return
        time.sleep(0.05)
    pytest.fail("the killed worker's PostgreSQL session is still alive")


def test_the_import_record_holds_who_when_and_what(
    uow: UnitOfWork, company: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    report = run(uow, company, csv_file(tmp_path / "a.csv", FIRST_FILE), clock, admin)
    with uow:
        record = uow.session.get(DebtImport, report.import_id)
        assert record is not None
        assert (record.company_id, record.actor, record.status, record.file_name) == (
            company.id,
            "test:admin",
            "completed",
            "a.csv",
        )
        assert (record.started_at, record.finished_at) == (report.started_at, report.finished_at)
        assert (record.added, record.rows_total, record.customers_added) == (3, 3, 2)
