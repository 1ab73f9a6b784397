"""Negotiation settings of a company and the payment-capacity profiles of its customers.

Settings (`negotiation_settings`, defaults until a company changes one): the labels of the
debt concepts, how many days late an installment breaks a plan, what a broken plan does
with condoned amounts, and the share of a customer's available income that installments
may take. Profiles (`payment_profiles`): what a customer declares (income, other income,
personal expenses; for the self-employed, sales and operating costs; cash available
today); the latest one is used, its capacity computed by `domain.profiling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from recaudo.adapters.db.tables import (
    Company,
    Customer,
    NegotiationSettings,
    PaymentProfile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import (
    ReinstatePolicy,
    concept_labels,
)
from recaudo.domain.profiling import (
    DEFAULT_CAPACITY_RATIO,
    DeclaredFinances,
    check_ratio,
    payment_capacity,
)
from recaudo.services import audit
from recaudo.services.context import Actor, Clock, Role

DEFAULT_BREAK_AFTER_DAYS = 30
DEFAULT_REINSTATE = ReinstatePolicy.ALWAYS


def local_today(company: Company, clock: Clock) -> date:
    return clock().astimezone(ZoneInfo(company.timezone)).date()


def company_in_scope(uow: UnitOfWork, company_id: int, actor: Actor) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None or not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    return company


def customer_in_company(
    uow: UnitOfWork, company_id: int, customer_id: int, *, lock: bool = False
) -> Customer:
    stmt = select(Customer).where(Customer.id == customer_id, Customer.company_id == company_id)
    customer = uow.session.scalar(stmt.with_for_update() if lock else stmt)
    if customer is None:
        raise NotFound(f"no customer {customer_id}", field="customer_id")
    return customer


def amount_of(minor: int, currency: str) -> Decimal:
    return money.from_minor(minor, currency)


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsView:
    company_id: int
    concept_labels: dict[str, str]
    break_after_days: int
    reinstate_on_break: str
    capacity_ratio: Decimal


@dataclass(frozen=True, slots=True)
class SettingsChanges:
    concept_labels: Mapping[str, str] | None = None
    break_after_days: int | None = None
    reinstate_on_break: str | None = None
    capacity_ratio: Decimal | str | None = None


def settings_of(uow: UnitOfWork, company_id: int) -> SettingsView:
    row = uow.session.get(NegotiationSettings, company_id)
    if row is None:
        labels = concept_labels()
        return SettingsView(
            company_id,
            {c.value: label for c, label in labels.items()},
            DEFAULT_BREAK_AFTER_DAYS,
            DEFAULT_REINSTATE.value,
            DEFAULT_CAPACITY_RATIO,
        )
    labels = concept_labels(row.concept_labels)
    return SettingsView(
        company_id,
        {c.value: label for c, label in labels.items()},
        row.break_after_days,
        row.reinstate_on_break,
        Decimal(row.capacity_ratio_bp) / Decimal(10000),
    )


def get_settings(uow: UnitOfWork, company_id: int, *, actor: Actor) -> SettingsView:
    with uow:
        company_in_scope(uow, company_id, actor)
        return settings_of(uow, company_id)


def update_settings(
    uow: UnitOfWork, company_id: int, changes: SettingsChanges, *, actor: Actor, clock: Clock
) -> SettingsView:
    """Concept labels, days late that break a plan, reinstatement and capacity ratio."""
    actor.require(Role.ADMIN)
    with uow:
        company_in_scope(uow, company_id, actor)
        current = settings_of(uow, company_id)
        labels = dict(current.concept_labels)
        if changes.concept_labels is not None:
            labels = {c.value: v for c, v in concept_labels(changes.concept_labels).items()}
        days = current.break_after_days
        if changes.break_after_days is not None:
            if not 0 <= changes.break_after_days <= 3650:
                raise ValidationFailed(
                    "break_after_days must be 0 to 3650", field="break_after_days"
                )
            days = changes.break_after_days
        reinstate = current.reinstate_on_break
        if changes.reinstate_on_break is not None:
            try:
                reinstate = ReinstatePolicy(changes.reinstate_on_break).value
            except ValueError:
                names = ", ".join(p.value for p in ReinstatePolicy)
                raise ValidationFailed(
                    f"reinstate_on_break must be one of {names}", field="reinstate_on_break"
                ) from None
        ratio = current.capacity_ratio
        if changes.capacity_ratio is not None:
            try:
                ratio = check_ratio(Decimal(str(changes.capacity_ratio)))
            except ArithmeticError:
                raise ValidationFailed(
                    "capacity_ratio must be a number", field="capacity_ratio"
                ) from None
            except ValidationFailed as exc:
                raise ValidationFailed(exc.message, field="capacity_ratio") from None
            if ratio != ratio.quantize(Decimal("0.0001")):
                raise ValidationFailed(
                    "capacity_ratio has at most 4 decimals", field="capacity_ratio"
                )
        row = uow.session.get(NegotiationSettings, company_id)
        now = clock()
        if row is None:
            row = NegotiationSettings(company_id=company_id)
            uow.session.add(row)
        row.concept_labels = labels
        row.break_after_days = days
        row.reinstate_on_break = reinstate
        row.capacity_ratio_bp = int(ratio * 10000)
        row.updated_by = actor.label
        row.updated_at = now
        after = SettingsView(company_id, labels, days, reinstate, ratio)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="negotiation_settings.updated",
            entity_type="company",
            entity_id=company_id,
            before=_settings_snapshot(current),
            after=_settings_snapshot(after),
        )
        uow.commit()
        return after


def _settings_snapshot(s: SettingsView) -> dict[str, Any]:
    return {
        "concept_labels": s.concept_labels,
        "break_after_days": s.break_after_days,
        "reinstate_on_break": s.reinstate_on_break,
        "capacity_ratio": str(s.capacity_ratio),
    }


# --- payment-capacity profiles -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewProfile:
    """What the customer declares, monthly, in the company's currency (units, not minor)."""

    customer_id: int
    income: Decimal | str
    other_income: Decimal | str = "0"
    personal_expenses: Decimal | str = "0"
    self_employed: bool = False
    sales: Decimal | str | None = None
    operating_costs: Decimal | str | None = None
    cash_today: Decimal | str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    source: str = "api"


@dataclass(frozen=True, slots=True)
class ProfileView:
    id: int
    customer_id: int
    currency: str
    income: Decimal
    other_income: Decimal
    personal_expenses: Decimal
    self_employed: bool
    sales: Decimal | None
    operating_costs: Decimal | None
    cash_today: Decimal | None
    available_income: Decimal
    capacity: Decimal
    capacity_ratio: Decimal
    source: str
    declared_by: str
    declared_at: datetime


def finances_of(p: PaymentProfile, currency: str) -> DeclaredFinances:
    def m(minor: int | None) -> Money | None:
        return None if minor is None else Money(minor, currency)

    return DeclaredFinances(
        income=Money(p.income_minor, currency),
        other_income=Money(p.other_income_minor, currency),
        personal_expenses=Money(p.expenses_minor, currency),
        self_employed=p.self_employed,
        sales=m(p.sales_minor),
        operating_costs=m(p.operating_costs_minor),
    )


def _profile_view(p: PaymentProfile, currency: str, ratio: Decimal) -> ProfileView:
    finances = finances_of(p, currency)

    def d(minor: int | None) -> Decimal | None:
        return None if minor is None else amount_of(minor, currency)

    return ProfileView(
        id=p.id,
        customer_id=p.customer_id,
        currency=currency,
        income=amount_of(p.income_minor, currency),
        other_income=amount_of(p.other_income_minor, currency),
        personal_expenses=amount_of(p.expenses_minor, currency),
        self_employed=p.self_employed,
        sales=d(p.sales_minor),
        operating_costs=d(p.operating_costs_minor),
        cash_today=d(p.cash_today_minor),
        available_income=finances.available_income.amount,
        capacity=payment_capacity(finances, ratio).amount,
        capacity_ratio=ratio,
        source=p.source,
        declared_by=p.declared_by,
        declared_at=p.declared_at,
    )


def minor_of(value: Decimal | str | int | None, currency: str, name: str) -> int | None:
    if value is None:
        return None
    try:
        return money.to_minor(money.parse_amount(value, currency), currency)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{name}: {exc.message}", field=name) from None


def record_profile(
    uow: UnitOfWork, company_id: int, new: NewProfile, *, actor: Actor, clock: Clock
) -> ProfileView:
    """Record what a customer declares; the latest declaration is the one used."""
    actor.require_write()
    source = new.source.strip()
    if not 1 <= len(source) <= 32:
        raise ValidationFailed("source must have 1 to 32 characters", field="source")
    with uow:
        company = company_in_scope(uow, company_id, actor)
        customer = customer_in_company(uow, company_id, new.customer_id)
        cur = company.currency
        income = minor_of(new.income, cur, "income")
        other = minor_of(new.other_income, cur, "other_income")
        expenses = minor_of(new.personal_expenses, cur, "personal_expenses")
        assert income is not None and other is not None and expenses is not None
        profile = PaymentProfile(
            company_id=company_id,
            customer_id=customer.id,
            income_minor=income,
            other_income_minor=other,
            expenses_minor=expenses,
            self_employed=new.self_employed,
            sales_minor=minor_of(new.sales, cur, "sales"),
            operating_costs_minor=minor_of(new.operating_costs, cur, "operating_costs"),
            cash_today_minor=minor_of(new.cash_today, cur, "cash_today"),
            details=dict(new.details),
            source=source,
            declared_by=actor.label,
            declared_at=clock(),
        )
        finances_of(profile, cur)  # the domain's checks (self-employed needs sales and costs)
        uow.session.add(profile)
        uow.session.flush()
        view = _profile_view(profile, cur, settings_of(uow, company_id).capacity_ratio)
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="payment_profile.recorded",
            entity_type="customer",
            entity_id=customer.id,
            after={
                "profile_id": profile.id,
                "available_income": view.available_income,
                "capacity": view.capacity,
                "source": source,
            },
        )
        uow.commit()
        return view


def latest_profile_row(uow: UnitOfWork, company_id: int, customer_id: int) -> PaymentProfile | None:
    return uow.session.scalar(
        select(PaymentProfile)
        .where(PaymentProfile.company_id == company_id, PaymentProfile.customer_id == customer_id)
        .order_by(PaymentProfile.id.desc())
        .limit(1)
    )


def latest_profile(
    uow: UnitOfWork, company_id: int, customer_id: int, *, actor: Actor
) -> ProfileView | None:
    with uow:
        company = company_in_scope(uow, company_id, actor)
        customer_in_company(uow, company_id, customer_id)
        profile = latest_profile_row(uow, company_id, customer_id)
        if profile is None:
            return None
        return _profile_view(profile, company.currency, settings_of(uow, company_id).capacity_ratio)
