"""Reconciliation: a bank's settlement file matched against the payments Recaudo recorded.

The bank's file is read with the agreement's layout (`reconciliation_layout`, else its
`settlement_layout`) through the fixed-width engine; a file that does not conform is
refused whole, with every error, and nothing is recorded. Its detail records become
*bank payments*: lines sharing a transaction id are one payment whose amount is their
sum (the BancoEstado rendición has one line per debt paid).

Matching, for the agreement and the accounting date:

1. by transaction id, against every payment of the company on the agreement's bank
   channel (the key the online notification used, whatever its accounting date);
2. else by reference, amount and date (a reference is a debt id, the customer's
   national id, or the file's own `reference`);
3. else by reference and date alone, when exactly one payment is left for it: the
   amount differs.

Every bank payment and every payment of that date left unmatched becomes an item:
`matched`, `only_bank`, `only_recaudo`, `amount_differs` or `duplicated` (the same
transaction twice in the file, or two entries of the file matching one payment).

A bank payment Recaudo never received online is real money: it is recorded as a
payment through `payments.apply_payment` on the agreement's bank channel with the
bank's transaction id as external id, the same key the online notification uses, so
reconciling the file again records nothing twice and a late online notification of the
same transaction is answered as a replay. Each such payment carries an exception with
reason `not_notified` for an operator.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import (
    Allocation,
    ChannelAgreement,
    Company,
    Customer,
    Debt,
    Payment,
    PaymentException,
    Reconciliation,
    ReconciliationItem,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids, money
from recaudo.domain.errors import Conflict, InvalidNationalId, NotFound, ValidationFailed
from recaudo.domain.payments import PaymentMethod, PaymentStatus
from recaudo.formats import fixedwidth
from recaudo.formats.tabular import Cell, TableFormat, write_table
from recaudo.services import audit
from recaudo.services.collections_online import rut_candidates
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.exceptions import Reason, raise_exception
from recaudo.services.payments import ApplyPayment, Settled, apply_payment
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

FIRST_PAGE = Paging()
MAX_ERRORS_KEPT = 1000  # a file of garbage would otherwise list one error per line
_METHODS = {"caja-vecina": PaymentMethod.CASH, "internet": PaymentMethod.BANK_DEBIT}
# Attribute names the layouts give the dates of a file: a detail's own first, else its
# header's (Asobancaria dates the whole file in its 01 record).
_PAID_DATE = ("paid_date",)
_FILE_DATE = ("paid_date", "collection_date", "accounting_date")
_AMOUNT = ("debt_amount", "amount")


class Kind(StrEnum):
    MATCHED = "matched"
    ONLY_BANK = "only_bank"
    ONLY_RECAUDO = "only_recaudo"
    AMOUNT_DIFFERS = "amount_differs"
    DUPLICATED = "duplicated"


# Column titles and kinds of the exported files: the back office reads Spanish.
KIND_TITLES = {
    Kind.MATCHED: "Conciliado",
    Kind.ONLY_BANK: "Solo banco",
    Kind.ONLY_RECAUDO: "Solo Recaudo",
    Kind.AMOUNT_DIFFERS: "Monto distinto",
    Kind.DUPLICATED: "Duplicado",
}
EXPORT_HEADERS = (
    "Tipo",
    "Transacción",
    "Referencia",
    "Monto banco",
    "Monto Recaudo",
    "Fecha",
    "Línea",
    "Pago",
    "Detalle",
)


@dataclass(frozen=True, slots=True)
class FileProblem:
    """Why the file does not conform: where, and what."""

    line_no: int
    record: str | None
    field: str | None
    start: int
    end: int
    message: str

    def __str__(self) -> str:
        where = f"line {self.line_no}"
        if self.record:
            where += f", record {self.record}"
        if self.field:
            where += f", field {self.field}"
        if self.start and self.end:
            where += f" (columns {self.start}-{self.end})"
        return f"{where}: {self.message}"


class FileRefused(ValidationFailed):
    """The bank's file does not conform to its layout: nothing was recorded."""

    code = "file_refused"

    def __init__(self, message: str, problems: Sequence[FileProblem]) -> None:
        super().__init__(message, field="file")
        self.problems = list(problems)


# --- reading the bank's file ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankLine:
    """One detail record of the bank's file, in the vocabulary reconciliation needs."""

    line_no: int
    transaction_id: str | None
    references: tuple[str, ...]  # normalised, for matching: its own and the customer's
    precise: tuple[str, ...]  # the ones naming a debt or a document, not a customer
    shown: str | None  # the reference as the file wrote it, for people
    amount_minor: int
    paid_date: date | None
    paid_time: time | None
    rut: str | None  # "body-dv" when the layout carries the customer's RUT
    debt_id: str | None
    payment_amount: int | None = None  # the payment's total, when each line repeats it
    accounting_date: date | None = None  # the line's own, when the layout has one
    return_cause: int | None = None  # Asobancaria: the bank returned the collection


@dataclass(slots=True)
class BankPayment:
    """What the bank says one payment was: one line, or several sharing a transaction id."""

    transaction_id: str | None
    lines: list[BankLine]
    key: str = ""  # the payment's external id in Recaudo

    @property
    def amount_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @property
    def line_no(self) -> int:
        return self.lines[0].line_no

    @property
    def paid_date(self) -> date | None:
        return self.lines[0].paid_date

    @property
    def references(self) -> set[str]:
        return {ref for line in self.lines for ref in line.references}

    @property
    def precise(self) -> set[str]:
        return {ref for line in self.lines for ref in line.precise}

    @property
    def shown_reference(self) -> str | None:
        return self.lines[0].shown

    @property
    def return_cause(self) -> int | None:
        return next((x.return_cause for x in self.lines if x.return_cause), None)

    def notes(self, day: date, currency: str) -> list[str]:
        """What the file itself says that does not add up, for the item's detail."""
        out: list[str] = []
        stated = {x.payment_amount for x in self.lines if x.payment_amount is not None}
        if stated and stated != {self.amount_minor}:
            shown = ", ".join(_fmt(v, currency) for v in sorted(stated))
            out.append(
                f"the file states a payment amount of {shown}, "
                f"its lines add up to {_fmt(self.amount_minor, currency)}"
            )
        dates = {x.accounting_date for x in self.lines if x.accounting_date is not None}
        if dates and dates != {day}:
            out.append("the file dates it " + ", ".join(str(d) for d in sorted(dates)))
        if self.return_cause is not None:
            out.append(f"return cause {self.return_cause}")
        return out


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalise_reference(value: object) -> str | None:
    """`00012345`, `12345` and ` 12345 ` are one reference; case does not matter."""
    text = _text(value)
    if text is None:
        return None
    text = text.upper().lstrip("0")
    return text or None


def _transaction_id(value: object) -> str | None:
    text = _text(value)
    if text is None or not text.strip("0"):
        return None  # zero-filled empty field: the file carries no transaction id
    return text


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _date(value: object) -> date | None:
    return value if isinstance(value, date) else None


def _first(values: Mapping[str, object], names: Iterable[str]) -> object:
    for name in names:
        value = values.get(name)
        if value is not None and value != "":
            return value
    return None


def _bank_line(line_no: int, values: Mapping[str, object], file_date: date | None) -> BankLine:
    amount = _first(values, _AMOUNT)
    if not isinstance(amount, int):
        raise FileRefused(
            "the file does not conform to its layout",
            [FileProblem(line_no, None, "amount", 0, 0, "a detail record without an amount")],
        )
    paid = _first(values, _PAID_DATE)
    paid_date = paid if isinstance(paid, date) else file_date
    paid_time = values.get("paid_time")
    rut_body, rut_dv = _text(values.get("rut")), _text(values.get("rut_dv"))
    rut = f"{rut_body.lstrip('0')}-{rut_dv}" if rut_body and rut_dv else None
    debt_id = _text(values.get("debt_id"))
    refs: list[str] = []
    raws = (_text(values.get("reference")), debt_id, rut and rut.replace("-", ""), rut_body)
    for raw in raws:
        ref = normalise_reference(raw)
        if ref is not None and ref not in refs:
            refs.append(ref)
    return BankLine(
        line_no=line_no,
        transaction_id=_transaction_id(values.get("transaction_id")),
        references=tuple(refs),
        precise=tuple(r for r in (normalise_reference(raw) for raw in raws[:2]) if r),
        shown=next((r for r in raws if r), None),
        amount_minor=amount,
        paid_date=paid_date,
        paid_time=paid_time if isinstance(paid_time, time) else None,
        rut=rut,
        debt_id=debt_id,
        payment_amount=_int(values.get("payment_amount")),
        accounting_date=_date(values.get("accounting_date")),
        return_cause=_int(values.get("return_cause")) or None,
    )


@dataclass(slots=True)
class ReadFile:
    lines: list[BankLine]
    file_date: date | None  # the date its header gives, if any
    accounting_date: date | None  # the header's accounting date, if the layout has one


def read_bank_file(layout: fixedwidth.Layout, data: bytes, exponent: int | None = None) -> ReadFile:
    """Every detail line of `data`, or `FileRefused` with every error of the file.

    `exponent`: the company currency's minor-unit exponent. A layout amount with another
    number of implied decimals (Asobancaria's 2 for CLP, whose exponent is 0) is rescaled
    to the currency's minor units, as the settlement writer scaled it the other way."""
    report = layout.check(io.BytesIO(data))
    problems = [
        FileProblem(e.line_no, e.record, e.field, e.start, e.end, e.message)
        for e in report.errors[:MAX_ERRORS_KEPT]
    ]
    problems += [
        FileProblem(
            c.line_no,
            None,
            None,
            0,
            0,
            f"{c.name}: the file says {c.found}, its records give {c.expected}",
        )
        for c in report.checks
        if not c.ok
    ]
    if problems:
        total = report.error_count + sum(1 for c in report.checks if not c.ok)
        more = total - len(problems)
        suffix = f", {more} more not listed" if more > 0 else ""
        raise FileRefused(
            f"the file does not conform to layout {layout.name} ({total} errors{suffix}); "
            "nothing was recorded",
            problems,
        )
    details: list[tuple[int, Mapping[str, object]]] = []
    file_date: date | None = None
    accounting: date | None = None
    for parsed in layout.read(io.BytesIO(data)):
        if parsed.record is None:
            continue
        values = parsed.record.values
        if _first(values, _AMOUNT) is not None:
            if exponent is not None:
                values = _to_minor_units(layout, parsed.record.kind, values, exponent, parsed)
            details.append((parsed.line_no, values))
            continue
        if file_date is None:
            found = _first(values, _FILE_DATE)
            file_date = found if isinstance(found, date) else None
        if accounting is None and isinstance(values.get("accounting_date"), date):
            accounting = values["accounting_date"]  # type: ignore[assignment]
    lines = [_bank_line(n, values, file_date) for n, values in details]
    return ReadFile(lines, file_date, accounting)


_MONEY = (*_AMOUNT, "payment_amount")


def _to_minor_units(
    layout: fixedwidth.Layout,
    kind: str,
    values: Mapping[str, object],
    exponent: int,
    parsed: fixedwidth.ParsedLine,
) -> Mapping[str, object]:
    scaled = dict(values)
    for f in layout.records[kind].fields:
        places = f.decimals
        if places == exponent:
            continue
        for attribute in (f.source or f.name, *f.aliases):
            amount = scaled.get(attribute)
            if attribute not in _MONEY or not isinstance(amount, int):
                continue
            if places < exponent:
                scaled[attribute] = amount * 10 ** (exponent - places)
                continue
            factor = 10 ** (places - exponent)
            if amount % factor:
                raise FileRefused(
                    "the file does not conform to its layout",
                    [
                        FileProblem(
                            parsed.line_no,
                            kind,
                            f.name,
                            f.start,
                            f.start + f.length - 1,
                            f"{amount} ({places} implied decimals) is not a whole amount "
                            "of the company's currency",
                        )
                    ],
                )
            scaled[attribute] = amount // factor
    return scaled


def group_payments(lines: Sequence[BankLine]) -> tuple[list[BankPayment], list[BankPayment]]:
    """The file's payments and its duplicated copies, in file order.

    Lines sharing a transaction id are one payment. When one of its debts (or
    references) comes twice, the transaction is in the file more than once: the k-th
    occurrence of each line goes to the k-th copy, and every copy after the first is a
    duplicate. Lines without a transaction id are each a payment of their own.
    """
    groups: dict[str, list[BankLine]] = defaultdict(list)
    payments: list[BankPayment] = []
    order: list[tuple[int, str | None, BankLine | None]] = []
    for line in lines:
        if line.transaction_id is None:
            order.append((line.line_no, None, line))
        else:
            if line.transaction_id not in groups:
                order.append((line.line_no, line.transaction_id, None))
            groups[line.transaction_id].append(line)
    duplicates: list[BankPayment] = []
    for _, txid, single in order:
        if txid is None:
            assert single is not None
            payments.append(BankPayment(None, [single]))
            continue
        copies: list[list[BankLine]] = []
        seen: dict[tuple[object, ...], int] = defaultdict(int)
        for line in groups[txid]:
            identity = (line.debt_id, line.references[:1], line.amount_minor)
            k = seen[identity]
            seen[identity] += 1
            if k == len(copies):
                copies.append([])
            copies[k].append(line)
        payments.append(BankPayment(txid, copies[0]))
        duplicates.extend(BankPayment(txid, copy) for copy in copies[1:])
    return payments, duplicates


# --- views ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconciliationView:
    id: int
    agreement_id: int
    accounting_date: date
    file_name: str
    file_sha256: str
    layout: str
    matched: int
    only_bank: int
    only_recaudo: int
    amount_differs: int
    duplicated: int
    bank_total: Decimal
    recaudo_total: Decimal
    currency: str
    created_by: str
    created_at: datetime
    recorded_payments: tuple[int, ...] = ()  # payments this run recorded from the file

    @property
    def differences(self) -> int:
        return self.only_bank + self.only_recaudo + self.amount_differs + self.duplicated


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    kind: str
    payment_id: int | None
    transaction_id: str | None
    reference: str | None
    bank_amount: Decimal | None
    recaudo_amount: Decimal | None
    paid_on: date | None
    line_no: int | None
    detail: str


def _view(row: Reconciliation, recorded: tuple[int, ...] = ()) -> ReconciliationView:
    currency = row.currency
    return ReconciliationView(
        id=row.id,
        agreement_id=row.agreement_id,
        accounting_date=row.accounting_date,
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        layout=row.layout,
        matched=row.matched,
        only_bank=row.only_bank,
        only_recaudo=row.only_recaudo,
        amount_differs=row.amount_differs,
        duplicated=row.duplicated,
        bank_total=money.from_minor(row.bank_total_minor, currency),
        recaudo_total=money.from_minor(row.recaudo_total_minor, currency),
        currency=currency,
        created_by=row.created_by,
        created_at=row.created_at,
        recorded_payments=recorded,
    )


def _item_view(row: ReconciliationItem, currency: str) -> ItemView:
    def amount(minor: int | None) -> Decimal | None:
        return None if minor is None else money.from_minor(minor, currency)

    return ItemView(
        id=row.id,
        kind=row.kind,
        payment_id=row.payment_id,
        transaction_id=row.transaction_id,
        reference=row.reference,
        bank_amount=amount(row.bank_amount_minor),
        recaudo_amount=amount(row.recaudo_amount_minor),
        paid_on=row.paid_on,
        line_no=row.line_no,
        detail=row.detail,
    )


# --- matching -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pay:
    """What matching needs of a payment: plain values, usable after its session closed."""

    id: int
    external_id: str
    amount_minor: int
    status: str
    accounting_date: date | None
    paid_at: datetime


def _pay(p: Payment) -> _Pay:
    return _Pay(p.id, p.external_id, p.amount_minor, p.status, p.accounting_date, p.paid_at)


@dataclass(slots=True)
class _Known:
    """A payment Recaudo holds, with what it can be recognised by."""

    payment: _Pay
    references: set[str]  # its debts' ids and its customer's national id
    precise: set[str]  # its debts' ids
    local_date: date
    from_file: bool  # recorded earlier by a reconciliation (exception `not_notified`)
    shown: str | None = None  # its first debt's id, else the customer's national id


@dataclass(slots=True)
class _Item:
    kind: Kind
    bank: BankPayment | None
    known: _Known | None
    detail: str
    record: bool = False  # only_bank: record the bank's payment in Recaudo


@dataclass(slots=True)
class _Plan:
    items: list[_Item] = field(default_factory=list)


def _fmt(minor: int, currency: str) -> str:
    return format(money.from_minor(minor, currency), "f")


def _load_known(
    uow: UnitOfWork, company: Company, payments: Iterable[Payment]
) -> dict[int, _Known]:
    rows = {p.id: p for p in payments}
    if not rows:
        return {}
    zone = ZoneInfo(company.timezone)
    refs: dict[int, set[str]] = defaultdict(set)
    shown: dict[int, str] = {}
    ids_ = list(rows)
    for pid, ref in uow.session.execute(
        select(Allocation.payment_id, Debt.external_id)
        .join(Debt, Debt.id == Allocation.debt_id)
        .where(Allocation.payment_id.in_(ids_))
        .order_by(Allocation.id)
    ):
        shown.setdefault(pid, ref)
        if (norm := normalise_reference(ref)) is not None:
            refs[pid].add(norm)
    customers = {p.customer_id for p in rows.values() if p.customer_id is not None}
    national: dict[int, str] = {
        cid: nid
        for cid, nid in uow.session.execute(
            select(Customer.id, Customer.national_id).where(Customer.id.in_(customers))
        )
    }
    from_file = set(
        uow.session.scalars(
            select(PaymentException.payment_id).where(
                PaymentException.payment_id.in_(ids_),
                PaymentException.reason == Reason.NOT_NOTIFIED.value,
            )
        )
    )
    known: dict[int, _Known] = {}
    for pid, p in rows.items():
        precise = set(refs[pid])
        mine = set(precise)
        nid = national.get(p.customer_id) if p.customer_id is not None else None
        if nid:
            for ref in (nid, nid[:-1]):  # a RUT with and without its check digit
                if (norm := normalise_reference(ref)) is not None:
                    mine.add(norm)
        local = p.paid_at.astimezone(zone).date()
        known[pid] = _Known(_pay(p), mine, precise, local, pid in from_file, shown.get(pid) or nid)
    return known


def _plan(
    bank: list[BankPayment],
    duplicates: list[BankPayment],
    by_key: dict[str, _Known],
    of_date: dict[int, _Known],
    day: date,
    currency: str,
) -> _Plan:
    plan = _Plan()
    taken: dict[int, str] = {}  # payment id -> how it was matched ("txid" | "ref")
    decided: dict[int, _Item] = {}  # index in `bank` -> item
    # 1. By transaction id (the payment's key in Recaudo).
    for i, entry in enumerate(bank):
        known = by_key.get(entry.key)
        if known is None:
            continue
        p = known.payment
        taken[p.id] = "txid"
        notes = []
        if p.accounting_date != day:
            notes.append(f"Recaudo booked it on accounting date {p.accounting_date}")
        if p.status == PaymentStatus.REVERSED.value:
            decided[i] = _Item(
                Kind.ONLY_BANK,
                entry,
                known,
                f"payment {p.id} was reversed in Recaudo; not recorded again",
            )
        elif known.from_file:
            text = f"never notified online; recorded from the bank's file as payment {p.id}"
            if p.amount_minor != entry.amount_minor:
                text += f" for {_fmt(p.amount_minor, currency)}"
            decided[i] = _Item(Kind.ONLY_BANK, entry, known, text)
        elif p.amount_minor != entry.amount_minor:
            text = (
                f"bank {_fmt(entry.amount_minor, currency)}, "
                f"Recaudo {_fmt(p.amount_minor, currency)}"
            )
            decided[i] = _Item(Kind.AMOUNT_DIFFERS, entry, known, "; ".join([text, *notes]))
        else:
            decided[i] = _Item(Kind.MATCHED, entry, known, "; ".join(["transaction id", *notes]))
    free = [k for k in of_date.values() if k.payment.id not in taken and _counts(k)]

    def candidates(entry: BankPayment, pool: Iterable[_Known], same_amount: bool) -> list[_Known]:
        fits = [
            k
            for k in pool
            if entry.references & k.references
            and (entry.paid_date is None or entry.paid_date == k.local_date)
            and (k.payment.amount_minor == entry.amount_minor) is same_amount
        ]
        # A debt's id says more than the customer's: one customer pays several times.
        precise = [k for k in fits if entry.precise & k.precise]
        return precise or fits

    # 2. By reference, amount and date.
    for i, entry in enumerate(bank):
        if i in decided:
            continue
        found = candidates(entry, [k for k in free if k.payment.id not in taken], True)
        if found:
            known = found[0]
            taken[known.payment.id] = "ref"
            text = "reference, amount and date"
            if entry.transaction_id is not None:
                text += (
                    f"; transaction ids differ (bank {entry.transaction_id}, "
                    f"Recaudo {known.payment.external_id})"
                )
            decided[i] = _Item(Kind.MATCHED, entry, known, text)
            continue
        if entry.transaction_id is None:
            # Two entries of the file for one payment: nothing tells them apart.
            again = candidates(entry, [k for k in of_date.values() if k.payment.id in taken], True)
            if again:
                decided[i] = _Item(
                    Kind.DUPLICATED,
                    entry,
                    again[0],
                    f"a second bank entry for payment {again[0].payment.id}",
                )
    # 3. By reference and date when exactly one payment is left: the amount differs.
    for i, entry in enumerate(bank):
        if i in decided:
            continue
        found = candidates(entry, [k for k in free if k.payment.id not in taken], False)
        if len(found) == 1:
            known = found[0]
            taken[known.payment.id] = "ref"
            decided[i] = _Item(
                Kind.AMOUNT_DIFFERS,
                entry,
                known,
                f"reference and date; bank {_fmt(entry.amount_minor, currency)}, "
                f"Recaudo {_fmt(known.payment.amount_minor, currency)}",
            )
    for i, entry in enumerate(bank):
        item = decided.get(i)
        if item is None:
            returned = entry.return_cause
            if returned is not None:
                # The bank gave the money back: nothing to record, a person looks.
                text = "returned by the bank: not recorded"
                item = _Item(Kind.ONLY_BANK, entry, None, text)
            else:
                item = _Item(Kind.ONLY_BANK, entry, None, "never notified online", record=True)
        plan.items.append(item)
    for copy in duplicates:
        plan.items.append(
            _Item(
                Kind.DUPLICATED,
                copy,
                None,
                f"transaction {copy.transaction_id} is in the file more than once",
            )
        )
    plan.items.sort(key=lambda it: it.bank.line_no if it.bank is not None else 0)
    for k in sorted(of_date.values(), key=lambda k: k.payment.id):
        if k.payment.id in taken or not _counts(k):
            continue
        detail = "not in the bank's file"
        if k.from_file:
            detail += "; it was recorded from an earlier bank file"
        plan.items.append(_Item(Kind.ONLY_RECAUDO, None, k, detail))
    return plan


def _counts(k: _Known) -> bool:
    return k.payment.status != PaymentStatus.REVERSED.value


def assign_keys(agreement_id: int, day: date, bank: Iterable[BankPayment]) -> None:
    """Each payment's external id: the bank's transaction id, else one derived from it.

    Derived keys (files without transaction ids) hash what identifies the entry, plus
    its occurrence number among identical entries, so a second run finds it again.
    """
    occurrences: dict[str, int] = defaultdict(int)
    for entry in bank:
        if entry.transaction_id is not None:
            entry.key = entry.transaction_id
            continue
        digest = hashlib.sha256(
            f"{sorted(entry.references)}|{entry.amount_minor}|{entry.paid_date}".encode()
        ).hexdigest()[:16]
        base = f"file-{agreement_id}-{day:%Y%m%d}-{digest}"
        entry.key = f"{base}-{occurrences[base]}"
        occurrences[base] += 1


# --- the use case ---------------------------------------------------------------------


def layout_name_of(agreement: ChannelAgreement) -> str:
    return agreement.reconciliation_layout or agreement.settlement_layout


def load_layout(name: str) -> fixedwidth.Layout:
    try:
        return fixedwidth.load_layout(name)
    except (fixedwidth.LayoutError, OSError, ValueError) as exc:
        raise ValidationFailed(f"cannot use layout {name!r}: {exc}", field="layout") from None


def set_reconciliation_layout(
    uow: UnitOfWork,
    agreement_id: int,
    layout: str | None,
    *,
    actor: Actor,
    clock: Clock,
    allow_files: bool = False,
) -> str:
    """Choose the layout the agreement's bank files are read with (None: its settlement one).

    Returns the layout now in use. Only the command line (`allow_files`) may name a layout
    file: it runs on the server, where the file is; the API names shipped layouts only.
    """
    actor.require(Role.ADMIN)
    name = layout.strip() if layout is not None else None
    if name is not None:
        if not name or len(name) > 255:
            raise ValidationFailed("a layout is 1 to 255 characters", field="layout")
        if not allow_files and name not in fixedwidth.available_layouts():
            known = ", ".join(fixedwidth.available_layouts())
            raise ValidationFailed(f"unknown layout {name!r} (one of {known})", field="layout")
        load_layout(name)  # refuse a layout file that does not load, now
    with uow:
        agreement = _agreement(uow, actor, agreement_id)
        before = agreement.reconciliation_layout
        agreement.reconciliation_layout = name
        agreement.updated_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=agreement.company_id,
            action="agreement.reconciliation_layout_set",
            entity_type="agreement",
            entity_id=agreement.id,
            before={"reconciliation_layout": before},
            after={"reconciliation_layout": name},
        )
        in_use = layout_name_of(agreement)
        uow.commit()
        return in_use


def _agreement(uow: UnitOfWork, actor: Actor, agreement_id: int) -> ChannelAgreement:
    agreement = uow.session.get(ChannelAgreement, agreement_id)
    if agreement is None or not actor.can_see(agreement.company_id):
        raise NotFound(f"no agreement {agreement_id}")
    return agreement


def reconcile(
    uow: UnitOfWork,
    agreement_id: int,
    data: bytes,
    *,
    file_name: str,
    accounting_date: date | None = None,
    layout: str | None = None,
    actor: Actor,
    clock: Clock,
) -> ReconciliationView:
    """Match the bank's file `data` for one agreement and date; record what only it has."""
    actor.require_write()
    file_name = (file_name or "bank-file").strip()[:255] or "bank-file"
    with uow:
        agreement = _agreement(uow, actor, agreement_id)
        layout_name = layout or layout_name_of(agreement)
        owner = uow.session.get(Company, agreement.company_id)
        assert owner is not None
        exponent = money.exponent(owner.currency)
    engine_layout = load_layout(layout_name)
    read = read_bank_file(engine_layout, data, exponent)
    # A file without an accounting date (Asobancaria) is dated by its collection date.
    day = accounting_date or read.accounting_date or read.file_date
    if day is None:
        raise ValidationFailed(
            "the file does not say its accounting date: give it (--date / accounting_date)",
            field="accounting_date",
        )
    if read.accounting_date is not None and read.accounting_date != day:
        raise ValidationFailed(
            f"the file is for accounting date {read.accounting_date}, not {day}",
            field="accounting_date",
        )
    bank, duplicates = group_payments(read.lines)
    sha = hashlib.sha256(data).hexdigest()
    with uow:
        agreement = _agreement(uow, actor, agreement_id)
        company = uow.session.get(Company, agreement.company_id)
        assert company is not None
        assign_keys(agreement.id, day, bank)
        keys = [e.key for e in bank]
        found: list[Payment] = []
        for start in range(0, len(keys), 500):
            found += uow.session.scalars(
                select(Payment).where(
                    Payment.company_id == company.id,
                    Payment.channel == agreement.bank,
                    Payment.external_id.in_(keys[start : start + 500]),
                )
            )
        of_date_rows = list(
            uow.session.scalars(
                select(Payment)
                .where(Payment.agreement_id == agreement.id, Payment.accounting_date == day)
                .order_by(Payment.id)
            )
        )
        known = _load_known(uow, company, [*found, *of_date_rows])
        by_key = {known[p.id].payment.external_id: known[p.id] for p in found}
        of_date = {p.id: known[p.id] for p in of_date_rows}
        recaudo_total = sum(k.payment.amount_minor for k in of_date.values() if _counts(k))
        plan = _plan(bank, duplicates, by_key, of_date, day, company.currency)
        ctx = _Context(
            company.id,
            company.currency,
            company.timezone,
            agreement.id,
            agreement.bank,
            agreement.channel,
            day,
        )
    recorded: list[int] = []
    for item in plan.items:
        if item.record and item.bank is not None:
            payment, new = _record(uow, ctx, item.bank, actor=actor, clock=clock)
            item.known = _Known(payment, set(), set(), day, True)
            item.detail = (
                f"never notified online; recorded from the bank's file as payment {payment.id}"
                if new
                else f"never notified online; already recorded as payment {payment.id}"
            )
            if new:
                recorded.append(payment.id)
    with uow:
        row = _store(
            uow,
            ctx,
            plan,
            read,
            bank,
            duplicates,
            recaudo_total,
            file_name,
            sha,
            layout_name,
            actor=actor,
            clock=clock,
        )
        uow.commit()
        return _view(row, tuple(recorded))


@dataclass(frozen=True, slots=True)
class _Context:
    company_id: int
    currency: str
    timezone: str
    agreement_id: int
    bank: str
    channel: str
    day: date


def _store(
    uow: UnitOfWork,
    ctx: _Context,
    plan: _Plan,
    read: ReadFile,
    bank: list[BankPayment],
    duplicates: list[BankPayment],
    recaudo_total: int,
    file_name: str,
    sha: str,
    layout_name: str,
    *,
    actor: Actor,
    clock: Clock,
) -> Reconciliation:
    counts = {k: 0 for k in Kind}
    for item in plan.items:
        counts[item.kind] += 1
    row = Reconciliation(
        company_id=ctx.company_id,
        agreement_id=ctx.agreement_id,
        accounting_date=ctx.day,
        file_name=file_name,
        file_sha256=sha,
        layout=layout_name[:255],
        matched=counts[Kind.MATCHED],
        only_bank=counts[Kind.ONLY_BANK],
        only_recaudo=counts[Kind.ONLY_RECAUDO],
        amount_differs=counts[Kind.AMOUNT_DIFFERS],
        duplicated=counts[Kind.DUPLICATED],
        bank_total_minor=sum(line.amount_minor for line in read.lines),
        recaudo_total_minor=recaudo_total,
        currency=ctx.currency,
        created_by=actor.label,
        created_at=clock(),
    )
    uow.session.add(row)
    uow.session.flush()
    zone = ZoneInfo(ctx.timezone)
    for item in plan.items:
        entry, known = item.bank, item.known
        payment = known.payment if known is not None else None
        paid_on = entry.paid_date if entry is not None else None
        if paid_on is None and payment is not None:
            paid_on = payment.paid_at.astimezone(zone).date()
        if entry is not None:
            reference = entry.shown_reference
        else:
            reference = known.shown if known is not None else None
        uow.session.add(
            ReconciliationItem(
                reconciliation_id=row.id,
                kind=item.kind.value,
                payment_id=payment.id if payment is not None else None,
                transaction_id=(
                    entry.transaction_id
                    if entry is not None
                    else (payment.external_id if payment is not None else None)
                ),
                reference=reference[:100] if reference else None,
                bank_amount_minor=entry.amount_minor if entry is not None else None,
                recaudo_amount_minor=(
                    payment.amount_minor
                    if payment is not None and item.kind is not Kind.DUPLICATED
                    else None
                ),
                paid_on=paid_on,
                line_no=entry.line_no if entry is not None else None,
                detail="; ".join(
                    [item.detail, *(entry.notes(ctx.day, ctx.currency) if entry else [])]
                ),
            )
        )
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=ctx.company_id,
        action="reconciliation.created",
        entity_type="reconciliation",
        entity_id=row.id,
        after={
            "agreement_id": ctx.agreement_id,
            "accounting_date": ctx.day,
            "file_name": file_name,
            "file_sha256": sha,
            "layout": layout_name,
            "counts": {k.value: v for k, v in counts.items()},
            "bank_payments": len(bank) + len(duplicates),
        },
    )
    return row


def _find_customer(uow: UnitOfWork, company_id: int, entry: BankPayment) -> int | None:
    """The customer the bank's lines name: by RUT, else by a debt id, else by national id."""
    for line in entry.lines:
        if line.rut is None:
            continue
        try:
            candidates = rut_candidates(line.rut)
        except InvalidNationalId:
            continue
        rows: dict[str, int] = {
            nid: cid
            for nid, cid in uow.session.execute(
                select(Customer.national_id, Customer.id).where(
                    Customer.company_id == company_id,
                    Customer.id_type == ids.IdType.RUT.value,
                    Customer.national_id.in_(candidates),
                )
            )
        }
        for c in candidates:
            if c in rows:
                return rows[c]
    raw = [r for line in entry.lines for r in (line.debt_id, *line.references) if r]
    if not raw:
        return None
    variants = {v for r in raw for v in (r, r.lstrip("0"))} - {""}
    by_debt = uow.session.scalar(
        select(Debt.customer_id)
        .where(Debt.company_id == company_id, Debt.external_id.in_(variants))
        .order_by(Debt.id)
        .limit(1)
    )
    if by_debt is not None:
        return int(by_debt)
    by_id = uow.session.scalar(
        select(Customer.id)
        .where(Customer.company_id == company_id, Customer.national_id.in_(variants))
        .order_by(Customer.id)
        .limit(1)
    )
    return int(by_id) if by_id is not None else None


def _own_debts(
    uow: UnitOfWork, company_id: int, customer_id: int, entry: BankPayment
) -> tuple[str, ...]:
    """The debts the bank's lines name, if they are all this customer's; else none."""
    named = [line.debt_id for line in entry.lines if line.debt_id]
    if not named or len(set(named)) != len(named):
        return ()
    found = set(
        uow.session.scalars(
            select(Debt.external_id).where(
                Debt.company_id == company_id,
                Debt.customer_id == customer_id,
                Debt.external_id.in_(named),
            )
        )
    )
    return tuple(named) if found == set(named) else ()


def _paid_at(ctx: _Context, entry: BankPayment) -> datetime:
    first = entry.lines[0]
    day = first.paid_date or ctx.day
    local = datetime.combine(day, first.paid_time or time(0, 0))
    return local.replace(tzinfo=ZoneInfo(ctx.timezone)).astimezone(UTC)


def _existing(uow: UnitOfWork, ctx: _Context, key: str) -> Payment | None:
    return uow.session.scalar(
        select(Payment).where(
            Payment.company_id == ctx.company_id,
            Payment.channel == ctx.bank,
            Payment.external_id == key,
        )
    )


def _record(
    uow: UnitOfWork, ctx: _Context, entry: BankPayment, *, actor: Actor, clock: Clock
) -> tuple[_Pay, bool]:
    """Record the bank's payment once (by its key); the payment, and whether it is new."""
    currency = ctx.currency
    amount = money.from_minor(entry.amount_minor, currency)
    where = f"line {entry.line_no} of the bank's settlement file for {ctx.day}"
    with uow:
        if (done := _existing(uow, ctx, entry.key)) is not None:
            return _pay(done), False
        customer_id = _find_customer(uow, ctx.company_id, entry)
        debts = _own_debts(uow, ctx.company_id, customer_id, entry) if customer_id else ()
    if customer_id is None:
        return _record_unmatched(uow, ctx, entry, where, actor=actor, clock=clock)

    def before_commit(uow: UnitOfWork, settled: Settled) -> None:
        detail = f"never notified online; recorded from {where}"
        if settled.skipped:
            detail += "; no longer payable: " + ", ".join(settled.skipped)
        detail += f"; credited {money.from_minor(settled.credit_minor, currency)}"
        raise_exception(uow, settled.payment, Reason.NOT_NOTIFIED, detail, actor=actor, clock=clock)
        settled.payment.exception_reason = Reason.NOT_NOTIFIED.value

    cmd = ApplyPayment(
        company_id=ctx.company_id,
        customer_id=customer_id,
        amount=amount,
        method=_METHODS.get(ctx.channel, PaymentMethod.OTHER),
        external_id=entry.key,
        channel=ctx.bank,
        debts=debts,
        paid_at=_paid_at(ctx, entry),
        strict=False,
        partial=True,
        agreement_id=ctx.agreement_id,
        accounting_date=ctx.day,
    )
    try:
        applied = apply_payment(uow, cmd, actor=actor, clock=clock, before_commit=before_commit)
    except Conflict:
        # The online notification won a race with another body: its payment stands.
        with uow:
            done = _existing(uow, ctx, entry.key)
            if done is None:
                raise
            return _pay(done), False
    with uow:
        payment = uow.session.get(Payment, applied.payment.id)
        assert payment is not None
        return _pay(payment), not applied.replayed


def _record_unmatched(
    uow: UnitOfWork, ctx: _Context, entry: BankPayment, where: str, *, actor: Actor, clock: Clock
) -> tuple[_Pay, bool]:
    """A payment for nobody Recaudo knows: kept whole, as an exception, for a person."""
    with uow:
        now = clock()
        payment = Payment(
            company_id=ctx.company_id,
            customer_id=None,
            channel=ctx.bank,
            method=_METHODS.get(ctx.channel, PaymentMethod.OTHER).value,
            external_id=entry.key,
            request_fingerprint=hashlib.sha256(
                f"{entry.key}:{entry.amount_minor}".encode()
            ).hexdigest(),
            amount_minor=entry.amount_minor,
            currency=ctx.currency,
            paid_at=_paid_at(ctx, entry),
            status=PaymentStatus.EXCEPTION.value,
            exception_reason=Reason.NOT_NOTIFIED.value,
            recorded_by=actor.label,
            created_at=now,
            agreement_id=ctx.agreement_id,
            accounting_date=ctx.day,
        )
        uow.session.add(payment)
        try:
            uow.session.flush()
        except IntegrityError:
            uow.rollback()
            done = _existing(uow, ctx, entry.key)
            assert done is not None
            return _pay(done), False
        detail = (
            f"never notified online; recorded from {where}; no customer matches its "
            f"reference; {money.from_minor(entry.amount_minor, ctx.currency)} held unallocated"
        )
        raise_exception(uow, payment, Reason.NOT_NOTIFIED, detail, actor=actor, clock=clock)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=ctx.company_id,
            action="payment.exception",
            entity_type="payment",
            entity_id=payment.id,
            after={
                "amount": str(money.from_minor(entry.amount_minor, ctx.currency)),
                "reason": detail,
            },
        )
        uow.commit()
        return _pay(payment), True


# --- reading reconciliations ------------------------------------------------------------


def _load(uow: UnitOfWork, company_id: int | None, reconciliation_id: int) -> Reconciliation:
    stmt = select(Reconciliation).where(Reconciliation.id == reconciliation_id)
    if company_id is not None:
        stmt = stmt.where(Reconciliation.company_id == company_id)
    row = uow.session.scalar(stmt)
    if row is None:
        raise NotFound(f"no reconciliation {reconciliation_id}")
    return row


def get_reconciliation(
    uow: UnitOfWork, company_id: int | None, reconciliation_id: int
) -> ReconciliationView:
    """One reconciliation; `company_id` None: any company's (the command line's admin)."""
    return _view(_load(uow, company_id, reconciliation_id))


def list_reconciliations(
    uow: UnitOfWork,
    company_id: int | None,
    *,
    agreement_id: int | None = None,
    paging: Paging = FIRST_PAGE,
) -> Page[ReconciliationView]:
    stmt = select(Reconciliation)
    if company_id is not None:
        stmt = stmt.where(Reconciliation.company_id == company_id)
    if agreement_id is not None:
        stmt = stmt.where(Reconciliation.agreement_id == agreement_id)
    total = _count(uow.session, stmt.with_only_columns(Reconciliation.id))
    rows = uow.session.scalars(
        stmt.order_by(Reconciliation.id.desc()).offset(paging.offset).limit(paging.page_size)
    )
    return Page([_view(r) for r in rows], total, paging.page, paging.page_size)


def _kind(kind: str | None) -> Kind | None:
    if kind is None:
        return None
    try:
        return Kind(kind)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise ValidationFailed(f"unknown kind {kind!r} ({known})", field="kind") from None


def list_items(
    uow: UnitOfWork,
    company_id: int | None,
    reconciliation_id: int,
    *,
    kind: str | None = None,
    paging: Paging = FIRST_PAGE,
) -> Page[ItemView]:
    wanted = _kind(kind)
    row = _load(uow, company_id, reconciliation_id)
    stmt = select(ReconciliationItem).where(ReconciliationItem.reconciliation_id == row.id)
    if wanted is not None:
        stmt = stmt.where(ReconciliationItem.kind == wanted.value)
    total = _count(uow.session, stmt.with_only_columns(ReconciliationItem.id))
    items = uow.session.scalars(
        stmt.order_by(ReconciliationItem.id).offset(paging.offset).limit(paging.page_size)
    )
    return Page([_item_view(i, row.currency) for i in items], total, paging.page, paging.page_size)


def iter_items(
    uow: UnitOfWork, company_id: int | None, reconciliation_id: int, *, kind: str | None = None
) -> Iterator[ItemView]:
    wanted = _kind(kind)
    row = _load(uow, company_id, reconciliation_id)
    stmt = select(ReconciliationItem).where(ReconciliationItem.reconciliation_id == row.id)
    if wanted is not None:
        stmt = stmt.where(ReconciliationItem.kind == wanted.value)
    for item in uow.session.scalars(stmt.order_by(ReconciliationItem.id)):
        yield _item_view(item, row.currency)


def export_rows(items: Iterable[ItemView]) -> Iterator[list[Cell]]:
    for i in items:
        yield [
            KIND_TITLES[Kind(i.kind)],
            i.transaction_id,
            i.reference,
            i.bank_amount,
            i.recaudo_amount,
            i.paid_on,
            i.line_no,
            i.payment_id,
            i.detail,
        ]


def write_export(
    uow: UnitOfWork,
    company_id: int | None,
    reconciliation_id: int,
    fmt: TableFormat | str,
    out: BinaryIO,
    *,
    kind: str | None = None,
) -> int:
    """The items as CSV or XLSX with Spanish column titles; returns how many."""
    # Refused before the first byte: an error inside the rows would leave half a file.
    _kind(kind)
    _load(uow, company_id, reconciliation_id)
    count = 0

    def counted() -> Iterator[list[Cell]]:
        nonlocal count
        for row in export_rows(iter_items(uow, company_id, reconciliation_id, kind=kind)):
            count += 1
            yield row

    write_table(EXPORT_HEADERS, counted(), str(fmt), out)
    return count


def export_format(path: Path) -> TableFormat:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return TableFormat.XLSX
    if suffix == ".csv":
        return TableFormat.CSV
    raise ValidationFailed("the report file must end in .csv or .xlsx", field="report")
