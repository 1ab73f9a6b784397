"""Checkout transactions (issue 8): start, the provider round trip, OK -> a Recaudo payment.

States are eCollect's (`domain.checkout`): CREATED when the payer confirmed the form,
PENDING at the bank, then OK, NOT_AUTHORIZED, FAILED, EXPIRED or CAPTURED (coupon); a final
state never changes. An OK transaction becomes a payment applied to the portfolio through
`services.payments.apply_payment` (channel `checkout`, external id `checkout-<ticket>`,
so a settlement that runs twice applies it once) when the references name a customer of
the company; it keeps the bank's trace code and, for services that assign PINs, takes the
next free PIN of the service's list in the same database transaction:

- PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` on the first free PIN, so concurrent
  approvals take different rows without waiting for each other;
- SQLite: write transactions are serialised (`BEGIN IMMEDIATE`), so the first free PIN is
  the caller's alone;
- and `service_pins.assigned_transaction_id` is unique: one PIN per transaction, and a
  PIN is never given twice.

The HTTP call to the provider never runs inside a database transaction.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters import transfer
from recaudo.adapters.db.tables import (
    CheckoutService,
    CheckoutTransaction,
    Company,
    Customer,
    Debt,
    ServicePin,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.payment_provider import (
    APPROVED,
    DECLINED,
    PENDING,
    PaymentProvider,
    PaymentRequest,
    ProviderStatus,
    ProviderUnavailable,
)
from recaudo.config import Settings
from recaudo.domain import checkout as states
from recaudo.domain import money
from recaudo.domain.checkout import ServiceRules, validate_references
from recaudo.domain.debts import PAYABLE
from recaudo.domain.errors import Conflict, NotFound, RecaudoError, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.services import audit, deliveries
from recaudo.services.balances import paid_by_debt
from recaudo.services.checkout import reference_specs, rules_of, service_row
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.customers import find_customer
from recaudo.services.payments import ApplyPayment, Settled, apply_payment
from recaudo.services.webhooks import WebhookSender, backoff

logger = logging.getLogger("recaudo.checkout")

CHANNEL = "checkout"
CONFIRMATION_EVENT = "checkout.transaction.final"
MAX_CONFIRMATION_ATTEMPTS = 10
CONFIRMATION_LEASE = timedelta(seconds=60)
PINS_EXHAUSTED = "Se agotaron los PIN de este servicio: la empresa le enviará el suyo."


class ProviderDown(RecaudoError):
    code = "provider_unavailable"


@dataclass(frozen=True, slots=True)
class StartTransaction:
    service_code: str
    references: Sequence[str | None]
    amount_minor: int | None = None
    vat_minor: int | None = None
    payer_email: str | None = None
    redirect_url: str | None = None
    confirmation_url: str | None = None
    origin: str = "page"  # page | api | coupon
    # The token of a NOT_AUTHORIZED or FAILED transaction this one retries.
    retry_of: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionView:
    id: int
    company_id: int
    ticket: int
    token: str
    state: str
    service_code: str
    service_name: str
    references: tuple[tuple[str, str], ...]
    amount_minor: int
    vat_minor: int
    currency: str
    means: str | None
    bank: str | None
    trace_code: str | None
    payer_email: str | None
    pin: str | None
    payment_id: int | None
    attempt: int
    warning: str | None
    failure_reason: str | None
    redirect_url: str | None
    confirmation_state: str
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    # Portfolio services: the company's ids of the debts the payment goes to, in order.
    debt_refs: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        return self.state in states.FINAL


def _view(uow: UnitOfWork, tx: CheckoutTransaction) -> TransactionView:
    service = uow.session.get(CheckoutService, tx.service_id)
    assert service is not None
    return TransactionView(
        id=tx.id,
        company_id=tx.company_id,
        ticket=tx.ticket,
        token=tx.token,
        state=tx.state,
        service_code=service.code,
        service_name=service.name,
        references=tuple((r["title"], r["value"]) for r in tx.references),
        amount_minor=tx.amount_minor,
        vat_minor=tx.vat_minor,
        currency=tx.currency,
        means=tx.means,
        bank=tx.bank,
        trace_code=tx.trace_code,
        payer_email=tx.payer_email,
        pin=tx.pin,
        payment_id=tx.payment_id,
        attempt=tx.attempt,
        warning=tx.warning,
        failure_reason=tx.failure_reason,
        redirect_url=tx.redirect_url or service.redirect_url,
        confirmation_state=tx.confirmation_state,
        created_at=tx.created_at,
        expires_at=tx.expires_at,
        finished_at=tx.finished_at,
        debt_refs=tuple(tx.debt_ids or ()),
    )


def _day_start(company: Company, now: datetime) -> tuple[datetime, datetime]:
    """(local date as midnight, that midnight in UTC) in the company's time zone."""
    zone = ZoneInfo(company.timezone)
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), zone)
    return start, start.astimezone(UTC)


def _portfolio(
    uow: UnitOfWork,
    company: Company,
    customer: Customer | None,
    rules: ServiceRules,
    today: datetime,
) -> tuple[int, list[str]]:
    """The customer's payable debts the service accepts (overdue rule) and their total."""
    if customer is None:
        raise NotFound("no customer with these references")
    debts = uow.session.scalars(
        select(Debt)
        .where(
            Debt.company_id == company.id,
            Debt.customer_id == customer.id,
            Debt.status.in_([s.value for s in PAYABLE]),
        )
        .order_by(Debt.due_date, Debt.id)
    ).all()
    accepted = [d for d in debts if rules.overdue_ok(d.due_date, today.date())]
    if debts and not accepted:
        raise Conflict("the open debts are overdue beyond what this service accepts")
    total = sum(d.amount_minor for d in accepted)
    paid = paid_by_debt(uow.session, (d.id for d in accepted))
    total -= sum(paid.values())
    return total, [d.external_id for d in accepted]


def _customer_of(
    uow: UnitOfWork, company: Company, kinds: Sequence[str], values: Sequence[str]
) -> Customer | None:
    id_value = next((v for k, v in zip(kinds, values, strict=True) if k == "customer_id"), "")
    id_type = next((v for k, v in zip(kinds, values, strict=True) if k == "customer_id_type"), "")
    if not id_value:
        return None
    try:
        return find_customer(uow, company, id_value, id_type or None)
    except (NotFound, ValidationFailed):
        return None


def _next_ticket(uow: UnitOfWork, company_id: int) -> int:
    last = uow.session.scalar(
        select(func.max(CheckoutTransaction.ticket)).where(
            CheckoutTransaction.company_id == company_id
        )
    )
    return (last or 0) + 1


def start_transaction(
    uow: UnitOfWork, company_id: int, cmd: StartTransaction, *, actor: Actor, clock: Clock
) -> TransactionView:
    """Validate the references and the service's parameters, and create a CREATED ticket."""
    actor.require_write()
    for attempt in range(5):
        try:
            return _start(uow, company_id, cmd, actor=actor, clock=clock)
        except IntegrityError:
            # Two starts took the same next ticket number: the loser takes the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _start(
    uow: UnitOfWork, company_id: int, cmd: StartTransaction, *, actor: Actor, clock: Clock
) -> TransactionView:
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None or not actor.can_see(company_id):
            raise NotFound(f"no company {company_id}")
        service = service_row(uow, company_id, cmd.service_code)
        rules = rules_of(service)
        now = clock()
        local_midnight, day_start = _day_start(company, now)
        rules.check_open(local_midnight.date())
        specs = reference_specs(uow, service.id)
        valid = validate_references(specs, list(cmd.references))
        email = None
        if cmd.payer_email is not None:
            try:
                email = validate_references(
                    [states.ReferenceSpec("Correo del pagador", kind="email", required=True)],
                    [cmd.payer_email],
                ).values[0]
            except ValidationFailed:
                raise ValidationFailed(
                    "the payer's e-mail is not valid",
                    fields={"payer_email": "Correo del pagador: debe ser un correo válido"},
                ) from None
        customer = _customer_of(uow, company, [s.kind for s in specs], valid.values)
        portfolio_total: int | None = None
        debt_refs: list[str] = []
        if service.price_kind == "portfolio":
            portfolio_total, debt_refs = _portfolio(uow, company, customer, rules, local_midnight)
        base, vat = rules.amount(
            list_price_minor=valid.list_price_minor,
            typed_minor=cmd.amount_minor,
            typed_vat_minor=cmd.vat_minor,
            portfolio_total_minor=portfolio_total,
        )
        payer_key = next(
            (v for s, v in zip(specs, valid.values, strict=True) if s.kind == "customer_id" and v),
            email or (valid.values[0] if valid.values else None),
        )
        if payer_key is not None:
            attempts_today = uow.session.scalar(
                select(func.count())
                .select_from(CheckoutTransaction)
                .where(
                    CheckoutTransaction.service_id == service.id,
                    CheckoutTransaction.payer_key == payer_key,
                    CheckoutTransaction.created_at >= day_start,
                )
            )
            rules.check_daily_attempts(attempts_today or 0)
        attempt, retry_of_id = 1, None
        if cmd.retry_of is not None:
            previous = uow.session.scalar(
                select(CheckoutTransaction).where(
                    CheckoutTransaction.token == cmd.retry_of,
                    CheckoutTransaction.service_id == service.id,
                )
            )
            if previous is None or previous.state not in states.RETRYABLE:
                raise Conflict("only a declined or failed payment can be retried")
            attempt, retry_of_id = previous.attempt + 1, previous.id
            rules.check_retry(attempt - 1)
        key = valid.double_payment_key(specs)
        warning = None
        if key is not None:
            paid = uow.session.scalar(
                select(func.count())
                .select_from(CheckoutTransaction)
                .where(
                    CheckoutTransaction.service_id == service.id,
                    CheckoutTransaction.reference_key == key,
                    CheckoutTransaction.state == states.OK,
                )
            )
            if rules.double_payment_outcome(bool(paid)) == "warn":
                warning = "Ya existe un pago aprobado con estas referencias."
        tx = CheckoutTransaction(
            company_id=company_id,
            service_id=service.id,
            ticket=_next_ticket(uow, company_id),
            token=secrets.token_urlsafe(32),
            state=states.CREATED,
            origin=cmd.origin,
            references=[
                {"title": s.title, "value": v} for s, v in zip(specs, valid.values, strict=True)
            ],
            first_reference=(valid.values[0] or None) if valid.values else None,
            reference_key=key,
            customer_id=customer.id if customer is not None else None,
            debt_ids=debt_refs or None,
            amount_minor=base + vat,
            vat_minor=vat,
            currency=service.currency,
            payer_email=email,
            payer_key=payer_key,
            redirect_url=cmd.redirect_url,
            confirmation_url=cmd.confirmation_url or service.confirmation_url,
            confirmation_state="none",
            confirmation_attempts=0,
            receipt_state="none",
            attempt=attempt,
            retry_of_id=retry_of_id,
            warning=warning,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(minutes=service.timeout_minutes),
        )
        uow.session.add(tx)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout.created",
            entity_type="checkout_transaction",
            entity_id=tx.id,
            after={"ticket": tx.ticket, "service": service.code, "amount_minor": tx.amount_minor},
        )
        view = _view(uow, tx)
        uow.commit()
        return view


def _locked(uow: UnitOfWork, tx_id: int) -> CheckoutTransaction:
    tx = uow.session.scalar(
        select(CheckoutTransaction).where(CheckoutTransaction.id == tx_id).with_for_update()
    )
    if tx is None:
        raise NotFound(f"no transaction {tx_id}")
    return tx


def by_token(uow: UnitOfWork, token: str) -> TransactionView:
    """The payer's own transaction, by the unguessable token of its page (no sign-in)."""
    with uow:
        tx = uow.session.scalar(
            select(CheckoutTransaction).where(CheckoutTransaction.token == token)
        )
        if tx is None:
            raise NotFound("no such transaction")
        return _view(uow, tx)


def find_by_ticket(
    uow: UnitOfWork, company_id: int, ticket: int, *, actor: Actor | None = None
) -> TransactionView:
    if actor is not None and not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    with uow:
        tx = uow.session.scalar(
            select(CheckoutTransaction).where(
                CheckoutTransaction.company_id == company_id, CheckoutTransaction.ticket == ticket
            )
        )
        if tx is None:
            raise NotFound(f"no ticket {ticket}")
        return _view(uow, tx)


def begin_payment(
    uow: UnitOfWork,
    token: str,
    means: str,
    bank: str | None,
    provider: PaymentProvider,
    *,
    return_url: str,
    callback_url: str,
    clock: Clock,
) -> str:
    """CREATED -> PENDING at the provider; answers the URL to send the payer to."""
    with uow:
        tx = uow.session.scalar(
            select(CheckoutTransaction).where(CheckoutTransaction.token == token)
        )
        if tx is None:
            raise NotFound("no such transaction")
        if tx.state != states.CREATED:
            raise Conflict(f"the transaction is {tx.state}", state=tx.state)
        service = uow.session.get(CheckoutService, tx.service_id)
        company = uow.session.get(Company, tx.company_id)
        assert service is not None and company is not None
        rules = rules_of(service)
        rules.check_means(means)
        if means == "PSE" and not bank:
            raise ValidationFailed("choose your bank", fields={"bank": "elija su banco"})
        now = clock()
        if tx.expires_at <= now:
            raise Conflict("the transaction expired", state=tx.state)
        _, day_start = _day_start(company, now)
        if tx.payer_key is not None:
            paid_today = uow.session.scalar(
                select(func.coalesce(func.sum(CheckoutTransaction.amount_minor), 0)).where(
                    CheckoutTransaction.service_id == service.id,
                    CheckoutTransaction.payer_key == tx.payer_key,
                    CheckoutTransaction.means == means,
                    CheckoutTransaction.state.in_([states.OK, states.PENDING]),
                    CheckoutTransaction.created_at >= day_start,
                )
            )
            rules.check_daily_amount(means, int(paid_today or 0), tx.amount_minor)
        request = PaymentRequest(
            reference=str(tx.ticket),
            amount_minor=tx.amount_minor,
            vat_minor=tx.vat_minor,
            currency=tx.currency,
            means=means,
            bank=bank,
            description=service.name,
            payer_email=tx.payer_email,
            return_url=return_url,
            callback_url=callback_url,
        )
        tx_id = tx.id
    try:
        session = provider.create_payment(request)
    except ProviderUnavailable as exc:
        logger.warning("checkout provider unavailable: %s", exc)
        raise ProviderDown("the payment provider is not available; try again later") from exc
    with uow:
        tx = _locked(uow, tx_id)
        tx.state = states.next_state(tx.state, states.PENDING)
        tx.means, tx.bank = means, bank
        tx.provider, tx.provider_session = provider.name, session.session
        tx.updated_at = clock()
        uow.commit()
    return session.redirect_url


def settle(
    uow: UnitOfWork, token: str, provider: PaymentProvider, *, clock: Clock
) -> TransactionView:
    """Ask the provider how a PENDING transaction ended and record it (idempotent)."""
    with uow:
        tx = uow.session.scalar(
            select(CheckoutTransaction).where(CheckoutTransaction.token == token)
        )
        if tx is None:
            raise NotFound("no such transaction")
        if tx.state != states.PENDING or tx.provider_session is None:
            return _view(uow, tx)
        tx_id, session = tx.id, tx.provider_session
    try:
        status = provider.status(session)
    except ProviderUnavailable as exc:
        logger.warning("checkout provider status unavailable: %s", exc)
        return by_token(uow, token)
    return record_status(uow, tx_id, status, clock=clock)


def by_session(uow: UnitOfWork, session: str) -> TransactionView:
    with uow:
        tx = uow.session.scalar(
            select(CheckoutTransaction).where(CheckoutTransaction.provider_session == session)
        )
        if tx is None:
            raise NotFound("no such session")
        return _view(uow, tx)


def _actor(company_id: int) -> Actor:
    return Actor(f"{CHANNEL}:provider", Role.OPERATOR, company_id)


def record_status(
    uow: UnitOfWork, tx_id: int, status: ProviderStatus, *, clock: Clock
) -> TransactionView:
    if status.state == PENDING:
        with uow:
            return _view(uow, _locked(uow, tx_id))
    if status.state == APPROVED:
        return _approve(uow, tx_id, status, clock=clock)
    target = states.NOT_AUTHORIZED if status.state == DECLINED else states.FAILED
    return finish(uow, tx_id, target, status.message, clock=clock, bank=status.bank)


def finish(
    uow: UnitOfWork,
    tx_id: int,
    target: str,
    reason: str | None,
    *,
    clock: Clock,
    bank: str | None = None,
) -> TransactionView:
    """Move a transaction to a final state other than OK (no-op if already final)."""
    with uow:
        tx = _locked(uow, tx_id)
        if tx.state in states.FINAL:
            return _view(uow, tx)
        before = tx.state
        tx.state = states.next_state(tx.state, target)
        now = clock()
        tx.failure_reason, tx.finished_at, tx.updated_at = reason, now, now
        if bank:
            tx.bank = bank
        _queue_confirmation(tx, now)
        audit.record(
            uow,
            actor=_actor(tx.company_id),
            clock=clock,
            company_id=tx.company_id,
            action=f"checkout.{target.lower()}",
            entity_type="checkout_transaction",
            entity_id=tx.id,
            before={"state": before},
            after={"state": tx.state, "reason": reason},
        )
        view = _view(uow, tx)
        uow.commit()
        return view


def _queue_confirmation(tx: CheckoutTransaction, now: datetime) -> None:
    if tx.confirmation_url:
        tx.confirmation_state = "pending"
        tx.confirmation_next_at = now


def take_pin(uow: UnitOfWork, service_id: int, tx_id: int, now: datetime) -> str | None:
    """The next free PIN of the service's list, now the transaction's; None when none left."""
    pin = uow.session.scalar(
        select(ServicePin)
        .where(ServicePin.service_id == service_id, ServicePin.assigned_transaction_id.is_(None))
        .order_by(ServicePin.position)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if pin is None:
        return None
    pin.assigned_transaction_id, pin.assigned_at = tx_id, now
    uow.session.flush()
    return pin.value


def _mark_ok(
    uow: UnitOfWork, tx_id: int, status: ProviderStatus, payment_id: int | None, clock: Clock
) -> None:
    tx = _locked(uow, tx_id)
    if tx.state in states.FINAL:
        raise Conflict(f"the transaction is already {tx.state}", state=tx.state)
    tx.state = states.next_state(tx.state, states.OK)
    now = clock()
    tx.trace_code, tx.payment_id = status.trace_code, payment_id
    if status.bank:
        tx.bank = status.bank
    tx.finished_at = tx.updated_at = now
    service = uow.session.get(CheckoutService, tx.service_id)
    assert service is not None
    if service.assigns_pins:
        tx.pin = take_pin(uow, service.id, tx.id, now)
        if tx.pin is None:
            tx.warning = PINS_EXHAUSTED
            logger.warning("service %s has no PINs left (ticket %s)", service.code, tx.ticket)
    _queue_confirmation(tx, now)
    if (service.email_payer and tx.payer_email) or service.company_email:
        tx.receipt_state = "pending"
    audit.record(
        uow,
        actor=_actor(tx.company_id),
        clock=clock,
        company_id=tx.company_id,
        action="checkout.ok",
        entity_type="checkout_transaction",
        entity_id=tx.id,
        before={"state": states.PENDING},
        after={"state": states.OK, "trace_code": tx.trace_code, "payment_id": payment_id},
    )


def _approve(
    uow: UnitOfWork, tx_id: int, status: ProviderStatus, *, clock: Clock
) -> TransactionView:
    with uow:
        tx = _locked(uow, tx_id)
        if tx.state in states.FINAL:
            return _view(uow, tx)
        customer_id, company_id, ticket = tx.customer_id, tx.company_id, tx.ticket
        amount = money.from_minor(tx.amount_minor, tx.currency)
        debts = tuple(tx.debt_ids or ())
        method = PaymentMethod.CARD if tx.means == "CARD" else PaymentMethod.BANK_DEBIT
    if customer_id is None:
        with uow:
            _mark_ok(uow, tx_id, status, None, clock)
            view = _view(uow, _locked(uow, tx_id))
            uow.commit()
            return view

    def before_commit(inner: UnitOfWork, settled: Settled) -> None:
        _mark_ok(inner, tx_id, status, settled.payment.id, clock)

    # A Conflict: another worker recorded this transaction's end first.
    with contextlib.suppress(Conflict):
        apply_payment(
            uow,
            ApplyPayment(
                company_id=company_id,
                customer_id=customer_id,
                amount=amount,
                method=method,
                external_id=f"{CHANNEL}-{ticket}",
                channel=CHANNEL,
                debts=debts,
                strict=False,
                paid_at=clock(),
            ),
            actor=_actor(company_id),
            clock=clock,
            before_commit=before_commit,
        )
    with uow:
        return _view(uow, _locked(uow, tx_id))


def capture_for_coupon(
    uow: UnitOfWork, company_id: int, transaction_id: int, *, actor: Actor, clock: Clock
) -> TransactionView:
    """CREATED -> CAPTURED when the payer prints a coupon (services that allow coupons)."""
    actor.require_write()
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    with uow:
        tx = _locked(uow, transaction_id)
        if tx.company_id != company_id:
            raise NotFound(f"no transaction {transaction_id}")
        service = uow.session.get(CheckoutService, tx.service_id)
        assert service is not None
        target = states.next_state(tx.state, states.CAPTURED)
        if not service.allows_coupon:
            raise Conflict(f"service {service.code!r} does not issue coupons")
        tx.state = target
        now = clock()
        tx.finished_at = tx.updated_at = now
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout.captured",
            entity_type="checkout_transaction",
            entity_id=tx.id,
            before={"state": states.CREATED},
            after={"state": states.CAPTURED},
        )
        view = _view(uow, tx)
        uow.commit()
        return view


# --- the expiry job -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    expired: int
    settled: int
    failed: int


def expire_due(
    uow: UnitOfWork, provider: PaymentProvider, *, clock: Clock, limit: int = 500
) -> ExpiryReport:
    """End what outlived its service's timeout: CREATED -> EXPIRED (abandoned before the
    bank); PENDING -> whatever the provider says, or FAILED when it has no answer."""
    now = clock()
    with uow:
        rows = uow.session.execute(
            select(
                CheckoutTransaction.id,
                CheckoutTransaction.state,
                CheckoutTransaction.provider_session,
            )
            .where(
                CheckoutTransaction.state.in_([states.CREATED, states.PENDING]),
                CheckoutTransaction.expires_at <= now,
            )
            .order_by(CheckoutTransaction.expires_at)
            .limit(limit)
        ).all()
    expired = settled = failed = 0
    for tx_id, state, session in rows:
        if state == states.CREATED:
            finish(uow, tx_id, states.EXPIRED, "abandonada antes de ir al banco", clock=clock)
            expired += 1
            continue
        status: ProviderStatus | None = None
        if session is not None:
            try:
                status = provider.status(session)
            except ProviderUnavailable as exc:
                logger.warning("checkout provider status unavailable: %s", exc)
        if status is None or status.state == PENDING:
            finish(uow, tx_id, states.FAILED, "sin respuesta de la entidad financiera", clock=clock)
            failed += 1
        else:
            record_status(uow, tx_id, status, clock=clock)
            settled += 1
    return ExpiryReport(expired, settled, failed)


# --- confirmations to the company's application --------------------------------------------


def confirmation_body(view: TransactionView) -> bytes:
    document = {
        "event": CONFIRMATION_EVENT,
        "ticket_id": view.ticket,
        "state": view.state,
        "service_code": view.service_code,
        "references": [value for _, value in view.references],
        "amount": str(money.from_minor(view.amount_minor, view.currency)),
        "vat": str(money.from_minor(view.vat_minor, view.currency)),
        "currency": view.currency,
        "means": view.means,
        "bank": view.bank,
        "trace_code": view.trace_code,
        "pin": view.pin,
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ConfirmationReport:
    sent: int
    retrying: int
    failed: int


def deliver_confirmations(
    uow: UnitOfWork, sender: WebhookSender, *, clock: Clock, limit: int = 100
) -> ConfirmationReport:
    """Push final states to the company's confirmation URL, signed like the webhooks
    (`Recaudo-Signature` with the service's confirmation secret); retried with backoff."""
    sent = retrying = failed = 0
    for _ in range(limit):
        now = clock()
        with uow:
            tx = uow.session.scalar(
                select(CheckoutTransaction)
                .where(
                    CheckoutTransaction.confirmation_state == "pending",
                    CheckoutTransaction.confirmation_next_at <= now,
                )
                .order_by(CheckoutTransaction.confirmation_next_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if tx is None:
                break
            tx.confirmation_next_at = now + CONFIRMATION_LEASE
            service = uow.session.get(CheckoutService, tx.service_id)
            assert service is not None and tx.confirmation_url is not None
            url, secret, tx_id = tx.confirmation_url, service.confirmation_secret, tx.id
            body = confirmation_body(_view(uow, tx))
            uow.commit()
        result = sender.send(
            url,
            secret,
            event_type=CONFIRMATION_EVENT,
            delivery_id=tx_id,
            body=body,
            timestamp=int(now.timestamp()),
        )
        with uow:
            tx = _locked(uow, tx_id)
            tx.confirmation_attempts += 1
            if result.ok:
                tx.confirmation_state, tx.confirmation_next_at = "sent", None
                sent += 1
            elif tx.confirmation_attempts >= MAX_CONFIRMATION_ATTEMPTS:
                tx.confirmation_state, tx.confirmation_next_at = "failed", None
                failed += 1
            else:
                tx.confirmation_next_at = clock() + backoff(tx.confirmation_attempts)
                retrying += 1
            uow.commit()
    return ConfirmationReport(sent, retrying, failed)


def service_secret(uow: UnitOfWork, company_id: int, code: str, *, actor: Actor) -> str:
    """The HMAC secret a company's application verifies confirmations with (admin only)."""
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    with uow:
        return service_row(uow, company_id, code).confirmation_secret


# --- receipt e-mails ------------------------------------------------------------------------

# The company's e-mail delivery target (SMTP account) receipts are sent through.
RECEIPT_TARGET = "checkout"


def receipt_message(view: TransactionView, message_after: str | None) -> tuple[str, str]:
    """(subject, plain-text body) of the receipt e-mail, in Spanish."""
    lines = [
        f"Comprobante de pago - {view.service_name}",
        "",
        f"Ticket: {view.ticket}",
        "Estado: Aprobada",
    ]
    lines += [f"{title}: {value}" for title, value in view.references if value]
    amount = money.from_minor(view.amount_minor, view.currency)
    lines.append(f"Valor: {amount} {view.currency}")
    if view.vat_minor:
        lines.append(f"IVA incluido: {money.from_minor(view.vat_minor, view.currency)}")
    lines += [
        f"Medio de pago: {'PSE' if view.means == 'PSE' else 'Tarjeta'}",
        f"Banco: {view.bank or ''}",
        f"Código de seguimiento (CUS): {view.trace_code or ''}",
    ]
    if view.pin:
        lines.append(f"Número de PIN: {view.pin}")
    if view.warning:
        lines.append(view.warning)
    if view.finished_at is not None:
        lines.append(f"Fecha: {view.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    if message_after:
        lines += ["", message_after]
    return f"Comprobante de pago - ticket {view.ticket}", "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    sent: int
    failed: int


def send_receipts(uow: UnitOfWork, settings: Settings, *, limit: int = 50) -> ReceiptReport:
    """Send the receipt e-mails of OK tickets (payer when the service says so, and the
    company's address) through the company's mail target (`deliveries.company_mail_target`,
    the one named `checkout` first); one try each,
    a failure is logged and kept as `failed`."""
    sent = failed = 0
    with uow:
        ids = uow.session.scalars(
            select(CheckoutTransaction.id)
            .where(CheckoutTransaction.receipt_state == "pending")
            .order_by(CheckoutTransaction.id)
            .limit(limit)
        ).all()
    for tx_id in ids:
        with uow:
            tx = _locked(uow, tx_id)
            if tx.receipt_state != "pending":
                continue
            service = uow.session.get(CheckoutService, tx.service_id)
            assert service is not None
            recipients = [
                r
                for r in (
                    tx.payer_email if service.email_payer else None,
                    service.company_email,
                )
                if r
            ]
            target = deliveries.company_mail_target(
                uow, tx.company_id, preferred_name=RECEIPT_TARGET
            )
            subject, body = receipt_message(_view(uow, tx), service.message_after)
            config = deliveries.target_config(target, settings) if target is not None else None
            ticket = tx.ticket
        error = None
        if config is None:
            error = "no e-mail delivery target to send the receipt through"
        else:
            try:
                transfer.send_mail(config, recipients, subject, body)
            except transfer.TransferError as exc:
                error = str(exc)
        with uow:
            tx = _locked(uow, tx_id)
            tx.receipt_state = "sent" if error is None else "failed"
            uow.commit()
        if error is None:
            sent += 1
        else:
            failed += 1
            logger.warning("checkout receipt of ticket %s not sent: %s", ticket, error)
    return ReceiptReport(sent, failed)
