"""Settlement runs on both backends: golden files, accounting-day grouping, versions, the job."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select, update

from recaudo.adapters.db.tables import (
    AuditEvent,
    ChannelAgreement,
    Company,
    Customer,
    Delivery,
    DeliveryTarget,
    Incident,
    Payment,
    PaymentException,
    Quote,
    SettlementFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.config import Settings
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.formats import fixedwidth
from recaudo.jobs import settlement as settlement_job
from recaudo.services import agreements, settlements, storage
from recaudo.services import collections_online as online
from recaudo.services.context import Actor, Role
from recaudo.services.exceptions import Resolution, resolve_exception
from recaudo.services.payments import reverse_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

DATA = Path(__file__).resolve().parents[1] / "data" / "settlement"
DAY = date(2026, 3, 2)  # a Monday
SANTIAGO_OFFSET = 3  # Chile is UTC-3 in March (summer time)


def local(year: int, month: int, day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    """A naive local (Santiago) moment, as the bank's `fecha-pago` gives it."""
    return datetime(year, month, day, hh, mm, ss)


@dataclass
class Acme:
    """The Chilean company with its two BancoEstado agreements."""

    company: Company
    caja_vecina: int
    internet: int


def setup_agreements(uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock) -> Acme:
    with uow:
        uow.session.execute(
            update(Company).where(Company.id == company.id).values(tax_id="76.086.428-5")
        )
        uow.commit()
    cv = agreements.create_agreement(
        uow, company.slug, "caja-vecina", "4321", actor=admin, clock=clock
    )
    inet = agreements.create_agreement(
        uow, company.slug, "internet", "4322", actor=admin, clock=clock
    )
    with uow:
        refreshed = uow.session.get(Company, company.id)
        assert refreshed is not None
    return Acme(refreshed, cv.agreement.id, inet.agreement.id)


def set_layout(uow: UnitOfWork, agreement_id: int, layout: str, *, control: bool = False) -> None:
    with uow:
        uow.session.execute(
            update(ChannelAgreement)
            .where(ChannelAgreement.id == agreement_id)
            .values(settlement_layout=layout, settlement_control_record=control)
        )
        uow.commit()


def ask_debts(
    uow: UnitOfWork, caller: online.Caller, rut: str, clock: FrozenClock
) -> online.Quoted:
    """The channel's debt query, as the HTTP route runs it (on an event loop)."""

    async def ask() -> online.Quoted:
        channel = online.OnlineChannel(uow.engine, clock)
        try:
            return await channel.quote(caller, rut)
        finally:
            await channel.close()

    return asyncio.run(ask())


def pay(
    uow: UnitOfWork,
    clock: FrozenClock,
    channel: str,
    rut: str,
    paid: datetime,
    transaction: str,
    *,
    total: str | None = None,
    quoted: bool = True,
    debts: tuple[str, ...] = (),
) -> online.Notified:
    """The bank's query then notification, with a fixed `transaccion` (golden files)."""
    with uow:
        lookup = online.find_agreement(uow, "acme", channel, None)
    caller = lookup.caller
    assert caller is not None
    if quoted:
        quote = ask_debts(uow, caller, rut, clock)
        with uow:
            uow.session.execute(
                update(Quote)
                .where(Quote.transaction_id == quote.transaction_id)
                .values(transaction_id=transaction)
            )
            uow.commit()
        total = total or format(quote.total, "f")
    assert total is not None
    note = online.Notification(transaction, rut, paid, total, debts)
    return online.notify_payment(uow, caller, note, clock=clock)


def golden_day(uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock) -> Acme:
    """The fixed set of payments behind the golden files (accounting date 2026-03-02)."""
    acme = setup_agreements(uow, company, admin, clock)
    juana = add_customer(uow, company, "12.345.678-5", "Juana Pérez Soto", clock)
    jose = add_customer(uow, company, "11.111.111-1", "José Ñúñez", clock)
    maria = add_customer(uow, company, "9.876.543-3", "María Ossandón", clock)
    pedro = add_customer(uow, company, "7.654.321-6", "Pedro Rojas", clock)
    for ref, amount, due in (
        ("1001", "15000", date(2026, 1, 10)),
        ("1002", "12500", date(2026, 2, 10)),
        ("1003", "8000", date(2026, 3, 10)),
    ):
        add_debt(uow, company, juana, ref, amount, due, clock)
    add_debt(uow, company, jose, "2001", "45990", date(2026, 2, 1), clock)
    add_debt(uow, company, maria, "3001", "20000", date(2026, 2, 5), clock)
    add_debt(uow, company, pedro, "4001", "1000", date(2026, 2, 5), clock)
    # Caja Vecina, 2 March before the 14:00 cut-off: these make the file.
    pay(uow, clock, "caja-vecina", "12345678-5", local(2026, 3, 2, 10, 15, 30), "CV-0001")
    pay(uow, clock, "caja-vecina", "11111111-1", local(2026, 3, 2, 11, 2, 5), "CV-0002")
    reversed_ = pay(uow, clock, "caja-vecina", "7654321-6", local(2026, 3, 2, 11, 30), "CV-0003")
    # Paid more than quoted: 20000 to the debt, 5000 credit, an exception.
    pay(uow, clock, "caja-vecina", "9876543-3", local(2026, 3, 2, 12, 30), "CV-0004", total="25000")
    # Nobody Recaudo knows: the money is held whole, an exception.
    pay(
        uow,
        clock,
        "caja-vecina",
        "15222333-1",
        local(2026, 3, 2, 13, 45, 10),
        "CV-0005",
        total="7000",
        quoted=False,
    )
    reverse_payment(
        uow, company.id, reversed_.payment_id, "cheque sin fondos", actor=admin, clock=clock
    )
    # Not in the file: after the cut-off (3 March's), and the other agreement's.
    add_debt(uow, company, jose, "2002", "9990", date(2026, 3, 1), clock)
    pay(uow, clock, "caja-vecina", "11111111-1", local(2026, 3, 2, 14, 5), "CV-0006")
    add_debt(uow, company, juana, "1004", "3000", date(2026, 3, 20), clock)
    pay(uow, clock, "internet", "12345678-5", local(2026, 3, 2, 11, 0), "IN-0001")
    clock.now = datetime(2026, 3, 2, 22, 30, 5, tzinfo=UTC)  # 19:30:05 in Santiago
    return acme


def generate(
    uow: UnitOfWork, agreement_id: int, day: date, tmp_path: Path, clock: FrozenClock
) -> settlements.SettlementRun:
    return settlements.generate_settlement(
        uow,
        agreement_id,
        day,
        data_dir=tmp_path,
        actor=Actor("test:settler", Role.OPERATOR),
        clock=clock,
    )


def stored(tmp_path: Path, run: settlements.SettlementRun) -> bytes:
    return storage.read_bytes(tmp_path, run.file.storage_path)


def detail_values(layout: str, data: bytes, attribute: str) -> list[object]:
    parsed = list(fixedwidth.load_layout(layout).read(io.BytesIO(data)))
    assert all(not p.errors for p in parsed), [p.errors for p in parsed if p.errors]
    return [
        p.record.values[attribute]
        for p in parsed
        if p.record is not None and p.record.kind in ("detail", "06")
    ]


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize(
    ("layout", "control", "golden"),
    [
        ("bancoestado-rendicion", False, "bancoestado-rendicion.txt"),
        ("bancoestado-rendicion", True, "bancoestado-rendicion-control.txt"),
        ("asobancaria-2001", False, "asobancaria-2001.txt"),
        ("csv", False, "rendicion.csv"),
    ],
)
def test_golden_files(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
    layout: str,
    control: bool,
    golden: str,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    set_layout(uow, acme.caja_vecina, layout, control=control)
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    data = stored(tmp_path, run)
    if os.environ.get("RECAUDO_REGENERATE_GOLDEN"):  # then check the diff by hand
        (DATA / golden).write_bytes(data)
    assert data == (DATA / golden).read_bytes()
    assert run.created and run.file.version == 1
    assert run.file.sha256 == storage.sha256_of(data)
    assert run.file.size_bytes == len(data)
    # Juana 3 debts, José 1, María 1 + credit, the unknown payer 1; Pedro's was reversed.
    assert (run.file.payment_count, run.file.record_count) == (4, 7)
    assert run.file.total_minor == 35500 + 45990 + 25000 + 7000
    assert run.file.status == "generated"
    assert run.file.generated_at == datetime(2026, 3, 2, 22, 30, 5, tzinfo=UTC)


def test_xlsx_has_the_detail_records_and_is_reproducible(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    set_layout(uow, acme.caja_vecina, "xlsx")
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert run.file.file_name == "rendicion_caja-vecina_4321_20260302.xlsx"
    data = stored(tmp_path, run)
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    expected_csv = list(csv.reader(io.StringIO((DATA / "rendicion.csv").read_text("utf-8-sig"))))
    assert list(rows[0]) == expected_csv[0]
    assert len(rows) == 8
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # The version's moment (19:30:05 local); zip keeps even seconds only.
        assert {i.date_time for i in archive.infolist()} == {(2026, 3, 2, 19, 30, 4)}
    clock.advance(hours=2)
    again = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert (again.created, again.file.id, stored(tmp_path, again)) == (False, run.file.id, data)


def test_a_quote_uuid_transaction_id_is_written_whole(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    """Recaudo's own quotes hand out 36-character UUIDs; BancoEstado allows up to 40."""
    acme = setup_agreements(uow, company, admin, clock)
    juana = add_customer(uow, company, "12.345.678-5", "Juana Pérez Soto", clock)
    add_debt(uow, company, juana, "1001", "15000", date(2026, 1, 10), clock)
    add_debt(uow, company, juana, "1002", "12500", date(2026, 2, 10), clock)
    with uow:
        caller = online.find_agreement(uow, "acme", "caja-vecina", None).caller
    assert caller is not None
    quote = ask_debts(uow, caller, "12345678-5", clock)
    uuid_id = quote.transaction_id
    assert len(uuid_id) == 36 and uuid_id[14] == "7"  # UUIDv7, as the channel hands it out
    note = online.Notification(
        uuid_id, "12345678-5", local(2026, 3, 2, 10, 15, 30), format(quote.total, "f"), ()
    )
    online.notify_payment(uow, caller, note, clock=clock)
    # The longest `transaccion` the bank may send: 40 characters.
    add_debt(uow, company, juana, "1003", "8000", date(2026, 3, 10), clock)
    longest = "BE" + "9" * 38
    pay(uow, clock, "caja-vecina", "12345678-5", local(2026, 3, 2, 11, 0), longest)
    clock.now = datetime(2026, 3, 2, 22, 30, 5, tzinfo=UTC)

    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    data = stored(tmp_path, run)
    assert detail_values("bancoestado-rendicion", data, "transaction_id") == [
        uuid_id,
        uuid_id,
        longest,
    ]
    lines = data.split(b"\r\n")
    assert [len(line) for line in lines] == [200, 200, 200, 200, 0]
    assert lines[1][133:173] == uuid_id.encode().ljust(40)
    assert lines[3][133:173] == longest.encode()
    assert lines[1][173:183] == b"4321      "  # convenio right after it
    assert fixedwidth.load_layout("bancoestado-rendicion").check(io.BytesIO(data)).ok


# --------------------------------------------------------------------------- versions


def test_rerun_is_identical_and_a_change_makes_a_new_version(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    first = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    first_bytes = stored(tmp_path, first)
    assert first.file.file_name == "rendicion_caja-vecina_4321_20260302.txt"

    clock.advance(hours=3)  # a later run: the header's time must not move
    again = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert not again.created
    assert again.file.id == first.file.id and again.file.version == 1
    assert stored(tmp_path, again) == first_bytes

    # José's payment is reversed: the day changed, version 2, both kept.
    with uow:
        jose = uow.session.scalar(select(Payment.id).where(Payment.external_id == "CV-0002"))
        assert jose is not None
    reverse_payment(uow, company.id, jose, "error de caja", actor=admin, clock=clock)
    second = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert second.created and second.file.version == 2
    assert second.file.file_name == "rendicion_caja-vecina_4321_20260302_v2.txt"
    assert (second.file.payment_count, second.file.record_count) == (3, 6)
    assert second.file.total_minor == 35500 + 25000 + 7000
    assert second.file.generated_at == clock.now.replace(microsecond=0)
    second_bytes = stored(tmp_path, second)
    assert second_bytes != first_bytes
    assert "CV-0002" not in [
        str(t).strip()
        for t in detail_values("bancoestado-rendicion", second_bytes, "transaction_id")
    ]
    assert stored(tmp_path, first) == first_bytes  # version 1 is kept as it was
    third = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert not third.created and third.file.id == second.file.id

    with uow:
        page = settlements.list_settlements(uow, company.id, agreement_id=acme.caja_vecina)
        assert [(v.version, v.sha256) for v in page.items] == [
            (2, second.file.sha256),
            (1, first.file.sha256),
        ]
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity_type == "settlement_file")
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        "settlement.generated",
        "settlement.unchanged",
        "settlement.generated",
        "settlement.unchanged",
    ]


def test_changing_the_layout_makes_a_new_version(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    first = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    set_layout(uow, acme.caja_vecina, "csv")
    second = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert second.created and second.file.version == 2 and second.file.layout == "csv"
    assert second.file.media_type == "text/csv; charset=utf-8"
    assert first.file.media_type == "text/plain; charset=iso-8859-1"


def test_deliveries_are_queued_with_the_file(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    with uow:
        for name, agreement_id in (("banco", acme.caja_vecina), ("otro", acme.internet)):
            uow.session.add(
                DeliveryTarget(
                    company_id=company.id,
                    agreement_id=agreement_id,
                    name=name,
                    kind="local",
                    settings={"directory": str(tmp_path / name)},
                    created_at=clock(),
                    updated_at=clock(),
                )
            )
        uow.commit()
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    generate(uow, acme.caja_vecina, DAY, tmp_path, clock)  # unchanged: nothing more queued
    with uow:
        queued = uow.session.execute(
            select(Delivery.settlement_file_id, Delivery.file_name, Delivery.storage_path)
        ).all()
    assert [tuple(d) for d in queued] == [(run.file.id, run.file.file_name, run.file.storage_path)]


# --------------------------------------------------------------------------- accounting days


def test_payments_land_in_their_accounting_days_file(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = setup_agreements(uow, company, admin, clock)
    customer = add_customer(uow, company, "12.345.678-5", "Juana Pérez Soto", clock)
    # Thursday 21 May 2026 is a holiday (Navy Day); 23-24 May a weekend; cut-off 14:00.
    moments = {
        "WED-1359": local(2026, 5, 20, 13, 59, 59),
        "WED-1401": local(2026, 5, 20, 14, 1),
        "THU-1000": local(2026, 5, 21, 10, 0),
        "FRI-1400": local(2026, 5, 22, 14, 0, 30),
        "FRI-1401": local(2026, 5, 22, 14, 1),
        "SAT-1200": local(2026, 5, 23, 12, 0),
        "SUN-2000": local(2026, 5, 24, 20, 0),
        "MON-1400": local(2026, 5, 25, 14, 0),
        "MON-1401": local(2026, 5, 25, 14, 1),
    }
    for n, (tx, moment) in enumerate(moments.items(), start=1):
        add_debt(uow, company, customer, f"{n}", "1000", date(2026, 5, 1), clock)
        pay(uow, clock, "caja-vecina", "12345678-5", moment, tx)
    clock.now = datetime(2026, 5, 26, 23, 0, tzinfo=UTC)
    files = {}
    for day in (date(2026, 5, 20), date(2026, 5, 22), date(2026, 5, 25), date(2026, 5, 26)):
        data = stored(tmp_path, generate(uow, acme.caja_vecina, day, tmp_path, clock))
        files[day.isoformat()] = [
            str(t).strip() for t in detail_values("bancoestado-rendicion", data, "transaction_id")
        ]
    assert files == {
        "2026-05-20": ["WED-1359"],
        "2026-05-22": ["WED-1401", "THU-1000", "FRI-1400"],
        "2026-05-25": ["FRI-1401", "SAT-1200", "SUN-2000", "MON-1400"],
        "2026-05-26": ["MON-1401"],
    }
    for day in (date(2026, 5, 21), date(2026, 5, 23), date(2026, 5, 24)):
        with pytest.raises(ValidationFailed, match="not a business day"):
            generate(uow, acme.caja_vecina, day, tmp_path, clock)
    with pytest.raises(ValidationFailed, match="in the future"):
        generate(uow, acme.caja_vecina, date(2026, 5, 27), tmp_path, clock)
    with pytest.raises(ValidationFailed, match="before 2000"):
        generate(uow, acme.caja_vecina, date(1, 1, 1), tmp_path, clock)


def test_an_empty_day_has_a_file_with_no_details(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = setup_agreements(uow, company, admin, clock)
    set_layout(uow, acme.internet, "bancoestado-rendicion", control=True)
    clock.now = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    run = generate(uow, acme.internet, date(2026, 3, 3), tmp_path, clock)
    assert (run.file.payment_count, run.file.record_count, run.file.total_minor) == (0, 0, 0)
    data = stored(tmp_path, run)
    report = fixedwidth.load_layout("bancoestado-rendicion").check(io.BytesIO(data))
    assert report.ok, report.as_dict()


def test_other_companies_and_unknown_agreements_are_not_found(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    stranger = Actor("test:other", Role.ADMIN, company_es.id)
    with pytest.raises(NotFound):
        settlements.generate_settlement(
            uow, acme.caja_vecina, DAY, data_dir=tmp_path, actor=stranger, clock=clock
        )
    with pytest.raises(NotFound):
        generate(uow, 999_999, DAY, tmp_path, clock)
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    with uow, pytest.raises(NotFound):
        settlements.get_settlement(uow, company_es.id, run.file.id)
    auditor = Actor("test:auditor", Role.AUDITOR, company.id)
    with pytest.raises(Exception, match="may not"):
        settlements.generate_settlement(
            uow, acme.caja_vecina, DAY, data_dir=tmp_path, actor=auditor, clock=clock
        )


def test_a_bad_layout_is_a_validation_error(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    set_layout(uow, acme.caja_vecina, "no-such-layout")
    with pytest.raises(ValidationFailed, match="cannot be loaded"):
        generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    with uow:
        assert uow.session.scalar(select(func.count(SettlementFile.id))) == 0


def test_altered_bytes_are_refused_on_read(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    with uow:
        _, data = settlements.read_settlement(uow, company.id, run.file.id, data_dir=tmp_path)
    assert data == stored(tmp_path, run)
    (tmp_path / run.file.storage_path).write_bytes(data + b"x")
    with uow, pytest.raises(Exception, match="altered"):
        settlements.read_settlement(uow, company.id, run.file.id, data_dir=tmp_path)
    (tmp_path / run.file.storage_path).unlink()
    with uow, pytest.raises(NotFound, match="missing"):
        settlements.read_settlement(uow, company.id, run.file.id, data_dir=tmp_path)


# --------------------------------------------------------------------------- the daily job


def test_the_daily_job_writes_each_closed_day_once(
    engine: object,
    db_url: str,
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    set_layout(uow, acme.internet, "csv")
    with uow:
        uow.session.execute(
            update(ChannelAgreement)
            .where(ChannelAgreement.id == acme.internet)
            .values(settlement_time=time(19, 0))
        )
        uow.commit()
    container = Container(
        settings=Settings(database_url=db_url, data_dir=tmp_path),
        engine=engine,  # type: ignore[arg-type]
        clock=clock,
    )
    # Monday 2 March, 18:29 in Santiago: nothing is due yet.
    clock.now = datetime(2026, 3, 2, 21, 29, tzinfo=UTC)
    assert settlement_job.run_due(container) == 0
    # 18:30: Caja Vecina's file (default time); Internet waits for its 19:00.
    clock.now = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    assert settlement_job.run_due(container) == 1
    assert settlement_job.run_due(container) == 0  # and only once
    clock.now = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    assert settlement_job.run_due(container) == 1
    # Two days later the server wakes: Tuesday 3 March is caught up for both, and
    # Wednesday's files wait for 18:30 / 19:00.
    clock.now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    assert settlement_job.run_due(container) == 2
    with uow:
        rows = uow.session.execute(
            select(
                SettlementFile.agreement_id,
                SettlementFile.accounting_date,
                SettlementFile.version,
                SettlementFile.generated_by,
                SettlementFile.payment_count,
            ).order_by(SettlementFile.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (acme.caja_vecina, DAY, 1, "job:settlement", 4),
        (acme.internet, DAY, 1, "job:settlement", 1),
        (acme.caja_vecina, date(2026, 3, 3), 1, "job:settlement", 1),
        (acme.internet, date(2026, 3, 3), 1, "job:settlement", 0),
    ]


def test_the_job_reports_a_failing_agreement_as_an_incident(
    engine: object,
    db_url: str,
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = golden_day(uow, company, admin, clock)
    set_layout(uow, acme.caja_vecina, "/nonexistent/layout.toml")
    container = Container(
        settings=Settings(database_url=db_url, data_dir=tmp_path),
        engine=engine,  # type: ignore[arg-type]
        clock=clock,
    )
    settlement_job._failed_at.clear()
    clock.now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    try:
        assert settlement_job.run_due(container) == 1  # Internet's file still written
        assert settlement_job.run_due(container) == 0  # the failure waits before a retry
    finally:
        settlement_job._failed_at.clear()
    with uow:
        found = uow.session.execute(select(Incident.agreement_id, Incident.kind)).all()
    assert [tuple(r) for r in found] == [(acme.caja_vecina, "settlement_failed")]


def test_concurrent_runs_make_one_version(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    """Two servers' jobs (or an operator and a job) at the same moment: one file."""
    acme = golden_day(uow, company, admin, clock)
    clock.now = clock.now.replace(microsecond=0)
    results: list[settlements.SettlementRun] = []
    errors: list[BaseException] = []

    def settle() -> None:
        try:
            results.append(generate(UnitOfWork(uow.engine), acme.caja_vecina, DAY, tmp_path, clock))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert {r.file.id for r in results} == {results[0].file.id}
    with uow:
        assert uow.session.scalar(select(func.count(SettlementFile.id))) == 1
    stored_files = [p for p in (tmp_path / "files" / "settlements").rglob("*") if p.is_file()]
    assert len(stored_files) == 1
    assert not any((tmp_path / "files" / ".tmp").iterdir())


def test_a_rerun_restores_bytes_removed_by_retention(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    run = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    data = stored(tmp_path, run)
    storage.remove(tmp_path, run.file.storage_path)
    with uow:
        uow.session.execute(
            update(SettlementFile)
            .where(SettlementFile.id == run.file.id)
            .values(deleted_at=clock())
        )
        uow.commit()
    with uow, pytest.raises(NotFound, match="removed"):
        settlements.read_settlement(uow, company.id, run.file.id, data_dir=tmp_path)
    again = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert (again.created, again.file.id, again.file.deleted_at) == (False, run.file.id, None)
    with uow:
        _, restored = settlements.read_settlement(uow, company.id, run.file.id, data_dir=tmp_path)
        last = uow.session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1))
    assert restored == data
    assert last == "settlement.restored"


def test_storage_paths_stay_inside_the_data_directory(tmp_path: Path) -> None:
    digest = storage.store_bytes(tmp_path, "files/a/b.txt", b"hola")
    assert digest == hashlib.sha256(b"hola").hexdigest()
    assert storage.read_bytes(tmp_path, "files/a/b.txt") == b"hola"
    assert storage.exists(tmp_path, "files/a/b.txt")
    storage.store_bytes(tmp_path, "files/a/b.txt", b"chao")  # replaced whole
    assert storage.read_bytes(tmp_path, "files/a/b.txt") == b"chao"
    assert [p.name for p in (tmp_path / "files" / "a").iterdir()] == ["b.txt"]
    storage.remove(tmp_path, "files/a/b.txt")
    storage.remove(tmp_path, "files/a/b.txt")  # already gone: fine
    assert not storage.exists(tmp_path, "files/a/b.txt")
    for bad in ("../x", "/etc/passwd", "files/../../x", ""):
        with pytest.raises(ValidationFailed, match="invalid storage path"):
            storage.read_bytes(tmp_path, bad)


def test_configure_settlement(
    uow: UnitOfWork,
    company: Company,
    company_es: Company,
    admin: Actor,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    acme = setup_agreements(uow, company, admin, clock)
    with uow:
        config = settlements.get_settlement_config(uow, acme.caja_vecina, actor=admin)
    assert config == settlements.SettlementConfig(
        acme.caja_vecina, "bancoestado-rendicion", time(18, 30), True, False
    )
    changed = settlements.configure_settlement(
        uow,
        acme.caja_vecina,
        settlements.SettlementSettings(
            layout="asobancaria-2001", local_time=time(19, 15), control_record=True
        ),
        actor=admin,
        clock=clock,
    )
    assert changed == settlements.SettlementConfig(
        acme.caja_vecina, "asobancaria-2001", time(19, 15), True, True
    )
    # A layout file only from the command line (allow_files), and only one that loads.
    layout_file = tmp_path / "mine.toml"
    layout_file.write_bytes(
        (Path(fixedwidth.__file__).parent / "layouts" / "bancoestado-rendicion.toml").read_bytes()
    )
    with pytest.raises(ValidationFailed, match="unknown layout"):
        settlements.configure_settlement(
            uow,
            acme.caja_vecina,
            settlements.SettlementSettings(layout=str(layout_file)),
            actor=admin,
            clock=clock,
        )
    with pytest.raises(ValidationFailed, match="cannot be loaded"):
        settlements.configure_settlement(
            uow,
            acme.caja_vecina,
            settlements.SettlementSettings(layout=str(tmp_path / "missing.toml")),
            actor=admin,
            clock=clock,
            allow_files=True,
        )
    with_file = settlements.configure_settlement(
        uow,
        acme.caja_vecina,
        settlements.SettlementSettings(layout=str(layout_file), enabled=False),
        actor=admin,
        clock=clock,
        allow_files=True,
    )
    assert (with_file.layout, with_file.enabled) == (str(layout_file), False)
    operator = Actor("test:op", Role.OPERATOR, company.id)
    with pytest.raises(Exception, match="may not"):
        settlements.configure_settlement(
            uow, acme.caja_vecina, settlements.SettlementSettings(enabled=True),
            actor=operator, clock=clock,
        )  # fmt: skip
    stranger = Actor("test:other", Role.ADMIN, company_es.id)
    with pytest.raises(NotFound):
        settlements.configure_settlement(
            uow, acme.caja_vecina, settlements.SettlementSettings(enabled=True),
            actor=stranger, clock=clock,
        )  # fmt: skip
    with uow:
        audited = uow.session.scalars(
            select(AuditEvent.after)
            .where(AuditEvent.action == "agreement.settlement_configured")
            .order_by(AuditEvent.id)
        ).all()
    assert [a["settlement_layout"] for a in audited if a] == ["asobancaria-2001", str(layout_file)]
    # The custom layout file writes the day's file, named after it.
    clock.now = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    run = generate(uow, acme.caja_vecina, date(2026, 3, 3), tmp_path, clock)
    assert run.file.file_name == "mine_caja-vecina_4321_20260303.txt"
    assert run.file.layout == str(layout_file)


def test_resolving_an_exception_onto_a_debt_makes_a_new_version(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, tmp_path: Path
) -> None:
    acme = golden_day(uow, company, admin, clock)
    first = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    # María's 5000 of credit is applied to a new debt of hers.
    with uow:
        maria = uow.session.scalar(
            select(Payment.customer_id).where(Payment.external_id == "CV-0004")
        )
        found = uow.session.scalar(
            select(PaymentException.id)
            .join(Payment, Payment.id == PaymentException.payment_id)
            .where(Payment.external_id == "CV-0004")
        )
        assert maria is not None and found is not None
    add_debt(uow, company, Customer(id=maria), "3002", "5000", date(2026, 3, 15), clock)
    resolve_exception(
        uow, company.id, found, Resolution.APPLIED, "abono a 3002", debts=("3002",),
        actor=admin, clock=clock,
    )  # fmt: skip
    second = generate(uow, acme.caja_vecina, DAY, tmp_path, clock)
    assert second.created and second.file.version == 2
    # Same payments, lines and total: only María's second line now names the debt.
    assert (second.file.payment_count, second.file.record_count, second.file.total_minor) == (
        first.file.payment_count,
        first.file.record_count,
        first.file.total_minor,
    )
    debts = detail_values("bancoestado-rendicion", stored(tmp_path, second), "debt_id")
    assert [str(d).strip() for d in debts] == ["1001", "1002", "1003", "2001", "3001", "3002", "0"]
