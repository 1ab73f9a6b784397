"""checkout: sections, categories, services, reference fields, service fields, price lists,
checkout transactions and PIN lists (issue 8; coupons come in 0009)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 06:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkout_reference_fields",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("help_text", sa.Text(), nullable=True),
        sa.Column("prefix", sa.String(length=50), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("display_length", sa.Integer(), nullable=False),
        sa.Column("list_kind", sa.String(length=10), nullable=True),
        sa.Column("list_items", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_checkout_reference_fields_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_reference_fields")),
        sa.UniqueConstraint(
            "company_id", "title", name=op.f("uq_checkout_reference_fields_company_id")
        ),
    )
    op.create_table(
        "checkout_sections",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_checkout_sections_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sections")),
        sa.UniqueConstraint("company_id", "name", name=op.f("uq_checkout_sections_company_id")),
    )
    op.create_table(
        "checkout_categories",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("section_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_checkout_categories_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["checkout_sections.id"],
            name=op.f("fk_checkout_categories_section_id_checkout_sections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_categories")),
        sa.UniqueConstraint("section_id", "name", name=op.f("uq_checkout_categories_section_id")),
    )
    op.create_index(
        op.f("ix_checkout_categories_company_id"),
        "checkout_categories",
        ["company_id"],
        unique=False,
    )
    op.create_table(
        "checkout_services",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("section_id", ID, nullable=True),
        sa.Column("category_id", ID, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("active_from", sa.Date(), nullable=True),
        sa.Column("active_until", sa.Date(), nullable=True),
        sa.Column("price_kind", sa.String(length=16), nullable=False),
        sa.Column("fixed_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("min_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("vat_basis_points", sa.Integer(), nullable=False),
        sa.Column("accepted_means", sa.JSON(), nullable=False),
        sa.Column("partial_payment", sa.Boolean(), nullable=False),
        sa.Column("overdue_days", sa.Integer(), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("daily_attempt_limit", sa.Integer(), nullable=True),
        sa.Column("daily_amount_limits", sa.JSON(), nullable=False),
        sa.Column("double_payment", sa.String(length=8), nullable=False),
        sa.Column("email_payer", sa.Boolean(), nullable=False),
        sa.Column("company_email", sa.String(length=254), nullable=True),
        sa.Column("message_before", sa.Text(), nullable=True),
        sa.Column("message_after", sa.Text(), nullable=True),
        sa.Column("redirect_url", sa.String(length=500), nullable=True),
        sa.Column("confirmation_url", sa.String(length=500), nullable=True),
        sa.Column("confirmation_secret", sa.String(length=64), nullable=False),
        sa.Column("informative_only", sa.Boolean(), nullable=False),
        sa.Column("assigns_pins", sa.Boolean(), nullable=False),
        sa.Column("allows_coupon", sa.Boolean(), nullable=False),
        sa.Column("timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["checkout_categories.id"],
            name=op.f("fk_checkout_services_category_id_checkout_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_checkout_services_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["checkout_sections.id"],
            name=op.f("fk_checkout_services_section_id_checkout_sections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_services")),
        sa.UniqueConstraint("company_id", "code", name=op.f("uq_checkout_services_company_id")),
    )
    op.create_table(
        "checkout_price_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_checkout_price_items_service_id_checkout_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_price_items")),
        sa.UniqueConstraint("service_id", "code", name=op.f("uq_checkout_price_items_service_id")),
    )
    op.create_table(
        "checkout_service_fields",
        sa.Column("id", ID, nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("upper_case", sa.Boolean(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("fixed_value", sa.String(length=100), nullable=True),
        sa.Column("forced_length", sa.String(length=100), nullable=True),
        sa.Column("double_payment_control", sa.Boolean(), nullable=False),
        sa.Column("related_field_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["checkout_reference_fields.id"],
            name=op.f("fk_checkout_service_fields_field_id_checkout_reference_fields"),
        ),
        sa.ForeignKeyConstraint(
            ["related_field_id"],
            ["checkout_reference_fields.id"],
            name=op.f("fk_checkout_service_fields_related_field_id_checkout_reference_fields"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_checkout_service_fields_service_id_checkout_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_service_fields")),
        sa.UniqueConstraint(
            "service_id", "field_id", name=op.f("uq_checkout_service_fields_service_id")
        ),
    )
    op.create_table(
        "checkout_transactions",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=43), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("first_reference", sa.String(length=100), nullable=True),
        sa.Column("reference_key", sa.String(length=320), nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("debt_ids", sa.JSON(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("vat_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("means", sa.String(length=16), nullable=True),
        sa.Column("bank", sa.String(length=60), nullable=True),
        sa.Column("trace_code", sa.String(length=40), nullable=True),
        sa.Column("payer_email", sa.String(length=254), nullable=True),
        sa.Column("payer_key", sa.String(length=100), nullable=True),
        sa.Column("provider", sa.String(length=30), nullable=True),
        sa.Column("provider_session", sa.String(length=64), nullable=True),
        sa.Column("provider_reference", sa.String(length=64), nullable=True),
        sa.Column("redirect_url", sa.String(length=500), nullable=True),
        sa.Column("confirmation_url", sa.String(length=500), nullable=True),
        sa.Column("confirmation_state", sa.String(length=10), nullable=False),
        sa.Column("confirmation_attempts", sa.Integer(), nullable=False),
        sa.Column("receipt_state", sa.String(length=10), nullable=False),
        sa.Column("confirmation_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_of_id", ID, nullable=True),
        sa.Column("payment_id", ID, nullable=True),
        sa.Column("pin", sa.String(length=100), nullable=True),
        sa.Column("warning", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_checkout_transactions_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_checkout_transactions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_checkout_transactions_payment_id_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["retry_of_id"],
            ["checkout_transactions.id"],
            name=op.f("fk_checkout_transactions_retry_of_id_checkout_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_checkout_transactions_service_id_checkout_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_transactions")),
        sa.UniqueConstraint(
            "company_id", "ticket", name=op.f("uq_checkout_transactions_company_id")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_checkout_transactions_token")),
    )
    op.create_index(
        op.f("ix_checkout_transactions_payer_key"),
        "checkout_transactions",
        ["payer_key"],
        unique=False,
    )
    op.create_index(
        op.f("ix_checkout_transactions_provider_session"),
        "checkout_transactions",
        ["provider_session"],
        unique=False,
    )
    op.create_index(
        "ix_checkout_transactions_refs",
        "checkout_transactions",
        ["service_id", "reference_key"],
        unique=False,
    )
    op.create_index(
        "ix_checkout_transactions_service_state",
        "checkout_transactions",
        ["service_id", "state"],
        unique=False,
    )
    op.create_index(
        "ix_checkout_transactions_state_expires",
        "checkout_transactions",
        ["state", "expires_at"],
        unique=False,
    )
    op.create_table(
        "service_pins",
        sa.Column("id", ID, nullable=False),
        sa.Column("service_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("assigned_transaction_id", ID, nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_transaction_id"],
            ["checkout_transactions.id"],
            name=op.f("fk_service_pins_assigned_transaction_id_checkout_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["checkout_services.id"],
            name=op.f("fk_service_pins_service_id_checkout_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_pins")),
        sa.UniqueConstraint(
            "assigned_transaction_id", name=op.f("uq_service_pins_assigned_transaction_id")
        ),
        sa.UniqueConstraint("service_id", "position", name=op.f("uq_service_pins_service_id")),
    )
    op.create_index(
        "ix_service_pins_service_free",
        "service_pins",
        ["service_id", "assigned_transaction_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_service_pins_service_free", table_name="service_pins")
    op.drop_table("service_pins")
    op.drop_index("ix_checkout_transactions_state_expires", table_name="checkout_transactions")
    op.drop_index("ix_checkout_transactions_service_state", table_name="checkout_transactions")
    op.drop_index("ix_checkout_transactions_refs", table_name="checkout_transactions")
    op.drop_index(
        op.f("ix_checkout_transactions_provider_session"), table_name="checkout_transactions"
    )
    op.drop_index(op.f("ix_checkout_transactions_payer_key"), table_name="checkout_transactions")
    op.drop_table("checkout_transactions")
    op.drop_table("checkout_service_fields")
    op.drop_table("checkout_price_items")
    op.drop_table("checkout_services")
    op.drop_index(op.f("ix_checkout_categories_company_id"), table_name="checkout_categories")
    op.drop_table("checkout_categories")
    op.drop_table("checkout_sections")
    op.drop_table("checkout_reference_fields")
