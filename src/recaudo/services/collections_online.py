"""Online collection through a bank channel: the debt query and the payment notification.

Contract-neutral: the channel package (`recaudo.channels.bancoestado`) parses the bank's
request into these calls and maps their results and errors to the bank's codes.

- `authenticate` finds the agreement a request speaks for and checks its credential.
- `query_debts` offers the customer's oldest-due open debts (at most five: the bank's
  settlement carries no more per payment) and records the quote under a new transaction
  id, valid for the agreement's quote time.
- `notify_payment` records the payment for a transaction exactly once. Money the bank
  collected is never refused: a payment that no longer matches its quote (debts paid or
  cancelled meanwhile, another total, a transaction never quoted, an unknown customer)
  is allocated as far as it can be, the rest is credit, and an exception says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.channel_store import (
    DebtState,
    Decide,
    NewAudit,
    NewPayment,
    NewQuote,
    Outcome,
    PaymentWrites,
    channel_store,
)
from recaudo.adapters.db.tables import ChannelAgreement, Company, Customer, Debt, Payment, Quote
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.passthrough import PassthroughClient, PassthroughUnavailable
from recaudo.domain import ids, money
from recaudo.domain.accounting_day import accounting_date
from recaudo.domain.debts import PAYABLE, DebtStatus, status_after_payment
from recaudo.domain.errors import (
    Conflict,
    InvalidNationalId,
    NotFound,
    RecaudoError,
    Unauthenticated,
    ValidationFailed,
)
from recaudo.domain.payments import PaymentMethod, PaymentStatus
from recaudo.services import audit, channel_cache, incidents
from recaudo.services.agreements import BANK, check_credentials, secret_prefix
from recaudo.services.calendar import accounting_date_of, calendar_of, years_around
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.customers import CustomerData, register_customer
from recaudo.services.exceptions import Reason, raise_exception
from recaudo.services.outbox import PAYMENT_APPLIED, payment_document
from recaudo.services.payments import (
    ApplyPayment,
    Settled,
    applied_snapshot,
    apply_payment,
    request_fingerprint,
)

MAX_DEBTS_PER_PAYMENT = 5
# How long a process trusts an agreement it looked up (see `channel_cache`).
AGREEMENT_TTL_S = 2.0
VIA = "pass-through"
_RUT_BODY = re.compile(r"^[0-9]{1,8}$")
_METHODS = {"caja-vecina": PaymentMethod.CASH, "internet": PaymentMethod.BANK_DEBIT}


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class NothingOwed(NotFound):
    code = "nothing_owed"


class CompanyUnavailable(RecaudoError):
    code = "company_unavailable"


@dataclass(frozen=True, slots=True)
class Caller:
    """The agreement a channel request speaks for, with what the request needs of it."""

    agreement_id: int
    company_id: int
    channel: str
    enabled: bool
    errors_as_http_200: bool
    quote_ttl_seconds: int
    cutoff: time
    company_available: bool
    unavailable_reason: str | None
    passthrough_url: str | None = None
    passthrough_timeout_ms: int = 3000
    # The company's, for the notification's hot path (no company read per request).
    company_slug: str = ""
    country: str = "CL"
    currency: str = "CLP"
    timezone: str = "America/Santiago"

    @property
    def actor(self) -> Actor:
        return Actor(f"channel:{BANK}:{self.agreement_id}", Role.OPERATOR, self.company_id)


@dataclass(frozen=True, slots=True)
class AgreementLookup:
    """What a request's URL says about its agreement, before the credential is checked."""

    errors_as_http_200: bool
    caller: Caller | None
    secret_hash: str | None
    ip_allowlist: list[str] | None
    allow_query_token: bool = False


def find_agreement(
    uow: UnitOfWork, company_slug: str, channel: str | None, secret: str | None
) -> AgreementLookup:
    """The agreement named by the URL (bank shapes) or by the secret's prefix (canonical)."""
    stmt = (
        select(
            ChannelAgreement.id,
            ChannelAgreement.company_id,
            ChannelAgreement.channel,
            ChannelAgreement.enabled,
            ChannelAgreement.errors_as_http_200,
            ChannelAgreement.quote_ttl_seconds,
            ChannelAgreement.cutoff,
            ChannelAgreement.secret_hash,
            ChannelAgreement.ip_allowlist,
            ChannelAgreement.allow_query_token,
            ChannelAgreement.passthrough_url,
            ChannelAgreement.passthrough_timeout_ms,
            Company.available,
            Company.unavailable_reason,
            Company.slug,
            Company.country,
            Company.currency,
            Company.timezone,
        )
        .join(Company, Company.id == ChannelAgreement.company_id)
        .where(Company.slug == company_slug, ChannelAgreement.bank == BANK)
    )
    if channel is not None:
        stmt = stmt.where(ChannelAgreement.channel == channel)
    else:
        prefix = secret_prefix(secret or "")
        if prefix is None:
            return AgreementLookup(True, None, None, None)
        stmt = stmt.where(ChannelAgreement.secret_prefix == prefix)
    row = uow.session.execute(stmt).first()
    if row is None:
        return AgreementLookup(True, None, None, None)
    caller = Caller(
        agreement_id=row.id,
        company_id=row.company_id,
        channel=row.channel,
        enabled=row.enabled,
        errors_as_http_200=row.errors_as_http_200,
        quote_ttl_seconds=row.quote_ttl_seconds,
        cutoff=row.cutoff,
        company_available=row.available,
        unavailable_reason=row.unavailable_reason,
        passthrough_url=row.passthrough_url,
        passthrough_timeout_ms=row.passthrough_timeout_ms,
        company_slug=row.slug,
        country=row.country,
        currency=row.currency,
        timezone=row.timezone,
    )
    return AgreementLookup(
        row.errors_as_http_200, caller, row.secret_hash, row.ip_allowlist, row.allow_query_token
    )


def authenticate(lookup: AgreementLookup, secret: str | None, client_ip: str | None) -> Caller:
    """The caller, or `Unauthenticated`: the same error whatever was wrong."""
    if lookup.caller is None or lookup.secret_hash is None:
        raise Unauthenticated("missing or wrong channel credential")
    check_credentials(lookup.secret_hash, lookup.ip_allowlist, secret, client_ip)
    return lookup.caller


def rut_candidates(raw: str) -> tuple[str, ...]:
    """The compact RUTs `raw` may mean: with its check digit, or a bare body without one.

    `12.345.678-5`, `12345678-5`, `123456785` carry the check digit (a wrong one is
    refused); a body of up to eight digits that is not itself a valid RUT is read as a
    RUT typed without its check digit.
    """
    text = raw.strip()
    if not text or len(text) > 30:
        raise InvalidNationalId("RUT must have 1 to 30 characters")
    found: list[str] = []
    if (quick := ids.quick_rut(text)) is not None:
        found.append(quick)
    else:
        try:
            found.append(ids.normalize(ids.IdType.RUT, text).value)
        except InvalidNationalId:
            if "-" in text:
                raise
    body = text.replace(".", "")
    if _RUT_BODY.match(body) and body.lstrip("0"):
        digits = body.lstrip("0")
        found.append(digits + ids.rut_check_digit(digits))
    if not found:
        raise InvalidNationalId("not a RUT")
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class _Found:
    id: int
    name: str
    national_id: str


def _customer(uow: UnitOfWork, company_id: int, candidates: tuple[str, ...]) -> _Found | None:
    """The customer behind the first candidate RUT that is one (Core: no ORM on the hot path)."""
    rows = {
        row.national_id: _Found(row.id, row.name, row.national_id)
        for row in uow.session.execute(
            select(Customer.id, Customer.name, Customer.national_id).where(
                Customer.company_id == company_id,
                Customer.id_type == ids.IdType.RUT.value,
                Customer.national_id.in_(candidates),
            )
        )
    }
    return next((rows[c] for c in candidates if c in rows), None)


def _formatted(compact: str) -> str:
    return f"{compact[:-1]}-{compact[-1]}"


@dataclass(frozen=True, slots=True)
class OfferedDebt:
    debt_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Quoted:
    transaction_id: str
    rut: str  # with hyphen and check digit, no dots
    name: str
    due_date: date
    debts: list[OfferedDebt]
    total: Decimal
    currency: str


def _refuse_if_unavailable(uow: UnitOfWork, caller: Caller, clock: Clock) -> None:
    if not caller.enabled:
        incidents.record_incident(
            uow,
            caller.company_id,
            caller.agreement_id,
            incidents.AGREEMENT_DISABLED,
            "debt query on a disabled agreement",
            clock,
        )
        raise CompanyUnavailable("this agreement is disabled")
    if not caller.company_available:
        incidents.record_incident(
            uow,
            caller.company_id,
            caller.agreement_id,
            incidents.UNAVAILABLE,
            f"debt query while unavailable: {caller.unavailable_reason or 'no reason given'}",
            clock,
        )
        raise CompanyUnavailable("the company is not available")


class OnlineChannel:
    """The online channel's per-process state: agreement cache, fast reads, group commit.

    Built once per process (`Container.online`). The debt query runs on the event loop:
    the agreement comes from a short-lived cache, the customer and their debts from one
    raw-driver read, and the quote row is group-committed with the other requests'
    quotes before the answer leaves (`adapters.db.channel_store`).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        passthrough: PassthroughClient | None = None,
        *,
        agreement_ttl_s: float = AGREEMENT_TTL_S,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.passthrough = passthrough
        self.agreement_ttl_s = agreement_ttl_s
        self.store = channel_store(engine)
        self._agreements: dict[tuple[str, str | None, str | None], tuple[float, AgreementLookup]]
        self._agreements = {}
        self._loading: dict[tuple[str, str | None, str | None], asyncio.Future[AgreementLookup]]
        self._loading = {}
        self._generation = channel_cache.generation()

    async def agreement(
        self, company_slug: str, channel: str | None, secret: str | None
    ) -> AgreementLookup:
        """The agreement a request speaks for, from the cache or the database.

        Entries live `agreement_ttl_s` seconds. When one expires under load, only one
        request per key goes to the database (in a thread); the others wait for its
        answer instead of all asking at once.
        """
        if self._generation != channel_cache.generation():
            self._agreements.clear()
            self._generation = channel_cache.generation()
        key = (company_slug, channel, None if channel else secret_prefix(secret or ""))
        hit = self._agreements.get(key)
        if hit is not None and hit[0] >= monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(
                self._load_agreement(key, company_slug, channel, secret)
            )
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(pending)

    async def _load_agreement(
        self,
        key: tuple[str, str | None, str | None],
        company_slug: str,
        channel: str | None,
        secret: str | None,
    ) -> AgreementLookup:
        generation = channel_cache.generation()
        lookup = await asyncio.to_thread(self._find_agreement, company_slug, channel, secret)
        if generation == channel_cache.generation():  # no change committed meanwhile
            if len(self._agreements) > 10_000:  # URLs are attacker-chosen: stay bounded
                self._agreements.clear()
            self._agreements[key] = (monotonic() + self.agreement_ttl_s, lookup)
        return lookup

    def _find_agreement(
        self, company_slug: str, channel: str | None, secret: str | None
    ) -> AgreementLookup:
        with UnitOfWork(self.engine, write=False) as uow:
            return find_agreement(uow, company_slug, channel, secret)

    async def quote(self, caller: Caller, raw_rut: str) -> Quoted:
        """Offer the customer's oldest-due open debts (at most five) and record the quote.

        For a pass-through agreement the company's own endpoint says what is owed; those
        debts are mirrored into Recaudo first, so that the quote and the payment that
        follows work exactly as for debts loaded from a file.
        """
        clock = self.clock
        if not caller.enabled or not caller.company_available:
            await asyncio.to_thread(_refuse_if_unavailable, UnitOfWork(self.engine), caller, clock)
        candidates = rut_candidates(raw_rut)
        listed: list[str] | None = None
        if caller.passthrough_url is not None:
            listed = await asyncio.to_thread(
                _mirror, UnitOfWork(self.engine), caller, candidates, self.passthrough, clock
            )
        found = await self.store.customer_debts(
            caller.company_id, candidates, MAX_DEBTS_PER_PAYMENT, listed
        )
        if found is None:
            raise CustomerNotFound("no customer with this RUT")
        if not found.debts:
            raise NothingOwed("this customer owes nothing")
        debts = found.debts
        currency = debts[0].currency
        total_minor = sum(d.open_minor for d in debts)
        due = min(d.due_date for d in debts)
        now = clock()
        transaction_id = _time_ordered_id(now)
        await self.store.add_quote(
            NewQuote(
                company_id=caller.company_id,
                agreement_id=caller.agreement_id,
                transaction_id=transaction_id,
                customer_id=found.customer_id,
                debts=[d.external_id for d in debts],
                total_minor=total_minor,
                currency=currency,
                due_date=due,
                created_at=now,
                expires_at=now + timedelta(seconds=caller.quote_ttl_seconds),
            )
        )
        return Quoted(
            transaction_id=transaction_id,
            rut=_formatted(found.national_id),
            name=found.name,
            due_date=due,
            debts=[
                OfferedDebt(d.external_id, money.from_minor(d.open_minor, currency)) for d in debts
            ],
            total=money.from_minor(total_minor, currency),
            currency=currency,
        )

    async def notify(self, caller: Caller, note: Notification) -> None:
        """Record the payment of `note` once (see `notify_payment`), the short way if it can.

        The bank's normal flow is a payment of exactly what its quote offered, for the
        quoted customer, whose debts still owe exactly that: the short way applies it in
        one transaction on the event loop (`ChannelStore.apply_payment`), writing the rows
        `apply_payment` would write (a test compares both row by row). Anything else, a
        replay, a changed debt, another amount, no quote, goes to `notify_payment` in a
        thread, which decides every case and raises the exceptions.
        """
        plan = await self._quick_plan(caller, note)
        if plan is not None:
            payment, refs, decide = plan
            outcome = await self.store.apply_payment(payment, refs, decide)
            if outcome is Outcome.APPLIED:
                return
        await asyncio.to_thread(
            notify_payment, UnitOfWork(self.engine), caller, note, clock=self.clock
        )

    async def _quick_plan(
        self, caller: Caller, note: Notification
    ) -> tuple[NewPayment, list[str], Decide] | None:
        transaction_id = note.transaction_id.strip()
        currency = caller.currency
        if not transaction_id or len(transaction_id) > 40:
            return None  # the general path words the error
        try:
            amount_minor = money.to_minor(money.parse_amount(note.total, currency), currency)
            candidates = rut_candidates(note.raw_rut)
        except RecaudoError:
            return None
        zone = ZoneInfo(caller.timezone)
        paid_at = note.paid_at_local.replace(tzinfo=zone).astimezone(UTC)
        local = paid_at.astimezone(zone)
        years = years_around(local.date())
        facts = await self.store.notification_facts(
            caller.company_id,
            BANK,
            transaction_id,
            candidates,
            date(years.start, 1, 1),
            date(years.stop, 1, 1),
        )
        customer = facts.customer
        if (
            facts.payment_exists
            or facts.quote_customer_id is None
            or customer is None
            or customer[0] != facts.quote_customer_id
            or facts.quote_total_minor != amount_minor
            or facts.quote_currency != currency
            or amount_minor <= 0
        ):
            return None
        calendar = calendar_of(caller.country, years, facts.company_holidays)
        accounting = accounting_date(
            local.replace(tzinfo=None), caller.cutoff, calendar.is_business_day
        )
        refs = facts.quote_debts
        method = _METHODS.get(caller.channel, PaymentMethod.OTHER)
        actor = caller.actor.label
        clock = self.clock
        now = clock()
        payment = NewPayment(
            company_id=caller.company_id,
            customer_id=customer[0],
            channel=BANK,
            method=method.value,
            external_id=transaction_id,
            request_fingerprint=request_fingerprint(customer[0], amount_minor, method, tuple(refs)),
            amount_minor=amount_minor,
            currency=currency,
            paid_at=paid_at,
            status=PaymentStatus.APPLIED.value,
            recorded_by=actor,
            created_at=now,
            agreement_id=caller.agreement_id,
            accounting_date=accounting,
        )

        def decide(debts: list[DebtState]) -> Callable[[int], PaymentWrites] | None:
            by_ref = {d.external_id: d for d in debts}
            if len(by_ref) != len(refs) or set(by_ref) != set(refs):
                return None
            ordered = [by_ref[ref] for ref in refs]  # the quote's order, as the general path
            if any(
                d.customer_id != payment.customer_id
                or DebtStatus(d.status) not in PAYABLE
                or d.amount_minor <= d.paid_minor
                for d in ordered
            ):
                return None
            if sum(d.amount_minor - d.paid_minor for d in ordered) != amount_minor:
                return None

            def writes(payment_id: int) -> PaymentWrites:
                return _quick_writes(caller, customer, payment, payment_id, ordered, clock)

            return writes

        return payment, refs, decide

    async def close(self) -> None:
        await self.store.close()


def _quick_writes(
    caller: Caller,
    customer: tuple[int, str, str, str],
    payment: NewPayment,
    payment_id: int,
    debts: list[DebtState],
    clock: Clock,
) -> PaymentWrites:
    """The rows `apply_payment` writes for a payment that pays `debts` in full, no credit.

    Same rows, same order, same audit and event content (see the equivalence test).
    """
    actor = payment.recorded_by
    audit_rows: list[NewAudit] = []
    statuses: list[tuple[int, str]] = []
    for debt in debts:
        current = DebtStatus(debt.status)
        new = status_after_payment(debt.amount_minor, debt.amount_minor, current)
        if new is not current:
            audit_rows.append(
                NewAudit(
                    company_id=caller.company_id,
                    occurred_at=clock(),
                    actor=actor,
                    action="debt.status_changed",
                    entity_type="debt",
                    entity_id=str(debt.id),
                    before={"status": debt.status},
                    after={"status": new.value, "payment_id": payment_id},
                )
            )
            statuses.append((debt.id, new.value))
    updated_at = clock()
    allocations = [(d.id, d.amount_minor - d.paid_minor) for d in debts]
    lines = [(d.external_id, a) for d, (_, a) in zip(debts, allocations, strict=True)]
    audit_rows.append(
        NewAudit(
            company_id=caller.company_id,
            occurred_at=clock(),
            actor=actor,
            action="payment.applied",
            entity_type="payment",
            entity_id=str(payment_id),
            before=None,
            after=applied_snapshot(
                payment.amount_minor, payment.currency, payment.status, lines, credit_minor=0
            ),
        )
    )
    payload = payment_document(
        payment_id=payment_id,
        company_slug=caller.company_slug,
        customer=(customer[3], customer[2], customer[1]),
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        channel=payment.channel,
        method=payment.method,
        external_id=payment.external_id,
        status=payment.status,
        paid_at=payment.paid_at,
        allocations=lines,
        credit_minor=0,
        exception_reason=None,
        reversal_reason=None,
    )
    return PaymentWrites(
        allocations=allocations,
        debt_status=statuses,
        debts_updated_at=updated_at,
        audit=audit_rows,
        event_type=PAYMENT_APPLIED,
        event_payload=payload,
        event_created_at=clock(),
    )


def _time_ordered_id(now: datetime) -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Quote rows are keyed by it; ids that grow with time land at the end of the unique
    index instead of at a random page, which makes each insert several times cheaper
    (the standard library has `uuid.uuid7` only from Python 3.14).
    """
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64)
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def _passthrough_down(uow: UnitOfWork, caller: Caller, cause: str, clock: Clock) -> NoReturn:
    incidents.record_incident(
        uow,
        caller.company_id,
        caller.agreement_id,
        incidents.PASSTHROUGH_DOWN,
        f"pass-through debt query failed: {cause}",
        clock,
    )
    raise CompanyUnavailable("the company's debt endpoint is not available")


def _mirror(
    uow: UnitOfWork,
    caller: Caller,
    candidates: tuple[str, ...],
    passthrough: PassthroughClient | None,
    clock: Clock,
) -> list[str]:
    """Ask the company for the customer's debts and mirror them; their ids, payable only."""
    assert caller.passthrough_url is not None
    if passthrough is None:
        _passthrough_down(uow, caller, "no pass-through client configured", clock)
    with uow:
        known = _customer(uow, caller.company_id, candidates)
        rut = known.national_id if known is not None else candidates[0]
        company = uow.session.get(Company, caller.company_id)
        assert company is not None
        currency = company.currency
    try:
        answer = passthrough.fetch_debts(
            caller.passthrough_url, _formatted(rut), caller.passthrough_timeout_ms / 1000
        )
    except PassthroughUnavailable as exc:
        _passthrough_down(uow, caller, exc.cause, clock)
    if answer is None:
        raise CustomerNotFound("the company does not know this RUT")
    try:
        amounts = [
            money.to_minor(money.parse_amount(d.amount, currency), currency) for d in answer.debts
        ]
    except ValidationFailed as exc:
        _passthrough_down(uow, caller, f"unusable amount: {exc.message}", clock)
    with uow:
        company = uow.session.get(Company, caller.company_id)
        assert company is not None
        customer = register_customer(
            uow,
            company,
            CustomerData(rut, answer.customer_name[:200]),
            actor=caller.actor,
            clock=clock,
        )
        refs = [d.debt_id for d in answer.debts]
        existing = {
            d.external_id: d
            for d in uow.session.scalars(
                select(Debt)
                .where(Debt.company_id == company.id, Debt.external_id.in_(refs))
                .order_by(Debt.id)
                .with_for_update()
            )
        }
        listed: list[str] = []
        now = clock()
        for item, amount_minor in zip(answer.debts, amounts, strict=True):
            row = existing.get(item.debt_id)
            if row is None:
                row = Debt(
                    company_id=company.id,
                    customer_id=customer.id,
                    external_id=item.debt_id,
                    concept=item.concept or None,
                    amount_minor=amount_minor,
                    currency=currency,
                    issue_date=None,
                    due_date=item.due_date,
                    status=DebtStatus.OPEN.value,
                    created_at=now,
                    updated_at=now,
                )
                uow.session.add(row)
                uow.session.flush()
                existing[item.debt_id] = row
                audit.record(
                    uow,
                    actor=caller.actor,
                    clock=clock,
                    company_id=company.id,
                    action="debt.created",
                    entity_type="debt",
                    entity_id=row.id,
                    after={
                        "debt_id": item.debt_id,
                        "amount_minor": amount_minor,
                        "via": "pass-through",
                    },
                )
            elif row.customer_id != customer.id or DebtStatus(row.status) not in PAYABLE:
                continue  # another customer's id, or settled here: never offered twice
            elif (row.amount_minor, row.due_date) != (amount_minor, item.due_date):
                before = {"amount_minor": row.amount_minor, "due_date": row.due_date}
                row.amount_minor, row.due_date, row.updated_at = amount_minor, item.due_date, now
                audit.record(
                    uow,
                    actor=caller.actor,
                    clock=clock,
                    company_id=company.id,
                    action="debt.updated",
                    entity_type="debt",
                    entity_id=row.id,
                    before=before,
                    after={
                        "amount_minor": amount_minor,
                        "due_date": item.due_date,
                        "via": "pass-through",
                    },
                )
            listed.append(item.debt_id)
        uow.commit()
    return listed


@dataclass(frozen=True, slots=True)
class Notification:
    """A payment the bank collected, as the channel understood it."""

    transaction_id: str
    raw_rut: str
    paid_at_local: datetime  # naive, the company's local time
    total: str
    debts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notified:
    payment_id: int
    replayed: bool
    exception_reason: str | None = None
    accounting_date: date | None = None


@dataclass(slots=True)
class _Check:
    """What is already known to be wrong before the payment is applied."""

    reasons: list[tuple[Reason, str]] = field(default_factory=list)
    quote_total: int | None = None


def _existing(uow: UnitOfWork, company_id: int, transaction_id: str) -> Payment | None:
    return uow.session.scalar(
        select(Payment).where(
            Payment.company_id == company_id,
            Payment.channel == BANK,
            Payment.external_id == transaction_id,
        )
    )


def notify_payment(
    uow: UnitOfWork, caller: Caller, note: Notification, *, clock: Clock
) -> Notified:
    """Record the payment of `note` once; a replay changes nothing and answers the same."""
    transaction_id = note.transaction_id.strip()
    if not transaction_id or len(transaction_id) > 40:
        raise ValidationFailed("transaccion must have 1 to 40 characters", field="transaccion")
    with uow:
        if (done := _existing(uow, caller.company_id, transaction_id)) is not None:
            return Notified(done.id, True, done.exception_reason, done.accounting_date)
        company = uow.session.get(Company, caller.company_id)
        assert company is not None
        amount = money.parse_amount(note.total, company.currency)
        amount_minor = money.to_minor(amount, company.currency)
        if amount_minor <= 0:
            raise ValidationFailed("total must be greater than zero", field="total")
        paid_at = note.paid_at_local.replace(tzinfo=ZoneInfo(company.timezone)).astimezone(UTC)
        accounting = accounting_date_of(uow, company, paid_at, caller.cutoff)
        quote = uow.session.scalar(
            select(Quote).where(
                Quote.company_id == caller.company_id, Quote.transaction_id == transaction_id
            )
        )
        try:
            by_rut = _customer(uow, caller.company_id, rut_candidates(note.raw_rut))
        except InvalidNationalId:
            by_rut = None
        check = _Check()
        currency = company.currency
        if quote is not None:
            customer_id: int | None = quote.customer_id
            debts = tuple(quote.debts)
            check.quote_total = quote.total_minor
            if by_rut is None or by_rut.id != quote.customer_id:
                check.reasons.append(
                    (Reason.CUSTOMER_MISMATCH, "rut_cliente is not the quoted customer's")
                )
            if amount_minor != quote.total_minor:
                quoted = money.from_minor(quote.total_minor, currency)
                check.reasons.append(
                    (Reason.AMOUNT_MISMATCH, f"paid {amount} but the quote was for {quoted}")
                )
        else:
            customer_id = by_rut.id if by_rut is not None else None
            debts = _own_debts(uow, caller.company_id, customer_id, note.debts)
            check.reasons.append(
                (Reason.UNKNOWN_TRANSACTION, f"transaccion {transaction_id} was never quoted")
            )
        if customer_id is None:
            return _record_unmatched(
                uow, caller, transaction_id, amount_minor, currency, paid_at, accounting, clock
            )

    def before_commit(uow: UnitOfWork, settled: Settled) -> None:
        reasons = list(check.reasons)
        if settled.skipped:
            reasons.append(
                (
                    Reason.DEBTS_NOT_PAYABLE,
                    "no longer payable (paid or cancelled meanwhile): "
                    + ", ".join(settled.skipped),
                )
            )
        if settled.credit_minor and not reasons:
            reasons.append((Reason.DEBTS_CHANGED, "the quoted debts owe less than the quote"))
        if not reasons:
            return
        detail = "; ".join(text for _, text in reasons)
        detail += f"; credited {money.from_minor(settled.credit_minor, currency)}"
        raise_exception(
            uow, settled.payment, reasons[0][0], detail, actor=caller.actor, clock=clock
        )
        settled.payment.exception_reason = reasons[0][0].value

    cmd = ApplyPayment(
        company_id=caller.company_id,
        customer_id=customer_id,
        amount=amount,
        method=_METHODS.get(caller.channel, PaymentMethod.OTHER),
        external_id=transaction_id,
        channel=BANK,
        debts=debts,
        paid_at=paid_at,
        strict=False,
        partial=True,
        agreement_id=caller.agreement_id,
        accounting_date=accounting,
    )
    try:
        applied = apply_payment(
            uow, cmd, actor=caller.actor, clock=clock, before_commit=before_commit
        )
    except Conflict:
        # The same transaccion with another body: the bank's payment is the first one.
        with uow:
            done = _existing(uow, caller.company_id, transaction_id)
            if done is None:
                raise
            return Notified(done.id, True, done.exception_reason, done.accounting_date)
    view = applied.payment
    return Notified(view.id, applied.replayed, view.exception_reason, view.accounting_date)


def _own_debts(
    uow: UnitOfWork, company_id: int, customer_id: int | None, refs: tuple[str, ...]
) -> tuple[str, ...]:
    """The named debts if they are all the customer's; otherwise none (oldest due first)."""
    if customer_id is None or not refs or len(set(refs)) != len(refs):
        return ()
    found = set(
        uow.session.scalars(
            select(Debt.external_id).where(
                Debt.company_id == company_id,
                Debt.customer_id == customer_id,
                Debt.external_id.in_(refs),
            )
        )
    )
    return refs if found == set(refs) else ()


def _record_unmatched(
    uow: UnitOfWork,
    caller: Caller,
    transaction_id: str,
    amount_minor: int,
    currency: str,
    paid_at: datetime,
    accounting: date,
    clock: Clock,
) -> Notified:
    """A payment for nobody Recaudo knows: kept whole, as an exception, for a person."""
    actor = caller.actor
    now = clock()
    payment = Payment(
        company_id=caller.company_id,
        customer_id=None,
        channel=BANK,
        method=_METHODS.get(caller.channel, PaymentMethod.OTHER).value,
        external_id=transaction_id,
        request_fingerprint=hashlib.sha256(f"{transaction_id}:{amount_minor}".encode()).hexdigest(),
        amount_minor=amount_minor,
        currency=currency,
        paid_at=paid_at,
        status=PaymentStatus.EXCEPTION.value,
        exception_reason=Reason.UNKNOWN_CUSTOMER.value,
        recorded_by=actor.label,
        created_at=now,
        agreement_id=caller.agreement_id,
        accounting_date=accounting,
    )
    uow.session.add(payment)
    try:
        uow.session.flush()
    except IntegrityError:
        uow.rollback()
        done = _existing(uow, caller.company_id, transaction_id)
        assert done is not None
        return Notified(done.id, True, done.exception_reason, done.accounting_date)
    detail = (
        f"transaccion {transaction_id} was never quoted and rut_cliente is no customer's; "
        f"{money.from_minor(amount_minor, currency)} held unallocated"
    )
    raise_exception(uow, payment, Reason.UNKNOWN_CUSTOMER, detail, actor=actor, clock=clock)
    audit.record(
        uow,
        actor=actor,
        clock=clock,
        company_id=caller.company_id,
        action="payment.exception",
        entity_type="payment",
        entity_id=payment.id,
        after={"amount": str(money.from_minor(amount_minor, currency)), "reason": detail},
    )
    uow.commit()
    return Notified(payment.id, False, payment.exception_reason, accounting)
