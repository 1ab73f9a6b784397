"""debt components, negotiations, viability policies, payment-capacity profiles (issue 7)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 05:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "negotiation_settings",
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("concept_labels", sa.JSON(), nullable=False),
        sa.Column("break_after_days", sa.Integer(), nullable=False),
        sa.Column("reinstate_on_break", sa.String(length=16), nullable=False),
        sa.Column("capacity_ratio_bp", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_negotiation_settings_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_negotiation_settings")),
    )
    op.create_table(
        "viability_policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("cause", sa.String(length=100), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("exception_name", sa.String(length=40), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_viability_policies_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viability_policies")),
        sa.UniqueConstraint("company_id", "name", name=op.f("uq_viability_policies_company_id")),
    )
    op.create_table(
        "negotiations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("strategy", sa.String(length=8), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("offer", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("adviser", sa.String(length=100), nullable=True),
        sa.Column("office", sa.String(length=20), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("mark_start", sa.Date(), nullable=False),
        sa.Column("mark_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("negotiated_minor", sa.BigInteger(), nullable=False),
        sa.Column("payment_today_minor", sa.BigInteger(), nullable=False),
        sa.Column("installments_total_minor", sa.BigInteger(), nullable=False),
        sa.Column("condoned_minor", sa.BigInteger(), nullable=False),
        sa.Column("exceptions_used", sa.JSON(), nullable=False),
        sa.Column("break_reason", sa.Text(), nullable=True),
        sa.Column(
            "reinstated_debt_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_negotiations_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_negotiations_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["reinstated_debt_id"],
            ["debts.id"],
            name=op.f("fk_negotiations_reinstated_debt_id_debts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_negotiations")),
        sa.UniqueConstraint("company_id", "external_id", name=op.f("uq_negotiations_company_id")),
    )
    with op.batch_alter_table("negotiations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_negotiations_company_state", ["company_id", "state"], unique=False
        )
        batch_op.create_index("ix_negotiations_customer", ["customer_id"], unique=False)
    op.create_table(
        "payment_profiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("income_minor", sa.BigInteger(), nullable=False),
        sa.Column("other_income_minor", sa.BigInteger(), nullable=False),
        sa.Column("expenses_minor", sa.BigInteger(), nullable=False),
        sa.Column("self_employed", sa.Boolean(), nullable=False),
        sa.Column("sales_minor", sa.BigInteger(), nullable=True),
        sa.Column("operating_costs_minor", sa.BigInteger(), nullable=True),
        sa.Column("cash_today_minor", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("declared_by", sa.String(length=100), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_payment_profiles_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_payment_profiles_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_profiles")),
    )
    with op.batch_alter_table("payment_profiles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_profiles_customer", ["company_id", "customer_id"], unique=False
        )
    op.create_table(
        "debt_components",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("debt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("concept", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "negotiation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_debt_components_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["debt_id"], ["debts.id"], name=op.f("fk_debt_components_debt_id_debts")
        ),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_debt_components_negotiation_id_negotiations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debt_components")),
    )
    with op.batch_alter_table("debt_components", schema=None) as batch_op:
        batch_op.create_index("ix_debt_components_debt", ["debt_id", "kind"], unique=False)
    op.create_table(
        "negotiation_commitments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "negotiation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_negotiation_commitments_negotiation_id_negotiations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_negotiation_commitments")),
        sa.UniqueConstraint(
            "negotiation_id", "position", name=op.f("uq_negotiation_commitments_negotiation_id")
        ),
    )
    op.create_table(
        "negotiation_debts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "negotiation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("debt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("open_minor", sa.BigInteger(), nullable=False),
        sa.Column("overdue_minor", sa.BigInteger(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["debt_id"], ["debts.id"], name=op.f("fk_negotiation_debts_debt_id_debts")
        ),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_negotiation_debts_negotiation_id_negotiations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_negotiation_debts")),
        sa.UniqueConstraint(
            "negotiation_id", "debt_id", name=op.f("uq_negotiation_debts_negotiation_id")
        ),
    )
    with op.batch_alter_table("negotiation_debts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_negotiation_debts_debt_id"), ["debt_id"], unique=False)
    op.create_table(
        "negotiation_installments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "negotiation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("debt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("principal_minor", sa.BigInteger(), nullable=False),
        sa.Column("interest_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["debt_id"], ["debts.id"], name=op.f("fk_negotiation_installments_debt_id_debts")
        ),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_negotiation_installments_negotiation_id_negotiations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_negotiation_installments")),
        sa.UniqueConstraint("debt_id", name=op.f("uq_negotiation_installments_debt_id")),
        sa.UniqueConstraint(
            "negotiation_id", "number", name=op.f("uq_negotiation_installments_negotiation_id")
        ),
    )
    op.create_table(
        "policy_exceptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("debt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_by", sa.String(length=100), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column(
            "negotiation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_policy_exceptions_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_policy_exceptions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["debt_id"], ["debts.id"], name=op.f("fk_policy_exceptions_debt_id_debts")
        ),
        sa.ForeignKeyConstraint(
            ["negotiation_id"],
            ["negotiations.id"],
            name=op.f("fk_policy_exceptions_negotiation_id_negotiations"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["viability_policies.id"],
            name=op.f("fk_policy_exceptions_policy_id_viability_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_exceptions")),
    )
    with op.batch_alter_table("policy_exceptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_exceptions_customer", ["company_id", "customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("policy_exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_exceptions_customer")
    op.drop_table("policy_exceptions")
    op.drop_table("negotiation_installments")
    with op.batch_alter_table("negotiation_debts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_negotiation_debts_debt_id"))
    op.drop_table("negotiation_debts")
    op.drop_table("negotiation_commitments")
    with op.batch_alter_table("debt_components", schema=None) as batch_op:
        batch_op.drop_index("ix_debt_components_debt")
    op.drop_table("debt_components")
    with op.batch_alter_table("payment_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_profiles_customer")
    op.drop_table("payment_profiles")
    with op.batch_alter_table("negotiations", schema=None) as batch_op:
        batch_op.drop_index("ix_negotiations_customer")
        batch_op.drop_index("ix_negotiations_company_state")
    op.drop_table("negotiations")
    op.drop_table("viability_policies")
    op.drop_table("negotiation_settings")
