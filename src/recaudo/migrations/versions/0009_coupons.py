"""coupons: coupon settings per service (GLN, correspondent agreement) and printed coupons
(issue 8)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupon_settings",
        sa.Column("service_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("agreement_code", sa.String(length=20), nullable=False),
        sa.Column("due_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_coupon_settings_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_coupon_settings_service_id_checkout_services"),
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_coupon_settings")),
        sa.UniqueConstraint(
            "company_id", "agreement_code", name=op.f("uq_coupon_settings_company_id")
        ),
    )
    op.create_table(
        "coupons",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("number", sa.String(length=25), nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("element_string", sa.String(length=120), nullable=False),
        sa.Column("human_readable", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_id", ID, nullable=True),
        sa.Column("approval_id", sa.String(length=20), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_coupons_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_coupons_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_coupons_service_id_checkout_services"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["checkout_transactions.id"],
            name=op.f("fk_coupons_transaction_id_checkout_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("company_id", "number", name=op.f("uq_coupons_company_id")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_coupons_transaction_id")),
    )


def downgrade() -> None:
    op.drop_table("coupons")
    op.drop_table("coupon_settings")
