"""Small builders shared by integration tests: customers and debts straight into the database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from recaudo.adapters.db.tables import Company, Customer, Debt
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain import money
from recaudo.services.context import Actor
from recaudo.services.customers import CustomerData, register_customer


def add_customer(
    uow: UnitOfWork, company: Company, national_id: str, name: str, clock: object
) -> Customer:
    with uow:
        customer = register_customer(
            uow,
            company,
            CustomerData(national_id, name),
            actor=Actor("test:setup"),
            clock=clock,  # type: ignore[arg-type]
        )
        uow.commit()
    return customer


def add_debt(
    uow: UnitOfWork,
    company: Company,
    customer: Customer,
    external_id: str,
    amount: str,
    due: date,
    clock: object,
    *,
    status: str = "open",
) -> Debt:
    now = clock()  # type: ignore[operator]
    with uow:
        debt = Debt(
            company_id=company.id,
            customer_id=customer.id,
            external_id=external_id,
            concept="Servicio",
            amount_minor=money.to_minor(Decimal(amount), company.currency),
            currency=company.currency,
            issue_date=None,
            due_date=due,
            status=status,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(debt)
        uow.commit()
    return debt
