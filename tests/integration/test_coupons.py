"""Coupons on both backends: settings, issuing (CREATED → CAPTURED), the PDF's barcode,
a correspondent's read and apply (idempotent on its transaction id, scanned barcode checked)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
import zxingcpp
from biip import parse as biip_parse
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from recaudo.adapters.db.tables import (
    AuditEvent,
    CheckoutTransaction,
    Company,
    Coupon,
    Customer,
    Debt,
    Payment,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recaudo.domain.money import Money
from recaudo.formats import gs1_128
from recaudo.services import checkout, coupons
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role
from recaudo.services.coupons import ApplyCoupon, CouponConfig, CouponLookup
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer, add_debt

GLN = "7709998013711"
AGREEMENT = "15907356"


@dataclass
class Setup:
    company: Company
    customer: Customer
    debt: Debt
    service_code: str


def colombian_company(uow: UnitOfWork, admin: Actor, clock: FrozenClock) -> Company:
    return create_company(
        uow,
        NewCompany("uni", "Universidad de Prueba S.A.S.", "CO", tax_id="900123456-7"),
        actor=admin,
        clock=clock,
    )


def coupon_service(
    uow: UnitOfWork, company: Company, admin: Actor, clock: FrozenClock, *, allows: bool = True
) -> str:
    code = "MAT" if allows else "DON"
    checkout.create_service(
        uow,
        company.id,
        checkout.ServiceInput(code=code, name="Matrícula 2027-1", allows_coupon=allows),
        actor=admin,
        clock=clock,
    )
    return code


def add_transaction(
    uow: UnitOfWork,
    company: Company,
    service_code: str,
    ticket: int,
    amount_minor: int,
    clock: FrozenClock,
    *,
    customer: Customer | None = None,
    debts: list[Debt] | None = None,
    state: str = "CREATED",
) -> None:
    """A transaction as the checkout's start leaves it: CREATED, references in order."""
    now = clock()
    with uow:
        service = checkout.service_row(uow, company.id, service_code)
        uow.session.add(
            CheckoutTransaction(
                company_id=company.id,
                service_id=service.id,
                ticket=ticket,
                token=secrets.token_urlsafe(32),
                state=state,
                origin="api",
                references=[
                    {"field_id": "1", "title": "Documento", "value": "1020304050"},
                    {"field_id": "2", "title": "Periodo", "value": "2027-1"},
                ],
                first_reference="1020304050",
                reference_key=None,
                customer_id=customer.id if customer else None,
                debt_ids=[d.external_id for d in debts] if debts else None,
                amount_minor=amount_minor,
                vat_minor=0,
                currency=company.currency,
                confirmation_state="none",
                confirmation_attempts=0,
                receipt_state="none",
                attempt=1,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(minutes=30),
            )
        )
        uow.commit()


@pytest.fixture
def co(uow: UnitOfWork, admin: Actor, clock: FrozenClock) -> Setup:
    company = colombian_company(uow, admin, clock)
    customer = add_customer(uow, company, "1020304050", "Ana María Pérez", clock)
    debt = add_debt(uow, company, customer, "MAT-2027-1", "1168375", date(2026, 12, 31), clock)
    code = coupon_service(uow, company, admin, clock)
    coupons.configure_coupons(
        uow, company.id, code, CouponConfig(GLN, AGREEMENT, 30), actor=admin, clock=clock
    )
    add_transaction(uow, company, code, 41, 116_837_500, clock, customer=customer, debts=[debt])
    return Setup(company, customer, debt, code)


def test_issue_a_coupon_captures_the_transaction(
    uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock
) -> None:
    view = coupons.issue_coupon(uow, co.company.id, 41, actor=admin, clock=clock)
    # The frozen clock is 2026-03-02 13:00 UTC → 08:00 in Bogotá; payable 30 days.
    today = clock().astimezone(UTC).date()
    assert view.number == "000000000041"
    assert view.ticket == 41
    assert view.amount == Money(116_837_500, "COP")
    assert view.due_date == today + timedelta(days=30)
    assert view.references == (("Documento", "1020304050"), ("Periodo", "2027-1"))
    assert view.state == "ISSUED"
    assert view.human_readable == (
        f"(415){GLN}(8020)000000000041(3900)0001168375(96){view.due_date:%Y%m%d}"
    )
    assert view.element_string == (
        f"415{GLN}8020000000000041\x1d39000001168375\x1d96{view.due_date:%Y%m%d}"
    )
    with uow:
        tx = uow.session.scalar(select(CheckoutTransaction).where(CheckoutTransaction.ticket == 41))
        assert tx is not None
        assert tx.state == "CAPTURED"
        assert tx.finished_at == view.created_at
        event = uow.session.scalar(select(AuditEvent).where(AuditEvent.action == "coupon.issued"))
        assert event is not None and event.after is not None
        assert event.after["number"] == "000000000041"
    # Issuing again answers the same coupon; a final state never changes.
    assert coupons.issue_coupon(uow, co.company.id, 41, actor=admin, clock=clock) == view
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Coupon)) == 1


def test_coupon_amount_with_cents_uses_3902(
    uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock
) -> None:
    add_transaction(uow, co.company, co.service_code, 42, 1_050_050, clock)
    view = coupons.issue_coupon(uow, co.company.id, 42, actor=admin, clock=clock)
    assert "(3902)0001050050(96)" in view.human_readable
    assert gs1_128.parse(view.element_string).amount == Decimal("10500.50")
    assert coupons.format_amount(view.amount) == "$ 10.500,50"


def test_refusals(uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock) -> None:
    with pytest.raises(NotFound, match="no transaction with ticket 99"):
        coupons.issue_coupon(uow, co.company.id, 99, actor=admin, clock=clock)
    add_transaction(uow, co.company, co.service_code, 43, 100_000, clock, state="EXPIRED")
    with pytest.raises(Conflict, match="EXPIRED, a final state"):
        coupons.issue_coupon(uow, co.company.id, 43, actor=admin, clock=clock)
    other = coupon_service(uow, co.company, admin, clock, allows=False)
    add_transaction(uow, co.company, other, 44, 100_000, clock)
    with pytest.raises(Conflict, match="does not allow coupons"):
        coupons.issue_coupon(uow, co.company.id, 44, actor=admin, clock=clock)
    with pytest.raises(Conflict, match="does not allow coupons"):
        coupons.configure_coupons(
            uow, co.company.id, other, CouponConfig(GLN, "1", 30), actor=admin, clock=clock
        )
    with pytest.raises(ValidationFailed, match="check digit"):
        coupons.configure_coupons(
            uow,
            co.company.id,
            co.service_code,
            CouponConfig("7709998013712", AGREEMENT, 30),
            actor=admin,
            clock=clock,
        )
    with pytest.raises(ValidationFailed, match="1 to 365 days"):
        coupons.configure_coupons(
            uow,
            co.company.id,
            co.service_code,
            CouponConfig(GLN, AGREEMENT, 0),
            actor=admin,
            clock=clock,
        )
    with pytest.raises(PermissionDenied):
        coupons.issue_coupon(uow, co.company.id, 41, actor=Actor("t", Role.AUDITOR), clock=clock)
    stranger = Actor("other", Role.ADMIN, company_id=co.company.id + 1000)
    with pytest.raises(NotFound):
        coupons.issue_coupon(uow, co.company.id, 41, actor=stranger, clock=clock)
    with uow:
        tx = uow.session.scalar(select(CheckoutTransaction).where(CheckoutTransaction.ticket == 44))
        assert tx is not None and tx.state == "CREATED"


def test_the_pdf_barcode_scans_to_the_coupon(
    uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock
) -> None:
    view = coupons.issue_coupon(uow, co.company.id, 41, actor=admin, clock=clock)
    data = coupons.render_pdf(uow, co.company.id, view.number, actor=admin)
    image = pypdfium2.PdfDocument(data)[0].render(scale=3).to_pil()
    (result,) = zxingcpp.read_barcodes(image)
    assert result.symbology_identifier == "]C1"
    scanned = bytes(result.bytes).decode("ascii")
    assert scanned == view.element_string
    message = biip_parse("]C1" + scanned).gs1_message
    assert message is not None
    assert message.as_hri() == view.human_readable
    text = pypdfium2.PdfDocument(data)[0].get_textpage().get_text_range()
    for expected in ("Universidad de Prueba S.A.S.", "NIT 900123456-7", "$ 1.168.375", "2027-1"):
        assert expected in text


def _lookup(view: coupons.CouponView, scanned: str | None = None) -> CouponLookup:
    return CouponLookup(
        AGREEMENT, view.number, gs1_128.parse(scanned) if scanned is not None else None
    )


def test_correspondent_read_then_apply_then_replay(
    uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock
) -> None:
    view = coupons.issue_coupon(uow, co.company.id, 41, actor=admin, clock=clock)
    channel = Actor("channel:corresponsal", Role.OPERATOR, company_id=co.company.id)
    due = coupons.read_coupon(
        uow, co.company.id, _lookup(view, view.element_string), actor=channel, clock=clock
    )
    assert due.holder == "Ana María Pérez"
    assert due.coupon.amount == Money(116_837_500, "COP")
    # Typed by hand: the reference without its leading zeros finds it too.
    assert (
        coupons.read_coupon(
            uow, co.company.id, CouponLookup(AGREEMENT, "41"), actor=channel, clock=clock
        ).coupon.number
        == view.number
    )

    cmd = ApplyCoupon(_lookup(view, view.element_string), "APIF6015320000000001")
    paid = coupons.apply_coupon(uow, co.company.id, cmd, actor=channel, clock=clock)
    assert not paid.replayed
    assert paid.coupon.state == "PAID"
    assert paid.coupon.approval_id == str(paid.coupon.payment_id).rjust(20, "0")
    again = coupons.apply_coupon(uow, co.company.id, cmd, actor=channel, clock=clock)
    assert again.replayed
    assert again.coupon == paid.coupon
    with uow:
        payments = uow.session.scalars(select(Payment)).all()
        assert len(payments) == 1
        (payment,) = payments
        assert (payment.channel, payment.external_id, payment.amount_minor) == (
            "corresponsal",
            "APIF6015320000000001",
            116_837_500,
        )
        assert payment.customer_id == co.customer.id
        debt = uow.session.get(Debt, co.debt.id)
        assert debt is not None and debt.status == "paid"
    # Another transaction id for a paid coupon is refused, and reading it too.
    with pytest.raises(Conflict, match="already paid"):
        coupons.apply_coupon(
            uow,
            co.company.id,
            ApplyCoupon(cmd.lookup, "APIF6015320000000002"),
            actor=channel,
            clock=clock,
        )
    with pytest.raises(Conflict, match="already paid"):
        coupons.read_coupon(uow, co.company.id, cmd.lookup, actor=channel, clock=clock)


def test_a_tampered_barcode_or_amount_is_refused(
    uow: UnitOfWork, co: Setup, admin: Actor, clock: FrozenClock
) -> None:
    view = coupons.issue_coupon(uow, co.company.id, 41, actor=admin, clock=clock)
    channel = Actor("channel:corresponsal", Role.OPERATOR, company_id=co.company.id)
    tampered = view.element_string.replace("39000001168375", "39000000000001")
    with pytest.raises(ValidationFailed, match="does not match its coupon: amount"):
        coupons.read_coupon(uow, co.company.id, _lookup(view, tampered), actor=channel, clock=clock)
    late = view.element_string[:-8] + (view.due_date + timedelta(days=9)).strftime("%Y%m%d")
    with pytest.raises(ValidationFailed, match="does not match its coupon: due date"):
        coupons.read_coupon(uow, co.company.id, _lookup(view, late), actor=channel, clock=clock)
    other_gln = view.element_string.replace(GLN, gs1_128.with_check_digit("770999872678"))
    with pytest.raises(ValidationFailed, match="does not match its coupon: GLN"):
        coupons.read_coupon(
            uow, co.company.id, _lookup(view, other_gln), actor=channel, clock=clock
        )
    with pytest.raises(ValidationFailed, match=r"paid with exactly 1168375\.00, not 1"):
        coupons.apply_coupon(
            uow,
            co.company.id,
            ApplyCoupon(
                CouponLookup(AGREEMENT, view.number, amount=Decimal(1)), "APIF6015320000000003"
            ),
            actor=channel,
            clock=clock,
        )
    with pytest.raises(NotFound, match="no agreement"):
        coupons.read_coupon(
            uow, co.company.id, CouponLookup("999", view.number), actor=channel, clock=clock
        )
    with pytest.raises(NotFound, match="no coupon"):
        coupons.read_coupon(
            uow, co.company.id, CouponLookup(AGREEMENT, "77"), actor=channel, clock=clock
        )
    with pytest.raises(ValidationFailed, match=r"is due .*, not 2030-01-01"):
        coupons.read_coupon(
            uow,
            co.company.id,
            CouponLookup(AGREEMENT, view.number, due_date=date(2030, 1, 1)),
            actor=channel,
            clock=clock,
        )
    # Typed by hand, the amount is zero: the coupon's amount is what is paid.
    assert (
        coupons.read_coupon(
            uow,
            co.company.id,
            CouponLookup(AGREEMENT, view.number, amount=Decimal(0)),
            actor=channel,
            clock=clock,
        ).coupon.number
        == view.number
    )
    # Past its due date a coupon is no longer payable.
    clock.advance(days=31)
    with pytest.raises(Conflict, match="payable until"):
        coupons.read_coupon(uow, co.company.id, _lookup(view), actor=channel, clock=clock)
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_dates_in_bogota(uow: UnitOfWork, admin: Actor) -> None:
    # 2026-03-01 03:00 UTC is still 28 February in Bogotá: the coupon counts from there.
    clock = FrozenClock(datetime(2026, 3, 1, 3, 0, tzinfo=UTC))
    company = colombian_company(uow, admin, clock)
    code = coupon_service(uow, company, admin, clock)
    coupons.configure_coupons(
        uow, company.id, code, CouponConfig(GLN, AGREEMENT, 1), actor=admin, clock=clock
    )
    add_transaction(uow, company, code, 7, 500_000, clock)
    view = coupons.issue_coupon(uow, company.id, 7, actor=admin, clock=clock)
    assert view.due_date == date(2026, 3, 1)


def test_cli(
    uow: UnitOfWork, db_url: str, tmp_path: Path, admin: Actor, clock: FrozenClock
) -> None:
    company = colombian_company(uow, admin, clock)
    code = coupon_service(uow, company, admin, clock)
    add_transaction(uow, company, code, 41, 116_837_500, clock)
    env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> Result:
        result = CliRunner().invoke(app, ["coupon", *args], env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    done = run(
        *("settings", "--company", "uni", "--service", code, "--gln", GLN),
        *("--agreement", AGREEMENT, "--due-days", "10"),
    )
    assert done.exit_code == 0, done.output
    assert done.output == f"MAT: GLN {GLN}, agreement {AGREEMENT}, payable 10 days\n"
    issued = run("issue", "--company", "uni", "--ticket", "41")
    assert issued.exit_code == 0, issued.output
    assert "number:     000000000041\n" in issued.output
    assert "amount:     $ 1.168.375 COP\n" in issued.output
    assert "state:      ISSUED\n" in issued.output
    # The command line runs on the system clock.
    today = datetime.now(UTC).astimezone(ZoneInfo("America/Bogota")).date()
    due = (today + timedelta(days=10)).strftime("%Y%m%d")
    assert f"barcode:    (415){GLN}(8020)000000000041(3900)0001168375(96){due}\n" in issued.output
    target = tmp_path / "c.pdf"
    written = run("pdf", "--company", "uni", "000000000041", "-o", str(target))
    assert written.exit_code == 0, written.output
    assert target.read_bytes().startswith(b"%PDF-")
    missing = run("show", "--company", "uni", "999")
    assert missing.exit_code != 0
    assert "no coupon '999'" in missing.output
    bad = run(
        *("settings", "--company", "uni", "--service", code, "--gln", "7709998013712"),
        *("--agreement", AGREEMENT),
    )
    assert bad.exit_code != 0
    assert "check digit is 2, expected 1" in bad.output
