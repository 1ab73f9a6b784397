"""recurring commitments, mandates, SEPA remittances and returns (issue 5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commitment_settings",
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("generate_for", sa.String(length=8), server_default="current", nullable=False),
        sa.Column("run_day", sa.Integer(), server_default="1", nullable=False),
        sa.Column("run_time", sa.Time(), server_default="00:30:00", nullable=False),
        sa.Column("notify_email", sa.String(length=254), nullable=True),
        sa.Column("last_generated_month", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_commitment_settings_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_commitment_settings")),
    )
    op.create_table(
        "creditor_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("creditor_identifier", sa.String(length=35), nullable=False),
        sa.Column("creditor_name", sa.String(length=70), nullable=False),
        sa.Column(
            "pain008_version",
            sa.String(length=20),
            server_default="pain.008.001.08",
            nullable=False,
        ),
        sa.Column(
            "pain001_version",
            sa.String(length=20),
            server_default="pain.001.001.09",
            nullable=False,
        ),
        sa.Column("include_bic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("lead_days", sa.Integer(), server_default="1", nullable=False),
        sa.Column("street", sa.String(length=70), nullable=True),
        sa.Column("town", sa.String(length=35), nullable=True),
        sa.Column("postcode", sa.String(length=16), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_creditor_accounts_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creditor_accounts")),
        sa.UniqueConstraint("company_id", "iban", name=op.f("uq_creditor_accounts_company_id")),
    )
    op.create_table(
        "commitments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "payer_customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "beneficiary_customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("beneficiary_label", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("periodicity", sa.String(length=12), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("first_payment_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("concept", sa.String(length=140), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("channel_label", sa.String(length=50), nullable=True),
        sa.Column("campaign_label", sa.String(length=50), nullable=True),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column(
            "mandate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("card_token", sa.String(length=100), nullable=True),
        sa.Column("card_expiry", sa.String(length=7), nullable=True),
        sa.Column("responsible_email", sa.String(length=254), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_customer_id"],
            ["customers.id"],
            name=op.f("fk_commitments_beneficiary_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_commitments_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["payer_customer_id"],
            ["customers.id"],
            name=op.f("fk_commitments_payer_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitments")),
    )
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commitments_company_active", ["company_id", "active"], unique=False
        )

    op.create_table(
        "remittances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("charge_date", sa.Date(), nullable=False),
        sa.Column(
            "creditor_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=35), nullable=True),
        sa.Column("file_version", sa.String(length=20), nullable=True),
        sa.Column("storage_path", sa.String(length=500), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("transaction_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("control_sum_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=True),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_remittances_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["creditor_account_id"],
            ["creditor_accounts.id"],
            name=op.f("fk_remittances_creditor_account_id_creditor_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittances")),
        sa.UniqueConstraint("message_id", name=op.f("uq_remittances_message_id")),
    )
    with op.batch_alter_table("remittances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remittances_company_id"), ["company_id"], unique=False)

    op.create_table(
        "mandates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commitment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("reference", sa.String(length=35), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("scheme", sa.String(length=4), server_default="CORE", nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("invalid_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "first_collection_done", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["commitments.id"],
            name=op.f("fk_mandates_commitment_id_commitments"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_mandates_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandates")),
        sa.UniqueConstraint("company_id", "reference", name=op.f("uq_mandates_company_id")),
    )
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mandates_commitment_id"), ["commitment_id"], unique=False
        )

    # commitments.mandate_id -> mandates and mandates.commitment_id -> commitments form a
    # cycle: the first side is added once both tables exist.
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_commitments_mandate_id_mandates"), "mandates", ["mandate_id"], ["id"]
        )

    op.create_table(
        "sepa_return_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column(
            "remittance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("returned_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_sepa_return_files_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["remittance_id"],
            ["remittances.id"],
            name=op.f("fk_sepa_return_files_remittance_id_remittances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sepa_return_files")),
        sa.UniqueConstraint("company_id", "sha256", name=op.f("uq_sepa_return_files_company_id")),
    )
    op.create_table(
        "commitment_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commitment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column(
            "mandate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("sequence_type", sa.String(length=4), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "remittance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("return_reason_code", sa.String(length=4), nullable=True),
        sa.Column("return_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "refund_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("gateway_reference", sa.String(length=100), nullable=True),
        sa.Column("gateway_message", sa.String(length=200), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["commitments.id"],
            name=op.f("fk_commitment_payments_commitment_id_commitments"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_commitment_payments_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_commitment_payments_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["mandate_id"], ["mandates.id"], name=op.f("fk_commitment_payments_mandate_id_mandates")
        ),
        sa.ForeignKeyConstraint(
            ["remittance_id"],
            ["remittances.id"],
            name=op.f("fk_commitment_payments_remittance_id_remittances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment_payments")),
        sa.UniqueConstraint(
            "commitment_id", "period_start", name=op.f("uq_commitment_payments_commitment_id")
        ),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_commitment_payments_end_to_end_id")),
    )
    with op.batch_alter_table("commitment_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commitment_payments_company_status", ["company_id", "status"], unique=False
        )
        # (mandate, due date) after the remittance: a remittance's first collection of each
        # mandate is found by index (FRST once per mandate, RCUR for the others).
        batch_op.create_index(
            "ix_commitment_payments_remittance",
            ["remittance_id", "mandate_id", "due_on"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_commitments_mandate_id_mandates"), type_="foreignkey"
        )
    with op.batch_alter_table("commitment_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_commitment_payments_remittance")
        batch_op.drop_index("ix_commitment_payments_company_status")
    op.drop_table("commitment_payments")
    op.drop_table("sepa_return_files")
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mandates_commitment_id"))
    op.drop_table("mandates")
    with op.batch_alter_table("remittances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remittances_company_id"))
    op.drop_table("remittances")
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.drop_index("ix_commitments_company_active")
    op.drop_table("commitments")
    op.drop_table("creditor_accounts")
    op.drop_table("commitment_settings")
