"""Payment coupons: printed with a GS1-128 barcode, paid at a bank branch or a correspondent.

A service that allows coupons (`checkout_services.allows_coupon`) has coupon settings:
the biller's GLN (415), the correspondent agreement code (the contract's `refId`) and
how many days a coupon stays payable. Issuing a coupon for a checkout transaction that
is still `CREATED` moves it to `CAPTURED` (a final state) and stores what the barcode
carries, in one database transaction. The coupon number is the transaction's ticket
on 12 digits: unique per company without a sequence of its own, and it is the (8020)
payment reference a cashier types when the barcode does not scan.

A correspondent reads a coupon (`read_coupon`) and applies it (`apply_coupon`); the
money goes through `services.payments.apply_payment` (channel `corresponsal`, the
correspondent's transaction id as external id), so a replayed apply finds the same
payment and answers the same. A scanned barcode must match its coupon exactly (GLN,
reference, amount, due date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters import pdf
from recaudo.adapters.db.tables import (
    CheckoutService,
    CheckoutTransaction,
    Company,
    Coupon,
    CouponSettings,
    Customer,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import checkout as rules
from recaudo.domain import money
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.payments import PaymentMethod
from recaudo.formats import gs1_128
from recaudo.formats.gs1_128 import PaymentCode
from recaudo.services import audit
from recaudo.services.context import Actor, Clock
from recaudo.services.payments import ApplyPayment, Settled, apply_payment

CHANNEL = "corresponsal"
NUMBER_DIGITS = 12
AMOUNT_WIDTH = 10
MAX_DUE_DAYS = 365


@dataclass(frozen=True, slots=True)
class CouponConfig:
    gln: str
    agreement_code: str
    due_days: int = 30


@dataclass(frozen=True, slots=True)
class CouponSettingsView:
    service_code: str
    gln: str
    agreement_code: str
    due_days: int


@dataclass(frozen=True, slots=True)
class CouponView:
    number: str
    ticket: int
    service_code: str
    service_name: str
    references: tuple[tuple[str, str], ...]
    amount: Money
    due_date: date
    gln: str
    element_string: str
    human_readable: str
    created_at: datetime
    state: str  # ISSUED | PAID
    payment_id: int | None
    approval_id: str | None
    paid_at: datetime | None
    customer_name: str | None


def _company(uow: UnitOfWork, company_id: int, actor: Actor) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None or not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    return company


def _service(uow: UnitOfWork, company_id: int, code: str) -> CheckoutService:
    service = uow.session.scalar(
        select(CheckoutService).where(
            CheckoutService.company_id == company_id, CheckoutService.code == code
        )
    )
    if service is None:
        raise NotFound(f"no service {code!r}", field="service")
    return service


def _check_config(cfg: CouponConfig) -> CouponConfig:
    gs1_128.check_gln(cfg.gln)
    code = cfg.agreement_code.strip()
    if not code or len(code) > 20 or not code.isdigit():
        raise ValidationFailed("the agreement code is 1 to 20 digits", field="agreement_code")
    if not 1 <= cfg.due_days <= MAX_DUE_DAYS:
        raise ValidationFailed(
            f"a coupon is payable for 1 to {MAX_DUE_DAYS} days", field="due_days"
        )
    return CouponConfig(cfg.gln, code, cfg.due_days)


def configure_coupons(
    uow: UnitOfWork,
    company_id: int,
    service_code: str,
    cfg: CouponConfig,
    *,
    actor: Actor,
    clock: Clock,
) -> CouponSettingsView:
    """Set (or change) a service's GLN, correspondent agreement code and payable days."""
    actor.require_write()
    cfg = _check_config(cfg)
    with uow:
        _company(uow, company_id, actor)
        service = _service(uow, company_id, service_code)
        if not service.allows_coupon:
            raise Conflict(f"service {service_code!r} does not allow coupons", field="service")
        taken = uow.session.scalar(
            select(CouponSettings).where(
                CouponSettings.company_id == company_id,
                CouponSettings.agreement_code == cfg.agreement_code,
                CouponSettings.service_id != service.id,
            )
        )
        if taken is not None:
            raise Conflict(
                f"agreement code {cfg.agreement_code} is another service's",
                field="agreement_code",
            )
        row = uow.session.get(CouponSettings, service.id)
        before = None
        if row is None:
            row = CouponSettings(service_id=service.id, company_id=company_id)
            uow.session.add(row)
        else:
            before = {
                "gln": row.gln,
                "agreement_code": row.agreement_code,
                "due_days": row.due_days,
            }
        row.gln, row.agreement_code, row.due_days = cfg.gln, cfg.agreement_code, cfg.due_days
        row.updated_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="coupon_settings.saved",
            entity_type="checkout_service",
            entity_id=service.id,
            before=before,
            after={"gln": cfg.gln, "agreement_code": cfg.agreement_code, "due_days": cfg.due_days},
        )
        uow.commit()
        return CouponSettingsView(service.code, cfg.gln, cfg.agreement_code, cfg.due_days)


def payment_code(coupon: Coupon) -> PaymentCode:
    """What the coupon's barcode carries: 3900 for whole amounts, 390e otherwise."""
    exp = money.exponent(coupon.currency)
    amount = money.from_minor(coupon.amount_minor, coupon.currency)
    decimals = 0 if coupon.amount_minor % (10**exp) == 0 else exp
    return PaymentCode(
        gln=coupon.gln,
        reference=coupon.number,
        amount=amount.quantize(Decimal(1)) if decimals == 0 else amount,
        due_date=coupon.due_date,
        decimals=decimals,
        amount_width=AMOUNT_WIDTH,
    )


def _customer_name(uow: UnitOfWork, tx: CheckoutTransaction) -> str | None:
    if tx.customer_id is None:
        return None
    customer = uow.session.get(Customer, tx.customer_id)
    return customer.name if customer is not None else None


def _view(uow: UnitOfWork, coupon: Coupon) -> CouponView:
    service = uow.session.get(CheckoutService, coupon.service_id)
    tx = uow.session.get(CheckoutTransaction, coupon.transaction_id)
    assert service is not None and tx is not None
    return CouponView(
        number=coupon.number,
        ticket=tx.ticket,
        service_code=service.code,
        service_name=service.name,
        references=tuple((str(t), str(v)) for t, v in coupon.references),
        amount=Money(coupon.amount_minor, coupon.currency),
        due_date=coupon.due_date,
        gln=coupon.gln,
        element_string=coupon.element_string,
        human_readable=coupon.human_readable,
        created_at=coupon.created_at,
        state="PAID" if coupon.payment_id is not None else "ISSUED",
        payment_id=coupon.payment_id,
        approval_id=coupon.approval_id,
        paid_at=coupon.paid_at,
        customer_name=_customer_name(uow, tx),
    )


def issue_coupon(
    uow: UnitOfWork, company_id: int, ticket: int, *, actor: Actor, clock: Clock
) -> CouponView:
    """The coupon of a `CREATED` transaction, which becomes `CAPTURED`.

    Issuing again for a transaction that already has its coupon answers that coupon.
    """
    actor.require_write()
    try:
        return _issue(uow, company_id, ticket, actor=actor, clock=clock)
    except IntegrityError:
        # Two requests raced for the same transaction: the loser answers the winner's coupon.
        with uow:
            existing = _coupon_of_ticket(uow, company_id, ticket)
            if existing is None:
                raise
            return _view(uow, existing)


def _coupon_of_ticket(uow: UnitOfWork, company_id: int, ticket: int) -> Coupon | None:
    return uow.session.scalar(
        select(Coupon)
        .join(CheckoutTransaction, CheckoutTransaction.id == Coupon.transaction_id)
        .where(Coupon.company_id == company_id, CheckoutTransaction.ticket == ticket)
    )


def _issue(
    uow: UnitOfWork, company_id: int, ticket: int, *, actor: Actor, clock: Clock
) -> CouponView:
    with uow:
        company = _company(uow, company_id, actor)
        tx = uow.session.scalar(
            select(CheckoutTransaction)
            .where(
                CheckoutTransaction.company_id == company_id, CheckoutTransaction.ticket == ticket
            )
            .with_for_update()
        )
        if tx is None:
            raise NotFound(f"no transaction with ticket {ticket}", field="ticket")
        existing = uow.session.scalar(select(Coupon).where(Coupon.transaction_id == tx.id))
        if existing is not None:
            return _view(uow, existing)
        service = uow.session.get(CheckoutService, tx.service_id)
        assert service is not None
        if not service.allows_coupon:
            raise Conflict(f"service {service.code!r} does not allow coupons", field="service")
        settings = uow.session.get(CouponSettings, service.id)
        if settings is None:
            raise Conflict(
                f"service {service.code!r} has no coupon settings (GLN, agreement code)",
                field="service",
            )
        if tx.amount_minor <= 0:
            raise Conflict("a coupon needs an amount to pay", field="amount")
        tx.state = rules.next_state(tx.state, rules.CAPTURED)
        now = clock()
        tx.finished_at = now
        tx.updated_at = now
        today = now.astimezone(ZoneInfo(company.timezone)).date()
        coupon = Coupon(
            company_id=company_id,
            number=str(tx.ticket).rjust(NUMBER_DIGITS, "0"),
            service_id=service.id,
            transaction_id=tx.id,
            references=[[str(r.get("title", "")), str(r.get("value", ""))] for r in tx.references],
            amount_minor=tx.amount_minor,
            currency=tx.currency,
            due_date=today + timedelta(days=settings.due_days),
            gln=settings.gln,
            created_at=now,
        )
        code = payment_code(coupon)
        coupon.element_string = code.element_string()
        coupon.human_readable = code.human_readable()
        uow.session.add(coupon)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="coupon.issued",
            entity_type="coupon",
            entity_id=coupon.id,
            after={
                "number": coupon.number,
                "ticket": tx.ticket,
                "amount_minor": coupon.amount_minor,
                "due_date": coupon.due_date.isoformat(),
                "barcode": coupon.human_readable,
            },
        )
        view = _view(uow, coupon)
        uow.commit()
        return view


def _by_number(uow: UnitOfWork, company_id: int, number: str) -> Coupon:
    coupon = uow.session.scalar(
        select(Coupon).where(Coupon.company_id == company_id, Coupon.number == number)
    )
    if coupon is None:
        raise NotFound(f"no coupon {number!r}", field="number")
    return coupon


def get_coupon(uow: UnitOfWork, company_id: int, number: str, *, actor: Actor) -> CouponView:
    with uow:
        _company(uow, company_id, actor)
        return _view(uow, _by_number(uow, company_id, number))


def render_pdf(uow: UnitOfWork, company_id: int, number: str, *, actor: Actor) -> bytes:
    """The coupon's PDF (reportlab), barcode included."""
    with uow:
        company = _company(uow, company_id, actor)
        coupon = _by_number(uow, company_id, number)
        view = _view(uow, coupon)
        doc = pdf.CouponDocument(
            company_name=company.legal_name,
            company_tax_id=company.tax_id or "",
            service_name=view.service_name,
            number=view.number,
            amount_text=format_amount(view.amount),
            due_date=view.due_date,
            code=payment_code(coupon),
            references=view.references,
            issued_on=view.created_at.astimezone(ZoneInfo(company.timezone)).date(),
        )
    return pdf.coupon_pdf(doc)


def format_amount(amount: Money) -> str:
    """`$ 1.168.375` or `$ 1.168.375,50`: Colombian grouping, decimals only when there are."""
    value = money.from_minor(amount.minor, amount.currency)
    units = int(value)
    cents = amount.minor - units * 10 ** money.exponent(amount.currency)
    text = f"{units:,}".replace(",", ".")
    if cents:
        text += "," + str(cents).rjust(money.exponent(amount.currency), "0")
    return f"$ {text}"


# --- the correspondent's read and apply ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CouponLookup:
    """How a correspondent names a coupon: agreement and reference, and what it read.

    `scanned` is the barcode read at the till, `due_date` the date it says the coupon is
    payable until, `amount` the amount it read (None or zero: typed by hand); each, when
    given, must be the coupon's.
    """

    agreement_code: str
    reference: str
    scanned: PaymentCode | None = None
    due_date: date | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CouponDue:
    coupon: CouponView
    holder: str


@dataclass(frozen=True, slots=True)
class CouponPaid:
    coupon: CouponView
    holder: str
    replayed: bool


def _find(uow: UnitOfWork, company_id: int, lookup: CouponLookup, now: datetime) -> Coupon:
    settings = uow.session.scalar(
        select(CouponSettings).where(
            CouponSettings.company_id == company_id,
            CouponSettings.agreement_code == lookup.agreement_code.strip(),
        )
    )
    if settings is None:
        raise NotFound(f"no agreement {lookup.agreement_code.strip()!r}", field="refId")
    reference = lookup.reference.strip()
    if reference.isdigit():
        reference = reference.rjust(NUMBER_DIGITS, "0")
    coupon = uow.session.scalar(
        select(Coupon).where(
            Coupon.company_id == company_id,
            Coupon.service_id == settings.service_id,
            Coupon.number == reference,
        )
    )
    if coupon is None:
        raise NotFound(f"no coupon {lookup.reference.strip()!r}", field="reference")
    if lookup.scanned is not None:
        expected = payment_code(coupon)
        if lookup.scanned != expected:
            wrong = [
                name
                for name, a, b in (
                    ("GLN", lookup.scanned.gln, expected.gln),
                    ("reference", lookup.scanned.reference, expected.reference),
                    ("amount", lookup.scanned.amount, expected.amount),
                    ("due date", lookup.scanned.due_date, expected.due_date),
                )
                if a != b
            ]
            raise ValidationFailed(
                "the scanned barcode does not match its coupon: " + ", ".join(wrong),
                field="eanCode",
            )
    if lookup.due_date is not None and lookup.due_date != coupon.due_date:
        raise ValidationFailed(
            f"coupon {coupon.number} is due {coupon.due_date.isoformat()}, "
            f"not {lookup.due_date.isoformat()}",
            field="effDt",
        )
    expected_amount = money.from_minor(coupon.amount_minor, coupon.currency)
    if lookup.amount and lookup.amount != expected_amount:
        raise ValidationFailed(
            f"coupon {coupon.number} is paid with exactly {expected_amount}, not {lookup.amount}",
            field="totalCurAmt",
        )
    return coupon


def _holder(uow: UnitOfWork, coupon: Coupon) -> str:
    tx = uow.session.get(CheckoutTransaction, coupon.transaction_id)
    assert tx is not None
    name = _customer_name(uow, tx)
    if name:
        return name
    return str(coupon.references[0][1]) if coupon.references else ""


def _payable(coupon: Coupon, company: Company, now: datetime) -> None:
    today = now.astimezone(ZoneInfo(company.timezone)).date()
    if today > coupon.due_date:
        raise Conflict(
            f"coupon {coupon.number} was payable until {coupon.due_date.isoformat()}",
            field="dueDt",
        )


def read_coupon(
    uow: UnitOfWork, company_id: int, lookup: CouponLookup, *, actor: Actor, clock: Clock
) -> CouponDue:
    """What a correspondent shows the payer before taking the money."""
    with uow:
        company = _company(uow, company_id, actor)
        coupon = _find(uow, company_id, lookup, clock())
        if coupon.payment_id is not None:
            raise Conflict(f"coupon {coupon.number} is already paid", field="reference")
        _payable(coupon, company, clock())
        return CouponDue(_view(uow, coupon), _holder(uow, coupon))


@dataclass(frozen=True, slots=True)
class ApplyCoupon:
    lookup: CouponLookup
    tx_id: str


def apply_coupon(
    uow: UnitOfWork, company_id: int, cmd: ApplyCoupon, *, actor: Actor, clock: Clock
) -> CouponPaid:
    """Pay a coupon once; the same correspondent transaction id answers the same again."""
    with uow:
        company = _company(uow, company_id, actor)
        coupon = _find(uow, company_id, cmd.lookup, clock())
        amount = money.from_minor(coupon.amount_minor, coupon.currency)
        tx = uow.session.get(CheckoutTransaction, coupon.transaction_id)
        assert tx is not None
        if coupon.payment_id is not None:
            if coupon.approval_id is not None and _same_tx(uow, coupon, cmd.tx_id):
                return CouponPaid(_view(uow, coupon), _holder(uow, coupon), replayed=True)
            raise Conflict(f"coupon {coupon.number} is already paid", field="reference")
        _payable(coupon, company, clock())
        if tx.customer_id is None:
            raise Conflict(
                f"coupon {coupon.number} has no customer to apply the payment to",
                field="reference",
            )
        # The portfolio debts the transaction was for (their external ids, in order).
        debts = tuple(str(d) for d in tx.debt_ids or ())
        customer_id = tx.customer_id
        coupon_id = coupon.id

    def record(inner: UnitOfWork, settled: Settled) -> None:
        row = inner.session.scalar(select(Coupon).where(Coupon.id == coupon_id).with_for_update())
        assert row is not None
        if row.payment_id is not None:
            raise Conflict(f"coupon {row.number} is already paid", field="reference")
        row.payment_id = settled.payment.id
        row.approval_id = approval_id(settled.payment.id)
        row.paid_at = clock()
        audit.record(
            inner,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="coupon.paid",
            entity_type="coupon",
            entity_id=row.id,
            after={
                "number": row.number,
                "payment_id": settled.payment.id,
                "tx_id": cmd.tx_id,
                "approval_id": row.approval_id,
            },
        )

    applied = apply_payment(
        uow,
        ApplyPayment(
            company_id=company_id,
            customer_id=customer_id,
            amount=amount,
            method=PaymentMethod.CASH,
            external_id=cmd.tx_id,
            channel=CHANNEL,
            debts=debts,
            strict=False,
            partial=True,
        ),
        actor=actor,
        clock=clock,
        before_commit=record,
    )
    with uow:
        row = uow.session.get(Coupon, coupon_id)
        assert row is not None
        if applied.replayed and row.payment_id != applied.payment.id:
            raise Conflict(
                f"transaction id {cmd.tx_id!r} was already used for another payment",
                field="X-Invoker-TxId",
            )
        return CouponPaid(_view(uow, row), _holder(uow, row), replayed=applied.replayed)


def approval_id(payment_id: int) -> str:
    """The authorisation number answered to the correspondent: the payment's id, 20 digits."""
    return str(payment_id).rjust(20, "0")


def _same_tx(uow: UnitOfWork, coupon: Coupon, tx_id: str) -> bool:
    payment = uow.session.get(Payment, coupon.payment_id)
    return payment is not None and payment.channel == CHANNEL and payment.external_id == tx_id
