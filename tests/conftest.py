"""Shared fixtures: every service-level test runs on SQLite and on PostgreSQL.

Ask for `engine` (or `uow`, `company`, ...) and the test runs twice, once per backend.
PostgreSQL is the real server on 127.0.0.1:5432 (override with RECAUDO_TEST_PG_URL);
each xdist worker gets its own database, migrated once and truncated between tests.
SQLite gets a fresh migrated file per test, copied from a template migrated once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from recaudo.adapters.db import migrate
from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.tables import Base, Company
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role

PG_ADMIN_URL = os.environ.get(
    "RECAUDO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    b.strip()
    for b in os.environ.get("RECAUDO_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]


class FrozenClock:
    """A clock tests move by hand; each reading is strictly later than the last."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 13, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _run() -> str:
    # One id per test run (xdist gives all its workers the same one): two runs on one
    # machine, say two developers' or a developer's and CI's, never drop each other's
    # databases.
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", f"p{os.getpid()}")[:12]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"recaudo_test_{_run()}_{_worker()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "sqlite" and request.node.get_closest_marker("postgres_only"):
        pytest.skip("PostgreSQL-only behaviour")
    return name


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        _truncate_all(engine)
        engine.dispose()
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "recaudo.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    """A unit of work; each `with uow:` opens a fresh session and transaction."""
    return UnitOfWork(engine)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def admin() -> Actor:
    return Actor("test:admin", Role.ADMIN)


@pytest.fixture
def company(uow: UnitOfWork, admin: Actor, clock: FrozenClock) -> Company:
    """A Chilean company, `acme`, in CLP."""
    return create_company(
        uow, NewCompany("acme", "Acme Telecomunicaciones SpA", "CL"), actor=admin, clock=clock
    )


@pytest.fixture
def company_es(uow: UnitOfWork, admin: Actor, clock: FrozenClock) -> Company:
    """A Spanish company, `ong`, in EUR."""
    return create_company(
        uow, NewCompany("ong", "Fundación Ejemplo", "ES"), actor=admin, clock=clock
    )
