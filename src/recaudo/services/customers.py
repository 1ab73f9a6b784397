"""Customers: one per national id and company, however the id was typed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from recaudo.adapters.db.tables import Company, Customer
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import ids
from recaudo.domain.errors import InvalidNationalId, NotFound, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import Actor, Clock


def resolve_national_id(country: str, raw: str, id_type: str | None = None) -> ids.NationalId:
    """Validate a national id typed for a company of `country`.

    Without a declared type the country's default applies (RUT in Chile, CC in Colombia,
    NIF in Spain, which also recognises NIE and CIF); a declared type must belong to the
    company's country.
    """
    if id_type is None or not id_type.strip():
        kind = ids.COUNTRY_DEFAULT_ID_TYPE[country]
    else:
        kind = ids.parse_id_type(id_type)
        if kind not in ids.COUNTRY_ID_TYPES[country]:
            raise InvalidNationalId(f"id type {kind} is not used in {country}")
    return ids.normalize(kind, raw)


@dataclass(frozen=True, slots=True)
class CustomerData:
    national_id: str
    name: str
    id_type: str | None = None
    email: str | None = None
    phone: str | None = None


def clean_name(name: str) -> str:
    value = " ".join(name.split())
    if not value:
        raise ValidationFailed("customer name is empty", field="name")
    if len(value) > 200:
        raise ValidationFailed("customer name is longer than 200 characters", field="name")
    return value


def find_customer(
    uow: UnitOfWork, company: Company, raw_id: str, id_type: str | None = None
) -> Customer:
    national = resolve_national_id(company.country, raw_id, id_type)
    customer = uow.session.scalar(
        select(Customer).where(
            Customer.company_id == company.id,
            Customer.id_type == national.type.value,
            Customer.national_id == national.value,
        )
    )
    if customer is None:
        raise NotFound(f"no customer with {national.type} {national.masked()}")
    return customer


def register_customer(
    uow: UnitOfWork, company: Company, data: CustomerData, *, actor: Actor, clock: Clock
) -> Customer:
    """Create the customer, or update name and contact data of the existing one.

    Runs inside the caller's unit of work; the caller commits.
    """
    national = resolve_national_id(company.country, data.national_id, data.id_type)
    name = clean_name(data.name)
    now = clock()
    customer = uow.session.scalar(
        select(Customer).where(
            Customer.company_id == company.id,
            Customer.id_type == national.type.value,
            Customer.national_id == national.value,
        )
    )
    if customer is None:
        customer = Customer(
            company_id=company.id,
            id_type=national.type.value,
            national_id=national.value,
            name=name,
            email=data.email,
            phone=data.phone,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(customer)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="customer.created",
            entity_type="customer",
            entity_id=customer.id,
            after={"id_type": customer.id_type, "national_id": customer.national_id, "name": name},
        )
        return customer
    before = {"name": customer.name, "email": customer.email, "phone": customer.phone}
    email, phone = data.email or customer.email, data.phone or customer.phone
    after = {"name": name, "email": email, "phone": phone}
    if before != after:
        customer.name, customer.email, customer.phone = name, email, phone
        customer.updated_at = now
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company.id,
            action="customer.updated",
            entity_type="customer",
            entity_id=customer.id,
            before=before,
            after=after,
        )
    return customer
