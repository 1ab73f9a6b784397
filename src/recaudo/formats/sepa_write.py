"""SEPA XML writers (pain.008 direct debits, pain.001 credit transfers) and XSD validation.

Versions: pain.008.001.02 and pain.008.001.08 (SDD), pain.001.001.03 and pain.001.001.09
(SCT). The older ones carry the debtor/creditor address as country + address lines and the
BIC in `BIC`; the newer ones a structured address (StrtNm, BldgNb, PstCd, TwnNm, Ctry) and
the BIC in `BICFI`.

Streaming: the document is written with lxml's incremental `etree.xmlfile`, one
transaction at a time, from ITERATORS of transactions already grouped into payment
information blocks, so memory stays flat whatever the number of transactions. The counts
and sums the ISO messages put BEFORE the transactions (GrpHdr and PmtInf `NbOfTxs` and
`CtrlSum`) are therefore given by the caller (a SQL aggregate over the same rows); the
writer checks them against what it actually wrote and raises `SepaWriteError` at the end of
the group or file when they differ, so a caller must discard the output then.

Each transaction shape (with or without BIC, address parts, remittance text) is built once
as an lxml element and serialized into a template; transactions are formatted into it, one
per line, and written in batches between lxml's own writes.

Values are checked while writing (the cheap checks; the full business validation with
schwifty and the bank's lead time runs before generation, see `recaudo.domain.sepa`):
identifiers in the SEPA set and within 35 characters, IBAN check digits (ISO 13616 MOD 97),
BIC shape, amounts of 0.01 to 999,999,999.99 with two decimals, names and remittance text
transliterated into the SEPA character set and cut to their maximum length.

`validate_xml` checks a document against the XSD shipped in `formats/sepa_xsd/` (schemas
parsed once and cached), streaming the document so a file of a million transactions is
checked in flat memory. The writers can also check their own output while they write it
(`validate=True`): the bytes are fed to libxml2's schema validator in a second thread. That
was meant to overlap the check with the writing on two cores; measured on a shared 2-core
machine it was slower than writing then calling `validate_xml` (docs/benchmarks.md), which
stays the recommended way.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any, BinaryIO

from lxml import etree

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.sepa import (
    MAX_AMOUNT,
    MAX_BUILDING_NUMBER,
    MAX_END_TO_END_ID,
    MAX_MESSAGE_ID,
    MAX_NAME,
    MAX_POSTCODE,
    MAX_REMITTANCE_INFORMATION,
    MAX_STREET,
    MAX_TOWN,
    MIN_AMOUNT,
    Scheme,
    SequenceType,
    iban_checksum_ok,
    sepa_identifier,
    sepa_text,
    validate_creditor_identifier,
)

__all__ = [
    "PAIN_001_VERSIONS",
    "PAIN_008_VERSIONS",
    "Account",
    "CreditTransferGroup",
    "CreditTransferTransaction",
    "DirectDebitGroup",
    "DirectDebitTransaction",
    "MessageHeader",
    "PostalAddress",
    "SepaSchemaError",
    "SepaWriteError",
    "WriteSummary",
    "format_amount",
    "schema_for",
    "validate_xml",
    "write_pain001",
    "write_pain008",
]

PAIN_008_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
PAIN_001_VERSIONS = ("pain.001.001.03", "pain.001.001.09")
_MODERN = frozenset({"pain.008.001.08", "pain.001.001.09"})
CURRENCY = "EUR"
NOT_PROVIDED = "NOTPROVIDED"  # the agent's identification when no BIC is written
_BIC = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_CENT = Decimal("0.01")


class SepaWriteError(ValidationFailed):
    """A value that cannot be written, or totals that do not match what was written."""

    code = "sepa_write_error"


class SepaSchemaError(ValidationFailed):
    """A document that is not valid against its ISO 20022 schema (first errors listed)."""

    code = "sepa_schema_error"


# --- input --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """A postal address. The .08/.09 files write it structured; .02/.03 as country + lines."""

    country: str
    street: str | None = None
    building_number: str | None = None
    postcode: str | None = None
    town: str | None = None

    def lines(self) -> list[str]:
        """Up to two address lines for the unstructured versions: street, then town."""
        first = " ".join(p for p in (self.street, self.building_number) if p)
        second = " ".join(p for p in (self.postcode, self.town) if p)
        return [line for line in (first, second) if line]


@dataclass(frozen=True, slots=True)
class Account:
    """The company's side of the file: creditor of a pain.008, debtor of a pain.001.

    `include_bic`: write the BICs (the company's and the counterparties') — some banks
    still want them; otherwise the agents are written as `Othr/Id` NOTPROVIDED (mandatory
    agents) or left out (optional ones). `creditor_identifier` (AT-02) is required for
    direct debits.
    """

    name: str
    iban: str
    bic: str | None = None
    include_bic: bool = False
    creditor_identifier: str | None = None
    address: PostalAddress | None = None


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """GrpHdr: the totals of the whole file are the caller's (a SQL aggregate), checked."""

    message_id: str
    created_at: datetime
    initiating_party_name: str
    number_of_transactions: int
    control_sum: Decimal
    initiating_party_id: str | None = None  # InitgPty/Id/OrgId/Othr/Id (e.g. the AT-02)


@dataclass(frozen=True, slots=True)
class DirectDebitTransaction:
    end_to_end_id: str
    amount: Decimal
    mandate_id: str
    mandate_signed_on: date
    debtor_name: str
    debtor_iban: str
    debtor_bic: str | None = None
    debtor_address: PostalAddress | None = None
    remittance_information: str | None = None


@dataclass(frozen=True, slots=True)
class DirectDebitGroup:
    """One PmtInf block: same sequence type, scheme and collection date."""

    payment_information_id: str
    sequence_type: SequenceType
    scheme: Scheme
    collection_date: date
    number_of_transactions: int
    control_sum: Decimal
    transactions: Iterable[DirectDebitTransaction]
    batch_booking: bool = True


@dataclass(frozen=True, slots=True)
class CreditTransferTransaction:
    end_to_end_id: str
    amount: Decimal
    creditor_name: str
    creditor_iban: str
    creditor_bic: str | None = None
    creditor_address: PostalAddress | None = None
    remittance_information: str | None = None


@dataclass(frozen=True, slots=True)
class CreditTransferGroup:
    """One PmtInf block of transfers executed on the same requested date."""

    payment_information_id: str
    requested_execution_date: date
    number_of_transactions: int
    control_sum: Decimal
    transactions: Iterable[CreditTransferTransaction]
    batch_booking: bool = True


@dataclass(frozen=True, slots=True)
class WriteSummary:
    message_id: str
    version: str
    number_of_transactions: int
    control_sum: Decimal
    groups: int


# --- value checks ---------------------------------------------------------------------------


def format_amount(amount: Decimal) -> str:
    """`1234.50`: two decimals, 0.01 to 999,999,999.99; anything else is refused."""
    if (
        isinstance(amount, Decimal)
        and amount.is_finite()
        and MIN_AMOUNT <= amount <= MAX_AMOUNT
        and amount.quantize(_CENT) == amount
    ):
        return f"{amount:.2f}"
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise SepaWriteError(f"amount {amount!r} is not a finite Decimal")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(_CENT):
        raise SepaWriteError(f"amount {amount} has more than 2 decimals")
    if amount < MIN_AMOUNT or amount > MAX_AMOUNT:
        raise SepaWriteError(f"amount {amount} is outside {MIN_AMOUNT} to {MAX_AMOUNT}")
    return f"{amount:.2f}"


def _iban(value: str, what: str) -> str:
    if not iban_checksum_ok(value):
        raise SepaWriteError(f"{what}: IBAN {value!r} is not a valid IBAN (format or check digits)")
    return value


def _bic(value: str, what: str) -> str:
    if _BIC.fullmatch(value) is None:
        raise SepaWriteError(f"{what}: BIC {value!r} is not 8 or 11 letters and digits")
    return value


def _country(value: str, what: str) -> str:
    if _COUNTRY.fullmatch(value) is None:
        raise SepaWriteError(f"{what}: country {value!r} is not an ISO 3166 alpha-2 code")
    return value


def _text(value: str, max_length: int, what: str) -> str:
    try:
        return sepa_text(value, max_length=max_length, field=what)
    except ValidationFailed as exc:
        raise SepaWriteError(exc.message, **exc.details) from None


def _identifier(value: str, max_length: int, what: str) -> str:
    try:
        return sepa_identifier(value, max_length=max_length, field=what)
    except ValidationFailed as exc:
        raise SepaWriteError(exc.message, **exc.details) from None


def _address_parts(address: PostalAddress, modern: bool, what: str) -> tuple[tuple[str, str], ...]:
    """The (tag, text) pairs of a PstlAdr in the order the schema wants them."""
    country = _country(address.country, what)
    if modern:
        parts: list[tuple[str, str]] = []
        for tag, value, limit in (
            ("StrtNm", address.street, MAX_STREET),
            ("BldgNb", address.building_number, MAX_BUILDING_NUMBER),
            ("PstCd", address.postcode, MAX_POSTCODE),
            ("TwnNm", address.town, MAX_TOWN),
        ):
            if value:
                parts.append((tag, _text(value, limit, f"{what} {tag}")))
        parts.append(("Ctry", country))
        return tuple(parts)
    lines = [("AdrLine", _text(line, 70, f"{what} address line")) for line in address.lines()]
    return (("Ctry", country), *lines)


# --- element helpers -------------------------------------------------------------------------

_SubElement = etree.SubElement
_INDENT = tuple("\n" + "  " * level for level in range(5))


def _put(xf: Any, element: Any, level: int) -> None:
    """Write an element on its own line, indented at `level` like the rest of the file."""
    etree.indent(element, space="  ", level=level)
    xf.write(_INDENT[level])
    xf.write(element)


def _leaf(parent: Any, tag: str, text: str) -> Any:
    element = _SubElement(parent, tag)
    element.text = text
    return element


def _agent(parent: Any, tag: str, bic: str | None, modern: bool) -> None:
    """A mandatory agent: its BIC, or `Othr/Id` NOTPROVIDED."""
    agent = _SubElement(parent, tag)
    institution = _SubElement(agent, "FinInstnId")
    if bic is not None:
        _leaf(institution, "BICFI" if modern else "BIC", bic)
    else:
        _leaf(_SubElement(institution, "Othr"), "Id", NOT_PROVIDED)


def _party(parent: Any, tag: str, name: str, address: tuple[tuple[str, str], ...] | None) -> Any:
    party = _SubElement(parent, tag)
    _leaf(party, "Nm", name)
    if address:
        postal = _SubElement(party, "PstlAdr")
        for part_tag, text in address:
            _leaf(postal, part_tag, text)
    return party


def _account(parent: Any, tag: str, iban: str) -> None:
    _leaf(_SubElement(_SubElement(parent, tag), "Id"), "IBAN", iban)


def _created(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise SepaWriteError("the creation time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _group_header(header: MessageHeader, name: str) -> Any:
    grp = etree.Element("GrpHdr")
    _leaf(grp, "MsgId", _identifier(header.message_id, MAX_MESSAGE_ID, "message id"))
    _leaf(grp, "CreDtTm", _created(header.created_at))
    if header.number_of_transactions < 1:
        raise SepaWriteError("a SEPA file needs at least one transaction")
    _leaf(grp, "NbOfTxs", str(header.number_of_transactions))
    _leaf(grp, "CtrlSum", _control_sum(header.control_sum, "file"))
    party = _SubElement(grp, "InitgPty")
    _leaf(party, "Nm", name)
    if header.initiating_party_id:
        ident = _identifier(header.initiating_party_id, 35, "initiating party id")
        _leaf(_SubElement(_SubElement(_SubElement(party, "Id"), "OrgId"), "Othr"), "Id", ident)
    return grp


def _control_sum(value: Decimal, what: str) -> str:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise SepaWriteError(f"{what} control sum {value!r} must be a positive Decimal")
    if value != value.quantize(_CENT):
        raise SepaWriteError(f"{what} control sum {value} has more than 2 decimals")
    return f"{value:.2f}"


# --- transaction templates -------------------------------------------------------------------

# Canonical slot numbers of the values of one transaction (the address parts come last).
_DD_SLOTS = ("e2e", "amount", "mandate", "signed", "bic", "name", "iban", "rmt")
_CT_SLOTS = ("e2e", "amount", "bic", "name", "iban", "rmt")
_LINE_PREFIX = _INDENT[3]
_FLUSH_EVERY = 512  # transactions formatted before they are encoded and written at once


def _template(root: Any, slots: tuple[str, ...], nodes: dict[str, Any]) -> str:
    """The transaction element serialized by lxml, with `{n}` where each value goes.

    Every value later put in a slot is restricted to the SEPA character set (letters,
    digits, space and / - ? : ( ) . , ' +) or to ISO dates, codes and amounts, none of which
    is special in XML, so slotting them in needs no escaping.
    """
    for key, node in nodes.items():
        index = slots.index(key) if key in slots else len(slots) + int(key[3:])
        node.text = "{" + str(index) + "}"
    return _LINE_PREFIX + etree.tostring(root, encoding="unicode")


def _postal(parent: Any, address_tags: tuple[str, ...], nodes: dict[str, Any]) -> None:
    if address_tags:
        postal = _SubElement(parent, "PstlAdr")
        for index, tag in enumerate(address_tags):
            nodes[f"adr{index}"] = _SubElement(postal, tag)


@cache
def _dd_template(modern: bool, with_bic: bool, address_tags: tuple[str, ...], rmt: bool) -> str:
    root = etree.Element("DrctDbtTxInf")
    nodes: dict[str, Any] = {}
    nodes["e2e"] = _SubElement(_SubElement(root, "PmtId"), "EndToEndId")
    nodes["amount"] = _SubElement(root, "InstdAmt", Ccy=CURRENCY)
    mandate = _SubElement(_SubElement(root, "DrctDbtTx"), "MndtRltdInf")
    nodes["mandate"] = _SubElement(mandate, "MndtId")
    nodes["signed"] = _SubElement(mandate, "DtOfSgntr")
    institution = _SubElement(_SubElement(root, "DbtrAgt"), "FinInstnId")
    if with_bic:
        nodes["bic"] = _SubElement(institution, "BICFI" if modern else "BIC")
    else:
        _leaf(_SubElement(institution, "Othr"), "Id", NOT_PROVIDED)
    debtor = _SubElement(root, "Dbtr")
    nodes["name"] = _SubElement(debtor, "Nm")
    _postal(debtor, address_tags, nodes)
    nodes["iban"] = _SubElement(_SubElement(_SubElement(root, "DbtrAcct"), "Id"), "IBAN")
    if rmt:
        nodes["rmt"] = _SubElement(_SubElement(root, "RmtInf"), "Ustrd")
    return _template(root, _DD_SLOTS, nodes)


@cache
def _ct_template(modern: bool, with_bic: bool, address_tags: tuple[str, ...], rmt: bool) -> str:
    root = etree.Element("CdtTrfTxInf")
    nodes: dict[str, Any] = {}
    nodes["e2e"] = _SubElement(_SubElement(root, "PmtId"), "EndToEndId")
    nodes["amount"] = _SubElement(_SubElement(root, "Amt"), "InstdAmt", Ccy=CURRENCY)
    if with_bic:
        institution = _SubElement(_SubElement(root, "CdtrAgt"), "FinInstnId")
        nodes["bic"] = _SubElement(institution, "BICFI" if modern else "BIC")
    creditor = _SubElement(root, "Cdtr")
    nodes["name"] = _SubElement(creditor, "Nm")
    _postal(creditor, address_tags, nodes)
    nodes["iban"] = _SubElement(_SubElement(_SubElement(root, "CdtrAcct"), "Id"), "IBAN")
    if rmt:
        nodes["rmt"] = _SubElement(_SubElement(root, "RmtInf"), "Ustrd")
    return _template(root, _CT_SLOTS, nodes)


_NO_ADDRESS: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def _split_address(
    parts: tuple[tuple[str, str], ...],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(tag for tag, _ in parts), tuple(text for _, text in parts)


class _Lines:
    """Formatted transactions, written to the output in batches between lxml's own writes."""

    __slots__ = ("out", "pending", "xf")

    def __init__(self, xf: Any, out: BinaryIO | IO[bytes]) -> None:
        self.xf = xf
        self.out = out
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        pending = self.pending
        pending.append(line)
        if len(pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.xf.flush()  # what lxml holds goes out first
            self.out.write("".join(self.pending).encode("ascii"))
            self.pending.clear()


# --- the writers ---------------------------------------------------------------------------------


class _Totals:
    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = Decimal(0)


def _check_totals(what: str, declared_count: int, declared_sum: Decimal, seen: _Totals) -> None:
    if seen.count != declared_count or seen.total != declared_sum:
        raise SepaWriteError(
            f"{what}: declared {declared_count} transactions for {declared_sum:.2f} but "
            f"{seen.count} transactions for {seen.total:.2f} were written; discard this file",
            declared_count=declared_count,
            declared_sum=f"{declared_sum:.2f}",
            written_count=seen.count,
            written_sum=f"{seen.total:.2f}",
        )


def _document(
    out: BinaryIO | IO[bytes],
    version: str,
    root_tag: str,
    header: MessageHeader,
    write_groups: Callable[[Any], int],
    validate: bool,
) -> int:
    checker = _ConcurrentCheck(version) if validate else None
    sink: Any = _Tee(out, checker) if checker is not None else out
    try:
        sink.write(_DECLARATION)
        namespace = f"urn:iso:std:iso:20022:tech:xsd:{version}"
        # Children are written without a namespace and inherit the default one textually.
        with (
            etree.xmlfile(sink, encoding="UTF-8") as xf,
            xf.element("Document", nsmap={None: namespace}),
        ):
            xf.write(_INDENT[1])
            with xf.element(root_tag):
                groups = write_groups(_Writer(xf, sink))
                xf.write(_INDENT[1])
            xf.write(_INDENT[0])
        sink.write(b"\n")
    except BaseException:
        if checker is not None:
            checker.abandon()
        raise
    if checker is not None:
        sink.flush_chunk()
        checker.finish()
    return groups


class _Writer:
    """The lxml incremental writer and the byte stream under it, for the transaction lines."""

    __slots__ = ("out", "xf")

    def __init__(self, xf: Any, out: Any) -> None:
        self.xf = xf
        self.out = out


class _Tee:
    """Writes to the output and hands the same bytes, in chunks, to the concurrent check."""

    CHUNK = 1 << 18

    def __init__(self, out: BinaryIO | IO[bytes], checker: _ConcurrentCheck) -> None:
        self._out = out
        self._checker = checker
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._pending += data
        if len(self._pending) >= self.CHUNK:
            self.flush_chunk()
        return len(data)

    def flush_chunk(self) -> None:
        if self._pending:
            self._checker.feed(bytes(self._pending))
            self._pending.clear()


class _ConcurrentCheck:
    """libxml2's schema validation of a document fed in chunks, in its own thread.

    The queue is bounded, so memory stays flat: the writer waits if the check falls behind.
    """

    def __init__(self, message_name: str) -> None:
        self.message_name = message_name
        self.schema = schema_for(message_name)
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="sepa-xsd-check", daemon=True)
        self.thread.start()

    def feed(self, chunk: bytes) -> None:
        self.chunks.put(chunk)

    def _run(self) -> None:
        # Only payment-information blocks are reported; after each chunk the block's checked
        # children are dropped in one slice, so this thread holds the GIL very little.
        parser = etree.XMLPullParser(
            events=("start",), tag=("{*}PmtInf",), schema=self.schema, huge_tree=True
        )
        block: Any = None
        ended = False  # the writer's end mark was taken from the queue
        try:
            while (chunk := self.chunks.get()) is not None:
                parser.feed(chunk)
                for _, element in parser.read_events():
                    if block is not None:
                        block.clear()
                    block = element
                if block is not None and len(block) > 1:
                    del block[:-1]  # the last child may still be being parsed
            ended = True
            parser.close()
        except etree.XMLSyntaxError as exc:
            self.errors = _errors(exc.error_log) or [str(exc)]
        except Exception as exc:  # reported to the writing thread by finish()
            self.errors = [f"the schema check failed: {exc!r}"]
        if not ended:  # never leave the writer blocked on a full queue
            while self.chunks.get() is not None:
                pass

    def finish(self) -> None:
        self.chunks.put(None)
        self.thread.join()
        if self.errors:
            shown = self.errors[:MAX_SCHEMA_ERRORS]
            raise SepaSchemaError(
                f"the written {self.message_name} document is not valid: " + "; ".join(shown),
                errors=shown,
            )

    def abandon(self) -> None:
        """The writer failed: stop the check without reporting on a half document."""
        self.chunks.put(None)
        self.thread.join()


def _drop_checked(events: Iterable[tuple[str, Any]]) -> None:
    for _, element in events:
        element.clear(keep_tail=False)
        parent = element.getparent()
        while element.getprevious() is not None:
            del parent[0]


def _company_parts(
    account: Account, modern: bool, what: str
) -> tuple[str, str, str | None, tuple[tuple[str, str], ...] | None]:
    name = _text(account.name, MAX_NAME, f"{what} name")
    iban = _iban(account.iban, what)
    bic = _bic(account.bic, what) if account.include_bic and account.bic else None
    address = _address_parts(account.address, modern, what) if account.address else None
    return name, iban, bic, address


def write_pain008(
    out: BinaryIO | IO[bytes],
    header: MessageHeader,
    creditor: Account,
    groups: Iterable[DirectDebitGroup],
    *,
    version: str = "pain.008.001.08",
    validate: bool = False,
) -> WriteSummary:
    """Write a direct-debit initiation (pain.008.001.02 or .08) to a binary file object.

    Raises `SepaWriteError` on a value that cannot be written or when the transactions
    written do not add up to the declared totals (the output is then incomplete or wrong).
    `validate=True` also checks the output against the version's XSD while writing it and
    raises `SepaSchemaError` at the end if it is not valid.
    """
    if version not in PAIN_008_VERSIONS:
        raise SepaWriteError(f"unsupported direct debit version {version!r}")
    modern = version in _MODERN
    if not creditor.creditor_identifier:
        raise SepaWriteError("the creditor account has no creditor identifier (AT-02)")
    try:
        creditor_id = validate_creditor_identifier(creditor.creditor_identifier)
    except ValidationFailed as exc:
        raise SepaWriteError(exc.message, **exc.details) from None
    company = _company_parts(creditor, modern, "creditor")
    initiating = _text(header.initiating_party_name, MAX_NAME, "initiating party name")
    group_header = _group_header(header, initiating)  # checked before anything is written
    grand = _Totals()

    def write_groups(writer: _Writer) -> int:
        xf = writer.xf
        _put(xf, group_header, 2)
        lines = _Lines(xf, writer.out)
        count = 0
        for group in groups:
            count += 1
            _write_dd_group(xf, lines, group, modern, company, creditor_id, creditor.include_bic)
            grand.count += group.number_of_transactions
            grand.total += group.control_sum
        if count == 0:
            raise SepaWriteError("a SEPA file needs at least one payment information block")
        return count

    group_count = _document(out, version, "CstmrDrctDbtInitn", header, write_groups, validate)
    _check_totals("file", header.number_of_transactions, header.control_sum, grand)
    return WriteSummary(header.message_id, version, grand.count, grand.total, group_count)


_Company = tuple[str, str, str | None, tuple[tuple[str, str], ...] | None]


def _write_dd_group(
    xf: Any,
    lines: _Lines,
    group: DirectDebitGroup,
    modern: bool,
    company: _Company,
    creditor_id: str,
    include_bic: bool,
) -> None:
    name, iban, bic, address = company
    pmt_id = _identifier(group.payment_information_id, MAX_MESSAGE_ID, "payment information id")
    if group.number_of_transactions < 1:
        raise SepaWriteError(f"payment information {pmt_id}: needs at least one transaction")
    info = etree.Element("PmtInf")
    _leaf(info, "PmtInfId", pmt_id)
    _leaf(info, "PmtMtd", "DD")
    _leaf(info, "BtchBookg", "true" if group.batch_booking else "false")
    _leaf(info, "NbOfTxs", str(group.number_of_transactions))
    _leaf(info, "CtrlSum", _control_sum(group.control_sum, f"payment information {pmt_id}"))
    kind = _SubElement(info, "PmtTpInf")
    _leaf(_SubElement(kind, "SvcLvl"), "Cd", "SEPA")
    _leaf(_SubElement(kind, "LclInstrm"), "Cd", Scheme(group.scheme).value)
    _leaf(kind, "SeqTp", SequenceType(group.sequence_type).value)
    _leaf(info, "ReqdColltnDt", group.collection_date.isoformat())
    _party(info, "Cdtr", name, address)
    _account(info, "CdtrAcct", iban)
    _agent(info, "CdtrAgt", bic, modern)
    _leaf(info, "ChrgBr", "SLEV")
    scheme_id = _SubElement(_SubElement(info, "CdtrSchmeId"), "Id")
    other = _SubElement(_SubElement(scheme_id, "PrvtId"), "Othr")
    _leaf(other, "Id", creditor_id)
    _leaf(_SubElement(other, "SchmeNm"), "Prtry", "SEPA")

    count = 0
    total = Decimal(0)
    xf.write(_INDENT[2])
    with xf.element("PmtInf"):
        for child in info:
            _put(xf, child, 3)
        add = lines.add
        for tx in group.transactions:
            e2e = _tx_identifier(tx.end_to_end_id, None, "end to end id")
            amount = tx.amount
            amount_text = _tx_amount(amount, e2e)
            debtor_bic = _tx_bic(tx.debtor_bic, e2e) if include_bic and tx.debtor_bic else None
            if tx.debtor_address is None:
                tags, texts = _NO_ADDRESS
            else:
                tags, texts = _split_address(
                    _address_parts(tx.debtor_address, modern, f"transaction {e2e} debtor")
                )
            rmt = tx.remittance_information
            template = _dd_template(modern, debtor_bic is not None, tags, bool(rmt))
            add(
                template.format(
                    e2e,
                    amount_text,
                    _tx_identifier(tx.mandate_id, e2e, "mandate id"),
                    tx.mandate_signed_on.isoformat(),
                    debtor_bic,
                    _tx_text(tx.debtor_name, MAX_NAME, e2e, "debtor name"),
                    _tx_iban(tx.debtor_iban, e2e, "debtor"),
                    _tx_text(rmt, MAX_REMITTANCE_INFORMATION, e2e, "remittance information")
                    if rmt
                    else None,
                    *texts,
                )
            )
            count += 1
            total += amount
        lines.flush()
        xf.write(_INDENT[2])
    _check_group(pmt_id, group.number_of_transactions, group.control_sum, count, total)


def write_pain001(
    out: BinaryIO | IO[bytes],
    header: MessageHeader,
    debtor: Account,
    groups: Iterable[CreditTransferGroup],
    *,
    version: str = "pain.001.001.09",
    validate: bool = False,
) -> WriteSummary:
    """Write a credit-transfer initiation (pain.001.001.03 or .09) to a binary file object.

    Same checks, totals contract and `validate` option as `write_pain008`.
    """
    if version not in PAIN_001_VERSIONS:
        raise SepaWriteError(f"unsupported credit transfer version {version!r}")
    modern = version in _MODERN
    company = _company_parts(debtor, modern, "debtor")
    initiating = _text(header.initiating_party_name, MAX_NAME, "initiating party name")
    group_header = _group_header(header, initiating)  # checked before anything is written
    grand = _Totals()

    def write_groups(writer: _Writer) -> int:
        xf = writer.xf
        _put(xf, group_header, 2)
        lines = _Lines(xf, writer.out)
        count = 0
        for group in groups:
            count += 1
            _write_ct_group(xf, lines, group, modern, company, debtor.include_bic)
            grand.count += group.number_of_transactions
            grand.total += group.control_sum
        if count == 0:
            raise SepaWriteError("a SEPA file needs at least one payment information block")
        return count

    group_count = _document(out, version, "CstmrCdtTrfInitn", header, write_groups, validate)
    _check_totals("file", header.number_of_transactions, header.control_sum, grand)
    return WriteSummary(header.message_id, version, grand.count, grand.total, group_count)


def _write_ct_group(
    xf: Any,
    lines: _Lines,
    group: CreditTransferGroup,
    modern: bool,
    company: _Company,
    include_bic: bool,
) -> None:
    name, iban, bic, address = company
    pmt_id = _identifier(group.payment_information_id, MAX_MESSAGE_ID, "payment information id")
    if group.number_of_transactions < 1:
        raise SepaWriteError(f"payment information {pmt_id}: needs at least one transaction")
    info = etree.Element("PmtInf")
    _leaf(info, "PmtInfId", pmt_id)
    _leaf(info, "PmtMtd", "TRF")
    _leaf(info, "BtchBookg", "true" if group.batch_booking else "false")
    _leaf(info, "NbOfTxs", str(group.number_of_transactions))
    _leaf(info, "CtrlSum", _control_sum(group.control_sum, f"payment information {pmt_id}"))
    _leaf(_SubElement(_SubElement(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    when = group.requested_execution_date.isoformat()
    if modern:
        _leaf(_SubElement(info, "ReqdExctnDt"), "Dt", when)
    else:
        _leaf(info, "ReqdExctnDt", when)
    _party(info, "Dbtr", name, address)
    _account(info, "DbtrAcct", iban)
    _agent(info, "DbtrAgt", bic, modern)
    _leaf(info, "ChrgBr", "SLEV")

    count = 0
    total = Decimal(0)
    xf.write(_INDENT[2])
    with xf.element("PmtInf"):
        for child in info:
            _put(xf, child, 3)
        add = lines.add
        for tx in group.transactions:
            e2e = _tx_identifier(tx.end_to_end_id, None, "end to end id")
            amount = tx.amount
            amount_text = _tx_amount(amount, e2e)
            creditor_bic = (
                _tx_bic(tx.creditor_bic, e2e) if include_bic and tx.creditor_bic else None
            )
            if tx.creditor_address is None:
                tags, texts = _NO_ADDRESS
            else:
                tags, texts = _split_address(
                    _address_parts(tx.creditor_address, modern, f"transaction {e2e} creditor")
                )
            rmt = tx.remittance_information
            template = _ct_template(modern, creditor_bic is not None, tags, bool(rmt))
            add(
                template.format(
                    e2e,
                    amount_text,
                    creditor_bic,
                    _tx_text(tx.creditor_name, MAX_NAME, e2e, "creditor name"),
                    _tx_iban(tx.creditor_iban, e2e, "creditor"),
                    _tx_text(rmt, MAX_REMITTANCE_INFORMATION, e2e, "remittance information")
                    if rmt
                    else None,
                    *texts,
                )
            )
            count += 1
            total += amount
        lines.flush()
        xf.write(_INDENT[2])
    _check_group(pmt_id, group.number_of_transactions, group.control_sum, count, total)


# Per-transaction checks: a fast path for the common valid value; the message (naming the
# transaction) is only built when a value is refused.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9/\-?:().,'+]+(?: [A-Za-z0-9/\-?:().,'+]+)*")
_IDENTIFIER_35 = re.compile(r"(?![/ ])(?!.*//)[A-Za-z0-9/\-?:().,'+ ]{1,35}(?<![/ ])")


def _tx_identifier(value: str, e2e: str | None, label: str) -> str:
    if isinstance(value, str) and _IDENTIFIER_35.fullmatch(value):
        return value
    return _identifier(value, MAX_END_TO_END_ID, f"transaction {e2e} {label}" if e2e else label)


def _tx_text(value: str, max_length: int, e2e: str, label: str) -> str:
    if len(value) <= max_length and _PLAIN_TEXT.fullmatch(value):
        return value
    return _text(value, max_length, f"transaction {e2e} {label}")


def _tx_iban(value: str, e2e: str, party: str) -> str:
    if iban_checksum_ok(value):
        return value
    return _iban(value, f"transaction {e2e} {party}")


def _tx_bic(value: str, e2e: str) -> str:
    if _BIC.fullmatch(value):
        return value
    return _bic(value, f"transaction {e2e}")


def _tx_amount(amount: Decimal, e2e: str) -> str:
    try:
        return format_amount(amount)
    except SepaWriteError as exc:
        raise SepaWriteError(f"transaction {e2e}: {exc.message}") from None


def _check_group(
    pmt_id: str, declared_count: int, declared_sum: Decimal, count: int, total: Decimal
) -> None:
    seen = _Totals()
    seen.count, seen.total = count, total
    _check_totals(f"payment information {pmt_id}", declared_count, declared_sum, seen)


# --- XSD validation ----------------------------------------------------------------------------

SCHEMA_NAMES = ("pain.008.001.02", "pain.008.001.08", "pain.001.001.03", "pain.001.001.09")
MAX_SCHEMA_ERRORS = 20
_TRANSACTION_TAGS = ("{*}DrctDbtTxInf", "{*}CdtTrfTxInf")
LOCATE_ERRORS_UP_TO = 20_000_000


@cache
def schema_for(message_name: str) -> etree.XMLSchema:
    """The parsed XSD of a message shipped in `formats/sepa_xsd/` (parsed once)."""
    if message_name not in SCHEMA_NAMES:
        raise SepaSchemaError(f"no schema shipped for {message_name!r}")
    resource = resources.files("recaudo.formats").joinpath("sepa_xsd", f"{message_name}.xsd")
    with resource.open("rb") as handle:
        return etree.XMLSchema(etree.parse(handle))


def validate_xml(source: str | Path | bytes | IO[bytes], message_name: str) -> None:
    """Check a document against the message's XSD; `SepaSchemaError` says what is wrong.

    `source` is a path, the document's bytes, or a binary file object. The document is
    streamed through the schema and each transaction dropped once checked, so memory stays
    flat whatever its size. libxml2 gives no line numbers for streamed schema errors, so
    when a document up to `LOCATE_ERRORS_UP_TO` bytes fails it is checked again as a tree
    to name the lines.
    """
    schema = schema_for(message_name)
    etree.clear_error_log()  # the log is per thread: keep earlier documents' errors out
    try:
        _drop_checked(
            etree.iterparse(
                _stream(source),
                events=("end",),
                tag=_TRANSACTION_TAGS,
                schema=schema,
                huge_tree=True,
            )
        )
    except etree.XMLSyntaxError as exc:
        errors = _errors(exc.error_log) or [str(exc)]
        located = _located_errors(source, schema)
        if located:
            errors = located
        raise SepaSchemaError(
            f"not a valid {message_name} document: " + "; ".join(errors[:MAX_SCHEMA_ERRORS]),
            errors=errors[:MAX_SCHEMA_ERRORS],
        ) from None


def _stream(source: str | Path | bytes | IO[bytes]) -> str | IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, Path):
        return str(source)
    return source


def _located_errors(source: str | Path | bytes | IO[bytes], schema: etree.XMLSchema) -> list[str]:
    """The schema errors with their lines, for a document small enough to parse whole."""
    if isinstance(source, bytes):
        size = len(source)
    elif isinstance(source, str | Path):
        size = Path(source).stat().st_size
    elif source.seekable():
        size = source.seek(0, io.SEEK_END)
        source.seek(0)
    else:
        return []
    if size > LOCATE_ERRORS_UP_TO:
        return []
    etree.clear_error_log()
    try:
        tree = etree.parse(_stream(source), etree.XMLParser(huge_tree=True))
    except etree.XMLSyntaxError as exc:  # not even well-formed: that is what to say
        return _errors(exc.error_log) or [str(exc)]
    if schema.validate(tree):
        return []
    return _errors(schema.error_log)


def _errors(log: Any) -> list[str]:
    return [
        f"line {entry.line}: {entry.message}" if entry.line else entry.message
        for entry in log
        if entry.message
    ]
