"""Reconciliation of a bank's settlement file on SQLite and PostgreSQL: every kind of difference."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    ChannelAgreement,
    Company,
    Payment,
    PaymentException,
    Reconciliation,
    ReconciliationItem,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.formats.fixedwidth import Record, load_layout
from recaudo.services import exceptions, queries
from recaudo.services import reconciliation as service
from recaudo.services.agreements import create_agreement
from recaudo.services.collections_online import Caller, Notification, notify_payment
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment
from recaudo.services.reconciliation import FileRefused
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.reconciliation_builders import (
    ANA,
    DAY,
    FILE_LINES,
    JUANA,
    MARTA,
    PEDRO,
    Line,
    World,
    bank_file,
    build_world,
    online_day,
    rendicion,
    write_layout,
)

OPERATOR = Actor("test:operator", Role.OPERATOR)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return write_layout(tmp_path)


@pytest.fixture
def world(uow: UnitOfWork, company: Company, clock: FrozenClock) -> World:
    return build_world(uow, company, clock)


def run(
    uow: UnitOfWork,
    world: World,
    data: bytes,
    layout: Path,
    clock: FrozenClock,
    **kw: object,
) -> service.ReconciliationView:
    return service.reconcile(
        uow,
        world.agreement.id,
        data,
        file_name="rendicion-20260302.txt",
        layout=str(layout),
        actor=OPERATOR,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


def items(uow: UnitOfWork, view: service.ReconciliationView) -> list[tuple[object, ...]]:
    with uow:
        return [
            (
                i.kind,
                i.transaction_id,
                i.reference,
                i.bank_amount,
                i.recaudo_amount,
                i.paid_on,
                i.line_no,
                i.payment_id,
                i.detail,
            )
            for i in service.iter_items(uow, None, view.id)
        ]


def payments(uow: UnitOfWork) -> list[tuple[object, ...]]:
    with uow:
        return [
            (p.id, p.external_id, p.customer_id, p.amount_minor, p.status, p.exception_reason)
            for p in uow.session.scalars(select(Payment).order_by(Payment.id))
        ]


def statuses(uow: UnitOfWork, company: Company) -> dict[str, tuple[str, Decimal]]:
    with uow:
        page = queries.list_debts(uow, company.id, paging=queries.Paging(page_size=500))
    return {d.debt_id: (d.status, d.open_amount) for d in page.items}


D = Decimal


def expected_items(ids: dict[str, int], t5: int, t6: int) -> list[tuple[object, ...]]:
    return [
        ("matched", "T1", "134371", D(4000), D(4000), DAY, 2, ids["T1"], "transaction id"),
        ("amount_differs", "T2", "P-1", D(1200), D(1000), DAY, 4, ids["T2"],
         "bank 1200, Recaudo 1000"),
        ("matched", "BNK-4", "M-2", D(700), D(700), DAY, 5, ids["REC-4"],
         "reference, amount and date; transaction ids differ (bank BNK-4, Recaudo REC-4)"),
        ("only_bank", "T5", "A-1", D(5000), D(5000), DAY, 6, t5,
         f"never notified online; recorded from the bank's file as payment {t5}"),
        ("only_bank", "T6", "X-9", D(800), D(800), DAY, 7, t6,
         f"never notified online; recorded from the bank's file as payment {t6}"),
        ("duplicated", "T1", "134371", D(4000), None, DAY, 8, None,
         "transaction T1 is in the file more than once"),
        ("only_recaudo", "T3", "M-1", None, D(3000), DAY, None, ids["T3"],
         "not in the bank's file"),
    ]  # fmt: skip


def test_every_kind_of_difference(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    ids = online_day(uow, world, clock)
    data = bank_file(layout, FILE_LINES)
    view = run(uow, world, data, layout, clock)

    t5, t6 = ids["REC-4"] + 1, ids["REC-4"] + 2
    assert view.recorded_payments == (t5, t6)
    assert (
        view.matched,
        view.only_bank,
        view.only_recaudo,
        view.amount_differs,
        view.duplicated,
    ) == (2, 2, 1, 1, 1)
    assert (view.bank_total, view.recaudo_total, view.currency) == (D(15700), D(8700), "CLP")
    assert (view.accounting_date, view.file_name, view.layout) == (
        DAY,
        "rendicion-20260302.txt",
        str(layout),
    )
    assert items(uow, view) == expected_items(ids, t5, t6)

    # The money only the bank had is real: recorded, Ana's debt paid, a customer-less
    # payment held whole; both with an exception for an operator.
    assert payments(uow)[-2:] == [
        (t5, "T5", world.people["ana"].id, 5000, "applied", "not_notified"),
        (t6, "T6", None, 800, "exception", "not_notified"),
    ]
    with uow:
        recorded = uow.session.get(Payment, t5)
        assert recorded is not None
        assert (recorded.channel, recorded.agreement_id, recorded.accounting_date) == (
            "bancoestado",
            world.agreement.id,
            DAY,
        )
        # 11:30 in Santiago (UTC-3 in March), as the file says.
        assert recorded.paid_at == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
        assert recorded.recorded_by == "test:operator"
    assert statuses(uow, world.company)["A-1"] == ("paid", D(0))
    with uow:
        page = exceptions.list_exceptions(uow, world.company.id)
    assert [(e.payment_id, e.reason, e.status, e.detail) for e in page.items] == [
        (
            t6,
            "not_notified",
            "open",
            "never notified online; recorded from line 7 of the bank's settlement file for "
            "2026-03-02; no customer matches its reference; 800 held unallocated",
        ),
        (
            t5,
            "not_notified",
            "open",
            "never notified online; recorded from line 6 of the bank's settlement file for "
            "2026-03-02; credited 0",
        ),
    ]
    with uow:
        event = uow.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "reconciliation.created")
        )
        assert event is not None
        assert (event.actor, event.entity_id, event.company_id) == (
            "test:operator",
            str(view.id),
            world.company.id,
        )
        assert event.after is not None
        assert event.after["counts"] == {
            "matched": 2,
            "only_bank": 2,
            "only_recaudo": 1,
            "amount_differs": 1,
            "duplicated": 1,
        }


def test_reconciling_again_records_nothing_twice(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    ids = online_day(uow, world, clock)
    data = bank_file(layout, FILE_LINES)
    first = run(uow, world, data, layout, clock)
    before = payments(uow)
    second = run(uow, world, data, layout, clock)
    t5, t6 = first.recorded_payments

    assert second.id == first.id + 1
    assert second.recorded_payments == ()
    assert payments(uow) == before
    # The same report: the two payments are still the bank's alone (recorded from its
    # file), not "matched"; Recaudo now holds them, so its total grew by what they are.
    assert items(uow, second) == expected_items(ids, t5, t6)
    assert (second.only_bank, second.recaudo_total) == (2, D(8700 + 5000 + 800))
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(PaymentException)) == 2
        assert uow.session.scalar(select(func.count()).select_from(Reconciliation)) == 2


def test_a_late_online_notification_is_a_replay(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    online_day(uow, world, clock)
    view = run(uow, world, bank_file(layout, FILE_LINES), layout, clock)
    t5 = view.recorded_payments[0]
    caller = Caller(
        agreement_id=world.agreement.id,
        company_id=world.company.id,
        channel="caja-vecina",
        enabled=True,
        errors_as_http_200=True,
        quote_ttl_seconds=3600,
        cutoff=time(14, 0),
        company_available=True,
        unavailable_reason=None,
    )
    before = payments(uow)
    note = Notification("T5", ANA, datetime(2026, 3, 2, 11, 30), "5000", ("A-1",))
    notified = notify_payment(uow, caller, note, clock=clock)
    assert (notified.payment_id, notified.replayed, notified.accounting_date) == (t5, True, DAY)
    assert payments(uow) == before


def test_a_file_that_does_not_conform_is_refused_whole(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    online_day(uow, world, clock)
    good = bank_file(layout, FILE_LINES)
    lines = good.split(b"\r\n")
    lines[1] = lines[1][:32] + b"20261302" + lines[1][40:]  # month 13
    lines[3] = lines[3][:22] + b"00000012X0" + lines[3][32:]  # a letter in an amount
    lines[-2] = lines[-2][:7] + b"000000015701" + lines[-2][19:]  # the control sum is off
    bad = b"\r\n".join(lines)
    before = payments(uow)
    with pytest.raises(FileRefused) as caught:
        run(uow, world, bad, layout, clock)
    assert [str(p) for p in caught.value.problems] == [
        "line 2, record detail, field paid_date (columns 33-40): "
        "'20261302' is not a valid date (AAAAMMDD)",
        "line 4, record detail, field debt_amount (columns 23-32): "
        + next(p.message for p in caught.value.problems if p.line_no == 4),
        "line 10: control.total_amount = sum of detail.debt_amount: "
        "the file says 15701, its records give 14500",
    ]
    assert caught.value.message == (
        "the file does not conform to layout test-bank (3 errors); nothing was recorded"
    )
    assert payments(uow) == before
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Reconciliation)) == 0


def test_the_accounting_date_comes_from_the_file_or_must_agree(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    data = bank_file(layout, [Line(JUANA, "134371", 1500, "T1")])
    with pytest.raises(ValidationFailed, match="the file is for accounting date 2026-03-02"):
        run(uow, world, data, layout, clock, accounting_date=date(2026, 3, 3))
    view = run(uow, world, data, layout, clock, accounting_date=DAY)
    assert view.accounting_date == DAY


def test_without_transaction_ids_reference_amount_and_date_decide(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    ids = online_day(uow, world, clock)
    lines = [
        Line(PEDRO, "P-1", 1000, None),  # T2 by reference, amount and date
        Line(PEDRO, "P-1", 1000, None),  # a second entry for the same payment
        Line(MARTA, "M-1", 2999, None),  # T3: one candidate left, another amount
        Line(ANA, "A-1", 5000, None),  # never notified: recorded under a derived key
    ]
    view = run(uow, world, bank_file(layout, lines), layout, clock)
    [ana] = view.recorded_payments
    assert [(i[0], i[3], i[4], i[6], i[7], i[8]) for i in items(uow, view)] == [
        ("matched", D(1000), D(1000), 2, ids["T2"], "reference, amount and date"),
        ("duplicated", D(1000), None, 3, ids["T2"], f"a second bank entry for payment "
         f"{ids['T2']}"),
        ("amount_differs", D(2999), D(3000), 4, ids["T3"],
         "reference and date; bank 2999, Recaudo 3000"),
        ("only_bank", D(5000), D(5000), 5, ana,
         f"never notified online; recorded from the bank's file as payment {ana}"),
        ("only_recaudo", None, D(4000), None, ids["T1"], "not in the bank's file"),
        ("only_recaudo", None, D(700), None, ids["REC-4"], "not in the bank's file"),
    ]  # fmt: skip
    with uow:
        key = uow.session.scalar(select(Payment.external_id).where(Payment.id == ana))
    assert key is not None and key.startswith(f"file-{world.agreement.id}-20260302-")
    again = run(uow, world, bank_file(layout, lines), layout, clock)
    assert again.recorded_payments == ()
    assert [i[0] for i in items(uow, again)] == [i[0] for i in items(uow, view)]


def test_a_reversed_payment_is_not_recorded_again(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock, admin: Actor
) -> None:
    ids = online_day(uow, world, clock)
    reverse_payment(
        uow, world.company.id, ids["T3"], "bank says it bounced", actor=admin, clock=clock
    )
    view = run(uow, world, bank_file(layout, [Line(MARTA, "M-1", 3000, "T3")]), layout, clock)
    assert view.recorded_payments == ()
    first = items(uow, view)[0]
    assert first[0] == "only_bank"
    assert first[7] == ids["T3"]
    assert first[8] == f"payment {ids['T3']} was reversed in Recaudo; not recorded again"


def test_reading_paging_filtering_and_scope(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock, company_es: Company
) -> None:
    online_day(uow, world, clock)
    view = run(uow, world, bank_file(layout, FILE_LINES), layout, clock)
    with uow:
        page = service.list_reconciliations(uow, world.company.id)
        assert [v.id for v in page.items] == [view.id]
        assert service.list_reconciliations(uow, company_es.id).total == 0
        assert (
            service.list_reconciliations(uow, None, agreement_id=world.agreement.id + 9).total == 0
        )
        only_bank = service.list_items(uow, world.company.id, view.id, kind="only_bank")
        assert [(i.transaction_id, i.line_no) for i in only_bank.items] == [("T5", 6), ("T6", 7)]
        second = service.list_items(
            uow, world.company.id, view.id, paging=queries.Paging(page=2, page_size=3)
        )
        assert (second.total, [i.line_no for i in second.items]) == (7, [6, 7, 8])
        with pytest.raises(ValidationFailed, match="unknown kind 'nope'"):
            service.list_items(uow, world.company.id, view.id, kind="nope")
        with pytest.raises(NotFound):
            service.get_reconciliation(uow, company_es.id, view.id)
    with pytest.raises(NotFound):
        service.reconcile(
            uow,
            world.agreement.id,
            b"",
            file_name="x",
            actor=Actor("test:other", Role.ADMIN, company_es.id),
            clock=clock,
        )
    with pytest.raises(PermissionDenied):
        service.reconcile(
            uow,
            world.agreement.id,
            b"",
            file_name="x",
            actor=Actor("test:auditor", Role.AUDITOR),
            clock=clock,
        )


def test_export_csv_and_xlsx_in_spanish(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock
) -> None:
    ids = online_day(uow, world, clock)
    view = run(uow, world, bank_file(layout, FILE_LINES), layout, clock)
    t5, t6 = view.recorded_payments
    out = io.BytesIO()
    with uow:
        assert service.write_export(uow, None, view.id, "csv", out) == 7
    assert out.getvalue().decode("utf-8-sig").splitlines() == [
        "Tipo,Transacción,Referencia,Monto banco,Monto Recaudo,Fecha,Línea,Pago,Detalle",
        f"Conciliado,T1,134371,4000,4000,2026-03-02,2,{ids['T1']},transaction id",
        f'Monto distinto,T2,P-1,1200,1000,2026-03-02,4,{ids["T2"]},"bank 1200, Recaudo 1000"',
        f'Conciliado,BNK-4,M-2,700,700,2026-03-02,5,{ids["REC-4"]},"reference, amount and '
        'date; transaction ids differ (bank BNK-4, Recaudo REC-4)"',
        f"Solo banco,T5,A-1,5000,5000,2026-03-02,6,{t5},never notified online; recorded "
        f"from the bank's file as payment {t5}",
        f"Solo banco,T6,X-9,800,800,2026-03-02,7,{t6},never notified online; recorded "
        f"from the bank's file as payment {t6}",
        "Duplicado,T1,134371,4000,,2026-03-02,8,,transaction T1 is in the file more than once",
        f"Solo Recaudo,T3,M-1,,3000,2026-03-02,,{ids['T3']},not in the bank's file",
    ]
    book = io.BytesIO()
    with uow:
        service.write_export(uow, None, view.id, "xlsx", book, kind="only_recaudo")
    sheet = openpyxl.load_workbook(book, read_only=True).active
    assert sheet is not None
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["Tipo", "Transacción", "Referencia", "Monto banco", "Monto Recaudo", "Fecha",
         "Línea", "Pago", "Detalle"],
        ["Solo Recaudo", "T3", "M-1", None, 3000, datetime(2026, 3, 2), None, ids["T3"],
         "not in the bank's file"],
    ]  # fmt: skip


def test_the_agreement_layout_is_used_by_default(
    uow: UnitOfWork, world: World, layout: Path, clock: FrozenClock, admin: Actor
) -> None:
    agreement = world.agreement.id
    with pytest.raises(ValidationFailed, match="unknown layout"):
        service.set_reconciliation_layout(uow, agreement, str(layout), actor=admin, clock=clock)
    with pytest.raises(PermissionDenied):
        service.set_reconciliation_layout(
            uow, agreement, "asobancaria-2001", actor=OPERATOR, clock=clock
        )
    with pytest.raises(ValidationFailed, match="cannot use layout"):
        service.set_reconciliation_layout(
            uow, agreement, "/nowhere/x.toml", actor=admin, clock=clock, allow_files=True
        )
    in_use = service.set_reconciliation_layout(
        uow, agreement, str(layout), actor=admin, clock=clock, allow_files=True
    )
    assert in_use == str(layout)
    data = bank_file(layout, [Line(ANA, "A-1", 5000, "T5")])
    view = service.reconcile(uow, agreement, data, file_name="f.txt", actor=OPERATOR, clock=clock)
    assert (view.layout, view.only_bank) == (str(layout), 1)
    with uow:
        item = uow.session.scalar(select(ReconciliationItem))
        assert item is not None and item.kind == "only_bank"
        event = uow.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "agreement.reconciliation_layout_set")
        )
        assert event is not None
        assert (event.before, event.after) == (
            {"reconciliation_layout": None},
            {"reconciliation_layout": str(layout)},
        )
    cleared = service.set_reconciliation_layout(uow, agreement, None, actor=admin, clock=clock)
    assert cleared == "bancoestado-rendicion"


# --- the shipped layouts ------------------------------------------------------------------


def test_bancoestado_rendicion_by_default(
    uow: UnitOfWork, world: World, clock: FrozenClock
) -> None:
    ids = online_day(uow, world, clock)
    data = rendicion(
        [
            (JUANA, "134371", 1500, "T1", 2),
            (JUANA, "134372", 2500, "T1", 2),
            (PEDRO, "P-1", 1000, "T2", 1),
            (MARTA, "M-1", 3000, "T3", 1),
            (MARTA, "M-2", 700, "REC-4", 1),
            (ANA, "A-1", 5000, "T5", 1),
        ]
    )
    lines = data.split(b"\r\n")
    lines[3] = lines[3][:86] + b"0000000001300" + lines[3][99:]  # T2's Monto del pago
    data = b"\r\n".join(lines)
    view = service.reconcile(
        uow, world.agreement.id, data, file_name="r.txt", actor=OPERATOR, clock=clock
    )
    [t5] = view.recorded_payments
    assert view.layout == "bancoestado-rendicion"
    assert [(i[0], i[1], i[3], i[7]) for i in items(uow, view)] == [
        ("matched", "T1", D(4000), ids["T1"]),
        ("matched", "T2", D(1000), ids["T2"]),
        ("matched", "T3", D(3000), ids["T3"]),
        ("matched", "REC-4", D(700), ids["REC-4"]),
        ("only_bank", "T5", D(5000), t5),
    ]
    assert statuses(uow, world.company)["A-1"] == ("paid", D(0))
    assert items(uow, view)[1][8] == (
        "transaction id; the file states a payment amount of 1300, its lines add up to 1000"
    )


def asobancaria(details: list[tuple[str, int, int | None]], day: date = DAY) -> bytes:
    """An Asobancaria 2001 file, one lot: (reference, amount in minor units, return cause)."""
    layout = load_layout("asobancaria-2001")
    total = sum(a for _, a, _ in details)
    records = [
        Record(
            "01",
            {
                "biller_nit": 9006491199,
                "collection_date": day,
                "bank_code": 7,
                "account_number": 123456789,
                "file_date": day,
                "file_time": time(18, 0),
                "file_modifier": "A",
                "account_type": 1,
            },
        ),
        Record("05", {"service_code": 7709998888487, "lot_number": 1}),
        *(
            Record(
                "06",
                {
                    "reference": ref,
                    "amount": amount,
                    "payment_origin": 1,
                    "payment_method": 1,
                    "operation_number": 0,
                    "authorization_number": 0,
                    "debited_bank_code": 0,
                    "branch_code": 1,
                    "sequence": n,
                    "return_cause": cause,
                },
            )
            for n, (ref, amount, cause) in enumerate(details, start=1)
        ),
        Record("08", {"detail_count": len(details), "total_amount": total, "lot_number": 1}),
        Record("09", {"detail_count": len(details), "total_amount": total}),
    ]
    return layout.dumps(records)


def test_asobancaria_by_reference_amount_and_collection_date(
    uow: UnitOfWork, admin: Actor, clock: FrozenClock
) -> None:
    andes = create_company(uow, NewCompany("andes", "Andes SAS", "CO"), actor=admin, clock=clock)
    issued = create_agreement(uow, "andes", "internet", "5501", actor=admin, clock=clock)
    with uow:
        row = uow.session.get(ChannelAgreement, issued.agreement.id)
        assert row is not None
        row.reconciliation_layout = "asobancaria-2001"
        uow.commit()
    luis = add_customer(uow, andes, "1020304050", "Luis Gómez", clock)
    add_debt(uow, andes, luis, "1001", "150000.00", date(2026, 2, 1), clock)
    add_debt(uow, andes, luis, "1002", "50000.50", date(2026, 3, 1), clock)
    online = apply_payment(
        uow,
        ApplyPayment(
            company_id=andes.id,
            customer_id=luis.id,
            amount=D("150000.00"),
            method=PaymentMethod.BANK_DEBIT,
            external_id="PSE-77",
            channel="bancoestado",
            debts=("1001",),
            paid_at=datetime(2026, 3, 2, 13, 0, tzinfo=UTC),
            strict=False,
            partial=True,
            agreement_id=issued.agreement.id,
            accounting_date=DAY,
        ),
        actor=admin,
        clock=clock,
    ).payment.id
    data = asobancaria([("1001", 15000000, None), ("1002", 5000050, None), ("1003", 990, 5)])
    view = service.reconcile(
        uow, issued.agreement.id, data, file_name="RECAUDO.TXT", actor=OPERATOR, clock=clock
    )
    [recorded] = view.recorded_payments
    assert (view.accounting_date, view.bank_total, view.currency) == (
        DAY,
        D("200010.40"),
        "COP",
    )
    assert [(i[0], i[1], i[2], i[3], i[4], i[7], i[8]) for i in items(uow, view)] == [
        ("matched", None, "1001", D("150000.00"), D("150000.00"), online,
         "reference, amount and date"),
        ("only_bank", None, "1002", D("50000.50"), D("50000.50"), recorded,
         f"never notified online; recorded from the bank's file as payment {recorded}"),
        ("only_bank", None, "1003", D("9.90"), None, None,
         "returned by the bank: not recorded; return cause 5"),
    ]  # fmt: skip
    assert statuses(uow, andes)["1002"] == ("paid", D("0.00"))
    again = service.reconcile(
        uow, issued.agreement.id, data, file_name="RECAUDO.TXT", actor=OPERATOR, clock=clock
    )
    assert again.recorded_payments == ()
    assert [i[0] for i in items(uow, again)] == ["matched", "only_bank", "only_bank"]


def test_two_reconciliations_at_once_record_each_payment_once(
    uow: UnitOfWork, engine: Engine, world: World, layout: Path, clock: FrozenClock
) -> None:
    online_day(uow, world, clock)
    data = bank_file(layout, FILE_LINES)
    start = threading.Barrier(2)
    views: list[service.ReconciliationView] = []
    errors: list[BaseException] = []

    def reconcile() -> None:
        start.wait()
        try:
            views.append(run(UnitOfWork(engine), world, data, layout, clock))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reconcile) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Each payment only the bank had was recorded by one of the two, once.
    recorded = sorted(p for v in views for p in v.recorded_payments)
    assert len(recorded) == 2
    with uow:
        keys = list(uow.session.scalars(select(Payment.external_id).order_by(Payment.external_id)))
        assert keys == ["REC-4", "T1", "T2", "T3", "T5", "T6"]
        recorded_keys = uow.session.scalars(
            select(Payment.external_id).where(Payment.id.in_(recorded)).order_by(Payment.id)
        )
        assert sorted(recorded_keys) == ["T5", "T6"]
        assert uow.session.scalar(select(func.count()).select_from(PaymentException)) == 2
    assert sorted(v.only_bank for v in views) == [2, 2]
