"""Migrations: the models and the Alembic revisions agree, and upgrades keep data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select

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
