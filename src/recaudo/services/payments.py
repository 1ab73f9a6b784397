"""Applying and reversing payments: the use cases that move money."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import Allocation, Company, CreditEntry, Customer, Debt, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.allocation import AllocationPlan, allocate
from recaudo.domain.debts import (
    PAYABLE,
    DebtBalance,
    DebtStatus,
    status_after_payment,
    status_after_reversal,
)
from recaudo.domain.errors import (
    AlreadyReversed,
    Conflict,
    DebtNotPayable,
    InvalidAmount,
    NotFound,
    ValidationFailed,
)
from recaudo.domain.payments import OFFICE_CHANNEL, PaymentMethod, PaymentStatus
from recaudo.services import audit, outbox
from recaudo.services.balances import paid_by_debt
from recaudo.services.context import OFFICE_PAYMENT_ROLES, Actor, Clock
from recaudo.services.queries import payment_view
from recaudo.services.views import PaymentView


@dataclass(frozen=True, slots=True)
class ApplyPayment:
    """Money a channel or an office collected from one customer.

    `external_id` is the channel's transaction id (for the office, the client's
    idempotency key): the same (company, channel, external_id) is applied once.
    `debts` names the company's own debt ids to pay, in order; without them the money
    goes to the oldest due debts first. `strict` refuses named debts that cannot take
    money (an office can give the cash back); a channel that has already collected the
    money passes `strict=False` and gets an `exception` payment for a person to resolve.
    """

    company_id: int
    customer_id: int
    amount: Decimal | str
    method: PaymentMethod
    external_id: str
    channel: str = OFFICE_CHANNEL
    debts: tuple[str, ...] = ()
    paid_at: datetime | None = None
    strict: bool = True
    # A bank channel: its agreement, the payment's accounting date, and `partial`: named
    # debts that cannot take money are skipped, the others paid, the rest becomes credit.
    agreement_id: int | None = None
    accounting_date: date | None = None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Settled:
    """What a payment found under its locks: for a caller's `before_commit` check."""

    payment: Payment
    skipped: tuple[str, ...]  # named debts that could not take money
    credit_minor: int


@dataclass(frozen=True, slots=True)
class Applied:
    payment: PaymentView
    replayed: bool


def _fingerprint(cmd: ApplyPayment, amount_minor: int) -> str:
    return request_fingerprint(cmd.customer_id, amount_minor, cmd.method, cmd.debts)


def request_fingerprint(
    customer_id: int, amount_minor: int, method: PaymentMethod, debts: tuple[str, ...]
) -> str:
    """What identifies a payment request's content: a replay must carry the same."""
    body = json.dumps([customer_id, amount_minor, method.value, list(debts)], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _existing(uow: UnitOfWork, cmd: ApplyPayment) -> Payment | None:
    return uow.session.scalar(
        select(Payment).where(
            Payment.company_id == cmd.company_id,
            Payment.channel == cmd.channel,
            Payment.external_id == cmd.external_id,
        )
    )


def _replay(uow: UnitOfWork, payment: Payment, fingerprint: str) -> Applied:
    if payment.request_fingerprint != fingerprint:
        raise Conflict(
            f"transaction id {payment.external_id!r} was already used for a different payment",
            payment_id=payment.id,
        )
    return Applied(payment_view(uow.session, payment), replayed=True)


def _validate(cmd: ApplyPayment, company: Company) -> int:
    external_id = cmd.external_id.strip()
    if not external_id or len(external_id) > 100:
        raise ValidationFailed("transaction id must have 1 to 100 characters", field="external_id")
    if not cmd.channel or len(cmd.channel) > 32:
        raise ValidationFailed("channel must have 1 to 32 characters", field="channel")
    if len(cmd.debts) != len(set(cmd.debts)):
        raise ValidationFailed("a debt is named twice", field="debts")
    amount_minor = money.to_minor(
        money.parse_amount(cmd.amount, company.currency), company.currency
    )
    if amount_minor <= 0:
        raise InvalidAmount("a payment amount must be greater than zero", field="amount")
    return amount_minor


def _lock_customer(uow: UnitOfWork, company_id: int, customer_id: int) -> Customer:
    # Every payment of one customer takes this row lock first (PostgreSQL), so payments
    # racing for the same debts queue up; SQLite's BEGIN IMMEDIATE already serialises.
    customer = uow.session.scalar(
        select(Customer)
        .where(Customer.id == customer_id, Customer.company_id == company_id)
        .with_for_update()
    )
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


def _named_debts(uow: UnitOfWork, cmd: ApplyPayment) -> list[Debt]:
    rows = uow.session.scalars(
        select(Debt)
        .where(Debt.company_id == cmd.company_id, Debt.external_id.in_(cmd.debts))
        .order_by(Debt.id)
        .with_for_update()
    ).all()
    by_ref = {d.external_id: d for d in rows}
    missing = [ref for ref in cmd.debts if ref not in by_ref]
    if missing:
        raise NotFound(f"no debt {missing[0]!r}", field="debts")
    foreign = [d.external_id for d in rows if d.customer_id != cmd.customer_id]
    if foreign:
        raise ValidationFailed(f"debt {foreign[0]!r} belongs to another customer", field="debts")
    return [by_ref[ref] for ref in cmd.debts]


BeforeCommit = Callable[[UnitOfWork, Settled], None]

# What a cashier takes at the counter: the only payments a cashier may register.
OFFICE_COUNTER_METHODS = frozenset({PaymentMethod.CASH, PaymentMethod.CHEQUE})


def apply_payment(
    uow: UnitOfWork,
    cmd: ApplyPayment,
    *,
    actor: Actor,
    clock: Clock,
    before_commit: BeforeCommit | None = None,
) -> Applied:
    """Apply a payment exactly once; what no debt can take becomes customer credit.

    `before_commit` runs in the same transaction once the money is allocated (a channel
    records its exception there, so that payment and exception commit together).
    """
    if cmd.channel == OFFICE_CHANNEL and cmd.method in OFFICE_COUNTER_METHODS:
        actor.require(*OFFICE_PAYMENT_ROLES)
    else:
        actor.require_write()
    if not actor.can_see(cmd.company_id):
        raise NotFound(f"no company {cmd.company_id}")
    try:
        return _apply(uow, cmd, actor=actor, clock=clock, before_commit=before_commit)
    except IntegrityError:
        # Two requests with one transaction id raced past the lookup: the loser replays.
        with uow:
            company = uow.session.get(Company, cmd.company_id)
            existing = _existing(uow, cmd)
            if company is None or existing is None:
                raise
            return _replay(uow, existing, _fingerprint(cmd, _validate(cmd, company)))


def _apply(
    uow: UnitOfWork,
    cmd: ApplyPayment,
    *,
    actor: Actor,
    clock: Clock,
    before_commit: BeforeCommit | None,
) -> Applied:
    with uow:
        company = uow.session.get(Company, cmd.company_id)
        if company is None:
            raise NotFound(f"no company {cmd.company_id}")
        amount_minor = _validate(cmd, company)
        fingerprint = _fingerprint(cmd, amount_minor)
        if (done := _existing(uow, cmd)) is not None:
            return _replay(uow, done, fingerprint)
        customer = _lock_customer(uow, company.id, cmd.customer_id)
        if cmd.debts:
            debts = _named_debts(uow, cmd)
        else:
            debts = list(
                uow.session.scalars(
                    select(Debt)
                    .where(
                        Debt.customer_id == customer.id,
                        Debt.status.in_([s.value for s in PAYABLE]),
                    )
                    .order_by(Debt.id)
                    .with_for_update()
                )
            )
        now = clock()
        payment = Payment(
            company_id=company.id,
            customer_id=customer.id,
            channel=cmd.channel,
            method=cmd.method.value,
            external_id=cmd.external_id.strip(),
            request_fingerprint=fingerprint,
            amount_minor=amount_minor,
            currency=company.currency,
            paid_at=cmd.paid_at or now,
            status=PaymentStatus.APPLIED.value,
            recorded_by=actor.label,
            created_at=now,
            agreement_id=cmd.agreement_id,
            accounting_date=cmd.accounting_date,
        )
        unpayable = [d.external_id for d in debts if DebtStatus(d.status) not in PAYABLE]
        credit = 0
        if unpayable and cmd.partial:
            debts = [d for d in debts if DebtStatus(d.status) in PAYABLE]
        elif unpayable and cmd.strict:
            raise DebtNotPayable(f"debt {unpayable[0]!r} cannot take payments", field="debts")
        uow.session.add(payment)
        uow.session.flush()
        if unpayable and not cmd.partial:
            payment.status = PaymentStatus.EXCEPTION.value
            payment.exception_reason = f"debt {unpayable[0]!r} cannot take payments"
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company.id,
                action="payment.exception",
                entity_type="payment",
                entity_id=payment.id,
                after=_payment_snapshot(payment, company),
            )
        else:
            credit = _allocate(
                uow, payment, debts, in_given_order=bool(cmd.debts), actor=actor, clock=clock
            )
        if before_commit is not None:
            before_commit(uow, Settled(payment, tuple(unpayable), credit))
        if payment.status == PaymentStatus.APPLIED.value:
            # After the caller's check, so that the event carries its exception reason.
            outbox.payment_event(uow, payment, outbox.PAYMENT_APPLIED, clock)
        uow.commit()
        return Applied(payment_view(uow.session, payment), replayed=False)


def allocate_to_debts(
    uow: UnitOfWork,
    payment: Payment,
    amount_minor: int,
    debts: list[Debt],
    *,
    in_given_order: bool,
    actor: Actor,
    clock: Clock,
) -> AllocationPlan:
    """Allocate `amount_minor` of `payment` to `debts` (locked by the caller).

    Writes the allocation rows and the debts' new states with their audit rows; what no
    debt could take is the plan's credit, for the caller to book.
    """
    paid = paid_by_debt(uow.session, (d.id for d in debts))
    balances = [
        DebtBalance(d.id, d.due_date, d.amount_minor, paid.get(d.id, 0), DebtStatus(d.status))
        for d in debts
    ]
    plan = allocate(amount_minor, balances, in_given_order=in_given_order)
    by_id = {d.id: d for d in debts}
    for line in plan.lines:
        debt = by_id[line.debt_id]
        uow.session.add(
            Allocation(payment_id=payment.id, debt_id=debt.id, amount_minor=line.amount)
        )
        new_status = status_after_payment(
            debt.amount_minor, paid.get(debt.id, 0) + line.amount, DebtStatus(debt.status)
        )
        _change_status(uow, debt, new_status, {"payment_id": payment.id}, actor=actor, clock=clock)
    return plan


def _change_status(
    uow: UnitOfWork,
    debt: Debt,
    new_status: DebtStatus,
    because: Mapping[str, object],
    *,
    actor: Actor,
    clock: Clock,
) -> None:
    """Move a debt to `new_status`, if it differs, with its audit row naming the payment."""
    if new_status.value == debt.status:
        return
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=debt.company_id,
        action="debt.status_changed",
        entity_type="debt",
        entity_id=debt.id,
        before={"status": debt.status},
        after={"status": new_status.value, **because},
    )
    debt.status = new_status.value
    debt.updated_at = clock()


def _allocate(
    uow: UnitOfWork,
    payment: Payment,
    debts: list[Debt],
    *,
    in_given_order: bool,
    actor: Actor,
    clock: Clock,
) -> int:
    """Allocate the payment and record its credit; returns the credit (minor units)."""
    plan = allocate_to_debts(
        uow,
        payment,
        payment.amount_minor,
        debts,
        in_given_order=in_given_order,
        actor=actor,
        clock=clock,
    )
    by_id = {d.id: d for d in debts}
    currency = payment.currency
    if plan.credit:
        assert payment.customer_id is not None
        uow.session.add(
            CreditEntry(
                company_id=payment.company_id,
                customer_id=payment.customer_id,
                payment_id=payment.id,
                amount_minor=plan.credit,
                currency=currency,
                reason="overpayment",
                created_at=clock(),
            )
        )
    uow.session.flush()
    after = applied_snapshot(
        payment.amount_minor,
        currency,
        payment.status,
        [(by_id[line.debt_id].external_id, line.amount) for line in plan.lines],
        plan.credit,
    )
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=payment.company_id,
        action="payment.applied",
        entity_type="payment",
        entity_id=payment.id,
        after=after,
    )
    return plan.credit


def applied_snapshot(
    amount_minor: int,
    currency: str,
    status: str,
    allocations: list[tuple[str, int]],
    credit_minor: int,
) -> dict[str, object]:
    """The `payment.applied` audit row's `after`: amounts as shown, by the company's debt id."""

    def shown(minor: int) -> str:
        return str(money.from_minor(minor, currency))

    return {
        "amount": shown(amount_minor),
        "currency": currency,
        "status": status,
        "allocations": {ref: shown(amount) for ref, amount in allocations},
        "credit": shown(credit_minor),
    }


def _payment_snapshot(payment: Payment, company: Company) -> dict[str, object]:
    return {
        "amount": str(money.from_minor(payment.amount_minor, company.currency)),
        "currency": payment.currency,
        "status": payment.status,
        "channel": payment.channel,
        "method": payment.method,
        "external_id": payment.external_id,
        "exception_reason": payment.exception_reason,
    }


def reverse_payment(
    uow: UnitOfWork, company_id: int, payment_id: int, reason: str, *, actor: Actor, clock: Clock
) -> PaymentView:
    """Undo a payment: its debts get back what it paid them, its credit is withdrawn."""
    actor.require_write()
    reason = " ".join(reason.split())
    if not reason or len(reason) > 500:
        raise ValidationFailed("a reversal needs a reason of 1 to 500 characters", field="reason")
    if not actor.can_see(company_id):
        raise NotFound(f"no payment {payment_id}")
    with uow:
        payment = uow.session.scalar(
            select(Payment).where(Payment.id == payment_id, Payment.company_id == company_id)
        )
        if payment is None:
            raise NotFound(f"no payment {payment_id}")
        if payment.customer_id is not None:
            _lock_customer(uow, company_id, payment.customer_id)
        # Re-read under the customer's lock: a concurrent reversal may have won.
        uow.session.refresh(payment)
        if payment.status == PaymentStatus.REVERSED.value:
            raise AlreadyReversed(f"payment {payment_id} is already reversed")
        before_status = payment.status
        was_applied = payment.status == PaymentStatus.APPLIED.value
        now = clock()
        payment.status = PaymentStatus.REVERSED.value
        payment.reversal_reason = reason
        payment.reversed_at = now
        uow.session.flush()
        if was_applied:
            _restore_debts(uow, payment, actor=actor, clock=clock)
            outbox.payment_event(uow, payment, outbox.PAYMENT_REVERSED, clock)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="payment.reversed",
            entity_type="payment",
            entity_id=payment.id,
            before={"status": before_status},
            after={"status": payment.status, "reason": reason},
        )
        uow.commit()
        return payment_view(uow.session, payment)


def _restore_debts(uow: UnitOfWork, payment: Payment, *, actor: Actor, clock: Clock) -> None:
    debt_ids = sorted({a.debt_id for a in payment.allocations})
    debts = uow.session.scalars(
        select(Debt).where(Debt.id.in_(debt_ids)).order_by(Debt.id).with_for_update()
    ).all()
    paid = paid_by_debt(uow.session, debt_ids)  # this payment no longer counts: it is reversed
    for debt in debts:
        new_status = status_after_reversal(
            debt.amount_minor, paid.get(debt.id, 0), DebtStatus(debt.status)
        )
        because = {"reversed_payment_id": payment.id}
        _change_status(uow, debt, new_status, because, actor=actor, clock=clock)
    credit = sum(
        e.amount_minor
        for e in uow.session.scalars(
            select(CreditEntry).where(CreditEntry.payment_id == payment.id)
        )
    )
    if credit and payment.customer_id is not None:
        uow.session.add(
            CreditEntry(
                company_id=payment.company_id,
                customer_id=payment.customer_id,
                payment_id=payment.id,
                amount_minor=-credit,
                currency=payment.currency,
                reason="reversal",
                created_at=clock(),
            )
        )
