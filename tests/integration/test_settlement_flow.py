"""The issue-4 parts together, on both backends: channel payments → the settlement run →
delivery to a local directory → the delivered bytes read back with `recaudo layout read`
→ reconciliation of that same file against Recaudo matches everything."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from recaudo.adapters.db.tables import ChannelAgreement, Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.config import Settings
from recaudo.domain.payments import PaymentMethod
from recaudo.services import agreements, deliveries, reconciliation, settlements, storage
from recaudo.services import collections_online as online
from recaudo.services.context import Actor, Role
from recaudo.services.deliveries import TargetSpec
from recaudo.services.payments import ApplyPayment, apply_payment, reverse_payment
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

DAY = date(2026, 3, 2)  # a Monday; Santiago is UTC-3
OPERATOR = Actor("test:operator", Role.OPERATOR)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,  # the test SFTP server is on 127.0.0.1
    )


def quote_and_notify(
    uow: UnitOfWork,
    caller: online.Caller,
    rut: str,
    paid: datetime,
    clock: FrozenClock,
    *,
    total: str | None = None,
) -> tuple[str, int]:
    """The bank's query (Recaudo hands out a UUIDv7 transaction id), then its notification."""

    async def ask() -> online.Quoted:
        channel = online.OnlineChannel(uow.engine, clock)
        try:
            return await channel.quote(caller, rut)
        finally:
            await channel.close()

    quote = asyncio.run(ask())
    note = online.Notification(quote.transaction_id, rut, paid, total or format(quote.total, "f"))
    notified = online.notify_payment(uow, caller, note, clock=clock)
    return quote.transaction_id, notified.payment_id


def setup(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    outdir: Path,
    layout: str,
    control: bool,
) -> tuple[int, online.Caller]:
    """The company's Caja Vecina agreement writing `layout`, delivered to `outdir`."""
    with uow:
        uow.session.execute(
            update(Company).where(Company.id == company.id).values(tax_id="76.086.428-5")
        )
        uow.commit()
    created = agreements.create_agreement(
        uow, company.slug, "caja-vecina", "4321", actor=admin, clock=clock
    )
    agreement_id = created.agreement.id
    with uow:
        uow.session.execute(
            update(ChannelAgreement)
            .where(ChannelAgreement.id == agreement_id)
            .values(settlement_layout=layout, settlement_control_record=control)
        )
        uow.commit()
    outdir.mkdir()  # the bank's directory exists; Recaudo does not create it
    deliveries.create_target(
        uow,
        company.id,
        TargetSpec("banco", "local", {"directory": str(outdir)}, agreement_id=agreement_id),
        settings=settings,
        actor=admin,
        clock=clock,
    )
    with uow:
        caller = online.find_agreement(uow, company.slug, "caja-vecina", None).caller
    assert caller is not None
    return agreement_id, caller


def settle_deliver_read(
    uow: UnitOfWork, settings: Settings, clock: FrozenClock, agreement_id: int, outdir: Path
) -> tuple[settlements.SettlementRun, bytes, dict[str, object]]:
    """`recaudo settle`, the delivery job, then `recaudo layout read --json` on the file."""
    clock.now = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 19:30 local: the day is closed
    run = settlements.generate_settlement(
        uow, agreement_id, DAY, data_dir=settings.data_dir, actor=OPERATOR, clock=clock
    )
    assert run.created and run.file.version == 1
    stored = storage.read_bytes(settings.data_dir, run.file.storage_path)
    assert deliveries.deliver_due(uow, settings, clock) == 1
    assert sorted(p.name for p in outdir.iterdir()) == [run.file.file_name]
    delivered = (outdir / run.file.file_name).read_bytes()
    assert delivered == stored
    result = CliRunner().invoke(
        app,
        ["layout", "read", "--layout", run.file.layout, "--json",
         str(outdir / run.file.file_name)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    assert document["ok"] is True and document["error_count"] == 0
    checks = document["checks"]
    assert isinstance(checks, list) and checks and all(c["ok"] for c in checks)
    return run, delivered, document


@pytest.mark.parametrize("control", [False, True])
def test_channel_payments_are_settled_delivered_read_and_reconciled(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
    control: bool,
) -> None:
    outdir = tmp_path / "banco"
    agreement_id, caller = setup(
        uow, company, admin, clock, settings, outdir, "bancoestado-rendicion", control
    )
    juana = add_customer(uow, company, "12.345.678-5", "Juana Pérez Soto", clock)
    jose = add_customer(uow, company, "11.111.111-1", "José Ñúñez", clock)
    maria = add_customer(uow, company, "9.876.543-3", "María Ossandón", clock)
    for ref, amount in (("1001", "15000"), ("1002", "12500"), ("1003", "8000")):
        add_debt(uow, company, juana, ref, amount, date(2026, 2, 10), clock)
    add_debt(uow, company, jose, "2001", "45990", date(2026, 2, 1), clock)
    add_debt(uow, company, maria, "3001", "20000", date(2026, 2, 5), clock)
    add_debt(uow, company, maria, "3002", "1000", date(2026, 2, 6), clock)

    # Juana pays her 3 debts at Caja Vecina (3 detail lines, one UUID transaction).
    juana_tx, _ = quote_and_notify(uow, caller, "12345678-5", datetime(2026, 3, 2, 9, 15), clock)
    # María pays more than quoted: 21000 to her debts, 4000 credit, an exception.
    maria_tx, _ = quote_and_notify(
        uow, caller, "9876543-3", datetime(2026, 3, 2, 9, 30), clock, total="25000"
    )
    # Nobody Recaudo knows pays: the money is held whole, an exception.
    online.notify_payment(
        uow,
        caller,
        online.Notification("BE-0005", "15.222.333-1", datetime(2026, 3, 2, 9, 45), "7000"),
        clock=clock,
    )
    # José's payment goes through apply_payment with the agreement and accounting date.
    jose_tx = "019caea2-5480-7a04-bea0-1436fd1d6bce"
    apply_payment(
        uow,
        ApplyPayment(
            company.id,
            jose.id,
            "45990",
            PaymentMethod.CASH,
            jose_tx,
            channel=agreements.BANK,
            paid_at=datetime(2026, 3, 2, 12, 50, tzinfo=UTC),
            strict=False,
            partial=True,
            agreement_id=agreement_id,
            accounting_date=DAY,
        ),
        actor=admin,
        clock=clock,
    )
    # A payment reversed the same day is in neither the file nor the reconciliation.
    add_debt(uow, company, jose, "2002", "990", date(2026, 2, 20), clock)
    _, reversed_id = quote_and_notify(uow, caller, "11111111-1", datetime(2026, 3, 2, 9, 58), clock)
    reverse_payment(uow, company.id, reversed_id, "error de caja", actor=admin, clock=clock)

    run, delivered, document = settle_deliver_read(uow, settings, clock, agreement_id, outdir)
    assert (run.file.payment_count, run.file.record_count) == (
        4,
        3 + 3 + 1 + 1,
    )  # María: 2 + credit
    assert run.file.total_minor == 35500 + 25000 + 7000 + 45990
    assert document["counts"] == {"header": 1, "detail": 8} | ({"control": 1} if control else {})

    # The bank sends the same file back: reconciliation matches every payment.
    view = reconciliation.reconcile(
        uow,
        agreement_id,
        delivered,
        file_name=run.file.file_name,
        accounting_date=DAY,
        actor=OPERATOR,
        clock=clock,
    )
    counts = (view.matched, view.only_bank, view.only_recaudo, view.amount_differs)
    assert counts == (4, 0, 0, 0)
    assert (view.duplicated, view.differences, view.recorded_payments) == (0, 0, ())
    assert view.bank_total == view.recaudo_total == 35500 + 25000 + 7000 + 45990
    with uow:
        items = list(reconciliation.iter_items(uow, company.id, view.id))
    assert {i.kind for i in items} == {"matched"}
    assert {i.transaction_id for i in items} == {juana_tx, maria_tx, "BE-0005", jose_tx}


def test_an_asobancaria_file_of_one_debt_payments_reconciles(
    uow: UnitOfWork,
    company: Company,
    admin: Actor,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Asobancaria has no transaction id: each 06 line is a payment of its own, matched by
    reference (the debt id), amount and date — so payments of one debt each (a payment of
    several debts is several 06 lines nothing ties together: see docs/reconciliation.md)."""
    outdir = tmp_path / "banco"
    agreement_id, caller = setup(
        uow, company, admin, clock, settings, outdir, "asobancaria-2001", False
    )
    juana = add_customer(uow, company, "12.345.678-5", "Juana Pérez Soto", clock)
    jose = add_customer(uow, company, "11.111.111-1", "José Ñúñez", clock)
    add_debt(uow, company, juana, "1001", "15000", date(2026, 2, 10), clock)
    add_debt(uow, company, jose, "2001", "45990", date(2026, 2, 1), clock)
    quote_and_notify(uow, caller, "12345678-5", datetime(2026, 3, 2, 9, 15), clock)
    quote_and_notify(uow, caller, "11111111-1", datetime(2026, 3, 2, 9, 20), clock)

    run, delivered, document = settle_deliver_read(uow, settings, clock, agreement_id, outdir)
    assert document["counts"] == {"01": 1, "05": 1, "06": 2, "08": 1, "09": 1}
    view = reconciliation.reconcile(
        uow, agreement_id, delivered, file_name=run.file.file_name, actor=OPERATOR, clock=clock
    )
    assert view.accounting_date == DAY  # from the file's collection date
    # Asobancaria carries CLP with 2 implied decimals (1500000 = 15000.00): read back as pesos.
    assert (view.matched, view.differences, view.recorded_payments) == (2, 0, ())
    assert view.bank_total == view.recaudo_total == 15000 + 45990
    with uow:
        items = list(reconciliation.iter_items(uow, company.id, view.id))
    assert [(i.kind, i.reference, i.bank_amount, i.detail) for i in items] == [
        ("matched", "1001", Decimal(15000), "reference, amount and date"),
        ("matched", "2001", Decimal(45990), "reference, amount and date"),
    ]
