"""Checkout services on both backends: administration, the transaction life, every service
parameter, PINs under 50 concurrent approvals, expiry and confirmations."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from recaudo.adapters.db.tables import (
    AuditEvent,
    CheckoutTransaction,
    Company,
    Debt,
    Payment,
    ServicePin,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.payment_provider import (
    PaymentRequest,
    ProviderSession,
    ProviderStatus,
    ProviderUnavailable,
)
from recaudo.adapters.webhooks import verify_signature
from recaudo.config import Settings
from recaudo.domain.checkout import ListItem
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import checkout as admin_svc
from recaudo.services import checkout_payments as pay
from recaudo.services import deliveries
from recaudo.services.checkout import AttachField, FieldInput, PriceItemView, ServiceInput
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role
from recaudo.services.deliveries import TargetSpec
from recaudo.services.webhooks import SendResult
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401

ADMIN = Actor("test:admin", Role.ADMIN)


@dataclass
class FakeProvider:
    """In-process provider: the test decides each session's answer."""

    name: str = "fake"
    answers: dict[str, ProviderStatus] = field(default_factory=dict)
    requests: list[PaymentRequest] = field(default_factory=list)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def banks(self) -> list[tuple[str, str]]:
        return [("1007", "BANCOLOMBIA")]

    def create_payment(self, request: PaymentRequest) -> ProviderSession:
        if self.down:
            raise ProviderUnavailable("down")
        with self.lock:
            self.requests.append(request)
            session = f"s{len(self.requests)}"
        return ProviderSession(session, f"http://bank.test/{session}")

    def status(self, session: str) -> ProviderStatus:
        if self.down:
            raise ProviderUnavailable("down")
        return self.answers.get(session, ProviderStatus("pending"))


@dataclass
class Setup:
    uow: UnitOfWork
    clock: FrozenClock
    company: Company
    provider: FakeProvider
    fields: dict[str, int]

    def service(self, code: str = "MAT", **params: Any) -> admin_svc.ServiceView:
        data = ServiceInput(code=code, name=f"Servicio {code}", **params)
        admin_svc.create_service(self.uow, self.company.id, data, actor=ADMIN, clock=self.clock)
        return admin_svc.set_service_fields(
            self.uow,
            self.company.id,
            code,
            [
                AttachField(self.fields["Tipo"], required=True, fixed_value="CC"),
                AttachField(self.fields["Documento"], required=True, double_payment_control=True),
                AttachField(self.fields["Periodo"], forced_length="6"),
            ],
            actor=ADMIN,
            clock=self.clock,
        )

    def start(self, code: str = "MAT", doc: str = "1020304050", **kw: Any) -> pay.TransactionView:
        refs = kw.pop("refs", ["CC", doc, "202601"])
        return pay.start_transaction(
            self.uow,
            self.company.id,
            pay.StartTransaction(code, refs, **kw),
            actor=ADMIN,
            clock=self.clock,
        )

    def begin(self, view: pay.TransactionView, means: str = "PSE") -> str:
        return pay.begin_payment(
            self.uow,
            view.token,
            means,
            "1007" if means == "PSE" else None,
            self.provider,
            return_url="http://r/ret",
            callback_url="http://r/cb",
            clock=self.clock,
        )

    def answer(self, redirect: str, state: str, trace: str | None = None) -> None:
        session = redirect.rsplit("/", 1)[1]
        self.provider.answers[session] = ProviderStatus(state, trace, "BANCOLOMBIA", state)

    def pay(self, view: pay.TransactionView, state: str = "approved") -> pay.TransactionView:
        redirect = self.begin(view)
        self.answer(redirect, state, "1007202603021300000001" if state == "approved" else None)
        return pay.settle(self.uow, view.token, self.provider, clock=self.clock)


@pytest.fixture
def co(uow: UnitOfWork, clock: FrozenClock) -> Setup:
    company = create_company(
        uow, NewCompany("uni", "Universidad Ejemplo", "CO"), actor=ADMIN, clock=clock
    )
    ids = {}
    for data in (
        FieldInput("Tipo", kind="customer_id_type"),
        FieldInput("Documento", kind="customer_id"),
        FieldInput("Periodo", kind="integer"),
    ):
        ids[data.title] = admin_svc.create_field(uow, company.id, data, actor=ADMIN, clock=clock).id
    return Setup(uow, clock, company, FakeProvider(), ids)


# --- administration -------------------------------------------------------------------------


def test_service_admin(co: Setup) -> None:
    view = co.service(
        "MAT",
        price_kind="fixed",
        fixed_price_minor=150_000_00,
        vat_basis_points=1900,
        section="Matrículas",
        category="Pregrado",
    )
    assert (view.section, view.category, view.currency) == ("Matrículas", "Pregrado", "COP")
    assert [(f.position, f.field.title, f.required) for f in view.fields] == [
        (1, "Tipo", True),
        (2, "Documento", True),
        (3, "Periodo", False),
    ]
    with pytest.raises(Conflict, match="already exists"):
        co.service("MAT", price_kind="open")
    updated = admin_svc.update_service(
        co.uow,
        co.company.id,
        "MAT",
        {"max_retries": 4, "category": "Posgrado"},
        actor=ADMIN,
        clock=co.clock,
    )
    assert (updated.max_retries, updated.category, updated.section) == (4, "Posgrado", "Matrículas")
    with pytest.raises(ValidationFailed, match="fixed-price service needs its price"):
        admin_svc.update_service(
            co.uow, co.company.id, "MAT", {"fixed_price_minor": None}, actor=ADMIN, clock=co.clock
        )
    with pytest.raises(ValidationFailed, match="first three references"):
        admin_svc.set_service_fields(
            co.uow,
            co.company.id,
            "MAT",
            [AttachField(co.fields[t]) for t in ("Tipo", "Documento")]
            + [AttachField(co.fields["Periodo"], double_payment_control=False)]
            + [AttachField(_extra_field(co), double_payment_control=True)],
            actor=ADMIN,
            clock=co.clock,
        )
    with pytest.raises(ValidationFailed, match="forced length"):
        admin_svc.set_service_fields(
            co.uow,
            co.company.id,
            "MAT",
            [AttachField(co.fields["Tipo"], forced_length="0-101")],
            actor=ADMIN,
            clock=co.clock,
        )
    auditor = Actor("test:auditor", Role.AUDITOR)
    with pytest.raises(Exception, match="may not"):
        admin_svc.create_service(
            co.uow, co.company.id, ServiceInput("X", "X"), actor=auditor, clock=co.clock
        )
    other = Actor("k", Role.ADMIN, company_id=co.company.id + 999)
    with pytest.raises(NotFound):
        admin_svc.get_service(co.uow, co.company.id, "MAT", actor=other)
    with co.uow:
        actions = co.uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_type == "checkout_service")
        ).all()
    assert actions == [
        "checkout_service.created",
        "checkout_service.fields_set",
        "checkout_service.updated",
    ]


def _extra_field(co: Setup) -> int:
    return admin_svc.create_field(
        co.uow, co.company.id, FieldInput("Extra"), actor=ADMIN, clock=co.clock
    ).id


def test_price_list_and_list_references(co: Setup) -> None:
    level = admin_svc.create_field(
        co.uow,
        co.company.id,
        FieldInput(
            "Nivel",
            list_kind="price",
            list_items=(
                ListItem("PRE", "Pregrado", 100_000_00),
                ListItem("POS", "Posgrado", 250_000_00),
            ),
        ),
        actor=ADMIN,
        clock=co.clock,
    )
    admin_svc.create_service(
        co.uow,
        co.company.id,
        ServiceInput("INS", "Inscripción", price_kind="list"),
        actor=ADMIN,
        clock=co.clock,
    )
    admin_svc.set_service_fields(
        co.uow,
        co.company.id,
        "INS",
        [AttachField(co.fields["Documento"], required=True), AttachField(level.id, required=True)],
        actor=ADMIN,
        clock=co.clock,
    )
    view = admin_svc.set_price_list(
        co.uow,
        co.company.id,
        "INS",
        [PriceItemView("A", "Derechos", 5_000_00)],
        actor=ADMIN,
        clock=co.clock,
    )
    assert view.price_items == (PriceItemView("A", "Derechos", 5_000_00),)
    tx = co.start("INS", refs=["1020304050", "POS"])
    assert (tx.amount_minor, tx.vat_minor, tx.ticket) == (250_000_00, 0, 1)
    with pytest.raises(ValidationFailed) as exc:
        co.start("INS", refs=["1020304050", "XX"])
    assert exc.value.details["fields"] == {"1": "Nivel: no es una opción de la lista"}


# --- the transaction life -------------------------------------------------------------------


def test_ok_applies_a_portfolio_payment_with_trace_code(co: Setup) -> None:
    customer = add_customer(co.uow, co.company, "1020304050", "Ana Gómez", co.clock)
    debt = add_debt(
        co.uow, co.company, customer, "CUOTA-1", "120000.00", date(2026, 3, 10), co.clock
    )
    co.service("CAR", price_kind="portfolio")
    tx = co.start("CAR", payer_email="Ana@Example.co")
    assert (tx.state, tx.ticket, tx.amount_minor, tx.payer_email) == (
        "CREATED",
        1,
        120_000_00,
        "ana@example.co",
    )
    assert tx.references == (("Tipo", "CC"), ("Documento", "1020304050"), ("Periodo", "202601"))
    assert tx.debt_refs == ("CUOTA-1",)
    redirect = co.begin(tx)
    assert redirect == "http://bank.test/s1"
    assert co.provider.requests[0].amount_minor == 120_000_00
    assert pay.by_token(co.uow, tx.token).state == "PENDING"
    # The provider has no answer yet: still PENDING.
    assert pay.settle(co.uow, tx.token, co.provider, clock=co.clock).state == "PENDING"
    co.answer(redirect, "approved", "1007202603021300000001")
    done = pay.settle(co.uow, tx.token, co.provider, clock=co.clock)
    assert (done.state, done.trace_code, done.bank) == (
        "OK",
        "1007202603021300000001",
        "BANCOLOMBIA",
    )
    assert done.payment_id is not None
    # Settling again (return page + callback) changes nothing.
    again = pay.settle(co.uow, tx.token, co.provider, clock=co.clock)
    assert again == done
    with co.uow:
        payment = co.uow.session.get(Payment, done.payment_id)
        assert payment is not None
        assert (payment.channel, payment.external_id, payment.amount_minor, payment.method) == (
            "checkout",
            "checkout-1",
            120_000_00,
            "bank_debit",
        )
        assert co.uow.session.get(Debt, debt.id).status == "paid"  # type: ignore[union-attr]
    # A final state never changes.
    with pytest.raises(Conflict, match="final state"):
        pay.capture_for_coupon(co.uow, co.company.id, tx.id, actor=ADMIN, clock=co.clock)
    assert pay.find_by_ticket(co.uow, co.company.id, 1).state == "OK"
    with pytest.raises(NotFound):
        pay.find_by_ticket(co.uow, co.company.id, 2)


def test_ok_without_a_known_customer_keeps_the_transaction_only(co: Setup) -> None:
    co.service("MAT", price_kind="fixed", fixed_price_minor=50_000_00, vat_basis_points=1900)
    tx = co.start()
    assert (tx.amount_minor, tx.vat_minor) == (59_500_00, 9_500_00)
    done = co.pay(tx)
    assert (done.state, done.payment_id) == ("OK", None)


def test_declined_failed_and_retries(co: Setup) -> None:
    co.service("MAT", price_kind="open", max_retries=1)
    first = co.start(amount_minor=10_000_00)
    assert co.pay(first, "declined").state == "NOT_AUTHORIZED"
    second = co.start(amount_minor=10_000_00, retry_of=first.token)
    assert second.attempt == 2
    assert co.pay(second, "failed").state == "FAILED"
    with pytest.raises(Conflict, match="already retried 1 times"):
        co.start(amount_minor=10_000_00, retry_of=second.token)
    pending = co.start(amount_minor=10_000_00)
    with pytest.raises(Conflict, match="only a declined or failed"):
        co.start(amount_minor=10_000_00, retry_of=pending.token)


def test_provider_down_keeps_created(co: Setup) -> None:
    co.service("MAT", price_kind="open")
    tx = co.start(amount_minor=1_000_00)
    co.provider.down = True
    with pytest.raises(pay.ProviderDown):
        co.begin(tx)
    assert pay.by_token(co.uow, tx.token).state == "CREATED"


def test_expiry_job_never_leaves_a_transaction_stuck(co: Setup) -> None:
    co.service("MAT", price_kind="open", timeout_minutes=15)
    abandoned = co.start(amount_minor=1_000_00)
    silent = co.start("MAT", "1020304051", amount_minor=1_000_00)
    co.begin(silent)
    approved_late = co.start("MAT", "1020304052", amount_minor=1_000_00)
    co.answer(co.begin(approved_late), "approved", "T1")
    unreachable = co.start("MAT", "1020304053", amount_minor=1_000_00)
    co.begin(unreachable)
    fresh_clock_report = pay.expire_due(co.uow, co.provider, clock=co.clock)
    assert fresh_clock_report == pay.ExpiryReport(0, 0, 0)
    co.clock.advance(minutes=16)
    co.provider.answers["s3"] = ProviderStatus("pending")  # `unreachable` is s3
    report = pay.expire_due(co.uow, co.provider, clock=co.clock)
    assert report == pay.ExpiryReport(expired=1, settled=1, failed=2)
    states = {
        t.token: t.state
        for t in (
            pay.by_token(co.uow, x.token) for x in (abandoned, silent, approved_late, unreachable)
        )
    }
    assert states == {
        abandoned.token: "EXPIRED",
        silent.token: "FAILED",
        approved_late.token: "OK",
        unreachable.token: "FAILED",
    }
    assert (
        pay.by_token(co.uow, silent.token).failure_reason
        == "sin respuesta de la entidad financiera"
    )
    with pytest.raises(Conflict):
        co.begin(abandoned)
    assert pay.expire_due(co.uow, co.provider, clock=co.clock) == pay.ExpiryReport(0, 0, 0)


def test_capture_for_coupon(co: Setup) -> None:
    co.service("CUP", price_kind="open", allows_coupon=True)
    co.service("NOC", price_kind="open")
    tx = co.start("CUP", amount_minor=5_000_00)
    captured = pay.capture_for_coupon(co.uow, co.company.id, tx.id, actor=ADMIN, clock=co.clock)
    assert captured.state == "CAPTURED"
    other = co.start("NOC", "1020304051", amount_minor=5_000_00)
    with pytest.raises(Conflict, match="does not issue coupons"):
        pay.capture_for_coupon(co.uow, co.company.id, other.id, actor=ADMIN, clock=co.clock)


# --- each service parameter changes behaviour ----------------------------------------------


def test_informative_only_and_activation(co: Setup) -> None:
    co.service("INFO", price_kind="open", informative_only=True)
    with pytest.raises(Conflict, match="informative only"):
        co.start("INFO", amount_minor=100)
    co.service("LATER", price_kind="open", active_from=date(2026, 4, 1))
    with pytest.raises(Conflict, match="opens on 2026-04-01"):
        co.start("LATER", amount_minor=100)
    co.service("OFF", price_kind="open", active=False)
    with pytest.raises(Conflict, match="not active"):
        co.start("OFF", amount_minor=100)


def test_open_amount_minimum_and_fixed_price(co: Setup) -> None:
    co.service("OPEN", price_kind="open", min_amount_minor=20_000_00)
    with pytest.raises(ValidationFailed, match="below the minimum"):
        co.start("OPEN", amount_minor=19_999_99)
    assert co.start("OPEN", amount_minor=20_000_00).amount_minor == 20_000_00
    co.service("FIX", price_kind="fixed", fixed_price_minor=30_000_00)
    with pytest.raises(ValidationFailed, match="fixed price"):
        co.start("FIX", "1020304051", amount_minor=1)


def test_daily_attempt_limit_per_payer(co: Setup) -> None:
    co.service("MAT", price_kind="open", daily_attempt_limit=2)
    co.start(amount_minor=100)
    co.start(amount_minor=100)
    with pytest.raises(Conflict, match="daily limit of 2 attempts"):
        co.start(amount_minor=100)
    co.start("MAT", "1020304051", amount_minor=100)  # another payer
    co.clock.advance(days=1)
    co.start(amount_minor=100)  # a new day


def test_daily_amount_limit_per_means(co: Setup) -> None:
    co.service("MAT", price_kind="open", daily_amount_limits={"PSE": 100_000_00})
    first = co.start(amount_minor=60_000_00)
    assert co.pay(first).state == "OK"
    second = co.start(amount_minor=50_000_00)
    with pytest.raises(Conflict, match="daily amount limit for PSE"):
        co.begin(second)
    assert co.begin(second, "CARD").startswith("http://bank.test/")


def test_double_payment_refuse_and_warn(co: Setup) -> None:
    co.service("REF", price_kind="open", double_payment="refuse")
    co.service("WARN", price_kind="open", double_payment="warn")
    co.service("OFF", price_kind="open")
    for code in ("REF", "WARN", "OFF"):
        assert co.pay(co.start(code, amount_minor=100)).state == "OK"
    with pytest.raises(Conflict, match="already paid"):
        co.start("REF", amount_minor=100)
    assert co.start("REF", "1020304051", amount_minor=100).warning is None
    warned = co.start("WARN", amount_minor=100)
    assert warned.warning == "Ya existe un pago aprobado con estas referencias."
    assert co.start("OFF", amount_minor=100).warning is None


def test_overdue_acceptance_and_partial_payment(co: Setup) -> None:
    customer = add_customer(co.uow, co.company, "1020304050", "Ana Gómez", co.clock)
    add_debt(co.uow, co.company, customer, "C-1", "1000.00", date(2026, 2, 20), co.clock)
    # Today is 2026-03-02: the debt is 10 days overdue.
    co.service("STRICT", price_kind="portfolio")
    with pytest.raises(Conflict, match="overdue beyond"):
        co.start("STRICT")
    co.service("GRACE", price_kind="portfolio", overdue_days=10, partial_payment=True)
    assert co.start("GRACE").amount_minor == 1000_00
    partial = co.start("GRACE", amount_minor=400_00)
    assert co.pay(partial).state == "OK"
    with co.uow:
        debt = co.uow.session.scalar(select(Debt).where(Debt.external_id == "C-1"))
        assert debt is not None and debt.status == "open"
    # What remains is what the next payer sees.
    assert co.start("GRACE").amount_minor == 600_00
    co.service("WHOLE", price_kind="portfolio", overdue_days=30)
    with pytest.raises(ValidationFailed, match="does not accept partial"):
        co.start("WHOLE", amount_minor=100_00)
    co.clock.advance(days=1)  # 11 days overdue: beyond GRACE's 10
    with pytest.raises(Conflict, match="overdue beyond"):
        co.start("GRACE")


def test_means_accepted(co: Setup) -> None:
    co.service("CARDONLY", price_kind="open", accepted_means=("CARD",))
    tx = co.start("CARDONLY", amount_minor=100)
    with pytest.raises(ValidationFailed, match="not accepted"):
        co.begin(tx, "PSE")
    assert co.begin(tx, "CARD")


# --- PINs -----------------------------------------------------------------------------------


def test_pins_run_out_with_a_clear_message(co: Setup) -> None:
    co.service("PIN", price_kind="open", assigns_pins=True)
    view = admin_svc.load_pins(
        co.uow, co.company.id, "PIN", ["A-1", "A-2"], actor=ADMIN, clock=co.clock
    )
    assert (view.pins_total, view.pins_free) == (2, 2)
    with pytest.raises(Conflict, match="repeated"):
        admin_svc.load_pins(co.uow, co.company.id, "PIN", ["A-2"], actor=ADMIN, clock=co.clock)
    pins = [co.pay(co.start("PIN", f"10203040{i}", amount_minor=100)).pin for i in range(50, 53)]
    assert pins == ["A-1", "A-2", None]
    last = pay.find_by_ticket(co.uow, co.company.id, 3)
    assert (last.state, last.warning) == ("OK", pay.PINS_EXHAUSTED)


def test_fifty_concurrent_approvals_take_fifty_different_pins(co: Setup) -> None:
    co.service("PIN", price_kind="open", assigns_pins=True)
    admin_svc.load_pins(
        co.uow,
        co.company.id,
        "PIN",
        [f"PIN-{n:03d}" for n in range(60)],
        actor=ADMIN,
        clock=co.clock,
    )
    txs = []
    for i in range(50):
        tx = co.start("PIN", f"{1020304000 + i}", amount_minor=100)
        co.answer(co.begin(tx), "approved", f"T{i}")
        txs.append(tx)
    barrier = threading.Barrier(50)
    results: list[pay.TransactionView] = []
    errors: list[BaseException] = []
    engine = co.uow.engine

    def approve(tx: pay.TransactionView) -> None:
        try:
            barrier.wait()
            results.append(pay.settle(UnitOfWork(engine), tx.token, co.provider, clock=co.clock))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(tx,)) for tx in txs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 50 and {r.state for r in results} == {"OK"}
    pins = [r.pin for r in results]
    assert None not in pins and len(set(pins)) == 50
    with co.uow:
        taken = co.uow.session.scalars(
            select(ServicePin.value).where(ServicePin.assigned_transaction_id.is_not(None))
        ).all()
        assert sorted(taken) == sorted(p for p in pins if p)
        assert (
            co.uow.session.scalar(
                select(func.count())
                .select_from(ServicePin)
                .where(ServicePin.assigned_transaction_id.is_(None))
            )
            == 10
        )


# --- confirmations --------------------------------------------------------------------------


@dataclass
class RecordingSender:
    status: int = 200
    sent: list[tuple[str, str, bytes, int]] = field(default_factory=list)

    def send(
        self,
        url: str,
        secret: str,
        *,
        event_type: str,
        delivery_id: int,
        body: bytes,
        timestamp: int,
    ) -> SendResult:
        from recaudo.adapters.webhooks import sign

        self.sent.append((url, sign(secret, timestamp, body), body, timestamp))
        return SendResult(self.status, None if self.status < 300 else "boom", 1)


def test_confirmation_pushed_signed_and_retried(co: Setup) -> None:
    co.service("MAT", price_kind="open", confirmation_url="http://app.test/confirm")
    tx = co.start(amount_minor=12_345_67)
    done = co.pay(tx)
    sender = RecordingSender(status=500)
    assert pay.deliver_confirmations(co.uow, sender, clock=co.clock) == pay.ConfirmationReport(
        0, 1, 0
    )
    # Not due again before the backoff (10 s).
    assert pay.deliver_confirmations(co.uow, sender, clock=co.clock) == pay.ConfirmationReport(
        0, 0, 0
    )
    co.clock.advance(seconds=11)
    sender.status = 200
    assert pay.deliver_confirmations(co.uow, sender, clock=co.clock) == pay.ConfirmationReport(
        1, 0, 0
    )
    url, signature, body, ts = sender.sent[-1]
    secret = pay.service_secret(co.uow, co.company.id, "MAT", actor=ADMIN)
    assert url == "http://app.test/confirm"
    assert verify_signature(secret, signature, body, now=ts)
    assert (
        body
        == (
            '{"event":"checkout.transaction.final","ticket_id":1,"state":"OK","service_code":"MAT",'
            '"references":["CC","1020304050","202601"],"amount":"12345.67","vat":"0.00",'
            '"currency":"COP","means":"PSE","bank":"BANCOLOMBIA",'
            '"trace_code":"1007202603021300000001","pin":null,'
            f'"finished_at":"{done.finished_at.isoformat()}"}}'  # type: ignore[union-attr]
        ).encode()
    )
    assert pay.by_token(co.uow, tx.token).confirmation_state == "sent"
    with co.uow:
        row = co.uow.session.scalar(select(CheckoutTransaction))
        assert row is not None and row.confirmation_attempts == 2


# --- receipt e-mails ------------------------------------------------------------------------


def test_receipt_emails_through_the_company_mail_target(
    co: Setup,
    smtp_server: SmtpServer,  # noqa: F811
    db_url: str,
    tmp_path: Path,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,
    )
    co.service(
        "MAT",
        price_kind="open",
        assigns_pins=True,
        company_email="tesoreria@uni.example",
        message_after="Gracias por su pago.",
    )
    admin_svc.load_pins(co.uow, co.company.id, "MAT", ["PIN-7"], actor=ADMIN, clock=co.clock)
    # Without the company's `checkout` e-mail target the receipt fails (and says why).
    first = co.pay(co.start(amount_minor=1_000_00, payer_email="ana@example.co"))
    assert pay.send_receipts(co.uow, settings) == pay.ReceiptReport(0, 1)
    deliveries.create_target(
        co.uow,
        co.company.id,
        TargetSpec(
            "checkout",
            "email",
            smtp_server.target_settings(["x@uni.example"]),
            secret=smtp_server.password,
        ),
        settings=settings,
        actor=ADMIN,
        clock=co.clock,
    )
    second = co.pay(
        co.start("MAT", "1020304051", amount_minor=2_500_50, payer_email="luis@example.co")
    )
    declined = co.pay(
        co.start("MAT", "1020304052", amount_minor=100, payer_email="x@example.co"), "declined"
    )
    assert declined.state == "NOT_AUTHORIZED"
    assert pay.send_receipts(co.uow, settings) == pay.ReceiptReport(1, 0)
    assert pay.send_receipts(co.uow, settings) == pay.ReceiptReport(0, 0)
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("luis@example.co", "tesoreria@uni.example")
    mail = received.message
    assert mail["To"] == "luis@example.co, tesoreria@uni.example"
    assert mail["Subject"] == "Comprobante de pago - ticket 2"
    body = mail.get_body().get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert first.pin == "PIN-7" and second.pin is None
    assert body == (
        "Comprobante de pago - Servicio MAT\n\n"
        "Ticket: 2\nEstado: Aprobada\nTipo: CC\nDocumento: 1020304051\nPeriodo: 202601\n"
        "Valor: 2500.50 COP\nMedio de pago: PSE\nBanco: BANCOLOMBIA\n"
        "Código de seguimiento (CUS): 1007202603021300000001\n"
        "Se agotaron los PIN de este servicio: la empresa le enviará el suyo.\n"
        f"Fecha: {second.finished_at:%Y-%m-%d %H:%M:%S} UTC\n\nGracias por su pago.\n"
    )
