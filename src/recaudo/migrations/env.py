"""Alembic environment: uses the connection `recaudo db upgrade` hands it, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from recaudo.adapters.db.tables import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:  # the plain `alembic` command, for developers writing a new revision
    from recaudo.adapters.db.engine import make_engine
    from recaudo.config import get_settings

    with make_engine(get_settings().database_url).begin() as connection:
        run(connection)
