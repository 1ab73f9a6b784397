"""Checkout administration (issue 8): services, reference fields, price lists and PIN lists.

eCollect's administrators configure everything here without code: a company's reference
fields are defined once (`create_field`) and attached to services in an order with their
per-service attributes (`set_service_fields`); a service carries its parameters
(`ServiceInput`). Transactions live in `services.checkout_payments`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import func, select

from recaudo.adapters.db.tables import (
    CheckoutCategory,
    CheckoutSection,
    CheckoutService,
    Company,
    PriceListItem,
    ReferenceFieldRow,
    ServiceFieldRow,
    ServicePin,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.domain.checkout import (
    KINDS,
    LIST_KINDS,
    MAX_LENGTH,
    ListItem,
    ReferenceSpec,
    ServiceRules,
    parse_forced_length,
)
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import Actor, Clock

MAX_PINS_PER_LOAD = 100_000


# --- views ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldView:
    id: int
    title: str
    kind: str
    help_text: str | None
    prefix: str | None
    display_length: int
    list_kind: str | None
    list_items: tuple[ListItem, ...]


@dataclass(frozen=True, slots=True)
class ServiceFieldView:
    position: int
    field: FieldView
    required: bool
    upper_case: bool
    hidden: bool
    read_only: bool
    fixed_value: str | None
    forced_length: str | None
    double_payment_control: bool
    related_field_id: int | None


@dataclass(frozen=True, slots=True)
class PriceItemView:
    code: str
    label: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ServiceView:
    id: int
    company_id: int
    code: str
    name: str
    section: str | None
    category: str | None
    active: bool
    active_from: date | None
    active_until: date | None
    price_kind: str
    fixed_price_minor: int | None
    min_amount_minor: int | None
    currency: str
    vat_basis_points: int
    accepted_means: tuple[str, ...]
    partial_payment: bool
    overdue_days: int | None
    max_retries: int
    daily_attempt_limit: int | None
    daily_amount_limits: dict[str, int]
    double_payment: str
    email_payer: bool
    company_email: str | None
    message_before: str | None
    message_after: str | None
    redirect_url: str | None
    confirmation_url: str | None
    informative_only: bool
    assigns_pins: bool
    allows_coupon: bool
    timeout_minutes: int
    fields: tuple[ServiceFieldView, ...] = ()
    price_items: tuple[PriceItemView, ...] = ()
    pins_total: int = 0
    pins_free: int = 0


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldInput:
    title: str
    kind: str = "text"
    help_text: str | None = None
    prefix: str | None = None
    display_length: int = 30
    list_kind: str | None = None
    # [{"code", "label", "price_minor"?, "parent"?}]
    list_items: tuple[ListItem, ...] = ()


@dataclass(frozen=True, slots=True)
class AttachField:
    field_id: int
    required: bool = False
    upper_case: bool = False
    hidden: bool = False
    read_only: bool = False
    fixed_value: str | None = None
    forced_length: str | None = None
    double_payment_control: bool = False
    related_field_id: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceInput:
    code: str
    name: str
    price_kind: str = "open"
    currency: str | None = None
    section: str | None = None
    category: str | None = None
    active: bool = True
    active_from: date | None = None
    active_until: date | None = None
    fixed_price_minor: int | None = None
    min_amount_minor: int | None = None
    vat_basis_points: int = 0
    accepted_means: tuple[str, ...] = ("PSE", "CARD")
    partial_payment: bool = False
    overdue_days: int | None = None
    max_retries: int = 2
    daily_attempt_limit: int | None = None
    daily_amount_limits: dict[str, int] = field(default_factory=dict)
    double_payment: str = "off"
    email_payer: bool = True
    company_email: str | None = None
    message_before: str | None = None
    message_after: str | None = None
    redirect_url: str | None = None
    confirmation_url: str | None = None
    informative_only: bool = False
    assigns_pins: bool = False
    allows_coupon: bool = False
    timeout_minutes: int = 30


SERVICE_PARAMETERS = tuple(
    name for name in ServiceInput.__dataclass_fields__ if name not in ("code",)
)


# --- helpers --------------------------------------------------------------------------------


def _company(uow: UnitOfWork, company_id: int, actor: Actor) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None or not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    return company


def _items_of(raw: list[dict[str, Any]] | None) -> tuple[ListItem, ...]:
    return tuple(
        ListItem(
            str(item["code"]),
            str(item["label"]),
            item.get("price_minor"),
            item.get("parent"),
        )
        for item in raw or []
    )


def _field_view(row: ReferenceFieldRow) -> FieldView:
    return FieldView(
        row.id,
        row.title,
        row.kind,
        row.help_text,
        row.prefix,
        row.display_length,
        row.list_kind,
        _items_of(row.list_items),
    )


def service_row(
    uow: UnitOfWork, company_id: int, code: str, *, lock: bool = False
) -> CheckoutService:
    query = select(CheckoutService).where(
        CheckoutService.company_id == company_id, CheckoutService.code == code
    )
    if lock:
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"no checkout service {code!r}")
    return row


def service_fields(
    uow: UnitOfWork, service_id: int
) -> list[tuple[ServiceFieldRow, ReferenceFieldRow]]:
    rows = uow.session.execute(
        select(ServiceFieldRow, ReferenceFieldRow)
        .join(ReferenceFieldRow, ReferenceFieldRow.id == ServiceFieldRow.field_id)
        .where(ServiceFieldRow.service_id == service_id)
        .order_by(ServiceFieldRow.position)
    ).all()
    return [(sf, rf) for sf, rf in rows]


def reference_specs(uow: UnitOfWork, service_id: int) -> list[ReferenceSpec]:
    """The service's references as the pure validator wants them, in order."""
    pairs = service_fields(uow, service_id)
    index_of_field = {rf.id: i for i, (_, rf) in enumerate(pairs)}
    parent_of: dict[int, int] = {}
    for i, (sf, _) in enumerate(pairs):
        if sf.related_field_id is not None and sf.related_field_id in index_of_field:
            parent_of[index_of_field[sf.related_field_id]] = i
    return [
        ReferenceSpec(
            title=rf.title,
            kind=rf.kind,
            required=sf.required,
            upper_case=sf.upper_case,
            hidden=sf.hidden,
            read_only=sf.read_only,
            fixed_value=sf.fixed_value,
            forced_length=parse_forced_length(sf.forced_length) if sf.forced_length else None,
            prefix=rf.prefix,
            list_items=_items_of(rf.list_items),
            parent_index=parent_of.get(i),
            double_payment_control=sf.double_payment_control,
            help_text=rf.help_text,
        )
        for i, (sf, rf) in enumerate(pairs)
    ]


def rules_of(row: CheckoutService) -> ServiceRules:
    return ServiceRules(
        price_kind=row.price_kind,
        currency=row.currency,
        active=row.active,
        active_from=row.active_from,
        active_until=row.active_until,
        fixed_price_minor=row.fixed_price_minor,
        min_amount_minor=row.min_amount_minor,
        vat_basis_points=row.vat_basis_points,
        accepted_means=tuple(row.accepted_means),
        partial_payment=row.partial_payment,
        overdue_days=row.overdue_days,
        max_retries=row.max_retries,
        daily_attempt_limit=row.daily_attempt_limit,
        daily_amount_limits=dict(row.daily_amount_limits),
        double_payment=row.double_payment,
        informative_only=row.informative_only,
    )


def service_view(uow: UnitOfWork, row: CheckoutService) -> ServiceView:
    section = uow.session.get(CheckoutSection, row.section_id) if row.section_id else None
    category = uow.session.get(CheckoutCategory, row.category_id) if row.category_id else None
    fields = tuple(
        ServiceFieldView(
            sf.position,
            _field_view(rf),
            sf.required,
            sf.upper_case,
            sf.hidden,
            sf.read_only,
            sf.fixed_value,
            sf.forced_length,
            sf.double_payment_control,
            sf.related_field_id,
        )
        for sf, rf in service_fields(uow, row.id)
    )
    prices = tuple(
        PriceItemView(p.code, p.label, p.amount_minor)
        for p in uow.session.scalars(
            select(PriceListItem)
            .where(PriceListItem.service_id == row.id)
            .order_by(PriceListItem.position)
        )
    )
    total = uow.session.scalar(
        select(func.count()).select_from(ServicePin).where(ServicePin.service_id == row.id)
    )
    free = uow.session.scalar(
        select(func.count())
        .select_from(ServicePin)
        .where(ServicePin.service_id == row.id, ServicePin.assigned_transaction_id.is_(None))
    )
    return ServiceView(
        id=row.id,
        company_id=row.company_id,
        code=row.code,
        name=row.name,
        section=section.name if section else None,
        category=category.name if category else None,
        active=row.active,
        active_from=row.active_from,
        active_until=row.active_until,
        price_kind=row.price_kind,
        fixed_price_minor=row.fixed_price_minor,
        min_amount_minor=row.min_amount_minor,
        currency=row.currency,
        vat_basis_points=row.vat_basis_points,
        accepted_means=tuple(row.accepted_means),
        partial_payment=row.partial_payment,
        overdue_days=row.overdue_days,
        max_retries=row.max_retries,
        daily_attempt_limit=row.daily_attempt_limit,
        daily_amount_limits=dict(row.daily_amount_limits),
        double_payment=row.double_payment,
        email_payer=row.email_payer,
        company_email=row.company_email,
        message_before=row.message_before,
        message_after=row.message_after,
        redirect_url=row.redirect_url,
        confirmation_url=row.confirmation_url,
        informative_only=row.informative_only,
        assigns_pins=row.assigns_pins,
        allows_coupon=row.allows_coupon,
        timeout_minutes=row.timeout_minutes,
        fields=fields,
        price_items=prices,
        pins_total=total or 0,
        pins_free=free or 0,
    )


def _validate_service(data: ServiceInput, company: Company) -> str:
    code = data.code.strip()
    if not code or len(code) > 30 or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationFailed("service code: 1 to 30 letters, digits, - or _", field="code")
    if not data.name.strip() or len(data.name) > 200:
        raise ValidationFailed("service name: 1 to 200 characters", field="name")
    currency = data.currency or company.currency
    if currency != company.currency:
        raise ValidationFailed(
            f"a service collects in the company's currency ({company.currency})", field="currency"
        )
    money.exponent(currency)
    # The pure rules check the parameters' consistency (price kinds, means, VAT ...).
    ServiceRules(
        price_kind=data.price_kind,
        currency=currency,
        fixed_price_minor=data.fixed_price_minor,
        min_amount_minor=data.min_amount_minor,
        vat_basis_points=data.vat_basis_points,
        accepted_means=tuple(data.accepted_means),
        max_retries=data.max_retries,
        double_payment=data.double_payment,
        daily_amount_limits=data.daily_amount_limits,
    )
    if data.active_from and data.active_until and data.active_from > data.active_until:
        raise ValidationFailed("the service closes before it opens", field="active_until")
    if data.timeout_minutes < 1 or data.timeout_minutes > 7 * 24 * 60:
        raise ValidationFailed("timeout: 1 minute to 7 days", field="timeout_minutes")
    for name in ("overdue_days", "daily_attempt_limit", "min_amount_minor"):
        value = getattr(data, name)
        if value is not None and value < 0:
            raise ValidationFailed(f"{name} cannot be negative", field=name)
    for means, limit in data.daily_amount_limits.items():
        if limit <= 0:
            raise ValidationFailed(f"the daily limit for {means} must be positive", field="limits")
    for name in ("message_before", "message_after"):
        value = getattr(data, name)
        if value is not None and len(value) > 500:
            raise ValidationFailed(f"{name}: at most 500 characters", field=name)
    return currency


def _section_ids(
    uow: UnitOfWork, company_id: int, section: str | None, category: str | None
) -> tuple[int | None, int | None]:
    if section is None:
        if category is not None:
            raise ValidationFailed("a category belongs to a section", field="category")
        return None, None
    name = section.strip()
    row = uow.session.scalar(
        select(CheckoutSection).where(
            CheckoutSection.company_id == company_id, CheckoutSection.name == name
        )
    )
    if row is None:
        count = uow.session.scalar(
            select(func.count())
            .select_from(CheckoutSection)
            .where(CheckoutSection.company_id == company_id)
        )
        row = CheckoutSection(company_id=company_id, name=name, position=(count or 0) + 1)
        uow.session.add(row)
        uow.session.flush()
    if category is None:
        return row.id, None
    cname = category.strip()
    cat = uow.session.scalar(
        select(CheckoutCategory).where(
            CheckoutCategory.section_id == row.id, CheckoutCategory.name == cname
        )
    )
    if cat is None:
        count = uow.session.scalar(
            select(func.count())
            .select_from(CheckoutCategory)
            .where(CheckoutCategory.section_id == row.id)
        )
        cat = CheckoutCategory(
            company_id=company_id, section_id=row.id, name=cname, position=(count or 0) + 1
        )
        uow.session.add(cat)
        uow.session.flush()
    return row.id, cat.id


def _snapshot(row: CheckoutService) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in SERVICE_PARAMETERS
        if name not in ("section", "category") and hasattr(row, name)
    }


# --- services -------------------------------------------------------------------------------


def create_service(
    uow: UnitOfWork, company_id: int, data: ServiceInput, *, actor: Actor, clock: Clock
) -> ServiceView:
    actor.require_write()
    with uow:
        company = _company(uow, company_id, actor)
        currency = _validate_service(data, company)
        code = data.code.strip()
        exists = uow.session.scalar(
            select(CheckoutService.id).where(
                CheckoutService.company_id == company_id, CheckoutService.code == code
            )
        )
        if exists is not None:
            raise Conflict(f"service {code!r} already exists")
        section_id, category_id = _section_ids(uow, company_id, data.section, data.category)
        now = clock()
        values = asdict(data)
        for name in ("code", "section", "category", "currency"):
            values.pop(name)
        values["accepted_means"] = list(data.accepted_means)
        values["name"] = data.name.strip()
        row = CheckoutService(
            company_id=company_id,
            code=code,
            currency=currency,
            section_id=section_id,
            category_id=category_id,
            confirmation_secret=secrets.token_hex(32),
            created_at=now,
            updated_at=now,
            **values,
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_service.created",
            entity_type="checkout_service",
            entity_id=row.id,
            after=audit.jsonable(_snapshot(row)),
        )
        view = service_view(uow, row)
        uow.commit()
        return view


def update_service(
    uow: UnitOfWork,
    company_id: int,
    code: str,
    changes: dict[str, Any],
    *,
    actor: Actor,
    clock: Clock,
) -> ServiceView:
    """Change some parameters; the whole result is validated like a new service."""
    actor.require_write()
    unknown = sorted(set(changes) - set(SERVICE_PARAMETERS))
    if unknown:
        raise ValidationFailed(f"unknown service parameter {unknown[0]!r}", field=unknown[0])
    with uow:
        company = _company(uow, company_id, actor)
        row = service_row(uow, company_id, code, lock=True)
        current = ServiceInput(
            code=row.code,
            **{
                name: getattr(row, name)
                for name in SERVICE_PARAMETERS
                if name not in ("section", "category")
            },
        )
        current = replace(current, accepted_means=tuple(row.accepted_means))
        section = service_view(uow, row)
        overrides: dict[str, Any] = {
            k: (tuple(v) if k == "accepted_means" else v) for k, v in changes.items()
        }
        overrides.setdefault("section", section.section)
        overrides.setdefault("category", section.category)
        merged = replace(current, **overrides)
        _validate_service(merged, company)
        before = _snapshot(row)
        for name, value in changes.items():
            if name in ("section", "category"):
                continue
            setattr(row, name, list(value) if name == "accepted_means" else value)
        if "section" in changes or "category" in changes:
            row.section_id, row.category_id = _section_ids(
                uow, company_id, merged.section, merged.category
            )
        row.updated_at = clock()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_service.updated",
            entity_type="checkout_service",
            entity_id=row.id,
            before=audit.jsonable(before),
            after=audit.jsonable(_snapshot(row)),
        )
        view = service_view(uow, row)
        uow.commit()
        return view


def get_service(uow: UnitOfWork, company_id: int, code: str, *, actor: Actor) -> ServiceView:
    with uow:
        _company(uow, company_id, actor)
        return service_view(uow, service_row(uow, company_id, code))


def list_services(uow: UnitOfWork, company_id: int, *, actor: Actor) -> list[ServiceView]:
    with uow:
        _company(uow, company_id, actor)
        rows = uow.session.scalars(
            select(CheckoutService)
            .where(CheckoutService.company_id == company_id)
            .order_by(CheckoutService.code)
        ).all()
        return [service_view(uow, row) for row in rows]


# --- reference fields -----------------------------------------------------------------------


def _validate_field(data: FieldInput) -> None:
    if not data.title.strip() or len(data.title) > 100:
        raise ValidationFailed("title: 1 to 100 characters", field="title")
    if data.kind not in KINDS:
        raise ValidationFailed(f"type is one of {', '.join(KINDS)}", field="kind")
    if not 1 <= data.display_length <= MAX_LENGTH:
        raise ValidationFailed(f"length: 1 to {MAX_LENGTH}", field="display_length")
    if data.prefix is not None and len(data.prefix) > 50:
        raise ValidationFailed("prefix: at most 50 characters", field="prefix")
    if data.list_items and data.list_kind not in LIST_KINDS:
        raise ValidationFailed(f"list type is one of {', '.join(LIST_KINDS)}", field="list_kind")
    codes = [item.code for item in data.list_items]
    if len(codes) != len(set(codes)):
        raise ValidationFailed("a list code is repeated", field="list_items")
    for item in data.list_items:
        if not item.code or len(item.code) > MAX_LENGTH or not item.label:
            raise ValidationFailed("a list item needs a code and a label", field="list_items")
        if data.list_kind == "price" and (item.price_minor is None or item.price_minor <= 0):
            raise ValidationFailed("a price list item needs its price", field="list_items")


def create_field(
    uow: UnitOfWork, company_id: int, data: FieldInput, *, actor: Actor, clock: Clock
) -> FieldView:
    actor.require_write()
    _validate_field(data)
    with uow:
        _company(uow, company_id, actor)
        title = data.title.strip()
        exists = uow.session.scalar(
            select(ReferenceFieldRow.id).where(
                ReferenceFieldRow.company_id == company_id, ReferenceFieldRow.title == title
            )
        )
        if exists is not None:
            raise Conflict(f"reference field {title!r} already exists")
        row = ReferenceFieldRow(
            company_id=company_id,
            title=title,
            kind=data.kind,
            help_text=data.help_text,
            prefix=data.prefix,
            display_length=data.display_length,
            list_kind=data.list_kind if data.list_items else None,
            list_items=[
                {
                    k: v
                    for k, v in (
                        ("code", i.code),
                        ("label", i.label),
                        ("price_minor", i.price_minor),
                        ("parent", i.parent),
                    )
                    if v is not None
                }
                for i in data.list_items
            ]
            or None,
            created_at=clock(),
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_field.created",
            entity_type="checkout_reference_field",
            entity_id=row.id,
            after={"title": row.title, "kind": row.kind},
        )
        view = _field_view(row)
        uow.commit()
        return view


def list_fields(uow: UnitOfWork, company_id: int, *, actor: Actor) -> list[FieldView]:
    with uow:
        _company(uow, company_id, actor)
        rows = uow.session.scalars(
            select(ReferenceFieldRow)
            .where(ReferenceFieldRow.company_id == company_id)
            .order_by(ReferenceFieldRow.title)
        ).all()
        return [_field_view(row) for row in rows]


def set_service_fields(
    uow: UnitOfWork,
    company_id: int,
    code: str,
    fields: Sequence[AttachField],
    *,
    actor: Actor,
    clock: Clock,
) -> ServiceView:
    """Replace the service's form: these fields, in this order, with these attributes."""
    actor.require_write()
    with uow:
        _company(uow, company_id, actor)
        service = service_row(uow, company_id, code, lock=True)
        ids = [f.field_id for f in fields]
        if len(ids) != len(set(ids)):
            raise ValidationFailed("a reference field is attached twice", field="fields")
        rows = {
            r.id: r
            for r in uow.session.scalars(
                select(ReferenceFieldRow).where(
                    ReferenceFieldRow.company_id == company_id, ReferenceFieldRow.id.in_(ids)
                )
            )
        }
        for position, attach in enumerate(fields):
            where = f"fields[{position}]"
            row = rows.get(attach.field_id)
            if row is None:
                raise NotFound(f"no reference field {attach.field_id}", field=where)
            if attach.forced_length:
                parse_forced_length(attach.forced_length)
            if attach.double_payment_control and position >= 3:
                raise ValidationFailed(
                    "only the first three references can be marked for double-payment control",
                    field=where,
                )
            if row.kind == "constant" and attach.fixed_value is None:
                raise ValidationFailed("a constant needs its fixed value", field=where)
            if attach.fixed_value is not None and len(attach.fixed_value) > MAX_LENGTH:
                raise ValidationFailed("fixed value: at most 100 characters", field=where)
            if attach.related_field_id is not None and attach.related_field_id not in ids:
                raise ValidationFailed(
                    "the related (child) reference must be in the same form", field=where
                )
        for old in uow.session.scalars(
            select(ServiceFieldRow).where(ServiceFieldRow.service_id == service.id)
        ):
            uow.session.delete(old)
        uow.session.flush()
        for position, attach in enumerate(fields, start=1):
            uow.session.add(
                ServiceFieldRow(service_id=service.id, position=position, **asdict(attach))
            )
        service.updated_at = clock()
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_service.fields_set",
            entity_type="checkout_service",
            entity_id=service.id,
            after={"fields": ids},
        )
        view = service_view(uow, service)
        uow.commit()
        return view


def set_price_list(
    uow: UnitOfWork,
    company_id: int,
    code: str,
    items: Sequence[PriceItemView],
    *,
    actor: Actor,
    clock: Clock,
) -> ServiceView:
    actor.require_write()
    codes = [i.code for i in items]
    if len(codes) != len(set(codes)):
        raise ValidationFailed("a price code is repeated", field="items")
    for item in items:
        if not item.code or len(item.code) > 30 or not item.label or item.amount_minor <= 0:
            raise ValidationFailed("a price needs a code, a label and an amount", field="items")
    with uow:
        _company(uow, company_id, actor)
        service = service_row(uow, company_id, code, lock=True)
        for old in uow.session.scalars(
            select(PriceListItem).where(PriceListItem.service_id == service.id)
        ):
            uow.session.delete(old)
        uow.session.flush()
        for position, item in enumerate(items, start=1):
            uow.session.add(
                PriceListItem(
                    service_id=service.id,
                    code=item.code,
                    label=item.label,
                    amount_minor=item.amount_minor,
                    position=position,
                )
            )
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_service.prices_set",
            entity_type="checkout_service",
            entity_id=service.id,
            after={"prices": {i.code: i.amount_minor for i in items}},
        )
        view = service_view(uow, service)
        uow.commit()
        return view


def load_pins(
    uow: UnitOfWork,
    company_id: int,
    code: str,
    values: Sequence[str],
    *,
    actor: Actor,
    clock: Clock,
) -> ServiceView:
    """Append PINs to the service's list, in this order (the company delivers them)."""
    actor.require_write()
    cleaned = [v.strip() for v in values]
    if not cleaned or len(cleaned) > MAX_PINS_PER_LOAD:
        raise ValidationFailed(f"load 1 to {MAX_PINS_PER_LOAD} PINs", field="pins")
    if any(not v or len(v) > 100 for v in cleaned):
        raise ValidationFailed("a PIN has 1 to 100 characters", field="pins")
    with uow:
        _company(uow, company_id, actor)
        service = service_row(uow, company_id, code, lock=True)
        existing = set(
            uow.session.scalars(select(ServicePin.value).where(ServicePin.service_id == service.id))
        )
        repeated = [v for v in cleaned if v in existing]
        if repeated or len(set(cleaned)) != len(cleaned):
            raise Conflict("a PIN is repeated in the service's list", field="pins")
        last = uow.session.scalar(
            select(func.max(ServicePin.position)).where(ServicePin.service_id == service.id)
        )
        start = (last or 0) + 1
        uow.session.add_all(
            ServicePin(service_id=service.id, position=start + i, value=value)
            for i, value in enumerate(cleaned)
        )
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="checkout_service.pins_loaded",
            entity_type="checkout_service",
            entity_id=service.id,
            after={"count": len(cleaned)},
        )
        view = service_view(uow, service)
        uow.commit()
        return view


def payable_services(uow: UnitOfWork, company_slug: str, today: date) -> list[ServiceView]:
    """The services the public page lists: active today (informative ones are shown too)."""
    with uow:
        company = uow.session.scalar(select(Company).where(Company.slug == company_slug))
        if company is None:
            raise NotFound(f"no company {company_slug!r}")
        rows = uow.session.scalars(
            select(CheckoutService)
            .where(CheckoutService.company_id == company.id, CheckoutService.active.is_(True))
            .order_by(CheckoutService.name)
        ).all()
        return [
            service_view(uow, row)
            for row in rows
            if (row.active_from is None or row.active_from <= today)
            and (row.active_until is None or today <= row.active_until)
        ]


@dataclass(frozen=True, slots=True)
class PublicCompany:
    id: int
    slug: str
    legal_name: str


def public_company(
    uow: UnitOfWork, *, slug: str | None = None, company_id: int | None = None
) -> PublicCompany:
    """What the public payment page shows of a company (no sign-in)."""
    with uow:
        if slug is not None:
            company = uow.session.scalar(select(Company).where(Company.slug == slug))
        else:
            company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound("no such company")
        return PublicCompany(company.id, company.slug, company.legal_name)


def public_service(uow: UnitOfWork, company_id: int, code: str) -> ServiceView:
    """A service as the public payment page shows it (no sign-in)."""
    with uow:
        return service_view(uow, service_row(uow, company_id, code))
