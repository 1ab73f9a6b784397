"""Settlement runs: one channel agreement's file of what was collected on one accounting date.

What goes in (see docs/settlement.md): every payment of the agreement with that accounting
date whose status is `applied` or `exception` — the bank collected the money either way.
Reversed payments drop out (a re-run after a reversal writes a new version without them).
Each payment gives one detail record per debt it paid (its allocations, in the order they
were made) plus, when part of the money was not allocated (credit, or a payment for nobody
Recaudo knows), one record for that remainder with an empty debt id. So the file's total is
exactly the money collected. Records are ordered by payment time, payment id, allocation.

The header's counts and sums come from SQL aggregates before the details are streamed
(`yield_per`), so memory stays flat however large the day; the streamed figures are checked
against them and a run that saw the data change underneath retries.

Re-runs are byte-identical: the header's generation date and time are those of the latest
version when the rest of the content is unchanged, so an unchanged day gives the same
SHA-256 and no new version; a changed payment gives the next version, stamped now, and
every version is kept.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import (
    Allocation,
    ChannelAgreement,
    Company,
    Customer,
    Debt,
    Payment,
    SettlementFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.payments import PaymentStatus
from recaudo.formats import fixedwidth
from recaudo.services import audit, deliveries, storage
from recaudo.services.calendar import business_calendar
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.queries import Paging, _count
from recaudo.services.views import Page

# The money the bank collected, whatever happened to it inside Recaudo afterwards.
COLLECTED = (PaymentStatus.APPLIED.value, PaymentStatus.EXCEPTION.value)
GENERATED = "generated"
TABULAR = ("csv", "xlsx")
# csv/xlsx exports carry the detail records of this layout, titled in Spanish.
TABULAR_BASE_LAYOUT = "bancoestado-rendicion"
ASOBANCARIA = "asobancaria-2001"
ASOBANCARIA_KINDS = frozenset({"01", "05", "06", "08", "09"})
CHANNEL_CODES = {"caja-vecina": "CAJA VECINA", "internet": "INTERNET"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FIXED_WIDTH_MEDIA_TYPE = "text/plain"
_RETRIES = 3
FIRST_PAGE = Paging()
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class SettlementView:
    id: int
    company_id: int
    agreement_id: int
    accounting_date: date
    version: int
    layout: str
    file_name: str
    sha256: str
    size_bytes: int
    payment_count: int
    record_count: int
    total: Decimal
    total_minor: int
    currency: str
    status: str
    generated_by: str
    generated_at: datetime
    deleted_at: datetime | None
    storage_path: str

    @property
    def media_type(self) -> str:
        return media_type(self.layout)


@dataclass(frozen=True, slots=True)
class SettlementRun:
    file: SettlementView
    created: bool  # False: the latest version already had these exact bytes


@dataclass(frozen=True, slots=True)
class _Totals:
    payment_count: int
    record_count: int
    total_minor: int


class _Changed(Exception):
    """The payments changed while the file was written, or another run won the version."""


_CHARSETS = {"latin-1": "iso-8859-1", "ascii": "us-ascii", "utf-8": "utf-8"}


def media_type(layout: str) -> str:
    """The file's media type; a fixed-width file's charset is its layout's encoding."""
    if layout in MEDIA_TYPES:
        return MEDIA_TYPES[layout]
    try:
        encoding = fixedwidth.load_layout(layout).encoding
    except (fixedwidth.LayoutError, OSError):
        return "application/octet-stream"  # a layout file since removed: bytes as they are
    return f"{FIXED_WIDTH_MEDIA_TYPE}; charset={_CHARSETS.get(encoding, encoding)}"


def view_of(row: SettlementFile) -> SettlementView:
    return SettlementView(
        id=row.id,
        company_id=row.company_id,
        agreement_id=row.agreement_id,
        accounting_date=row.accounting_date,
        version=row.version,
        layout=row.layout,
        file_name=row.file_name,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        payment_count=row.payment_count,
        record_count=row.record_count,
        total=money.from_minor(row.total_minor, row.currency),
        total_minor=row.total_minor,
        currency=row.currency,
        status=row.status,
        generated_by=row.generated_by,
        generated_at=row.generated_at,
        deleted_at=row.deleted_at,
        storage_path=row.storage_path,
    )


# --------------------------------------------------------------------------- generating


def generate_settlement(
    uow: UnitOfWork,
    agreement_id: int,
    accounting_date: date,
    *,
    data_dir: Path,
    actor: Actor,
    clock: Clock,
) -> SettlementRun:
    """Write (or find unchanged) the agreement's settlement file for `accounting_date`."""
    actor.require_write()
    for _ in range(_RETRIES):
        try:
            return _generate_once(uow, agreement_id, accounting_date, data_dir, actor, clock)
        except _Changed:
            continue
    raise Conflict(
        "the payments of this accounting date kept changing while the file was written; "
        "run it again"
    )


def _generate_once(
    uow: UnitOfWork,
    agreement_id: int,
    day: date,
    data_dir: Path,
    actor: Actor,
    clock: Clock,
) -> SettlementRun:
    with uow:
        session = uow.session
        agreement = session.get(ChannelAgreement, agreement_id)
        if agreement is None or not actor.can_see(agreement.company_id):
            raise NotFound(f"no agreement {agreement_id}")
        company = session.get(Company, agreement.company_id)
        assert company is not None
        _check_date(uow, company, day, clock)
        layout_name = agreement.settlement_layout
        writer = _Writer.of(layout_name, agreement.settlement_control_record, company.currency)
        previous = session.scalar(
            select(SettlementFile)
            .where(
                SettlementFile.agreement_id == agreement.id,
                SettlementFile.accounting_date == day,
            )
            .order_by(SettlementFile.version.desc())
            .limit(1)
        )
        totals = _totals(uow, agreement.id, day)
        stamp = previous.generated_at if previous is not None else _now(clock)
        with storage.spooled(data_dir) as tmp:
            _render(uow, writer, agreement, company, day, totals, stamp, tmp)
            sha, size = storage.hash_file(tmp)
            if previous is not None and previous.sha256 == sha:
                restored = previous.deleted_at is not None or not storage.exists(
                    data_dir, previous.storage_path
                )
                if restored:
                    # Retention removed the bytes (or they were lost): the same bytes
                    # again, so the version can be downloaded and delivered again.
                    storage.store_file(data_dir, previous.storage_path, tmp)
                    previous.deleted_at = None
                audit.record(
                    uow,
                    actor=actor,
                    clock=clock,
                    company_id=company.id,
                    action="settlement.restored" if restored else "settlement.unchanged",
                    entity_type="settlement_file",
                    entity_id=previous.id,
                    after={"version": previous.version, "sha256": sha},
                )
                uow.commit()
                return SettlementRun(view_of(previous), created=False)
            if previous is not None:
                # New content: the header says when this version was made.
                stamp = _now(clock)
                _render(uow, writer, agreement, company, day, totals, stamp, tmp)
                sha, size = storage.hash_file(tmp)
            version = 1 if previous is None else previous.version + 1
            file_name = _file_name(layout_name, writer, agreement, day, version)
            path = (
                f"files/settlements/{company.id}/{agreement.id}/{day.isoformat()}/"
                f"v{version}-{sha[:12]}-{file_name}"
            )
            storage.store_file(data_dir, path, tmp)
        row = SettlementFile(
            company_id=company.id,
            agreement_id=agreement.id,
            accounting_date=day,
            version=version,
            layout=layout_name,
            file_name=file_name,
            sha256=sha,
            size_bytes=size,
            payment_count=totals.payment_count,
            record_count=totals.record_count,
            total_minor=totals.total_minor,
            currency=company.currency,
            storage_path=path,
            status=GENERATED,
            generated_by=actor.label,
            generated_at=stamp,
        )
        session.add(row)
        try:
            session.flush()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company.id,
                action="settlement.generated",
                entity_type="settlement_file",
                entity_id=row.id,
                after={
                    "agreement_id": agreement.id,
                    "accounting_date": day,
                    "version": version,
                    "layout": layout_name,
                    "file_name": file_name,
                    "sha256": sha,
                    "payment_count": totals.payment_count,
                    "record_count": totals.record_count,
                    "total_minor": totals.total_minor,
                },
            )
            deliveries.enqueue_settlement_file(uow, row, actor=actor, clock=clock)
            uow.commit()
        except IntegrityError:
            # Another run (another server's job) stored this version first: start over,
            # which finds its file and compares against it.
            _discard(uow, data_dir, path)
            raise _Changed() from None
        except BaseException:
            _discard(uow, data_dir, path)
            raise
        return SettlementRun(view_of(row), created=True)


def _discard(uow: UnitOfWork, data_dir: Path, path: str) -> None:
    """Remove the bytes of a row that was not committed, unless a committed row (another
    run's identical version) points at the same path."""
    try:
        uow.rollback()
        found = uow.session.scalar(
            select(SettlementFile.id).where(SettlementFile.storage_path == path).limit(1)
        )
    except Exception:  # the database is gone: keep the file rather than guess
        return
    if found is None:
        storage.remove(data_dir, path)


def _now(clock: Clock) -> datetime:
    # Whole seconds: the header shows seconds, and a re-run reuses this exact moment.
    return clock().astimezone(UTC).replace(microsecond=0)


def _check_date(uow: UnitOfWork, company: Company, day: date, clock: Clock) -> None:
    today = clock().astimezone(ZoneInfo(company.timezone)).date()
    if day.year < 2000:
        raise ValidationFailed(f"{day.isoformat()} is before 2000", field="date")
    if day > today:
        raise ValidationFailed(
            f"{day.isoformat()} is in the future for {company.slug}", field="date"
        )
    if not business_calendar(uow, company, day).is_business_day(day):
        raise ValidationFailed(
            f"{day.isoformat()} is not a business day for {company.slug}: no payment has it "
            "as its accounting date",
            field="date",
        )


def _collected(agreement_id: int, day: date) -> Any:
    return (
        Payment.agreement_id == agreement_id,
        Payment.accounting_date == day,
        Payment.status.in_(COLLECTED),
    )


def _totals(uow: UnitOfWork, agreement_id: int, day: date) -> _Totals:
    allocated_n = (
        select(func.count(Allocation.id))
        .where(Allocation.payment_id == Payment.id)
        .correlate(Payment)
        .scalar_subquery()
    )
    allocated = (
        select(func.coalesce(func.sum(Allocation.amount_minor), 0))
        .where(Allocation.payment_id == Payment.id)
        .correlate(Payment)
        .scalar_subquery()
    )
    per_payment = (
        select(
            Payment.amount_minor.label("amount"),
            (allocated_n + case((Payment.amount_minor > allocated, 1), else_=0)).label("lines"),
        )
        .where(*_collected(agreement_id, day))
        .subquery()
    )
    row = uow.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(per_payment.c.lines), 0),
            func.coalesce(func.sum(per_payment.c.amount), 0),
        ).select_from(per_payment)
    ).one()
    return _Totals(int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True, slots=True)
class _Line:
    payment_id: int
    debt_id: str
    debt_amount: int
    debts_in_payment: int
    payment_amount: int
    paid_at: datetime
    transaction_id: str
    national_id: str | None
    id_type: str | None
    customer_name: str | None


def _lines(uow: UnitOfWork, agreement_id: int, day: date) -> Iterator[_Line]:
    """The detail lines in file order, streamed (one payment's rows in memory at a time)."""
    stmt = (
        select(
            Payment.id,
            Payment.amount_minor,
            Payment.paid_at,
            Payment.external_id,
            Customer.national_id,
            Customer.id_type,
            Customer.name,
            Allocation.amount_minor,
            Debt.external_id,
        )
        .select_from(Payment)
        .outerjoin(Customer, Customer.id == Payment.customer_id)
        .outerjoin(Allocation, Allocation.payment_id == Payment.id)
        .outerjoin(Debt, Debt.id == Allocation.debt_id)
        .where(*_collected(agreement_id, day))
        .order_by(Payment.paid_at, Payment.id, Allocation.id)
        .execution_options(yield_per=2000)
    )
    rows = uow.session.execute(stmt)
    for payment_id, group in itertools.groupby(rows, key=lambda r: r[0]):
        items = list(group)
        first = items[0]
        paid = [(str(r[8]), int(r[7])) for r in items if r[8] is not None]
        remainder = int(first[1]) - sum(amount for _, amount in paid)
        if remainder > 0:
            paid.append((NO_DEBT, remainder))
        for debt_id, amount in paid:
            yield _Line(
                payment_id=payment_id,
                debt_id=debt_id,
                debt_amount=amount,
                debts_in_payment=len(paid),
                payment_amount=int(first[1]),
                paid_at=first[2],
                transaction_id=first[3],
                national_id=first[4],
                id_type=first[5],
                customer_name=first[6],
            )


# The payer of a payment Recaudo could not tie to a customer, and the "debt" of money no
# debt took (credit, or a payment for nobody): zeros, which is how a zero-filled bank
# field says "none" (an empty debt id is not allowed by the shipped layouts).
UNKNOWN_RUT: tuple[int | str, str] = (0, "0")
NO_DEBT = "0"
# Free text that may be longer than its field is cut to fit; every other value that does
# not fit is an error (a truncated id or amount would be wrong, not just short).
TRUNCATED = ("company_name", "customer_name")
MONEY = ("debt_amount", "payment_amount", "total_amount", "amount")
# Asobancaria 2001 codes that Recaudo has no source for (the code tables are not public,
# a Chilean bank channel has no Colombian bank code or account): written as zeros.
ASOBANCARIA_UNKNOWN = {
    "bank_code": 0,
    "account_number": 0,
    "account_type": 0,
    "payment_origin": 0,
    "payment_method": 0,
    "authorization_number": 0,
    "debited_bank_code": 0,
    "branch_code": 0,
}


def _number(text: str) -> int | str:
    """Digits as an int (numeric fields are written fastest from ints), else the text."""
    return int(text) if text.isascii() and text.isdigit() else text


def _split_rut(national_id: str | None, id_type: str | None) -> tuple[int | str, str | None]:
    """Body and check digit of a RUT (stored compact: `123456785`); other ids whole."""
    if not national_id:
        return UNKNOWN_RUT
    if id_type == "RUT":
        return _number(national_id[:-1]), national_id[-1]
    return _number(national_id), None


def _tax_id_parts(tax_id: str | None) -> tuple[int | str, str]:
    compact = re.sub(r"[^0-9Kk]", "", tax_id or "").upper()
    if len(compact) < 2:
        return UNKNOWN_RUT
    return _number(compact[:-1]), compact[-1]


def _header_values(
    agreement: ChannelAgreement, company: Company, day: date, totals: _Totals, stamp: datetime
) -> dict[str, object]:
    local = stamp.astimezone(ZoneInfo(company.timezone))
    rut, dv = _tax_id_parts(company.tax_id)
    convenio_digits = re.sub(r"[^0-9]", "", agreement.convenio)
    return {
        "company_name": company.legal_name,
        "company_rut": rut,
        "company_rut_dv": dv,
        "convenio": agreement.convenio,
        "accounting_date": day,
        "generated_date": local.date(),
        "generated_time": local.time().replace(microsecond=0, tzinfo=None),
        "record_count": totals.record_count,
        "payment_count": totals.payment_count,
        "total_amount": totals.total_minor,
        # Asobancaria 2001 (01/05/08/09): see docs/settlement.md for what comes from where.
        "biller_nit": _number(re.sub(r"[^0-9]", "", company.tax_id or "") or "0"),
        "collection_date": day,
        "file_date": local.date(),
        "file_time": local.time().replace(second=0, microsecond=0, tzinfo=None),
        "file_modifier": "A",
        "service_code": _number(convenio_digits) if convenio_digits else agreement.convenio,
        "lot_number": 1,
        "detail_count": totals.record_count,
        **ASOBANCARIA_UNKNOWN,
    }


def _detail_values(
    line: _Line, sequence: int, agreement: ChannelAgreement, company: Company, day: date
) -> dict[str, object]:
    local = line.paid_at.astimezone(ZoneInfo(company.timezone))
    rut, dv = _split_rut(line.national_id, line.id_type)
    return {
        "rut": rut,
        "rut_dv": dv,
        "customer_name": line.customer_name,
        "debt_id": line.debt_id,
        "debt_amount": line.debt_amount,
        "debts_in_payment": line.debts_in_payment,
        "payment_amount": line.payment_amount,
        "paid_date": local.date(),
        "paid_time": local.time().replace(microsecond=0, tzinfo=None),
        "channel": CHANNEL_CODES.get(agreement.channel, agreement.channel.upper()),
        "transaction_id": line.transaction_id,
        "convenio": agreement.convenio,
        "accounting_date": day,
        "sequence": sequence,
        # Reconciliation reads these names in every layout (Asobancaria's 06 uses them).
        "reference": line.debt_id,
        "amount": line.debt_amount,
        "operation_number": sequence % 1_000_000,
        "return_cause": None,
        **ASOBANCARIA_UNKNOWN,
    }


@dataclass(frozen=True, slots=True)
class _Writer:
    """The agreement's `settlement_layout`: a fixed-width layout, or csv / xlsx."""

    layout: fixedwidth.Layout
    table_format: str | None  # csv | xlsx, or None for the fixed-width file itself
    control: bool
    exponent: int  # the currency's minor-unit exponent
    # Per record kind: the width of each free-text attribute to cut, and the implied
    # decimals of each money attribute (minor units are rescaled to them).
    widths: dict[str, dict[str, int]]
    decimals: dict[str, dict[str, int]]

    @classmethod
    def of(cls, name: str, control: bool, currency: str) -> _Writer:
        table_format = name if name in TABULAR else None
        try:
            layout = fixedwidth.load_layout(TABULAR_BASE_LAYOUT if table_format else name)
        except (fixedwidth.LayoutError, OSError) as exc:
            raise ValidationFailed(
                f"the agreement's settlement layout {name!r} cannot be loaded: {exc}",
                field="settlement_layout",
            ) from None
        widths: dict[str, dict[str, int]] = {}
        decimals: dict[str, dict[str, int]] = {}
        for kind, spec in layout.records.items():
            for f in spec.value_fields():
                attr = f.source or f.name
                if attr in TRUNCATED and table_format is None:
                    widths.setdefault(kind, {})[attr] = f.length
                if attr in MONEY:
                    decimals.setdefault(kind, {})[attr] = f.decimals
        return cls(layout, table_format, control, money.exponent(currency), widths, decimals)

    @property
    def extension(self) -> str:
        return self.table_format or "txt"

    @property
    def asobancaria(self) -> bool:
        # By its record types, so that a company's own copy of it works the same way.
        return set(self.layout.records) >= ASOBANCARIA_KINDS

    def record(self, kind: str, values: dict[str, object]) -> fixedwidth.Record:
        adapted = dict(values)
        for attr, width in self.widths.get(kind, {}).items():
            text = adapted.get(attr)
            if isinstance(text, str) and len(text) > width:
                adapted[attr] = text[:width]
        for attr, places in self.decimals.get(kind, {}).items():
            amount = adapted.get(attr)
            if isinstance(amount, int) and places != self.exponent:
                adapted[attr] = _rescale(amount, self.exponent, places, kind, attr)
        return fixedwidth.Record(kind, adapted)


def _rescale(amount: int, exponent: int, places: int, kind: str, attr: str) -> int:
    if places > exponent:
        return amount * int(10 ** (places - exponent))
    factor = int(10 ** (exponent - places))
    if amount % factor:
        raise ValidationFailed(
            f"the layout's {kind}.{attr} has {places} decimals and cannot hold {amount} "
            f"minor units exactly",
            field="settlement_layout",
        )
    return int(amount // factor)


def _records(
    uow: UnitOfWork,
    writer: _Writer,
    agreement: ChannelAgreement,
    company: Company,
    day: date,
    totals: _Totals,
    stamp: datetime,
    seen: list[int],
) -> Iterator[fixedwidth.Record]:
    """Every record of the file in order; `seen` gets [lines, payments, total] as it goes."""
    header = _header_values(agreement, company, day, totals, stamp)
    fixed_width = writer.table_format is None
    detail_kind = "06" if writer.asobancaria else "detail"
    if fixed_width:
        if writer.asobancaria:
            yield writer.record("01", header)
            yield writer.record("05", header)
        else:
            yield writer.record("header", header)
    last_payment: int | None = None
    for n, line in enumerate(_lines(uow, agreement.id, day), start=1):
        seen[0] += 1
        seen[2] += line.debt_amount
        if line.payment_id != last_payment:
            seen[1] += 1
            last_payment = line.payment_id
        yield writer.record(detail_kind, _detail_values(line, n, agreement, company, day))
    if fixed_width:
        if writer.asobancaria:
            yield writer.record("08", header)
            yield writer.record("09", header)
        elif writer.control:
            yield writer.record("control", header)


def _render(
    uow: UnitOfWork,
    writer: _Writer,
    agreement: ChannelAgreement,
    company: Company,
    day: date,
    totals: _Totals,
    stamp: datetime,
    target: Path,
) -> None:
    seen = [0, 0, 0]
    records = _records(uow, writer, agreement, company, day, totals, stamp, seen)
    try:
        with open(target, "wb") as out:
            if writer.table_format is None:
                writer.layout.write(records, out)
            else:
                _write_tabular(writer, records, stamp, company, out)
    except fixedwidth.LayoutError as exc:
        raise ValidationFailed(
            f"a value does not fit the layout {writer.layout.name!r}: {exc}",
            field="settlement_layout",
        ) from None
    if (seen[0], seen[1], seen[2]) != (
        totals.record_count,
        totals.payment_count,
        totals.total_minor,
    ):
        raise _Changed()


def _write_tabular(
    writer: _Writer,
    records: Iterable[fixedwidth.Record],
    stamp: datetime,
    company: Company,
    out: io.BufferedWriter,
) -> None:
    table = fixedwidth.records_to_table(writer.layout, records, record_kind="detail")
    if writer.table_format == "csv":
        table.write(out, "csv")
        return
    # openpyxl stamps the workbook and every zip entry with the current time: rewrite
    # them with the version's own moment so that an unchanged day gives the same bytes.
    buffer = io.BytesIO()
    table.write(buffer, "xlsx")
    out.write(_pin_xlsx(buffer.getvalue(), stamp.astimezone(ZoneInfo(company.timezone))))


_CORE_TIMES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def _pin_xlsx(data: bytes, moment: datetime) -> bytes:
    iso = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    result = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _CORE_TIMES.sub(lambda m: m.group(1) + iso + m.group(3), content)
            pinned = zipfile.ZipInfo(info.filename, date_time=stamp)
            pinned.compress_type = zipfile.ZIP_DEFLATED
            pinned.external_attr = info.external_attr
            target.writestr(pinned, content)
    return result.getvalue()


def _file_name(
    layout_name: str, writer: _Writer, agreement: ChannelAgreement, day: date, version: int
) -> str:
    if writer.table_format is not None or layout_name == TABULAR_BASE_LAYOUT:
        stem = "rendicion"
    elif layout_name == ASOBANCARIA:
        stem = "asobancaria"
    else:
        stem = _UNSAFE.sub("-", Path(layout_name).stem).strip("-") or "settlement"
    convenio = _UNSAFE.sub("-", agreement.convenio).strip("-") or str(agreement.id)
    suffix = "" if version == 1 else f"_v{version}"
    return f"{stem}_{agreement.channel}_{convenio}_{day:%Y%m%d}{suffix}.{writer.extension}"


# --------------------------------------------------------------------------- configuring


@dataclass(frozen=True, slots=True)
class SettlementSettings:
    """What an administrator may change; `None` keeps the current value."""

    layout: str | None = None  # a shipped layout, csv, xlsx, or (CLI only) a layout file
    local_time: time | None = None  # local time the daily job writes the file
    enabled: bool | None = None  # whether the daily job writes it
    control_record: bool | None = None  # the optional control record


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    agreement_id: int
    layout: str
    local_time: time
    enabled: bool
    control_record: bool


def _config(agreement: ChannelAgreement) -> SettlementConfig:
    return SettlementConfig(
        agreement.id,
        agreement.settlement_layout,
        agreement.settlement_time,
        agreement.settlement_enabled,
        agreement.settlement_control_record,
    )


def _visible_agreement(uow: UnitOfWork, actor: Actor, agreement_id: int) -> ChannelAgreement:
    agreement = uow.session.get(ChannelAgreement, agreement_id)
    if agreement is None or not actor.can_see(agreement.company_id):
        raise NotFound(f"no agreement {agreement_id}")
    return agreement


def get_settlement_config(uow: UnitOfWork, agreement_id: int, *, actor: Actor) -> SettlementConfig:
    return _config(_visible_agreement(uow, actor, agreement_id))


def configure_settlement(
    uow: UnitOfWork,
    agreement_id: int,
    changes: SettlementSettings,
    *,
    actor: Actor,
    clock: Clock,
    allow_files: bool = False,
) -> SettlementConfig:
    """Change an agreement's settlement settings (admin). Only the command line
    (`allow_files`) may name a layout file: it runs on the server, where the file is."""
    actor.require(Role.ADMIN)
    layout = changes.layout.strip() if changes.layout is not None else None
    if layout is not None:
        shipped = [*fixedwidth.available_layouts(), *TABULAR]
        if not layout or len(layout) > 255:
            raise ValidationFailed("a layout is 1 to 255 characters", field="layout")
        if layout not in shipped:
            if not allow_files:
                known = ", ".join(shipped)
                raise ValidationFailed(
                    f"unknown layout {layout!r} (one of {known})", field="layout"
                )
            layout = str(Path(layout).expanduser().resolve())
    with uow:
        agreement = _visible_agreement(uow, actor, agreement_id)
        company = uow.session.get(Company, agreement.company_id)
        assert company is not None
        if layout is not None:
            _Writer.of(layout, False, company.currency)  # refuse a layout that does not load
        before = _config(agreement)
        if layout is not None:
            agreement.settlement_layout = layout
        if changes.local_time is not None:
            agreement.settlement_time = changes.local_time.replace(microsecond=0, tzinfo=None)
        if changes.enabled is not None:
            agreement.settlement_enabled = changes.enabled
        if changes.control_record is not None:
            agreement.settlement_control_record = changes.control_record
        after = _config(agreement)
        if after != before:
            agreement.updated_at = clock()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=agreement.company_id,
                action="agreement.settlement_configured",
                entity_type="agreement",
                entity_id=agreement.id,
                before=_config_snapshot(before),
                after=_config_snapshot(after),
            )
        uow.commit()
        return after


def _config_snapshot(config: SettlementConfig) -> dict[str, object]:
    return {
        "settlement_layout": config.layout,
        "settlement_time": config.local_time.strftime("%H:%M:%S"),
        "settlement_enabled": config.enabled,
        "settlement_control_record": config.control_record,
    }


# --------------------------------------------------------------------------- reading


def list_settlements(
    uow: UnitOfWork,
    company_id: int | None,
    *,
    agreement_id: int | None = None,
    accounting_date: date | None = None,
    paging: Paging = FIRST_PAGE,
) -> Page[SettlementView]:
    """Settlement files, newest accounting date first, then newest version."""
    stmt = select(SettlementFile)
    if company_id is not None:
        stmt = stmt.where(SettlementFile.company_id == company_id)
    if agreement_id is not None:
        stmt = stmt.where(SettlementFile.agreement_id == agreement_id)
    if accounting_date is not None:
        stmt = stmt.where(SettlementFile.accounting_date == accounting_date)
    total = _count(uow.session, stmt.with_only_columns(SettlementFile.id))
    rows = uow.session.scalars(
        stmt.order_by(
            SettlementFile.accounting_date.desc(),
            SettlementFile.agreement_id,
            SettlementFile.version.desc(),
        )
        .offset(paging.offset)
        .limit(paging.page_size)
    )
    return Page([view_of(r) for r in rows], total, paging.page, paging.page_size)


def get_settlement(uow: UnitOfWork, company_id: int | None, settlement_id: int) -> SettlementView:
    row = uow.session.get(SettlementFile, settlement_id)
    if row is None or (company_id is not None and row.company_id != company_id):
        raise NotFound(f"no settlement file {settlement_id}")
    return view_of(row)


def read_settlement(
    uow: UnitOfWork, company_id: int | None, settlement_id: int, *, data_dir: Path
) -> tuple[SettlementView, bytes]:
    """The file's row and its stored bytes (checked against the recorded SHA-256)."""
    view = get_settlement(uow, company_id, settlement_id)
    if view.deleted_at is not None:
        raise NotFound(
            f"settlement file {settlement_id} was removed on {view.deleted_at:%Y-%m-%d} (retention)"
        )
    try:
        data = storage.read_bytes(data_dir, view.storage_path)
    except FileNotFoundError:
        raise NotFound(f"the stored bytes of settlement file {settlement_id} are missing") from None
    if storage.sha256_of(data) != view.sha256:
        raise Conflict(f"the stored bytes of settlement file {settlement_id} were altered")
    return view, data


# --------------------------------------------------------------------------- the daily job


@dataclass(frozen=True, slots=True)
class Due:
    agreement_id: int
    company_id: int
    accounting_date: date


def due_settlements(uow: UnitOfWork, now: datetime, *, catch_up_days: int = 7) -> list[Due]:
    """The (agreement, accounting date) pairs whose file should exist by `now` and does not.

    An accounting date D is due once D's local time has passed both the agreement's cut-off
    (D is closed) and its settlement time. Days missed while no server ran are caught up,
    back to `catch_up_days` and never before the agreement existed.
    """
    due: list[Due] = []
    agreements = uow.session.execute(
        select(ChannelAgreement, Company)
        .join(Company, Company.id == ChannelAgreement.company_id)
        .where(ChannelAgreement.settlement_enabled.is_(True))
        .order_by(ChannelAgreement.id)
    ).all()
    for agreement, company in agreements:
        zone = ZoneInfo(company.timezone)
        local_now = now.astimezone(zone).replace(tzinfo=None)
        today = local_now.date()
        start = max(
            today - timedelta(days=catch_up_days),
            agreement.created_at.astimezone(zone).date(),
        )
        if start > today:
            continue
        calendar = business_calendar(uow, company, today)
        closes = max(agreement.settlement_time, agreement.cutoff)
        done = set(
            uow.session.scalars(
                select(SettlementFile.accounting_date)
                .where(
                    SettlementFile.agreement_id == agreement.id,
                    SettlementFile.accounting_date >= start,
                )
                .distinct()
            )
        )
        day = start
        while day <= today:
            if (
                calendar.is_business_day(day)
                and day not in done
                and local_now >= datetime.combine(day, _naive(closes))
            ):
                due.append(Due(agreement.id, company.id, day))
            day += timedelta(days=1)
    return due


def _naive(moment: time) -> time:
    return moment.replace(tzinfo=None)
