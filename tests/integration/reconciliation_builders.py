"""Builders shared by the reconciliation tests: a bank layout, bank files, online payments.

The bank's files are written with the fixed-width engine's own writer, from a layout a
company could drop in (`TEST_LAYOUT`, the shipped vocabulary: rut, rut_dv, debt_id,
debt_amount, paid_date, paid_time, transaction_id), so the tests exercise the same read
path as a real file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

from recaudo.adapters.db.tables import ChannelAgreement, Company, Customer
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.payments import PaymentMethod
from recaudo.formats.fixedwidth import Record, load_layout
from recaudo.services.agreements import BANK, create_agreement
from recaudo.services.context import Actor, Role
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.integration.helpers import add_customer, add_debt

SETUP = Actor("test:setup", Role.ADMIN)
DAY = date(2026, 3, 2)  # a Monday: the FrozenClock's day

TEST_LAYOUT = """
name = "test-bank"
encoding = "latin-1"
newline = "CRLF"
record_length = 86

[record_type]
start = 1
length = 1

[records.header]
code = "H"
after = ["^"]
fields = [
  { name = "type", start = 1, length = 1, value = "H" },
  { name = "accounting_date", start = 2, length = 8, type = "Fecha", mask = "AAAAMMDD" },
  { name = "filler", start = 10, length = 77, value = "" },
]

[records.detail]
code = "D"
after = ["header", "detail"]
fields = [
  { name = "type", start = 1, length = 1, value = "D" },
  { name = "rut", start = 2, length = 8, type = "Num" },
  { name = "rut_dv", start = 10, length = 1 },
  { name = "debt_id", start = 11, length = 12 },
  { name = "debt_amount", start = 23, length = 10, type = "Num" },
  { name = "paid_date", start = 33, length = 8, type = "Fecha", mask = "AAAAMMDD" },
  { name = "paid_time", start = 41, length = 6, type = "Hhmmss", mask = "HHMMSS" },
  { name = "transaction_id", start = 47, length = 40, null = true },
]

[records.control]
code = "C"
after = ["header", "detail"]
fields = [
  { name = "type", start = 1, length = 1, value = "C" },
  { name = "record_count", start = 2, length = 6, type = "Num" },
  { name = "total_amount", start = 8, length = 12, type = "Num" },
  { name = "filler", start = 20, length = 67, value = "" },
]

[[checks]]
field = "control.record_count"
count = "detail"

[[checks]]
field = "control.total_amount"
sum = "detail.debt_amount"
"""


def write_layout(directory: Path) -> Path:
    path = directory / "test-bank.toml"
    path.write_text(TEST_LAYOUT, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Line:
    """One detail line of the bank's file: one debt paid."""

    rut: str  # "body-dv"
    debt_id: str
    amount: int
    transaction_id: str | None
    paid: time = time(10, 0)
    day: date = DAY


def bank_file(layout_path: Path, lines: Sequence[Line], day: date = DAY) -> bytes:
    layout = load_layout(layout_path)
    records = [Record("header", {"accounting_date": day})]
    for line in lines:
        body, dv = line.rut.split("-")
        records.append(
            Record(
                "detail",
                {
                    "rut": int(body),
                    "rut_dv": dv,
                    "debt_id": line.debt_id,
                    "debt_amount": line.amount,
                    "paid_date": line.day,
                    "paid_time": line.paid,
                    "transaction_id": line.transaction_id,
                },
            )
        )
    records.append(
        Record(
            "control",
            {"record_count": len(lines), "total_amount": sum(line.amount for line in lines)},
        )
    )
    return layout.dumps(records)


@dataclass
class World:
    """Acme's caja-vecina agreement, four customers and their debts."""

    company: Company
    agreement: ChannelAgreement
    people: dict[str, Customer] = field(default_factory=dict)


JUANA, PEDRO, MARTA, ANA = "10379613-K", "7654321-6", "12345678-5", "9876543-3"
UNKNOWN = "11111111-1"


def build_world(uow: UnitOfWork, company: Company, clock: object) -> World:
    issued = create_agreement(
        uow,
        company.slug,
        "caja-vecina",
        "11223",
        actor=SETUP,
        clock=clock,  # type: ignore[arg-type]
    )
    world = World(company, issued.agreement)
    juana = add_customer(uow, company, JUANA, "Juana Pérez Soto", clock)
    add_debt(uow, company, juana, "134371", "1500", date(2026, 1, 10), clock)
    add_debt(uow, company, juana, "134372", "2500", date(2026, 2, 10), clock)
    pedro = add_customer(uow, company, PEDRO, "Pedro Rojas", clock)
    add_debt(uow, company, pedro, "P-1", "1000", date(2026, 1, 5), clock)
    marta = add_customer(uow, company, MARTA, "Marta Muñoz", clock)
    add_debt(uow, company, marta, "M-1", "3000", date(2026, 1, 3), clock)
    add_debt(uow, company, marta, "M-2", "700", date(2026, 2, 3), clock)
    ana = add_customer(uow, company, ANA, "Ana Lagos", clock)
    add_debt(uow, company, ana, "A-1", "5000", date(2026, 2, 1), clock)
    world.people.update(juana=juana, pedro=pedro, marta=marta, ana=ana)
    return world


def pay_online(
    uow: UnitOfWork,
    world: World,
    who: str,
    transaction_id: str,
    amount: str,
    debts: tuple[str, ...],
    clock: object,
    *,
    paid_at: datetime = datetime(2026, 3, 2, 13, 0, tzinfo=UTC),
    day: date = DAY,
) -> int:
    """A payment as the online channel records it: bank channel, agreement, accounting date."""
    cmd = ApplyPayment(
        company_id=world.company.id,
        customer_id=world.people[who].id,
        amount=Decimal(amount),
        method=PaymentMethod.CASH,
        external_id=transaction_id,
        channel=BANK,
        debts=debts,
        paid_at=paid_at,
        strict=False,
        partial=True,
        agreement_id=world.agreement.id,
        accounting_date=day,
    )
    actor = Actor(f"channel:{BANK}:{world.agreement.id}", Role.OPERATOR, world.company.id)
    return apply_payment(uow, cmd, actor=actor, clock=clock).payment.id  # type: ignore[arg-type]


# The day every test reconciles: every kind of difference at once.
#   T1  juana, two debts, notified online and in the file: matched (the file has it twice:
#       duplicated).
#   T2  pedro paid 1000 online, the bank says 1200: amount differs.
#   T3  marta 3000 online, not in the file: only in Recaudo.
#   REC-4 / BNK-4  marta 700: two transaction ids, one payment (reference, amount, date).
#   T5  ana 5000, never notified online: only in the bank (recorded, debt paid).
#   T6  a RUT nobody has: only in the bank (recorded without a customer).
def online_day(uow: UnitOfWork, world: World, clock: object) -> dict[str, int]:
    return {
        "T1": pay_online(uow, world, "juana", "T1", "4000", ("134371", "134372"), clock),
        "T2": pay_online(uow, world, "pedro", "T2", "1000", ("P-1",), clock),
        "T3": pay_online(uow, world, "marta", "T3", "3000", ("M-1",), clock),
        "REC-4": pay_online(uow, world, "marta", "REC-4", "700", ("M-2",), clock),
    }


FILE_LINES = [
    Line(JUANA, "134371", 1500, "T1"),
    Line(JUANA, "134372", 2500, "T1"),
    Line(PEDRO, "P-1", 1200, "T2"),
    Line(MARTA, "M-2", 700, "BNK-4"),
    Line(ANA, "A-1", 5000, "T5", paid=time(11, 30)),
    Line(UNKNOWN, "X-9", 800, "T6"),
    Line(JUANA, "134371", 1500, "T1"),
    Line(JUANA, "134372", 2500, "T1"),
]


def rendicion(lines: list[tuple[str, str, int, str, int]], day: date = DAY) -> bytes:
    """A bancoestado-rendicion file: (rut, debt_id, debt_amount, transaction id, debts)."""
    layout = load_layout("bancoestado-rendicion")
    # A payment's amount counts each of its debts once (a duplicated copy repeats it).
    per_debt: dict[tuple[str, str], int] = {(tx, d): a for _, d, a, tx, _ in lines}
    by_tx: dict[str, int] = {}
    for (tx, _), amount in per_debt.items():
        by_tx[tx] = by_tx.get(tx, 0) + amount
    details = []
    for n, (rut, debt_id, amount, tx, debts) in enumerate(lines, start=1):
        body, dv = rut.split("-")
        details.append(
            Record(
                "detail",
                {
                    "rut": int(body),
                    "rut_dv": dv,
                    "customer_name": "CLIENTE",
                    "debt_id": debt_id,
                    "debt_amount": amount,
                    "debts_in_payment": debts,
                    "payment_amount": by_tx[tx],
                    "paid_date": day,
                    "paid_time": time(10, 0),
                    "channel": "CAJA VECINA",
                    "transaction_id": tx,
                    "convenio": "11223",
                    "accounting_date": day,
                    "sequence": n,
                },
            )
        )
    header = Record(
        "header",
        {
            "company_rut": 76123456,
            "company_rut_dv": "0",
            "company_name": "ACME TELECOMUNICACIONES SPA",
            "convenio": "11223",
            "accounting_date": day,
            "generated_date": day,
            "generated_time": time(18, 30),
            "record_count": len(details),
            "payment_count": len(by_tx),
            "total_amount": sum(a for _, _, a, _, _ in lines),
        },
    )
    return layout.dumps([header, *details])
