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

The document is read as a stream (lxml `iterparse` with a tag filter): each transaction
is taken when its element closes and is then dropped from the tree, so memory holds the
result and one transaction's elements, whatever the file size.

Safety: lxml with a parser that resolves no entities, loads no DTD and touches no
network; a document with a DOCTYPE is refused (ISO 20022 messages never have one, so an
entity bomb or an external entity is never expanded); input larger than
`MAX_RETURN_FILE_BYTES` is refused before parsing. A file that is not a return file is
refused only after it was found well-formed, so a damaged file is reported as damaged.
Every problem is a `ReturnFileError` (a `ValidationFailed`) with an English message naming
what is wrong and, when known, the line; no lxml exception escapes.

Values are reported as the file has them: IBANs are NOT validated (bank samples carry bad
check digits, and a return must be read whatever it says), amounts are exact Decimals,
`created_at` keeps the file's offset (naive when the file gives none).
"""

from __future__ import annotations

import io
import re
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

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

MAX_RETURN_FILE_BYTES = 256 * 1024 * 1024
"""Larger files are refused before parsing. The stream keeps memory flat whatever the size;
the cap bounds the time (about 45 MB/s here: a pain.002 rejecting all 100,000 collections
of a remittance with their full original data is about 215 MB)."""

_ISO_NAMESPACE = re.compile(
    r"^urn:iso:std:iso:20022:tech:xsd:(?P<area>[A-Za-z]+)\.(?P<number>\d{3})"
    r"\.(?P<variant>\d{3})\.(?P<version>\d{2})$"
)
_RETURN_TYPE = re.compile(r"/RTYP/([A-Z]{4})")
_NOT_PROVIDED = "NOTPROVIDED"
_POSITION_SUFFIX = re.compile(r"(, line \d+, column \d+)+$")
_DOCTYPE = b"<!DOCTYPE"
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
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


# Safe parsing: no entity substitution, no DTD, no network; comments (bank annotations)
# and processing instructions are dropped as they are read.
_PARSE_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_comments": True,
    "remove_pis": True,
}


def parse_return_file(data: bytes, *, max_bytes: int = MAX_RETURN_FILE_BYTES) -> ReturnReport:
    """Read a pain.002, camt.054 or camt.053 return file; `ReturnFileError` when it is not one.

    The document is read as a stream: each transaction is taken and then dropped from the
    tree, so memory holds the result plus one transaction's elements, not the whole file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ReturnFileError(f"a return file is read as bytes, not {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise ReturnFileError("the file is empty")
    if size > max_bytes:
        raise ReturnFileError(
            f"the file is {size:,} bytes; return files larger than {max_bytes:,} bytes are refused"
        )
    raw = bytes(data)
    kind, message_name, ns = _identify(raw)
    reader = _Reader(ns, known=message_name in KNOWN_MESSAGES, message_name=message_name)
    return reader.read(raw, kind)


def _events(
    raw: bytes, events: tuple[str, ...], tags: Sequence[str] | None = None
) -> Generator[tuple[str, etree._Element], None, None]:
    """lxml's events over `raw`, every lxml failure turned into a ReturnFileError."""
    context = etree.iterparse(io.BytesIO(raw), events=events, tag=tags, **_PARSE_OPTIONS)
    while True:
        try:
            event, element = next(context)
        except StopIteration:
            return
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, raw) from None
        except (etree.LxmlError, ValueError, LookupError) as exc:
            raise ReturnFileError(f"the file cannot be read as XML: {exc}") from None
        yield event, element


def _syntax_error(exc: etree.XMLSyntaxError, raw: bytes) -> ReturnFileError:
    line = exc.lineno or None
    column = exc.position[1] if exc.position else 0
    where = f" (column {column})" if line and column else ""
    detail = _POSITION_SUFFIX.sub("", (exc.msg or "").strip()) or "syntax error"
    if "encoding" in detail.lower():
        declared = _DECLARED_ENCODING.search(raw[:200])
        if declared is not None:
            name = declared.group(1).decode("ascii")
            detail += f" (the file says it is {name}, but these bytes are not {name})"
        else:
            detail += (
                " (without an encoding declaration a file must be UTF-8; was it saved as Latin-1?)"
            )
    if _DOCTYPE in raw[:_PROLOG_SCAN]:
        return ReturnFileError(
            "the document has a DOCTYPE declaration (ISO 20022 messages never have one) "
            f"and was refused{where}: {detail}",
            line=line,
        )
    return ReturnFileError(f"not well-formed XML{where}: {detail}", line=line)


def _identify(raw: bytes) -> tuple[ReturnKind, str, str]:
    """The family, message name and namespace, from the root and its first child only.

    A refusal is raised only after the whole document was found well-formed, so that a
    damaged file is reported as damaged, whatever it is."""
    try:
        return _identify_root(raw)
    except ReturnFileError:
        for _ in _events(raw, ("end",), ["{urn:recaudo:none}none"]):
            pass  # nothing matches: lxml only checks the syntax
        raise


def _identify_root(raw: bytes) -> tuple[ReturnKind, str, str]:
    starts = _events(raw, ("start",))
    root: etree._Element | None = None
    first: etree._Element | None = None
    for _event, element in starts:
        if root is None:
            root = element
            docinfo = element.getroottree().docinfo
            doctype = getattr(docinfo, "doctype", "")  # lxml-stubs lack it
            if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
                raise ReturnFileError(
                    "the document has a DOCTYPE declaration (ISO 20022 messages never have "
                    "one) and was refused; its entities were not expanded"
                )
            continue
        first = element
        break
    starts.close()
    if root is None:  # pragma: no cover - lxml reports an empty document as a syntax error
        raise ReturnFileError("the document has no root element")
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
            shaped = _shaped_like(first)
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


def _shaped_like(first: etree._Element | None) -> ReturnKind | None:
    """The return family whose message element is the root's first child, if any."""
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
        self._paths: dict[str, tuple[str, ...]] = {}

    # -- helpers -------------------------------------------------------------------------

    def _steps(self, path: str) -> tuple[str, ...]:
        """`"Amt/InstdAmt"` → the namespaced tags of each step (cached)."""
        found = self._paths.get(path)
        if found is None:
            found = tuple(f"{{{self.ns}}}{step}" for step in path.split("/"))
            self._paths[path] = found
        return found

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
        """The first element at `path` (each step: the first child of that name)."""
        found: etree._Element | None = element
        for step in self._steps(path):
            assert found is not None
            found = next(found.iterchildren(step), None)
            if found is None:
                break
        if found is None and required:
            where = etree.QName(element).localname
            raise self.fail(f"<{where}> has no <{path}>", element)
        return found

    def children(self, element: etree._Element, name: str) -> list[etree._Element]:
        """Every child named `name` (one step)."""
        return list(element.iterchildren(self._steps(name)[0]))

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

    # -- the stream ----------------------------------------------------------------------

    def read(self, raw: bytes, kind: ReturnKind) -> ReturnReport:
        message_tag = self.tag(_MESSAGE_ELEMENT[kind])
        if kind is ReturnKind.PAIN_002:
            state: _State = _Pain002State(kind)
            wanted = ("GrpHdr", "OrgnlGrpInfAndSts", "TxInfAndSts", "OrgnlPmtInfAndSts")
        else:
            state = _CamtState(kind)
            wanted = (
                "GrpHdr",
                "TxDtls",
                "Ntry",
                "Ntfctn" if kind is ReturnKind.CAMT_054 else "Stmt",
            )
        tags = [self.tag("Document"), message_tag, *(self.tag(name) for name in wanted)]
        root: etree._Element | None = None
        message: etree._Element | None = None
        for _event, element in _events(raw, ("end",), tags):
            parent = element.getparent()
            if parent is None:  # the root, <Document>, is complete; lxml still checks
                root = element  # that nothing but comments follows it
                continue
            if element.tag == message_tag:
                if parent.getparent() is None:
                    message = element
                continue
            if element.tag == self.tag("Document"):
                continue
            state.on_end(self, element, parent)
        if root is None:  # pragma: no cover - lxml reports an unclosed root first
            raise ReturnFileError("the document has no root element")
        if message is None:
            raise self.fail(f"<Document> has no <{_MESSAGE_ELEMENT[kind]}>", root)
        return state.report(self, message)

    def tag(self, name: str) -> str:
        return self._steps(name)[0]

    def is_child(self, element: etree._Element | None, *names: str) -> bool:
        """Whether `element`'s ancestors are, nearest first, `names` (the last is the
        message element under the root)."""
        for name in names:
            if element is None or element.tag != self.tag(name):
                return False
            element = element.getparent()
        return element is not None and element.getparent() is None

    def pain002_transaction(
        self,
        tx: etree._Element,
        status: str,
        block_reason: str | None,
        block_id: str | None,
        original_id: str,
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

    def camt_transaction(
        self,
        entry: etree._Element,
        group: etree._Element,
        tx: etree._Element,
        back: etree._Element | None,
    ) -> ReturnedTransaction:
        batch = self.child(group, "Btch")
        refs = self.child(tx, "Refs")
        amount, currency = self.amount(tx, "AmtDtls/InstdAmt/Amt", "AmtDtls/TxAmt/Amt", "Amt")
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

    def entry_only(
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


class _State:
    """What a stream has read so far; `on_end` takes each wanted element once complete."""

    def __init__(self, kind: ReturnKind) -> None:
        self.kind = kind
        self.message = _MESSAGE_ELEMENT[kind]
        self.message_id: str | None = None
        self.created_at: datetime | None = None
        self.transactions: list[ReturnedTransaction] = []

    def on_end(self, reader: _Reader, element: etree._Element, parent: etree._Element) -> None:
        raise NotImplementedError

    def report(self, reader: _Reader, message: etree._Element) -> ReturnReport:
        raise NotImplementedError

    def header(self, reader: _Reader, element: etree._Element) -> None:
        message_id = reader.text(element, "MsgId", required=True)
        assert message_id is not None
        self.message_id = message_id
        self.created_at = reader.timestamp(element, "CreDtTm")

    def require_header(self, reader: _Reader, message: etree._Element) -> str:
        if self.message_id is None:
            raise reader.fail(f"<{self.message}> has no <GrpHdr>", message)
        return self.message_id


def _drop(element: etree._Element, parent: etree._Element) -> None:
    """Free a read element (the stream keeps only what is still to be read)."""
    element.clear()
    parent.remove(element)


class _Pain002State(_State):
    def __init__(self, kind: ReturnKind) -> None:
        super().__init__(kind)
        self.original_id: str | None = None
        self.group_status: str | None = None
        self.group_reason: str | None = None
        self.batches: list[RejectedBatch] = []
        self.block: etree._Element | None = None
        self.block_info: tuple[str | None, str | None, str | None] = (None, None, None)

    def on_end(self, reader: _Reader, element: etree._Element, parent: etree._Element) -> None:
        tag = element.tag
        m = self.message
        if tag == reader.tag("TxInfAndSts"):
            if reader.is_child(element, "TxInfAndSts", "OrgnlPmtInfAndSts", m):
                self.transaction(reader, element, parent)
                _drop(element, parent)
        elif tag == reader.tag("OrgnlPmtInfAndSts"):
            if reader.is_child(element, "OrgnlPmtInfAndSts", m):
                if self.block is not element:  # no transaction detail in this block
                    block_id, status, reason = self.read_block(reader, element, parent)
                    if status == "RJCT":
                        self.batches.append(RejectedBatch(block_id, status, reason))
                self.block = None
                _drop(element, parent)
        elif tag == reader.tag("GrpHdr") and reader.is_child(element, "GrpHdr", m):
            self.header(reader, element)
        elif tag == reader.tag("OrgnlGrpInfAndSts") and reader.is_child(
            element, "OrgnlGrpInfAndSts", m
        ):
            self.original_group(reader, element)

    def original_group(self, reader: _Reader, group: etree._Element) -> None:
        original_id = reader.text(group, "OrgnlMsgId")
        if original_id is None:
            raise reader.fail(
                "<OrgnlGrpInfAndSts> has no <OrgnlMsgId>: the report does not say which file "
                "it is about",
                group,
            )
        self.original_id = original_id
        self.group_status = _upper(reader.text(group, "GrpSts"))
        self.group_reason = reader.reason(reader.child(group, "StsRsnInf"))

    def require_original(self, reader: _Reader, message: etree._Element | None) -> str:
        if self.original_id is None:
            raise reader.fail(
                f"<{self.message}> has no <OrgnlGrpInfAndSts>: the report does not say which "
                "file it is about",
                message,
            )
        return self.original_id

    def read_block(
        self, reader: _Reader, block: etree._Element, message: etree._Element
    ) -> tuple[str | None, str | None, str | None]:
        self.require_original(reader, message)
        block_id = reader.text(block, "OrgnlPmtInfId")
        status = _upper(reader.text(block, "PmtInfSts")) or self.group_status
        reason = reader.reason(reader.child(block, "StsRsnInf")) or self.group_reason
        return block_id, status, reason

    def transaction(self, reader: _Reader, tx: etree._Element, block: etree._Element) -> None:
        if self.block is not block:
            message = block.getparent()
            assert message is not None
            self.block = block
            self.block_info = self.read_block(reader, block, message)
        block_id, block_status, block_reason = self.block_info
        status = _upper(reader.text(tx, "TxSts")) or block_status
        if status != "RJCT":
            return
        original_id = self.original_id
        assert original_id is not None
        self.transactions.append(
            reader.pain002_transaction(tx, status, block_reason, block_id, original_id)
        )

    def report(self, reader: _Reader, message: etree._Element) -> ReturnReport:
        message_id = self.require_header(reader, message)
        original_id = self.require_original(reader, message)
        return ReturnReport(
            kind=self.kind,
            message_name=reader.message_name,
            message_id=message_id,
            created_at=self.created_at,
            original_message_ids=(original_id,),
            group_status=self.group_status,
            group_reason_code=self.group_reason,
            transactions=tuple(self.transactions),
            rejected_batches=tuple(self.batches),
        )


class _CamtState(_State):
    def __init__(self, kind: ReturnKind) -> None:
        super().__init__(kind)
        self.container = "Ntfctn" if kind is ReturnKind.CAMT_054 else "Stmt"
        self.containers = 0
        self.entry: etree._Element | None = None
        self.reversal = False
        self.details = 0
        self.pending: list[ReturnedTransaction] = []

    def on_end(self, reader: _Reader, element: etree._Element, parent: etree._Element) -> None:
        tag = element.tag
        m, c = self.message, self.container
        if tag == reader.tag("TxDtls"):
            if reader.is_child(element, "TxDtls", "NtryDtls", "Ntry", c, m):
                self.transaction(reader, element, parent)
                _drop(element, parent)
        elif tag == reader.tag("Ntry"):
            if reader.is_child(element, "Ntry", c, m):
                self.end_entry(reader, element)
                _drop(element, parent)
        elif tag == reader.tag(c):
            if reader.is_child(element, c, m):
                self.containers += 1
                _drop(element, parent)
        elif tag == reader.tag("GrpHdr") and reader.is_child(element, "GrpHdr", m):
            self.header(reader, element)

    def start_entry(self, reader: _Reader, entry: etree._Element) -> None:
        self.entry = entry
        self.reversal = (reader.text(entry, "RvslInd") or "").lower() in _TRUE
        self.details = 0
        self.pending = []

    def transaction(self, reader: _Reader, tx: etree._Element, group: etree._Element) -> None:
        entry = group.getparent()
        assert entry is not None
        if self.entry is not entry:
            self.start_entry(reader, entry)
        self.details += 1
        back = reader.child(tx, "RtrInf")
        if back is None and not self.reversal:
            return
        self.pending.append(reader.camt_transaction(entry, group, tx, back))

    def end_entry(self, reader: _Reader, entry: etree._Element) -> None:
        if self.entry is not entry:  # no transaction detail
            if (reader.text(entry, "RvslInd") or "").lower() in _TRUE:
                groups = reader.children(entry, "NtryDtls")
                self.transactions.append(reader.entry_only(entry, groups[0] if groups else None))
        else:
            if self.details == 1 and self.pending and self.pending[0].amount is None:
                # One transaction in the entry: the entry's amount is the transaction's.
                amount, currency = reader.amount(entry, "Amt")
                self.pending[0] = replace(self.pending[0], amount=amount, currency=currency)
            self.transactions.extend(self.pending)
        self.entry = None
        self.pending = []

    def report(self, reader: _Reader, message: etree._Element) -> ReturnReport:
        message_id = self.require_header(reader, message)
        if self.containers == 0:
            raise reader.fail(f"<{self.message}> has no <{self.container}>", message)
        return ReturnReport(
            kind=self.kind,
            message_name=reader.message_name,
            message_id=message_id,
            created_at=self.created_at,
            original_message_ids=_unique(t.original_message_id for t in self.transactions),
            group_status=None,
            group_reason_code=None,
            transactions=tuple(self.transactions),
        )


def _string(element: etree._Element | None) -> str | None:
    """The element's text content without comments (a bank's annotations stay out), with
    runs of white space (indentation, line breaks) collapsed; None when empty."""
    if element is None:
        return None
    # A leaf (most values) has its text; else join its text nodes (itertext skips comments).
    leaf = len(element) == 0
    text = (element.text or "") if leaf else "".join(str(t) for t in element.itertext())
    value = " ".join(text.split())
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
