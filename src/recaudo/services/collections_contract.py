"""What the collections-management contract needs besides the negotiation services:
finding an obligation or a customer by the numbers the contract sends, the names of
granted exceptions, and the commitment records the contract sends one by one (partial
`P` records wait for their total `T`). Recaudo names only: the contract's field names
stay in `channels/collections_management/contract.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update

from recaudo.adapters.db.tables import (
    Company,
    ContractCommitment,
    Customer,
    Debt,
    PolicyException,
    ViabilityPolicy,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, NotFound
from recaudo.services.context import Clock


@dataclass(frozen=True, slots=True)
class Account:
    """An obligation found by its number, with its customer."""

    debt_id: int
    reference: str
    customer_id: int
    id_type: str
    national_id: str
    currency: str
    product: str
    status: str


@dataclass(frozen=True, slots=True)
class CompanyFacts:
    id: int
    currency: str
    legal_name: str
    timezone: str


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    id: int
    id_type: str
    national_id: str
    phone: str


@dataclass(frozen=True, slots=True)
class PendingCommitment:
    id: int
    strategy: str
    kind: str
    amount_minor: int
    due_date: date
    details: dict[str, Any]
    received_at: datetime


def company_facts(uow: UnitOfWork, company_id: int) -> CompanyFacts:
    with uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        return CompanyFacts(company.id, company.currency, company.legal_name, company.timezone)


def _account(debt: Debt, customer: Customer) -> Account:
    return Account(
        debt.id,
        debt.external_id,
        customer.id,
        customer.id_type,
        customer.national_id,
        debt.currency,
        debt.concept or "",
        debt.status,
    )


def find_account(uow: UnitOfWork, company_id: int, reference: str) -> Account:
    """The company's debt whose id is `reference` (already stripped of its padding)."""
    with uow:
        row = uow.session.execute(
            select(Debt, Customer)
            .join(Customer, Customer.id == Debt.customer_id)
            .where(Debt.company_id == company_id, Debt.external_id == reference)
        ).first()
        if row is None:
            raise NotFound(f"no debt {reference!r}")
        return _account(row[0], row[1])


def find_customers(uow: UnitOfWork, company_id: int, number: str) -> list[CustomerFacts]:
    """The company's customers whose national id, letters and digits only, is `number`
    (one per id type at most: the same number may be a CC and a NIT)."""
    with uow:
        rows = uow.session.scalars(
            select(Customer)
            .where(Customer.company_id == company_id, Customer.national_id == number)
            .order_by(Customer.id)
        )
        return [CustomerFacts(c.id, c.id_type, c.national_id, c.phone or "") for c in rows]


def customer_facts(uow: UnitOfWork, company_id: int, customer_id: int) -> CustomerFacts:
    with uow:
        c = uow.session.get(Customer, customer_id)
        if c is None or c.company_id != company_id:
            raise NotFound(f"no customer {customer_id}")
        return CustomerFacts(c.id, c.id_type, c.national_id, c.phone or "")


def exception_names(uow: UnitOfWork, company_id: int, ids: Iterable[int]) -> dict[int, str]:
    """The exception name (`EXC_DIAS_MORA`, ...) of each granted exception's policy."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    with uow:
        rows = uow.session.execute(
            select(PolicyException.id, ViabilityPolicy.exception_name, ViabilityPolicy.cause)
            .join(ViabilityPolicy, ViabilityPolicy.id == PolicyException.policy_id)
            .where(PolicyException.company_id == company_id, PolicyException.id.in_(wanted))
        ).all()
        return {row[0]: row[1] or row[2] for row in rows}


def pending_commitments(uow: UnitOfWork, company_id: int, account: str) -> list[PendingCommitment]:
    """The partial records of an obligation still waiting for their total, oldest first."""
    with uow:
        rows = uow.session.scalars(
            select(ContractCommitment)
            .where(
                ContractCommitment.company_id == company_id,
                ContractCommitment.account == account,
                ContractCommitment.negotiation_id.is_(None),
            )
            .order_by(ContractCommitment.id)
        )
        return [
            PendingCommitment(
                r.id, r.strategy, r.kind, r.amount_minor, r.due_date, dict(r.details), r.received_at
            )
            for r in rows
        ]


def record_partial(
    uow: UnitOfWork,
    company_id: int,
    client_pk: int,
    account: str,
    strategy: str,
    amount_minor: int,
    due_date: date,
    details: Mapping[str, Any],
    *,
    clock: Clock,
) -> PendingCommitment:
    """Keep a partial (`P`) record until the obligation's total (`T`) arrives."""
    with uow:
        other = uow.session.scalar(
            select(ContractCommitment.strategy).where(
                ContractCommitment.company_id == company_id,
                ContractCommitment.account == account,
                ContractCommitment.negotiation_id.is_(None),
                ContractCommitment.strategy != strategy,
            )
        )
        if other is not None:
            raise Conflict(
                f"obligation {account!r} has partial commitments of {other} waiting for their "
                f"total: a {strategy} commitment cannot join them"
            )
        row = ContractCommitment(
            company_id=company_id,
            client_pk=client_pk,
            account=account,
            strategy=strategy,
            kind="P",
            amount_minor=amount_minor,
            due_date=due_date,
            details=dict(details),
            negotiation_id=None,
            received_at=clock(),
        )
        uow.session.add(row)
        uow.session.flush()
        uow.commit()
        return PendingCommitment(
            row.id, strategy, "P", amount_minor, due_date, dict(details), row.received_at
        )


def close_commitments(
    uow: UnitOfWork,
    company_id: int,
    client_pk: int,
    account: str,
    partial_ids: Sequence[int],
    strategy: str,
    amount_minor: int,
    due_date: date,
    details: Mapping[str, Any],
    negotiation_id: int,
    *,
    clock: Clock,
) -> None:
    """Record the total (`T`) and link it and its partial records to the negotiation
    (once: a retried total whose negotiation was replayed only links what waits)."""
    with uow:
        if partial_ids:
            uow.session.execute(
                update(ContractCommitment)
                .where(
                    ContractCommitment.company_id == company_id,
                    ContractCommitment.id.in_(list(partial_ids)),
                    ContractCommitment.negotiation_id.is_(None),
                )
                .values(negotiation_id=negotiation_id)
            )
        closed = uow.session.scalar(
            select(ContractCommitment.id).where(
                ContractCommitment.negotiation_id == negotiation_id,
                ContractCommitment.kind == "T",
            )
        )
        if closed is not None:
            # A retried total: the negotiation was replayed, its record is already here.
            uow.commit()
            return
        uow.session.add(
            ContractCommitment(
                company_id=company_id,
                client_pk=client_pk,
                account=account,
                strategy=strategy,
                kind="T",
                amount_minor=amount_minor,
                due_date=due_date,
                details=dict(details),
                negotiation_id=negotiation_id,
                received_at=clock(),
            )
        )
        uow.commit()


def negotiation_details(uow: UnitOfWork, company_id: int, negotiation_id: int) -> dict[str, Any]:
    """What the contract sent with the total record of a negotiation ({} if none)."""
    with uow:
        details = uow.session.scalar(
            select(ContractCommitment.details)
            .where(
                ContractCommitment.company_id == company_id,
                ContractCommitment.negotiation_id == negotiation_id,
                ContractCommitment.kind == "T",
            )
            .limit(1)
        )
        return dict(details or {})
