"""Migrations: the models and the Alembic revisions agree, and upgrades keep data."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text

from recaudo.adapters.db import migrate
from recaudo.adapters.db.tables import Base, Company


def test_models_match_migrations(engine: Engine) -> None:
    """Every change to tables.py has its revision: autogenerate finds nothing to add."""
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_upgrade_on_existing_database_keeps_data(engine: Engine, company: Company) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.upgrade(engine)  # already at head: a no-op, nothing lost
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Company)) == 1
        assert conn.scalar(select(Company.slug)) == "acme"


def test_downgrade_and_upgrade_round_trip(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_upgrade_from_0001_keeps_companies_and_payments(engine: Engine) -> None:
    """`recaudo db upgrade` on a database of the first release: rows survive, defaults fill."""
    migrate.downgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO companies (slug, legal_name, country, currency, timezone, created_at)"
                " VALUES ('old', 'Old SpA', 'CL', 'CLP', 'America/Santiago', :now)"
            ),
            {"now": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        company_id = conn.scalar(text("SELECT id FROM companies WHERE slug = 'old'"))
        conn.execute(
            text(
                "INSERT INTO customers (company_id, id_type, national_id, name, created_at,"
                " updated_at) VALUES (:c, 'RUT', '123456785', 'Juan', :now, :now)"
            ),
            {"c": company_id, "now": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        customer_id = conn.scalar(text("SELECT id FROM customers"))
        conn.execute(
            text(
                "INSERT INTO payments (company_id, customer_id, channel, method, external_id,"
                " request_fingerprint, amount_minor, currency, paid_at, status, recorded_by,"
                " created_at) VALUES (:c, :cu, 'office', 'cash', 'k-1', 'f', 1500, 'CLP', :now,"
                " 'applied', 'cli', :now)"
            ),
            {"c": company_id, "cu": customer_id, "now": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT slug, available FROM companies")).one() == ("old", True)
        assert conn.execute(
            text("SELECT external_id, amount_minor, agreement_id, accounting_date FROM payments")
        ).one() == ("k-1", 1500, None, None)
