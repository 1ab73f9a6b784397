"""Loading the bank's return files: pain.002 status reports, camt.054 notifications and
camt.053 statement entries with returns (see docs/returns.md, "Loading returns").

A file is parsed first (`formats.sepa_returns`): a malformed or unknown document is refused
with the parser's message and nothing changes. It must belong to a remittance Recaudo
generated: its original message id is one of ours, or at least one of its end-to-end ids
is. Each returned transaction then marks its payment `unpaid` with the ISO reason code and
its Spanish description, and the reason code's follow-up applies:

- AM04 (insufficient funds), MS03 (reason not specified): `to_recover`, for a later
  remittance;
- AC01, AC04, MD07 (wrong or closed account, debtor deceased): the commitment ends and
  its responsible user is told by e-mail;
- MD01, MD02 (no valid mandate, mandate data missing or wrong): the mandate is `invalid`;
- MD06 (refund requested by the debtor): `unpaid` with the refund flag.

A returned first collection (FRST) of a mandate makes the next one FRST again. Loading the
same bytes twice changes nothing: the file's SHA-256 is unique per company and the second
load answers the first result (`created: false`). The outcome of each transaction is kept
in the `sepa_return_file.loaded` audit event of the file, which the detail view reads.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import (
    AuditEvent,
    CommitmentPayment,
    Mandate,
    Remittance,
    SepaReturnFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain import money
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.domain.sepa_returns import ReturnFollowUp, follow_up, normalize_reason_code
from recaudo.formats import sepa_returns
from recaudo.formats.sepa_codes import reason_description
from recaudo.services import audit, commitments, storage
from recaudo.services.context import Actor, Clock
from recaudo.services.queries import Paging, _count
from recaudo.services.remittances import Notice, end_and_notice, send_notice
from recaudo.services.views import Page

logger = logging.getLogger("recaudo.returns")

RETURNABLE = ("remitted", "paid")
LOADED = "sepa_return_file.loaded"
FIRST_PAGE = Paging()
# Outcomes of a transaction of the file.
UNPAID = "unpaid"
TO_RECOVER = "to_recover"
COMMITMENT_ENDED = "commitment_ended"
MANDATE_INVALID = "mandate_invalid"
REFUND_REQUESTED = "refund_requested"
UNKNOWN_PAYMENT = "unknown_payment"  # no payment of ours has this end-to-end id
NOT_RETURNABLE = "not_returnable"  # ours, but not remitted nor paid (returned already, ...)


class ReturnFileRefused(ValidationFailed):
    """The file is malformed, of an unknown kind, or not about a remittance of ours."""

    code = "return_file_refused"


@dataclass(frozen=True, slots=True)
class ReturnItem:
    end_to_end_id: str
    payment_id: int | None
    reason_code: str | None
    reason: str | None
    amount: Decimal | None
    currency: str | None
    outcome: str
    status: str | None  # the payment's status after loading

    def document(self) -> dict[str, Any]:
        return {
            "end_to_end_id": self.end_to_end_id,
            "payment_id": self.payment_id,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "amount": None if self.amount is None else format(self.amount, "f"),
            "currency": self.currency,
            "outcome": self.outcome,
            "status": self.status,
        }

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ReturnItem:
        amount = doc.get("amount")
        return cls(
            end_to_end_id=doc["end_to_end_id"],
            payment_id=doc.get("payment_id"),
            reason_code=doc.get("reason_code"),
            reason=doc.get("reason"),
            amount=None if amount is None else Decimal(amount),
            currency=doc.get("currency"),
            outcome=doc["outcome"],
            status=doc.get("status"),
        )


@dataclass(frozen=True, slots=True)
class ReturnFileView:
    id: int
    company_id: int
    kind: str
    message_id: str
    file_name: str
    sha256: str
    remittance_id: int | None
    returned_count: int
    loaded_at: datetime
    loaded_by: str | None
    items: list[ReturnItem]


@dataclass(frozen=True, slots=True)
class ReturnLoad:
    file: ReturnFileView
    created: bool  # False: these exact bytes were loaded before; nothing changed


def _items_of(uow: UnitOfWork, row: SepaReturnFile) -> tuple[list[ReturnItem], str | None]:
    event = uow.session.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.company_id == row.company_id,
            AuditEvent.entity_type == "sepa_return_file",
            AuditEvent.entity_id == str(row.id),
            AuditEvent.action == LOADED,
        )
        .order_by(AuditEvent.id)
        .limit(1)
    )
    if event is None or not event.after:
        return [], None
    return [ReturnItem.of(d) for d in event.after.get("items", [])], event.actor


def _view(uow: UnitOfWork, row: SepaReturnFile, *, with_items: bool = True) -> ReturnFileView:
    items, actor = _items_of(uow, row) if with_items else ([], None)
    return ReturnFileView(
        id=row.id,
        company_id=row.company_id,
        kind=row.kind,
        message_id=row.message_id,
        file_name=row.file_name,
        sha256=row.sha256,
        remittance_id=row.remittance_id,
        returned_count=row.returned_count,
        loaded_at=row.loaded_at,
        loaded_by=actor,
        items=items,
    )


def _existing(uow: UnitOfWork, company_id: int, sha: str) -> SepaReturnFile | None:
    return uow.session.scalar(
        select(SepaReturnFile).where(
            SepaReturnFile.company_id == company_id, SepaReturnFile.sha256 == sha
        )
    )


def _parse(data: bytes) -> sepa_returns.ReturnReport:
    try:
        return sepa_returns.parse_return_file(data)
    except sepa_returns.ReturnFileError as exc:
        raise ReturnFileRefused(f"the return file was refused: {exc}", field="file") from None


def load_return_file(
    uow: UnitOfWork,
    company_id: int,
    data: bytes,
    file_name: str,
    *,
    actor: Actor,
    clock: Clock,
    settings: Settings | None = None,
) -> ReturnLoad:
    """Apply a bank's return file to the payments of the remittance it reports on.

    One transaction: either every returned payment is marked (and the file recorded) or
    nothing is. E-mails for ended commitments go out after the commit (`settings` gives
    the company's e-mail target its secret; without it they become incidents).
    """
    actor.require_write()
    sha = storage.sha256_of(data)
    name = (file_name or "return.xml")[:255]
    with uow:
        seen = _existing(uow, company_id, sha)
        if seen is not None:
            return ReturnLoad(_view(uow, seen), created=False)
    report = _parse(data)
    notices: list[Notice] = []
    try:
        with uow:
            view = _apply(uow, company_id, report, sha, name, notices, actor=actor, clock=clock)
            uow.commit()
    except IntegrityError:
        # Loaded at the same moment by someone else: theirs is the first result.
        with uow:
            seen = _existing(uow, company_id, sha)
            if seen is None:
                raise
            return ReturnLoad(_view(uow, seen), created=False)
    for notice in notices:
        send_notice(uow, notice, settings=settings, clock=clock)
    return ReturnLoad(view, created=True)


def _our_remittance(
    uow: UnitOfWork,
    company_id: int,
    report: sepa_returns.ReturnReport,
    payments: dict[str, CommitmentPayment],
    transaction_count: int,
) -> int:
    """The remittance the file reports on; refuses a file that is not about one of ours."""
    original_ids = [i for i in report.original_message_ids if i]
    if original_ids:
        found = uow.session.scalar(
            select(Remittance.id)
            .where(
                Remittance.company_id == company_id,
                Remittance.message_id.in_(original_ids),
            )
            .order_by(Remittance.id)
            .limit(1)
        )
        if found is not None:
            return int(found)
    ours = Counter(p.remittance_id for p in payments.values() if p.remittance_id is not None)
    if ours:
        return ours.most_common(1)[0][0]
    what = (
        f"original message id {', '.join(original_ids)}"
        if original_ids
        else "no original message id"
    )
    raise ReturnFileRefused(
        f"the return file is not about a remittance Recaudo generated: {what}, and none of "
        f"its {transaction_count} end-to-end id(s) is one of this company's payments",
        field="file",
    )


@dataclass(frozen=True, slots=True)
class _Returned:
    """One returned transaction, from the file or from a whole rejected message/block."""

    end_to_end_id: str | None
    reason_code: str | None
    amount: Decimal | None
    currency: str | None


def _expanded(
    uow: UnitOfWork, company_id: int, report: sepa_returns.ReturnReport
) -> list[_Returned]:
    """The file's transactions; a pain.002 rejecting a whole message or payment block
    without detail stands for every payment of that remittance (or block) Recaudo wrote."""
    found = [
        _Returned(t.end_to_end_id, t.reason_code, t.amount, t.currency) for t in report.transactions
    ]
    if not report.whole_message_rejected and not report.rejected_batches:
        return found
    remittance = uow.session.scalar(
        select(Remittance).where(
            Remittance.company_id == company_id,
            Remittance.message_id.in_(report.original_message_ids or ("",)),
        )
    )
    if remittance is None:
        return found
    if report.whole_message_rejected:
        wanted: list[tuple[str | None, str | None]] = [(None, report.group_reason_code)]
    else:
        wanted = [
            (b.original_payment_information_id, b.reason_code) for b in report.rejected_batches
        ]
    blocks = _blocks_of(uow, remittance)
    for block_id, code in wanted:
        if block_id is None:
            members = [key for keys in blocks.values() for key in keys]
        else:
            members = blocks.get(block_id, [])
        for e2e, amount_minor, currency in members:
            found.append(_Returned(e2e, code, money.from_minor(amount_minor, currency), currency))
    return found


def _blocks_of(uow: UnitOfWork, remittance: Remittance) -> dict[str, list[tuple[str, int, str]]]:
    """The remittance's payments by payment information id, numbered as generation did
    (groups ordered by sequence type and scheme; a transfer file has one)."""
    scheme = func.coalesce(Mandate.scheme, "CORE")
    rows = uow.session.execute(
        select(
            CommitmentPayment.sequence_type,
            scheme,
            CommitmentPayment.end_to_end_id,
            CommitmentPayment.amount_minor,
            CommitmentPayment.currency,
        )
        .outerjoin(Mandate, Mandate.id == CommitmentPayment.mandate_id)
        .where(CommitmentPayment.remittance_id == remittance.id)
        .order_by(CommitmentPayment.sequence_type, scheme, CommitmentPayment.id)
    ).all()
    blocks: dict[str, list[tuple[str, int, str]]] = {}
    keys: dict[tuple[str | None, str], str] = {}
    for seq, sch, e2e, amount_minor, currency in rows:
        group = (seq, sch) if remittance.kind == "direct_debit" else (None, "")
        if group not in keys:
            keys[group] = f"{remittance.message_id}-{len(keys) + 1}"
        blocks.setdefault(keys[group], []).append((e2e, int(amount_minor), currency))
    return blocks


def _apply(
    uow: UnitOfWork,
    company_id: int,
    report: sepa_returns.ReturnReport,
    sha: str,
    file_name: str,
    notices: list[Notice],
    *,
    actor: Actor,
    clock: Clock,
) -> ReturnFileView:
    session = uow.session
    returned = _expanded(uow, company_id, report)
    e2e_ids = sorted({t.end_to_end_id for t in returned if t.end_to_end_id})
    payments: dict[str, CommitmentPayment] = {}
    for start in range(0, len(e2e_ids), 500):
        chunk = e2e_ids[start : start + 500]
        for payment in session.scalars(
            select(CommitmentPayment)
            .where(
                CommitmentPayment.company_id == company_id,
                CommitmentPayment.end_to_end_id.in_(chunk),
                CommitmentPayment.remittance_id.is_not(None),
            )
            .with_for_update()
        ):
            payments[payment.end_to_end_id] = payment
    remittance_id = _our_remittance(uow, company_id, report, payments, len(returned))
    items: list[ReturnItem] = []
    ended: set[int] = set()
    for tx in returned:
        found = payments.get(tx.end_to_end_id or "")
        code = normalize_reason_code(tx.reason_code)
        reason = reason_description(code) if code else None
        if found is None:
            items.append(
                ReturnItem(
                    tx.end_to_end_id or "",
                    None,
                    code,
                    reason,
                    tx.amount,
                    tx.currency,
                    UNKNOWN_PAYMENT,
                    None,
                )
            )
            continue
        payment = found
        if payment.status not in RETURNABLE:
            items.append(
                ReturnItem(
                    payment.end_to_end_id,
                    payment.id,
                    code,
                    reason,
                    tx.amount,
                    tx.currency,
                    NOT_RETURNABLE,
                    payment.status,
                )
            )
            continue
        outcome = _return_one(
            uow,
            company_id,
            payment,
            code,
            reason,
            report,
            ended,
            notices,
            actor=actor,
            clock=clock,
        )
        items.append(
            ReturnItem(
                payment.end_to_end_id,
                payment.id,
                code,
                reason,
                tx.amount,
                tx.currency,
                outcome,
                payment.status,
            )
        )
    count = sum(1 for i in items if i.outcome not in (UNKNOWN_PAYMENT, NOT_RETURNABLE))
    row = SepaReturnFile(
        company_id=company_id,
        kind=report.kind[:12],
        message_id=(report.message_id or "")[:35],
        sha256=sha,
        file_name=file_name,
        remittance_id=remittance_id,
        returned_count=count,
        loaded_at=clock().astimezone(UTC),
    )
    session.add(row)
    session.flush()
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=company_id,
        action=LOADED,
        entity_type="sepa_return_file",
        entity_id=row.id,
        after={
            "file_name": file_name,
            "kind": row.kind,
            "message_id": row.message_id,
            "remittance_id": remittance_id,
            "returned_count": count,
            "items": [i.document() for i in items],
        },
    )
    return ReturnFileView(
        id=row.id,
        company_id=company_id,
        kind=row.kind,
        message_id=row.message_id,
        file_name=file_name,
        sha256=sha,
        remittance_id=remittance_id,
        returned_count=count,
        loaded_at=row.loaded_at,
        loaded_by=actor.label,
        items=items,
    )


def _return_one(
    uow: UnitOfWork,
    company_id: int,
    payment: CommitmentPayment,
    code: str | None,
    reason: str | None,
    report: sepa_returns.ReturnReport,
    ended: set[int],
    notices: list[Notice],
    *,
    actor: Actor,
    clock: Clock,
) -> str:
    """Mark one payment returned and apply its reason code's follow-up; the outcome."""
    action = follow_up(code)
    text = f"{code}: {reason}" if code and reason else (code or "returned without a reason code")
    commitments.transition_payment(
        uow,
        company_id,
        payment.id,
        "unpaid",
        actor=actor,
        clock=clock,
        reason=f"{report.kind} {report.message_id}: {text}",
        return_reason_code=code,
        return_reason=(reason or text)[:200],
        refund_requested=action is ReturnFollowUp.REFUND_REQUESTED,
    )
    session = uow.session
    if payment.sequence_type == "FRST" and payment.mandate_id is not None:
        # Never collected: the mandate's next collection is a first one again.
        mandate = session.get(Mandate, payment.mandate_id)
        if mandate is not None and mandate.first_collection_done:
            mandate.first_collection_done = False
    if action is ReturnFollowUp.TO_RECOVER:
        commitments.transition_payment(
            uow,
            company_id,
            payment.id,
            "to_recover",
            actor=actor,
            clock=clock,
            reason=f"{code}: collect again in a later remittance",
        )
        return TO_RECOVER
    if action is ReturnFollowUp.END_COMMITMENT:
        if payment.commitment_id not in ended:
            ended.add(payment.commitment_id)
            why = f"return {code}: {reason or code}"
            notice = end_and_notice(uow, company_id, payment.commitment_id, why, actor, clock)
            if notice is not None:
                notices.append(notice)
        return COMMITMENT_ENDED
    if action is ReturnFollowUp.INVALIDATE_MANDATE:
        if payment.mandate_id is not None:
            mandate = session.get(Mandate, payment.mandate_id)
            if mandate is not None and mandate.status != "invalid":
                before = mandate.status
                mandate.status = "invalid"
                mandate.invalid_reason = f"return {code}: {reason or code}"[:200]
                audit.record(
                    uow,
                    actor=actor,
                    clock=clock,
                    company_id=company_id,
                    action="mandate.invalidated",
                    entity_type="mandate",
                    entity_id=mandate.id,
                    before={"status": before},
                    after={"status": "invalid", "invalid_reason": mandate.invalid_reason},
                )
        return MANDATE_INVALID
    if action is ReturnFollowUp.REFUND_REQUESTED:
        return REFUND_REQUESTED
    return UNPAID


# --------------------------------------------------------------------------- reading


def list_return_files(
    uow: UnitOfWork,
    company_id: int,
    *,
    remittance_id: int | None = None,
    paging: Paging = FIRST_PAGE,
) -> Page[ReturnFileView]:
    """Loaded return files, newest first (without their items: see the detail)."""
    stmt = select(SepaReturnFile).where(SepaReturnFile.company_id == company_id)
    if remittance_id is not None:
        stmt = stmt.where(SepaReturnFile.remittance_id == remittance_id)
    total = _count(uow.session, stmt.with_only_columns(SepaReturnFile.id))
    rows = uow.session.scalars(
        stmt.order_by(SepaReturnFile.id.desc()).offset(paging.offset).limit(paging.page_size)
    ).all()
    return Page(
        [_view(uow, r, with_items=False) for r in rows], total, paging.page, paging.page_size
    )


def get_return_file(uow: UnitOfWork, company_id: int, file_id: int) -> ReturnFileView:
    row = uow.session.get(SepaReturnFile, file_id)
    if row is None or row.company_id != company_id:
        raise NotFound(f"no return file {file_id}")
    return _view(uow, row)
