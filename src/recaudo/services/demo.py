"""The demo company: realistic Chilean customers, debts and office payments, idempotently.

Everything goes through the real use cases: the debts are written to a CSV file and
loaded by the debts import in upsert mode (so the load is audited, and a second run finds
the same file and changes nothing), and the payments go through `apply_payment` with fixed
idempotency keys (so a second run replays them). The data is generated from a fixed seed
and dated relative to the day the demo company was created: every run produces the same
file byte for byte, and a demo created today has some debts overdue and some still to fall
due.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from stdnum.cl import rut

from recaudo.adapters.db.tables import Company, Customer, Debt, Payment
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, DebtNotPayable, NotFound, ValidationFailed
from recaudo.domain.payments import PaymentMethod
from recaudo.formats.tabular import write_table
from recaudo.services.companies import NewCompany, company_by_slug, create_company, issue_api_key
from recaudo.services.context import Actor, Clock, Role
from recaudo.services.customers import find_customer
from recaudo.services.imports import ImportMode, import_debts
from recaudo.services.payments import ApplyPayment, apply_payment
from recaudo.services.queries import company_view
from recaudo.services.users import NewUser, create_user, reset_password, user_id_by_email
from recaudo.services.views import CompanyView

DEMO_SLUG = "demo"
# The demo's back-office administrator; each `recaudo demo` gives it a new provisional password.
DEMO_ADMIN_EMAIL = "admin@demo.recaudo.cl"
DEMO_ADMIN_NAME = "Administración Demo"
DEMO_NAME = "Recaudo Demo SpA"
DEMO_TAX_ID = "76.086.428-5"
DEMO_FILE_NAME = "demo-deudas.csv"
SEED = 20260302
FILE_HEADERS = ("rut", "nombre", "id_deuda", "emision", "vencimiento", "monto", "concepto")

FEMALE_NAMES = (
    "María", "Ana", "Carolina", "Camila", "Javiera", "Valentina", "Constanza", "Fernanda",
    "Catalina", "Daniela", "Paulina", "Francisca", "Macarena", "Carmen", "Gabriela",
    "Isidora", "Antonia", "Rosa", "Marcela", "Verónica", "Josefa", "Lorena", "Bárbara",
    "Sofía", "Claudia", "Patricia", "Soledad", "Trinidad", "Florencia", "Ximena",
)  # fmt: skip
MALE_NAMES = (
    "José", "Juan", "Luis", "Francisco", "Diego", "Felipe", "Cristián", "Rodrigo",
    "Sebastián", "Matías", "Claudio", "Pedro", "Andrés", "Jorge", "Patricio", "Álvaro",
    "Nicolás", "Ignacio", "Tomás", "Benjamín", "Héctor", "Manuel", "Vicente", "Raúl",
    "Gonzalo", "Mauricio", "Alejandro", "Pablo", "Esteban", "Joaquín",
)  # fmt: skip
SURNAMES = (
    "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva", "Martínez",
    "Sepúlveda", "Morales", "Rodríguez", "López", "Fuentes", "Hernández", "Torres", "Araya",
    "Flores", "Espinoza", "Valenzuela", "Castillo", "Tapia", "Reyes", "Gutiérrez", "Castro",
    "Pizarro", "Álvarez", "Vásquez", "Sánchez", "Fernández", "Ramírez", "Carrasco", "Gómez",
    "Cortés", "Herrera", "Núñez", "Jara", "Vergara", "Rivera", "Figueroa", "Riquelme",
    "García", "Miranda", "Bravo", "Vera", "Molina", "Vega", "Campos", "Sandoval", "Orellana",
    "Cárdenas", "Olivares", "Alarcón", "Gallardo", "Ortiz", "Garrido", "Salazar", "Guzmán",
    "Henríquez", "Saavedra", "Navarro", "Aguilera", "Parra", "Romero", "Aravena", "Vidal",
    "Cáceres", "Yáñez", "Peña", "Quezada", "Lagos", "Bustos", "Medina", "Poblete", "Ulloa",
)  # fmt: skip
PLANS = (
    ("Internet hogar 300 Mbps", 19_990),
    ("Internet hogar 600 Mbps", 24_990),
    ("Internet hogar 940 Mbps", 29_990),
    ("Pack internet + TV", 39_990),
    ("Pack triple hogar", 54_990),
    ("Plan móvil 50 GB", 12_990),
    ("Plan móvil libre", 17_990),
)
MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
    "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoDebt:
    external_id: str
    concept: str
    amount: int  # CLP has no minor unit: pesos
    issue_date: date
    due_date: date


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    rut: str  # formatted, 12.345.678-5
    name: str
    debts: tuple[DemoDebt, ...]


def _add_months(day: date, months: int, day_of_month: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day_of_month)


def demo_customers(count: int, anchor: date) -> list[DemoCustomer]:
    """`count` customers with 1-4 monthly debts each, the same ones for the same arguments.

    The list for `n` customers is a prefix of the list for more, so growing the demo adds
    customers and never renames existing ones. Due dates fall from four months before
    `anchor` to a month after it.
    """
    rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not a secret
    used: set[int] = set()
    customers: list[DemoCustomer] = []
    boleta = 100_000
    for _ in range(count):
        body = rng.randint(5_000_000, 26_999_999)
        while body in used:
            body = rng.randint(5_000_000, 26_999_999)
        used.add(body)
        national = str(rut.format(f"{body}{rut.calc_check_digit(str(body))}"))
        given = FEMALE_NAMES if rng.random() < 0.5 else MALE_NAMES
        first = rng.choice(given)
        if rng.random() < 0.35:
            first = f"{first} {rng.choice([n for n in given if n != first])}"
        name = f"{first} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
        plan, price = rng.choice(PLANS)
        due_day = rng.choice((5, 10, 15, 20, 25))
        latest = _add_months(anchor, rng.choice((-1, 0, 0, 1)), due_day)
        debts: list[DemoDebt] = []
        for back in reversed(range(rng.randint(1, 4))):
            due = _add_months(latest, -back, due_day)
            billed = _add_months(due, -1, 1)
            boleta += 1
            amount = price
            if rng.random() < 0.15:  # a prorated or discounted month
                amount = price * rng.randint(40, 95) // 1000 * 10
            concept = f"{plan}, {MONTHS[billed.month - 1]} {billed.year}"
            debts.append(DemoDebt(f"B-{boleta}", concept, amount, due - timedelta(days=20), due))
        customers.append(DemoCustomer(national, name, tuple(debts)))
    return customers


def _file_rows(
    customers: list[DemoCustomer],
) -> Iterator[tuple[str, str, str, date, date, int, str]]:
    for customer in customers:
        for debt in customer.debts:
            yield (
                customer.rut,
                customer.name,
                debt.external_id,
                debt.issue_date,
                debt.due_date,
                debt.amount,
                debt.concept,
            )


def write_demo_file(customers: list[DemoCustomer], path: Path) -> None:
    with path.open("wb") as out:
        write_table(FILE_HEADERS, _file_rows(customers), "csv", out)


@dataclass(frozen=True, slots=True)
class DemoPayment:
    """An office payment of the demo: whose, how, and how much of what they owe."""

    customer: int  # index into the demo customers
    method: PaymentMethod
    share: str  # oldest | all | half | newest | over
    key: str  # idempotency key: fixed, so a second run replays it


DEMO_PAYMENTS = (
    DemoPayment(0, PaymentMethod.CASH, "oldest", "demo-pago-0001"),
    DemoPayment(1, PaymentMethod.TRANSFER, "all", "demo-pago-0002"),
    DemoPayment(2, PaymentMethod.CHEQUE, "half", "demo-pago-0003"),
    DemoPayment(3, PaymentMethod.CARD, "newest", "demo-pago-0004"),
    DemoPayment(4, PaymentMethod.CASH, "over", "demo-pago-0005"),
    DemoPayment(6, PaymentMethod.TRANSFER, "oldest", "demo-pago-0006"),
    DemoPayment(9, PaymentMethod.CASH, "half", "demo-pago-0007"),
    DemoPayment(12, PaymentMethod.CARD, "all", "demo-pago-0008"),
)


def _payment_terms(plan: DemoPayment, customer: DemoCustomer) -> tuple[int, tuple[str, ...]]:
    """Amount in pesos and the debts named (none: the oldest due debts take it)."""
    oldest, newest = customer.debts[0], customer.debts[-1]
    total = sum(d.amount for d in customer.debts)
    if plan.share == "oldest":
        return oldest.amount, ()
    if plan.share == "half":
        return oldest.amount // 2, ()
    if plan.share == "newest":
        return newest.amount, (newest.external_id,)
    if plan.share == "over":
        return total + 10_000, ()  # the rest becomes the customer's credit
    return total, ()


@dataclass(frozen=True, slots=True)
class DemoResult:
    company_id: int
    company_slug: str
    created: bool
    customers: int
    debts: int
    payments: int
    import_id: int | None
    import_status: str  # completed, or duplicate: the same file was loaded before
    duplicate_of: int | None
    added: int
    updated: int
    unchanged: int
    conflicts: int  # rows naming debts already paid: an import never changes those
    payments_applied: int
    payments_replayed: int
    api_key_id: int
    api_key: str  # shown once
    admin_email: str
    admin_password: str  # provisional, shown once: changed at the first sign-in


def _demo_company(uow: UnitOfWork, *, actor: Actor, clock: Clock) -> tuple[CompanyView, bool]:
    with uow:
        try:
            return company_view(company_by_slug(uow, DEMO_SLUG)), False
        except NotFound:
            pass
    company = create_company(
        uow, NewCompany(DEMO_SLUG, DEMO_NAME, "CL", tax_id=DEMO_TAX_ID), actor=actor, clock=clock
    )
    return company_view(company), True


def _count(
    uow: UnitOfWork, model: type[Customer] | type[Debt] | type[Payment], company_id: int
) -> int:
    return int(
        uow.session.scalar(
            select(func.count()).select_from(model).where(model.company_id == company_id)
        )
        or 0
    )


def load_demo(
    uow: UnitOfWork,
    *,
    customers: int = 1000,
    actor: Actor,
    clock: Clock,
    workdir: Path | None = None,
) -> DemoResult:
    """Create or refresh the demo company and issue a new admin API key for it."""
    if not 1 <= customers <= 100_000:
        raise ValidationFailed("the demo has 1 to 100,000 customers", field="customers")
    actor.require(Role.ADMIN)
    company, created = _demo_company(uow, actor=actor, clock=clock)
    if company.country != "CL":
        raise ValidationFailed(f"company {DEMO_SLUG!r} exists and is not Chilean: not a demo")
    anchor = company.created_at.astimezone(ZoneInfo(company.timezone)).date()
    people = demo_customers(customers, anchor)
    with tempfile.TemporaryDirectory(prefix="recaudo-demo-", dir=workdir) as tmp:
        path = Path(tmp) / DEMO_FILE_NAME
        write_demo_file(people, path)
        report = import_debts(
            uow,
            company.id,
            path,
            mode=ImportMode.UPSERT,
            actor=actor,
            clock=clock,
            file_name=DEMO_FILE_NAME,
        )
    if report.status == "rejected":
        first = report.issues[0].reason if report.issues else "no reason given"
        raise ValidationFailed(f"the demo debts file was rejected: {first}")
    applied = replayed = 0
    for plan in DEMO_PAYMENTS:
        if plan.customer >= len(people):
            continue
        person = people[plan.customer]
        amount, named = _payment_terms(plan, person)
        with uow:
            owner = uow.session.get(Company, company.id)
            if owner is None:
                raise NotFound(f"no company {company.id}")
            customer_id = find_customer(uow, owner, person.rut).id
        try:
            result = apply_payment(
                uow,
                ApplyPayment(
                    company_id=company.id,
                    customer_id=customer_id,
                    amount=Decimal(amount),
                    method=plan.method,
                    external_id=plan.key,
                    debts=named,
                ),
                actor=actor,
                clock=clock,
            )
        except DebtNotPayable:
            continue  # someone paid that debt by hand since: nothing to show with it
        if result.replayed:
            replayed += 1
        else:
            applied += 1
    key = issue_api_key(uow, DEMO_SLUG, Role.ADMIN, actor=actor, clock=clock, label="demo")
    admin_password = _demo_admin(uow, company.id, actor=actor, clock=clock)
    with uow:
        counts = {m: _count(uow, m, company.id) for m in (Customer, Debt, Payment)}
    return DemoResult(
        company_id=company.id,
        company_slug=company.slug,
        created=created,
        customers=counts[Customer],
        debts=counts[Debt],
        payments=counts[Payment],
        import_id=report.import_id,
        import_status=report.status,
        duplicate_of=report.duplicate_of,
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        payments_applied=applied,
        payments_replayed=replayed,
        api_key_id=key.key_id,
        api_key=key.secret,
        admin_email=DEMO_ADMIN_EMAIL,
        admin_password=admin_password,
    )


def _demo_admin(uow: UnitOfWork, company_id: int, *, actor: Actor, clock: Clock) -> str:
    """The demo administrator's provisional password: a new user, or a reset of it."""
    try:
        created = create_user(
            uow,
            NewUser(DEMO_ADMIN_EMAIL, DEMO_ADMIN_NAME, company_id, Role.ADMIN),
            actor=actor,
            clock=clock,
        )
    except Conflict:
        created = None  # already the demo company's user
    if created is not None and created.provisional_password is not None:
        return created.provisional_password
    user_id = user_id_by_email(uow, DEMO_ADMIN_EMAIL)
    return reset_password(uow, user_id, actor=actor, clock=clock)
