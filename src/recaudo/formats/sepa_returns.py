"""Reading the bank's SEPA return files: which collections came back, and why.

Three ISO 20022 messages carry returns (see docs/returns.md):

- pain.002 (customer payment status report, read: pain.002.001.03): the bank rejects
  transactions of a file Recaudo sent. `OrgnlGrpInfAndSts/OrgnlMsgId` names that file;
  each `TxInfAndSts` with `TxSts` RJCT is a rejected payment (a missing `TxSts` inherits
  the payment block's `PmtInfSts`, then the group's `GrpSts`). ACCP, ACSC, PDNG... are not
  returns and are not listed. A whole rejected payment block without transaction detail is
  listed in `rejected_batches`; a group-level RJCT without any detail means EVERY
  transaction of the original message was rejected: `group_status == "RJCT"` with
  `group_reason_code`, and no transactions.
- camt.054 (debit/credit notification, read: .001.02, .001.04, .001.08) and camt.053
  (statement, read: .001.02): each `Ntry/NtryDtls/TxDtls` with `RtrInf` is a returned
  transaction, and so is every `TxDtls` of an entry with `RvslInd` true (a reversal entry
  without transaction detail is listed once, identified by its batch only). Entries that
  are neither (ordinary credits and debits) are not listed.

The message is told from the root element's namespace. Another version of the same
message family (e.g. pain.002.001.10, camt.054.001.13) is read when its structure is the
one this module reads; otherwise the error says the version is unknown AND what is
missing. Anything else (another ISO message such as the pain.008 Recaudo writes, another
namespace, no namespace) is refused as "not a return file".

Safety: lxml with a parser that resolves no entities, loads no DTD and touches no
network; a document with a DOCTYPE is refused (ISO 20022 messages never have one, so an
entity bomb or an external entity is never expanded); input larger than
`MAX_RETURN_FILE_BYTES` is refused before parsing. Every problem is a `ReturnFileError`
(a `ValidationFailed`) with an English message naming what is wrong and, when known, the
line; no lxml exception escapes.

Values are reported as the file has them: IBANs are NOT validated (bank samples carry bad
check digits, and a return must be read whatever it says), amounts are exact Decimals,
`created_at` keeps the file's offset (naive when the file gives none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from lxml import etree

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.sepa_returns import ReturnFollowUp, follow_up, normalize_reason_code
from recaudo.formats.sepa_codes import reason_description

__all__ = [
    "KNOWN_MESSAGES",
    "MAX_RETURN_FILE_BYTES",
    "RejectedBatch",
    "ReturnFileError",
    "ReturnFollowUp",
    "ReturnKind",
    "ReturnReport",
    "ReturnedTransaction",
    "follow_up",
    "parse_return_file",
    "reason_description",
]

MAX_RETURN_FILE_BYTES = 64 * 1024 * 1024
"""Larger files are refused before parsing (a pain.002 rejecting 20,000 collections with
their full original data is about 50 MB; real return files are far smaller)."""

_ISO_NAMESPACE = re.compile(
    r"^urn:iso:std:iso:20022:tech:xsd:(?P<area>[A-Za-z]+)\.(?P<number>\d{3})"
    r"\.(?P<variant>\d{3})\.(?P<version>\d{2})$"
)
_RETURN_TYPE = re.compile(r"/RTYP/([A-Z]{4})")
_NOT_PROVIDED = "NOTPROVIDED"
_POSITION_SUFFIX = re.compile(r"(, line \d+, column \d+)+$")
_DOCTYPE = b"<!DOCTYPE"
_PROLOG_SCAN = 64 * 1024
_TRUE = frozenset({"true", "1"})


class ReturnKind(StrEnum):
    """The message family of a return file (fits `sepa_return_files.kind`, 12 chars)."""

    PAIN_002 = "pain.002"
    CAMT_054 = "camt.054"
    CAMT_053 = "camt.053"


# The message element under <Document> of each family.
_MESSAGE_ELEMENT = {
    ReturnKind.PAIN_002: "CstmrPmtStsRpt",
    ReturnKind.CAMT_054: "BkToCstmrDbtCdtNtfctn",
    ReturnKind.CAMT_053: "BkToCstmrStmt",
}

KNOWN_MESSAGES: frozenset[str] = frozenset(
    {
        "pain.002.001.03",
        "camt.054.001.02",
        "camt.054.001.04",
        "camt.054.001.08",
        "camt.053.001.02",
    }
)
"""The versions this module was written and tested against."""

# ISO messages that are not return files, for a helpful refusal.
_OTHER_MESSAGES = {
    "pain.001": "a credit transfer initiation (a file sent TO the bank)",
    "pain.007": "a payment reversal sent to the bank",
    "pain.008": "a direct debit initiation (a file sent TO the bank)",
    "pain.009": "a mandate initiation request",
    "pain.010": "a mandate amendment request",
    "pain.011": "a mandate cancellation request",
    "pain.012": "a mandate acceptance report",
    "pain.013": "a creditor payment activation request",
    "pain.014": "a creditor payment activation request status report",
    "camt.052": "an intraday account report (returns arrive in camt.054 or camt.053)",
    "camt.056": "a payment cancellation request",
    "camt.029": "a resolution of investigation",
    "pacs.002": "an interbank payment status report (banks exchange it; customers get pain.002)",
    "pacs.003": "an interbank direct debit",
    "pacs.004": "an interbank payment return (customers get camt.054 or pain.002)",
    "pacs.008": "an interbank credit transfer",
}


class ReturnFileError(ValidationFailed):
    """A file that is not a readable SEPA return file; the message says why (and where)."""

    code = "sepa_return_file_invalid"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        text = f"line {line}: {message}" if line else message
        super().__init__(text, line=line)
        self.line = line


@dataclass(frozen=True, slots=True)
class ReturnedTransaction:
    """One collection the bank rejected or returned, as the file reports it.

    `end_to_end_id` is the id Recaudo wrote in the collection (None when the bank gave
    none, or gave "NOTPROVIDED"); `reason_code` is the ISO code in upper case (None when
    the file has none); `status` is the pain.002 `TxSts` (RJCT), or for camt the return
    type of `RtrInf/AddtlInf` "/RTYP/xxxx/" (RJCT, RTRN, REFD), else RTRN, or RVSL for a
    reversal entry without return information.
    """

    end_to_end_id: str | None
    original_instruction_id: str | None
    mandate_id: str | None
    amount: Decimal | None
    currency: str | None
    reason_code: str | None
    status: str
    original_payment_information_id: str | None
    debtor_name: str | None
    debtor_iban: str | None
    original_message_id: str | None = None
    additional_info: str | None = None
    line: int | None = None

    @property
    def follow_up(self) -> ReturnFollowUp:
        return follow_up(self.reason_code)

    @property
    def reason_description(self) -> str | None:
        """The Spanish description of the reason code (None without a code)."""
        return None if self.reason_code is None else reason_description(self.reason_code)


@dataclass(frozen=True, slots=True)
class RejectedBatch:
    """A pain.002 payment block (PmtInf) rejected as a whole, without transaction detail:
    every transaction of that block of the original message was rejected."""

    original_payment_information_id: str | None
    status: str
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class ReturnReport:
    """What a return file says.

    `kind` is the family (pain.002, camt.054, camt.053) and `message_name` the exact
    message of the namespace (e.g. camt.054.001.08). `original_message_ids` are the MsgIds
    of the files the report is about, in order of appearance: pain.002's OrgnlMsgId; for
    camt, the `Refs/MsgId` or `Btch/MsgId` of the returned transactions. `group_status` and
    `group_reason_code` are pain.002's `GrpSts` and its group reason (None for camt); a
    group RJCT without transactions means the whole original message was rejected.
    `transactions` lists only returns and rejections.
    """

    kind: ReturnKind
    message_name: str
    message_id: str
    created_at: datetime | None
    original_message_ids: tuple[str, ...]
    group_status: str | None
    group_reason_code: str | None
    transactions: tuple[ReturnedTransaction, ...]
    rejected_batches: tuple[RejectedBatch, ...] = ()

    @property
    def whole_message_rejected(self) -> bool:
        """A pain.002 rejecting every transaction of the original message at group level."""
        return self.group_status == "RJCT" and not self.transactions and not self.rejected_batches


# --- parsing ------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_pis=True,
        collect_ids=False,
    )


def parse_return_file(data: bytes, *, max_bytes: int = MAX_RETURN_FILE_BYTES) -> ReturnReport:
    """Read a pain.002, camt.054 or camt.053 return file; `ReturnFileError` when it is not one."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ReturnFileError(f"a return file is read as bytes, not {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise ReturnFileError("the file is empty")
    if size > max_bytes:
        raise ReturnFileError(
            f"the file is {size:,} bytes; return files larger than {max_bytes:,} bytes are refused"
        )
    root = _parse_xml(bytes(data))
    kind, message_name, ns = _identify(root)
    reader = _Reader(ns, known=message_name in KNOWN_MESSAGES, message_name=message_name)
    message = reader.child(root, _MESSAGE_ELEMENT[kind], required=True)
    assert message is not None
    if kind is ReturnKind.PAIN_002:
        return reader.pain002(message, message_name)
    return reader.camt(message, kind, message_name)


def _parse_xml(data: bytes) -> etree._Element:
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser=_parser()))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or None
        column = exc.position[1] if exc.position else 0
        where = f" (column {column})" if line and column else ""
        detail = _POSITION_SUFFIX.sub("", (exc.msg or "").strip()) or "syntax error"
        if _DOCTYPE in data[:_PROLOG_SCAN]:
            raise ReturnFileError(
                "the document has a DOCTYPE declaration (ISO 20022 messages never have one) "
                f"and was refused{where}: {detail}",
                line=line,
            ) from None
        raise ReturnFileError(f"not well-formed XML{where}: {detail}", line=line) from None
    except (etree.LxmlError, ValueError) as exc:
        raise ReturnFileError(f"the file cannot be read as XML: {exc}") from None
    docinfo = tree.docinfo
    doctype = getattr(docinfo, "doctype", "")  # lxml-stubs lack it
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ReturnFileError(
            "the document has a DOCTYPE declaration (ISO 20022 messages never have one) and "
            "was refused; its entities were not expanded"
        )
    root = tree.getroot()
    if root is None:  # pragma: no cover - fromstring raises first
        raise ReturnFileError("the document has no root element")
    return root


def _identify(root: etree._Element) -> tuple[ReturnKind, str, str]:
    qname = etree.QName(root)
    ns = qname.namespace or ""
    if not ns:
        raise ReturnFileError(
            f"not a return file: the root element <{qname.localname}> has no ISO 20022 "
            "namespace (expected urn:iso:std:iso:20022:tech:xsd:pain.002.001.03, "
            "camt.054.001.xx or camt.053.001.xx)",
            line=_line(root),
        )
    match = _ISO_NAMESPACE.match(ns)
    if match is None:
        raise ReturnFileError(
            f"not a return file: namespace {ns!r} is not an ISO 20022 message namespace",
            line=_line(root),
        )
    family = f"{match['area'].lower()}.{match['number']}"
    message_name = f"{family}.{match['variant']}.{match['version']}"
    try:
        kind = ReturnKind(family)
    except ValueError:
        what = _OTHER_MESSAGES.get(family)
        if what is not None:
            detail = f"{message_name} is {what}"
        else:
            detail = f"{message_name} (namespace {ns!r}) is not a message family Recaudo reads"
            shaped = _shaped_like(root)
            if shaped is not None:
                detail += (
                    f" (its content is shaped like a {shaped} message, but then the namespace "
                    f"must be urn:iso:std:iso:20022:tech:xsd:{shaped}.001.xx)"
                )
        raise ReturnFileError(
            f"not a return file: {detail}; return files are pain.002 status reports, "
            "camt.054 notifications or camt.053 statements",
            line=_line(root),
        ) from None
    if qname.localname != "Document":
        raise ReturnFileError(
            f"{message_name}: the root element is <{qname.localname}>, expected <Document>",
            line=_line(root),
        )
    return kind, message_name, ns


def _shaped_like(root: etree._Element) -> ReturnKind | None:
    """The return family whose message element is the root's first child, if any."""
    first = next((c for c in root if isinstance(c.tag, str)), None)
    if first is None:
        return None
    name = etree.QName(first).localname
    return next((k for k, element in _MESSAGE_ELEMENT.items() if element == name), None)


class _Reader:
    """Element lookups in one namespace, with errors that name the message and line."""

    def __init__(self, ns: str, *, known: bool, message_name: str) -> None:
        self.ns = ns
        self.known = known
        self.message_name = message_name

    # -- helpers -------------------------------------------------------------------------

    def _path(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{step}" for step in path.split("/"))

    def fail(self, message: str, element: etree._Element | None) -> ReturnFileError:
        prefix = self.message_name
        if not self.known:
            known = ", ".join(sorted(KNOWN_MESSAGES))
            prefix = (
                f"{self.message_name} is not a version Recaudo knows ({known}) and its "
                "structure does not match"
            )
        line = _line(element) if element is not None else None
        return ReturnFileError(f"{prefix}: {message}", line=line)

    def child(
        self, element: etree._Element, path: str, *, required: bool = False
    ) -> etree._Element | None:
        found = element.find(self._path(path))
        if found is None and required:
            where = etree.QName(element).localname
            raise self.fail(f"<{where}> has no <{path}>", element)
        return found

    def children(self, element: etree._Element, path: str) -> list[etree._Element]:
        return list(element.iterfind(self._path(path)))

    def text(
        self, element: etree._Element | None, path: str, *, required: bool = False
    ) -> str | None:
        if element is None:
            return None
        found = self.child(element, path, required=required)
        value = _string(found)
        if value is None and required:
            where = etree.QName(element).localname
            raise self.fail(f"<{where}/{path}> is empty", found)
        return value

    def first_text(self, element: etree._Element | None, *paths: str) -> str | None:
        for path in paths:
            value = self.text(element, path)
            if value is not None:
                return value
        return None

    def amount(
        self, element: etree._Element | None, *paths: str
    ) -> tuple[Decimal | None, str | None]:
        """The first of `paths` present: its Decimal value and its Ccy attribute."""
        if element is None:
            return None, None
        for path in paths:
            found = self.child(element, path)
            if found is None:
                continue
            raw = _string(found)
            try:
                value = Decimal(raw or "")
            except InvalidOperation:
                raise self.fail(f"<{path}> is not an amount: {raw!r}", found) from None
            if not value.is_finite():
                raise self.fail(f"<{path}> is not an amount: {raw!r}", found)
            currency = (found.get("Ccy") or "").strip().upper() or None
            return value, currency
        return None, None

    def timestamp(self, element: etree._Element, path: str) -> datetime | None:
        raw = self.text(element, path)
        if raw is None:
            return None
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            raise self.fail(
                f"<{path}> is not an ISO date and time: {raw!r}", self.child(element, path)
            ) from None

    def reason(self, element: etree._Element | None) -> str | None:
        """The first `StsRsnInf/Rsn` (or `Rsn` of RtrInf) code, or its proprietary text."""
        if element is None:
            return None
        return normalize_reason_code(self.first_text(element, "Rsn/Cd", "Rsn/Prtry"))

    # -- pain.002 ------------------------------------------------------------------------

    def pain002(self, report: etree._Element, message_name: str) -> ReturnReport:
        header = self.child(report, "GrpHdr", required=True)
        assert header is not None
        message_id = self.text(header, "MsgId", required=True)
        assert message_id is not None
        created_at = self.timestamp(header, "CreDtTm")
        group = self.child(report, "OrgnlGrpInfAndSts")
        if group is None:
            raise self.fail(
                "<CstmrPmtStsRpt> has no <OrgnlGrpInfAndSts>: the report does not say which "
                "file it is about",
                report,
            )
        original_id = self.text(group, "OrgnlMsgId")
        if original_id is None:
            raise self.fail(
                "<OrgnlGrpInfAndSts> has no <OrgnlMsgId>: the report does not say which file "
                "it is about",
                group,
            )
        group_status = _upper(self.text(group, "GrpSts"))
        group_reason = self.reason(self.child(group, "StsRsnInf"))
        transactions: list[ReturnedTransaction] = []
        batches: list[RejectedBatch] = []
        for block in self.children(report, "OrgnlPmtInfAndSts"):
            block_id = self.text(block, "OrgnlPmtInfId")
            block_status = _upper(self.text(block, "PmtInfSts")) or group_status
            block_reason = self.reason(self.child(block, "StsRsnInf")) or group_reason
            details = self.children(block, "TxInfAndSts")
            if not details:
                if block_status == "RJCT":
                    batches.append(RejectedBatch(block_id, block_status, block_reason))
                continue
            for tx in details:
                status = _upper(self.text(tx, "TxSts")) or block_status
                if status != "RJCT":
                    continue
                transactions.append(
                    self._pain002_transaction(
                        tx, status, block_reason, block_id, original_id, message_name
                    )
                )
        return ReturnReport(
            kind=ReturnKind.PAIN_002,
            message_name=message_name,
            message_id=message_id,
            created_at=created_at,
            original_message_ids=(original_id,),
            group_status=group_status,
            group_reason_code=group_reason,
            transactions=tuple(transactions),
            rejected_batches=tuple(batches),
        )

    def _pain002_transaction(
        self,
        tx: etree._Element,
        status: str,
        block_reason: str | None,
        block_id: str | None,
        original_id: str,
        message_name: str,
    ) -> ReturnedTransaction:
        reasons = self.children(tx, "StsRsnInf")
        reason = next((c for c in (self.reason(r) for r in reasons) if c), None)
        info = next((t for t in (self.text(r, "AddtlInf") for r in reasons) if t), None)
        ref = self.child(tx, "OrgnlTxRef")
        amount, currency = self.amount(ref, "Amt/InstdAmt", "IntrBkSttlmAmt")
        return ReturnedTransaction(
            end_to_end_id=_identifier(self.text(tx, "OrgnlEndToEndId")),
            original_instruction_id=self.text(tx, "OrgnlInstrId"),
            mandate_id=self.text(ref, "MndtRltdInf/MndtId"),
            amount=amount,
            currency=currency,
            reason_code=reason or block_reason,
            status=status,
            original_payment_information_id=block_id,
            debtor_name=self.first_text(ref, "Dbtr/Nm", "Dbtr/Pty/Nm"),
            debtor_iban=_upper(self.text(ref, "DbtrAcct/Id/IBAN")),
            original_message_id=original_id,
            additional_info=info,
            line=_line(tx),
        )

    # -- camt.054 / camt.053 -------------------------------------------------------------

    def camt(self, message: etree._Element, kind: ReturnKind, message_name: str) -> ReturnReport:
        header = self.child(message, "GrpHdr", required=True)
        assert header is not None
        message_id = self.text(header, "MsgId", required=True)
        assert message_id is not None
        created_at = self.timestamp(header, "CreDtTm")
        container = "Ntfctn" if kind is ReturnKind.CAMT_054 else "Stmt"
        reports = self.children(message, container)
        if not reports:
            where = etree.QName(message).localname
            raise self.fail(f"<{where}> has no <{container}>", message)
        transactions = [
            tx
            for report in reports
            for entry in self.children(report, "Ntry")
            for tx in self._entry_returns(entry)
        ]
        return ReturnReport(
            kind=kind,
            message_name=message_name,
            message_id=message_id,
            created_at=created_at,
            original_message_ids=_unique(t.original_message_id for t in transactions),
            group_status=None,
            group_reason_code=None,
            transactions=tuple(transactions),
        )

    def _entry_returns(self, entry: etree._Element) -> Iterator[ReturnedTransaction]:
        reversal = (self.text(entry, "RvslInd") or "").lower() in _TRUE
        groups = self.children(entry, "NtryDtls")
        details = [(group, tx) for group in groups for tx in self.children(group, "TxDtls")]
        if not details:
            if reversal:
                yield self._entry_only(entry, groups[0] if groups else None)
            return
        single = len(details) == 1
        for group, tx in details:
            back = self.child(tx, "RtrInf")
            if back is None and not reversal:
                continue
            yield self._camt_transaction(entry, group, tx, back, single=single)

    def _camt_transaction(
        self,
        entry: etree._Element,
        group: etree._Element,
        tx: etree._Element,
        back: etree._Element | None,
        *,
        single: bool,
    ) -> ReturnedTransaction:
        batch = self.child(group, "Btch")
        refs = self.child(tx, "Refs")
        amount, currency = self.amount(tx, "AmtDtls/InstdAmt/Amt", "AmtDtls/TxAmt/Amt", "Amt")
        if amount is None and single:
            amount, currency = self.amount(entry, "Amt")
        info = self.text(back, "AddtlInf")
        if back is None:
            status = "RVSL"
        else:
            typed = _RETURN_TYPE.search(info or "")
            status = typed.group(1) if typed else "RTRN"
        parties = self.child(tx, "RltdPties")
        return ReturnedTransaction(
            end_to_end_id=_identifier(self.text(refs, "EndToEndId")),
            original_instruction_id=self.text(refs, "InstrId"),
            mandate_id=self.text(refs, "MndtId"),
            amount=amount,
            currency=currency,
            reason_code=self.reason(back),
            status=status,
            original_payment_information_id=(
                self.text(refs, "PmtInfId") or self.text(batch, "PmtInfId")
            ),
            debtor_name=self.first_text(parties, "Dbtr/Nm", "Dbtr/Pty/Nm"),
            debtor_iban=_upper(self.text(parties, "DbtrAcct/Id/IBAN")),
            original_message_id=self.text(refs, "MsgId") or self.text(batch, "MsgId"),
            additional_info=info,
            line=_line(tx),
        )

    def _entry_only(
        self, entry: etree._Element, group: etree._Element | None
    ) -> ReturnedTransaction:
        batch = self.child(group, "Btch") if group is not None else None
        amount, currency = self.amount(entry, "Amt")
        return ReturnedTransaction(
            end_to_end_id=None,
            original_instruction_id=None,
            mandate_id=None,
            amount=amount,
            currency=currency,
            reason_code=None,
            status="RVSL",
            original_payment_information_id=self.text(batch, "PmtInfId"),
            debtor_name=None,
            debtor_iban=None,
            original_message_id=self.text(batch, "MsgId"),
            additional_info=self.text(entry, "AddtlNtryInf"),
            line=_line(entry),
        )


def _string(element: etree._Element | None) -> str | None:
    """The element's text content without comments (a bank's annotations stay out), with
    runs of white space (indentation, line breaks) collapsed; None when empty."""
    if element is None:
        return None
    value = " ".join("".join(str(t) for t in element.itertext()).split())
    return value or None


def _line(element: etree._Element) -> int | None:
    line = getattr(element, "sourceline", None)  # lxml-stubs type it wrongly
    return line if isinstance(line, int) else None


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _identifier(value: str | None) -> str | None:
    """An end-to-end id; the SEPA placeholder NOTPROVIDED means there is none."""
    if value is None or value.upper() == _NOT_PROVIDED:
        return None
    return value


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return tuple(seen)
