"""OAuth2 clients and tokens of the collections-management contract, and the commitment
records it receives (issue 7)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contract_clients",
        sa.Column("id", _ID, nullable=False),
        sa.Column("company_id", _ID, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("token_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_contract_clients_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_contract_clients_client_id")),
    )
    with op.batch_alter_table("contract_clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_clients_company_id"), ["company_id"], unique=False
        )
    op.create_table(
        "contract_tokens",
        sa.Column("id", _ID, nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["contract_clients.id"],
            name=op.f("fk_contract_tokens_client_pk_contract_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_contract_tokens_token_hash")),
    )
    with op.batch_alter_table("contract_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_tokens_client_pk"), ["client_pk"], unique=False
        )

    op.create_table(
        "contract_commitments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("company_id", _ID, nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("strategy", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("negotiation_id", _ID, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["contract_clients.id"],
            name=op.f("fk_contract_commitments_client_pk_contract_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_contract_commitments_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_contract_commitments_negotiation_id_negotiations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_commitments")),
    )
    with op.batch_alter_table("contract_commitments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contract_commitments_pending", ["company_id", "account"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("contract_commitments", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_commitments_pending")
    op.drop_table("contract_commitments")
    with op.batch_alter_table("contract_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_tokens_client_pk"))
    op.drop_table("contract_tokens")
    with op.batch_alter_table("contract_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_clients_company_id"))
    op.drop_table("contract_clients")
