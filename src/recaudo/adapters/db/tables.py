"""The schema, as SQLAlchemy 2 typed models. Money columns are integer minor units."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from recaudo.adapters.db.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(30))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An operator marks a company unavailable for maintenance: channels answer "not
    # available" and every such answer is an incident.
    available: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), default=True)
    unavailable_reason: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("company_id", "id_type", "national_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    id_type: Mapped[str] = mapped_column(String(8))
    national_id: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Debt(Base):
    __tablename__ = "debts"
    __table_args__ = (
        UniqueConstraint("company_id", "external_id"),
        Index("ix_debts_customer_status_due", "customer_id", "status", "due_date"),
        Index("ix_debts_company_status_due", "company_id", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    concept: Mapped[str | None] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    last_import_id: Mapped[int | None] = mapped_column(ForeignKey("debt_imports.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(lazy="raise")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("company_id", "channel", "external_id"),
        Index("ix_payments_company_paid_at", "company_id", "paid_at"),
        Index("ix_payments_customer", "customer_id"),
        # A settlement file reads one agreement's accounting date.
        Index("ix_payments_agreement_accounting", "agreement_id", "accounting_date"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(100))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    exception_reason: Mapped[str | None] = mapped_column(Text)
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set for payments that came through a bank channel agreement.
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("channel_agreements.id"))
    accounting_date: Mapped[date | None] = mapped_column(Date)

    allocations: Mapped[list[Allocation]] = relationship(
        lazy="selectin", order_by="Allocation.id", back_populates="payment"
    )


class Allocation(Base):
    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    debt_id: Mapped[int] = mapped_column(ForeignKey("debts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    payment: Mapped[Payment] = relationship(back_populates="allocations", lazy="raise")


class CreditEntry(Base):
    """Append-only ledger of a customer's credit balance: the balance is the sum."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_company_time", "company_id", "occurred_at"),
        Index("ix_audit_entity", "company_id", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DebtImport(Base):
    __tablename__ = "debt_imports"
    __table_args__ = (
        Index(
            "uq_debt_imports_completed_hash",
            "company_id",
            "file_sha256",
            unique=True,
            sqlite_where=text("status = 'completed'"),
            postgresql_where=text("status = 'completed'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    skip_invalid: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    customers_added: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImportIssue(Base):
    """A rejected row or a conflict of one import, with where and why."""

    __tablename__ = "import_issues"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("debt_imports.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # rejected | conflict
    row_number: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(64))
    debt_external_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)


class CompanyHoliday(Base):
    """A non-business day a company adds to its country's public and bank holidays."""

    __tablename__ = "company_holidays"
    __table_args__ = (UniqueConstraint("company_id", "day"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelAgreement(Base):
    """A company's agreement (convenio) with one bank channel, and its credential."""

    __tablename__ = "channel_agreements"
    __table_args__ = (UniqueConstraint("company_id", "bank", "channel"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    bank: Mapped[str] = mapped_column(String(32))  # bancoestado
    channel: Mapped[str] = mapped_column(String(32))  # caja-vecina | internet
    convenio: Mapped[str] = mapped_column(String(20))
    voucher_name: Mapped[str | None] = mapped_column(String(100))
    cutoff: Mapped[time] = mapped_column(Time)
    secret_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    allow_query_token: Mapped[bool] = mapped_column(Boolean)
    ip_allowlist: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    errors_as_http_200: Mapped[bool] = mapped_column(Boolean)
    quote_ttl_seconds: Mapped[int] = mapped_column(Integer)
    passthrough_url: Mapped[str | None] = mapped_column(String(500))
    passthrough_timeout_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Settlement (issue 4): the layout the daily file is written with (a shipped layout's
    # name, a layout file's path, or `csv` / `xlsx`), the local time the daily job writes
    # it, whether the optional control record is written, and the layout the bank's own
    # settlement file is read with for reconciliation (None: the settlement layout).
    settlement_layout: Mapped[str] = mapped_column(
        String(255), server_default="bancoestado-rendicion"
    )
    settlement_time: Mapped[time] = mapped_column(Time, server_default="18:30:00")
    settlement_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    settlement_control_record: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    reconciliation_layout: Mapped[str | None] = mapped_column(String(255))


class Quote(Base):
    """What a debt query offered under one `transaccion`: the debts and their total."""

    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("company_id", "transaction_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("channel_agreements.id"))
    transaction_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    debts: Mapped[list[str]] = mapped_column(JSON)  # the company's own debt ids offered
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentException(Base):
    """Money a channel collected that did not match what it paid for: a person decides."""

    __tablename__ = "payment_exceptions"
    __table_args__ = (Index("ix_payment_exceptions_company_status", "company_id", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(16))  # applied | credit | refunded
    comment: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Incident(Base):
    """A time a channel was told the company is unavailable, or something failed inside."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_company_time", "company_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("channel_agreements.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))  # unavailable | internal_error | passthrough_down
    cause: Mapped[str] = mapped_column(Text)


class WebhookEndpoint(Base):
    """The company's own URL that receives signed payment events.

    The signing secret is kept as is (not hashed): Recaudo must sign with it. It is shown
    once at creation and never logged or returned again.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event to one endpoint, retried with backoff until the endpoint answers 2xx."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """Each try of a delivery, kept for the log the company's operators read."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


# --- settlement, delivery, reconciliation, file exchange (issue 4) ------------------------


class SettlementFile(Base):
    """One version of an agreement's settlement file for one accounting date.

    The bytes live under the data directory (`storage_path`, relative to it); the row keeps
    what identifies them. A re-run that produces the same bytes adds nothing; different
    bytes (a payment changed) add the next version and keep the earlier ones.
    """

    __tablename__ = "settlement_files"
    __table_args__ = (
        UniqueConstraint("agreement_id", "accounting_date", "version"),
        Index("ix_settlement_files_company_date", "company_id", "accounting_date"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("channel_agreements.id"))
    accounting_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    layout: Mapped[str] = mapped_column(String(255))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    payment_count: Mapped[int] = mapped_column(Integer)
    record_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    storage_path: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # generated | delivered | delivery_failed
    generated_by: Mapped[str] = mapped_column(String(100))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retention


class DeliveryTarget(Base):
    """Where files go or come from: an SFTP server, a mailbox (SMTP) or a local directory.

    `settings` holds the non-secret parameters (host, port, user, remote directory, known
    host key, recipients, directory ...); the password or private key is kept encrypted
    (`secret_encrypted`, Fernet with the server's secret key) because Recaudo must present
    it to the other side, so it cannot be hashed; it is never shown back.
    """

    __tablename__ = "delivery_targets"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    # Set: delivers this agreement's settlement files. None: used by a file exchange.
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("channel_agreements.id"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # sftp | email | local
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    retention_days: Mapped[int] = mapped_column(Integer, server_default="60")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One file to be sent to one target, retried with backoff until it arrives."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_company_created", "company_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("delivery_targets.id"))
    settlement_file_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_files.id"))
    exchange_file_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_files.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    storage_path: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_path: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retention, remote side
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Reconciliation(Base):
    """A bank's settlement file matched against the payments Recaudo recorded."""

    __tablename__ = "reconciliations"
    __table_args__ = (Index("ix_reconciliations_company_date", "company_id", "accounting_date"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("channel_agreements.id"))
    accounting_date: Mapped[date] = mapped_column(Date)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    layout: Mapped[str] = mapped_column(String(255))
    matched: Mapped[int] = mapped_column(Integer)
    only_bank: Mapped[int] = mapped_column(Integer)
    only_recaudo: Mapped[int] = mapped_column(Integer)
    amount_differs: Mapped[int] = mapped_column(Integer)
    duplicated: Mapped[int] = mapped_column(Integer)
    bank_total_minor: Mapped[int] = mapped_column(BigInteger)
    recaudo_total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconciliationItem(Base):
    __tablename__ = "reconciliation_items"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("reconciliations.id"), index=True)
    # matched | only_bank | only_recaudo | amount_differs | duplicated
    kind: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    transaction_id: Mapped[str | None] = mapped_column(String(100))
    reference: Mapped[str | None] = mapped_column(String(100))
    bank_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    recaudo_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    paid_on: Mapped[date | None] = mapped_column(Date)
    line_no: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text)


class FileExchange(Base):
    """A company's inbox (debt files it drops) or outbox (payments files Recaudo drops)."""

    __tablename__ = "file_exchanges"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(8))  # inbox | outbox
    # inbox: the SFTP server or local directory polled; outbox: where the file is sent.
    target_id: Mapped[int] = mapped_column(ForeignKey("delivery_targets.id"))
    import_mode: Mapped[str | None] = mapped_column(String(8))  # inbox: replace | upsert
    file_format: Mapped[str] = mapped_column(String(255))  # csv | xlsx | a layout
    report_recipients: Mapped[list[str] | None] = mapped_column(JSON)
    poll_seconds: Mapped[int] = mapped_column(Integer, server_default="300")
    write_time: Mapped[time | None] = mapped_column(Time)  # outbox: local time of the day
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExchangeFile(Base):
    """A file an exchange picked up (inbox) or wrote (outbox), once each."""

    __tablename__ = "exchange_files"
    __table_args__ = (UniqueConstraint("exchange_id", "file_name", "sha256"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("file_exchanges.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    # inbox: processing | imported | duplicate | rejected; outbox: written (its Delivery
    # row says delivered or failed)
    status: Mapped[str] = mapped_column(String(16))
    debt_import_id: Mapped[int | None] = mapped_column(ForeignKey("debt_imports.id"))
    accounting_date: Mapped[date | None] = mapped_column(Date)  # outbox: the day written
    storage_path: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- Recurring commitments and SEPA (issue 5; revision 0004) --------------------------


class CreditorAccount(Base):
    """One of the company's own bank accounts that SEPA files collect into or pay from."""

    __tablename__ = "creditor_accounts"
    __table_args__ = (UniqueConstraint("company_id", "iban"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(String(100))
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    creditor_identifier: Mapped[str] = mapped_column(String(35))  # SEPA AT-02
    creditor_name: Mapped[str] = mapped_column(String(70))
    pain008_version: Mapped[str] = mapped_column(String(20), server_default="pain.008.001.08")
    pain001_version: Mapped[str] = mapped_column(String(20), server_default="pain.001.001.09")
    include_bic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # TARGET2 business days the bank wants between submission and the charge date.
    lead_days: Mapped[int] = mapped_column(Integer, server_default="1")
    street: Mapped[str | None] = mapped_column(String(70))
    town: Mapped[str | None] = mapped_column(String(35))
    postcode: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommitmentSettings(Base):
    """When a company's monthly generation runs and which month it generates."""

    __tablename__ = "commitment_settings"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    generate_for: Mapped[str] = mapped_column(String(8), server_default="current")  # | next
    run_day: Mapped[int] = mapped_column(Integer, server_default="1")
    run_time: Mapped[time] = mapped_column(Time, server_default="00:30:00")  # company time
    notify_email: Mapped[str | None] = mapped_column(String(254))
    # The month (its first day) whose scheduled run has been done: the job runs once a month.
    last_generated_month: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Commitment(Base):
    """A payer's promise to pay (or the company's to pay) an amount once or every period."""

    __tablename__ = "commitments"
    __table_args__ = (Index("ix_commitments_company_active", "company_id", "active"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    payer_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    beneficiary_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    beneficiary_label: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # fee | donation | in_kind | services
    method: Mapped[str] = mapped_column(String(20))  # domain.commitments.Method
    periodicity: Mapped[str] = mapped_column(String(12))  # domain.commitments.Periodicity
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    first_payment_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)  # inclusive
    concept: Mapped[str] = mapped_column(String(140))
    direction: Mapped[str] = mapped_column(String(8))  # income | expense
    channel_label: Mapped[str | None] = mapped_column(String(50))
    campaign_label: Mapped[str | None] = mapped_column(String(50))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # The current mandate (direct debit). Mandates point back at their commitment, so this
    # side of the cycle is added after both tables exist.
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandates.id", use_alter=True))
    card_token: Mapped[str | None] = mapped_column(String(100))
    card_expiry: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM
    responsible_email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean)
    ended_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Mandate(Base):
    """A SEPA direct-debit mandate: the debtor's authorisation, under a unique reference."""

    __tablename__ = "mandates"
    __table_args__ = (UniqueConstraint("company_id", "reference"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitments.id"), index=True)
    reference: Mapped[str] = mapped_column(String(35))
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    scheme: Mapped[str] = mapped_column(String(4), server_default="CORE")  # | B2B
    signed_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))  # active | replaced | invalid
    invalid_reason: Mapped[str | None] = mapped_column(String(200))
    # FRST until a collection of it was sent and not returned as never collected.
    first_collection_done: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Remittance(Base):
    """A batch of commitment payments sent to the bank as one SEPA file (or card run)."""

    __tablename__ = "remittances"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # direct_debit | transfer | card
    state: Mapped[str] = mapped_column(String(12))  # open | generated | sent
    charge_date: Mapped[date] = mapped_column(Date)
    creditor_account_id: Mapped[int] = mapped_column(ForeignKey("creditor_accounts.id"))
    message_id: Mapped[str | None] = mapped_column(String(35), unique=True)
    file_version: Mapped[str | None] = mapped_column(String(20))
    storage_path: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str | None] = mapped_column(String(64))
    transaction_count: Mapped[int] = mapped_column(Integer, server_default="0")
    control_sum_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommitmentPayment(Base):
    """What a commitment generates each period (a "cobro"), not money received (Payment)."""

    __tablename__ = "commitment_payments"
    __table_args__ = (
        # One payment per commitment and period, whatever is re-run: generation relies on it.
        UniqueConstraint("commitment_id", "period_start"),
        Index("ix_commitment_payments_company_status", "company_id", "status"),
        # A remittance's payments, and each mandate's first one in it (FRST once).
        Index("ix_commitment_payments_remittance", "remittance_id", "mandate_id", "due_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitments.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    period_start: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandates.id"))
    sequence_type: Mapped[str | None] = mapped_column(String(4))  # FRST | RCUR | OOFF | FNAL
    status: Mapped[str] = mapped_column(String(16))  # domain.commitments.PaymentStatus
    remittance_id: Mapped[int | None] = mapped_column(ForeignKey("remittances.id"))
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    return_reason_code: Mapped[str | None] = mapped_column(String(4))
    return_reason: Mapped[str | None] = mapped_column(String(200))
    refund_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    gateway_reference: Mapped[str | None] = mapped_column(String(100))
    gateway_message: Mapped[str | None] = mapped_column(String(200))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SepaReturnFile(Base):
    """A bank's return or status file (pain.002, camt.054, camt.053), loaded once."""

    __tablename__ = "sepa_return_files"
    __table_args__ = (UniqueConstraint("company_id", "sha256"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    kind: Mapped[str] = mapped_column(String(12))
    message_id: Mapped[str] = mapped_column(String(35))
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    remittance_id: Mapped[int | None] = mapped_column(ForeignKey("remittances.id"))
    returned_count: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- Negotiation of late debts (issue 7; revisions 0005, 0006) ------------------------
# Revision 0005: debt components, negotiations and their plans, viability policies and
# their exceptions, payment-capacity profiles, per-company negotiation settings.


class DebtComponent(Base):
    """A debt's breakdown by concept (capital, current interest, late interest, ...).

    `kind` is `balance` (what the debt is made of) or `written_off` (condoned by a
    negotiation, which `negotiation_id` names). A debt without balance rows is all capital.
    """

    __tablename__ = "debt_components"
    __table_args__ = (Index("ix_debt_components_debt", "debt_id", "kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    debt_id: Mapped[int] = mapped_column(ForeignKey("debts.id"))
    concept: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    negotiation_id: Mapped[int | None] = mapped_column(ForeignKey("negotiations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Negotiation(Base):
    """A customer's negotiation: the strategy chosen, its offer and its state."""

    __tablename__ = "negotiations"
    __table_args__ = (
        UniqueConstraint("company_id", "external_id"),
        Index("ix_negotiations_company_state", "company_id", "state"),
        Index("ix_negotiations_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The caller's idempotency key (API `Idempotency-Key`, a contract's request id).
    external_id: Mapped[str | None] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(8))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    offer: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    adviser: Mapped[str | None] = mapped_column(String(100))
    office: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(32))
    mark_start: Mapped[date] = mapped_column(Date)
    mark_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    negotiated_minor: Mapped[int] = mapped_column(BigInteger)
    payment_today_minor: Mapped[int] = mapped_column(BigInteger)
    installments_total_minor: Mapped[int] = mapped_column(BigInteger)
    condoned_minor: Mapped[int] = mapped_column(BigInteger)
    exceptions_used: Mapped[list[str]] = mapped_column(JSON)
    break_reason: Mapped[str | None] = mapped_column(Text)
    # The debt a broken plan's reinstated condonation became, if any.
    reinstated_debt_id: Mapped[int | None] = mapped_column(ForeignKey("debts.id"))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NegotiationDebt(Base):
    """An original debt a negotiation covers, with what it owed when negotiated."""

    __tablename__ = "negotiation_debts"
    __table_args__ = (UniqueConstraint("negotiation_id", "debt_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    negotiation_id: Mapped[int] = mapped_column(ForeignKey("negotiations.id"))
    debt_id: Mapped[int] = mapped_column(ForeignKey("debts.id"), index=True)
    open_minor: Mapped[int] = mapped_column(BigInteger)
    overdue_minor: Mapped[int] = mapped_column(BigInteger)
    days_past_due: Mapped[int] = mapped_column(Integer)


class NegotiationInstallment(Base):
    """A plan installment: an ordinary debt (any channel collects it) tied to its plan."""

    __tablename__ = "negotiation_installments"
    __table_args__ = (UniqueConstraint("negotiation_id", "number"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    negotiation_id: Mapped[int] = mapped_column(ForeignKey("negotiations.id"))
    debt_id: Mapped[int] = mapped_column(ForeignKey("debts.id"), unique=True)
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    principal_minor: Mapped[int] = mapped_column(BigInteger)
    interest_minor: Mapped[int] = mapped_column(BigInteger)


class NegotiationCommitment(Base):
    """A payment commitment: zero or more partial (`P`) then exactly one total (`T`)."""

    __tablename__ = "negotiation_commitments"
    __table_args__ = (UniqueConstraint("negotiation_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    negotiation_id: Mapped[int] = mapped_column(ForeignKey("negotiations.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(1))
    due_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # The share of the negotiation it covers, in basis points (10000 = the contract's 100.00).
    rate_bp: Mapped[int] = mapped_column(Integer)


class ViabilityPolicy(Base):
    """One viability rule of a strategy, kept as data (rule-engine text, never eval/SQL).

    The strategy is viable for an obligation when every active rule of it holds (or an
    exception overrides it); a rule that fails gives its `cause` and `message`.
    `parameters` are the strategy's offer parameters (term, rate, condonation ...).
    """

    __tablename__ = "viability_policies"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(String(300))
    exception_name: Mapped[str | None] = mapped_column(String(40))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PolicyException(Base):
    """An exception to a viability rule, granted by an admin with a reason, for a customer."""

    __tablename__ = "policy_exceptions"
    __table_args__ = (Index("ix_policy_exceptions_customer", "company_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("viability_policies.id"))
    debt_id: Mapped[int | None] = mapped_column(ForeignKey("debts.id"))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(100))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[date] = mapped_column(Date)
    negotiation_id: Mapped[int | None] = mapped_column(ForeignKey("negotiations.id"))


class PaymentProfile(Base):
    """What a customer declared about their means; the latest one is used."""

    __tablename__ = "payment_profiles"
    __table_args__ = (Index("ix_payment_profiles_customer", "company_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    income_minor: Mapped[int] = mapped_column(BigInteger)
    other_income_minor: Mapped[int] = mapped_column(BigInteger)
    expenses_minor: Mapped[int] = mapped_column(BigInteger)
    self_employed: Mapped[bool] = mapped_column(Boolean)
    sales_minor: Mapped[int | None] = mapped_column(BigInteger)
    operating_costs_minor: Mapped[int | None] = mapped_column(BigInteger)
    # A lump sum available today (the contract's `delinqAging.amt`), when declared.
    cash_today_minor: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(32))
    declared_by: Mapped[str] = mapped_column(String(100))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NegotiationSettings(Base):
    """A company's negotiation settings (defaults apply while it has no row)."""

    __tablename__ = "negotiation_settings"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    concept_labels: Mapped[dict[str, str]] = mapped_column(JSON)
    break_after_days: Mapped[int] = mapped_column(Integer)
    # What a broken plan does with condoned amounts: never, always, proportional.
    reinstate_on_break: Mapped[str] = mapped_column(String(16))
    # Payment capacity ratio in basis points (3000 = 30 % of the net income).
    capacity_ratio_bp: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Revision 0006 (issue 7, helper F): the OAuth2 clients of the collections-management
# contract and the access tokens they obtain (client credentials). Secrets and tokens
# are stored as SHA-256 hashes only; a token dies at `expires_at` or with its client.


class ContractClient(Base):
    """A partner's credential for the collections-management contract, bound to a company."""

    __tablename__ = "contract_clients"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(100))
    token_ttl_seconds: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContractToken(Base):
    """A bearer token issued to a contract client; only its hash is kept."""

    __tablename__ = "contract_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("contract_clients.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContractCommitment(Base):
    """A commitment record received over the contract (`partialPmt` P or T).

    The contract sends a negotiation's commitments one request each: partial ones (P)
    wait here until the total one (T) arrives, which creates the negotiation with all of
    them in order and links every record to it.
    """

    __tablename__ = "contract_commitments"
    __table_args__ = (Index("ix_contract_commitments_pending", "company_id", "account"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    client_pk: Mapped[int] = mapped_column(ForeignKey("contract_clients.id"))
    account: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(1))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    negotiation_id: Mapped[int | None] = mapped_column(ForeignKey("negotiations.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- Back office: users, memberships, sessions (issue 6; revision 0007) ---------------


class User(Base):
    """A person who signs in to the back office; the password is kept as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    # A provisional password (on creation, after a reset) must be changed at sign-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CompanyMembership(Base):
    """A user's role in one company; a deactivated membership no longer lets them in."""

    __tablename__ = "company_memberships"
    __table_args__ = (UniqueConstraint("user_id", "company_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser: only the cookie token's hash is kept; `company_id` is chosen."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    # Messages for the next page shown ("Pago registrado"): [{"kind": ..., "text": ...}].
    flashes: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInAttempt(Base):
    """One sign-in try, for throttling by e-mail and by address; kept for a day."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "at"),
        Index("ix_sign_in_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class PasswordPolicy(Base):
    """A company's password rules; without a row the defaults apply (8, letters, digits)."""

    __tablename__ = "password_policies"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    min_length: Mapped[int] = mapped_column(Integer)
    require_letters: Mapped[bool] = mapped_column(Boolean)
    require_digits: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- Checkout and Colombian collection (issue 8; revision 0008) -----------------------


class CheckoutSection(Base):
    """A group of payable services on the hosted page ("Matrículas")."""

    __tablename__ = "checkout_sections"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)


class CheckoutCategory(Base):
    """A sub-group of a section ("Pregrado")."""

    __tablename__ = "checkout_categories"
    __table_args__ = (UniqueConstraint("section_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("checkout_sections.id"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)


class CheckoutService(Base):
    """A payable service and its parameters (eCollect's "Parámetros servicio")."""

    __tablename__ = "checkout_services"
    __table_args__ = (UniqueConstraint("company_id", "code"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    section_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_sections.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_categories.id"))
    active: Mapped[bool] = mapped_column(Boolean)
    active_from: Mapped[date | None] = mapped_column(Date)
    active_until: Mapped[date | None] = mapped_column(Date)
    # fixed | list | open | portfolio
    price_kind: Mapped[str] = mapped_column(String(16))
    fixed_price_minor: Mapped[int | None] = mapped_column(BigInteger)
    min_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # VAT in basis points (1900 = 19 %).
    vat_basis_points: Mapped[int] = mapped_column(Integer)
    accepted_means: Mapped[list[str]] = mapped_column(JSON)
    partial_payment: Mapped[bool] = mapped_column(Boolean)
    # None: overdue debts are refused; n: accepted up to n days after the due date.
    overdue_days: Mapped[int | None] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer)
    daily_attempt_limit: Mapped[int | None] = mapped_column(Integer)
    # {"PSE": 500000000, "CARD": ...}: the most a payer may pay per day with each means.
    daily_amount_limits: Mapped[dict[str, int]] = mapped_column(JSON)
    # off | refuse | warn
    double_payment: Mapped[str] = mapped_column(String(8))
    email_payer: Mapped[bool] = mapped_column(Boolean)
    company_email: Mapped[str | None] = mapped_column(String(254))
    message_before: Mapped[str | None] = mapped_column(Text)
    message_after: Mapped[str | None] = mapped_column(Text)
    redirect_url: Mapped[str | None] = mapped_column(String(500))
    confirmation_url: Mapped[str | None] = mapped_column(String(500))
    # HMAC secret of the signed confirmation pushed to the company's application.
    confirmation_secret: Mapped[str] = mapped_column(String(64))
    informative_only: Mapped[bool] = mapped_column(Boolean)
    assigns_pins: Mapped[bool] = mapped_column(Boolean)
    allows_coupon: Mapped[bool] = mapped_column(Boolean)
    # Minutes a transaction may stay CREATED/PENDING before the expiry job ends it.
    timeout_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferenceFieldRow(Base):
    """A company's reference field, defined once and attached to services."""

    __tablename__ = "checkout_reference_fields"
    __table_args__ = (UniqueConstraint("company_id", "title"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    title: Mapped[str] = mapped_column(String(100))
    help_text: Mapped[str | None] = mapped_column(Text)
    prefix: Mapped[str | None] = mapped_column(String(50))
    # text | integer | currency | email | customer_id | customer_id_type | constant
    kind: Mapped[str] = mapped_column(String(20))
    display_length: Mapped[int] = mapped_column(Integer)
    # A list: [{"code": ..., "label": ..., "price_minor"?: ..., "parent"?: ...}]
    list_kind: Mapped[str | None] = mapped_column(String(10))
    list_items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServiceFieldRow(Base):
    """A reference field in a service's form, in order, with its per-service attributes."""

    __tablename__ = "checkout_service_fields"
    __table_args__ = (UniqueConstraint("service_id", "field_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"))
    field_id: Mapped[int] = mapped_column(ForeignKey("checkout_reference_fields.id"))
    position: Mapped[int] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(Boolean)
    upper_case: Mapped[bool] = mapped_column(Boolean)
    hidden: Mapped[bool] = mapped_column(Boolean)
    read_only: Mapped[bool] = mapped_column(Boolean)
    fixed_value: Mapped[str | None] = mapped_column(String(100))
    forced_length: Mapped[str | None] = mapped_column(String(100))
    double_payment_control: Mapped[bool] = mapped_column(Boolean)
    # The child reference of a related list (department -> city).
    related_field_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_reference_fields.id"))


class PriceListItem(Base):
    """One price of a service's price list."""

    __tablename__ = "checkout_price_items"
    __table_args__ = (UniqueConstraint("service_id", "code"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"))
    code: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)


class CheckoutTransaction(Base):
    """A payer's transaction for a service, in eCollect's states (final states never change)."""

    __tablename__ = "checkout_transactions"
    __table_args__ = (
        UniqueConstraint("company_id", "ticket"),
        Index("ix_checkout_transactions_service_state", "service_id", "state"),
        Index("ix_checkout_transactions_state_expires", "state", "expires_at"),
        Index("ix_checkout_transactions_refs", "service_id", "reference_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"))
    ticket: Mapped[int] = mapped_column(BigInteger)
    # The unguessable token of the hosted-page URL (/pagar/t/<token>).
    token: Mapped[str] = mapped_column(String(43), unique=True)
    # CREATED | PENDING | OK | NOT_AUTHORIZED | FAILED | EXPIRED | CAPTURED
    state: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(8))
    references: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    first_reference: Mapped[str | None] = mapped_column(String(100))
    # The double-payment key: the controlled references joined, or None.
    reference_key: Mapped[str | None] = mapped_column(String(320))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    # The external ids of the portfolio debts a payment goes to, in order.
    debt_ids: Mapped[list[str] | None] = mapped_column(JSON)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    vat_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    means: Mapped[str | None] = mapped_column(String(16))
    bank: Mapped[str | None] = mapped_column(String(60))
    trace_code: Mapped[str | None] = mapped_column(String(40))
    payer_email: Mapped[str | None] = mapped_column(String(254))
    payer_key: Mapped[str | None] = mapped_column(String(100), index=True)
    provider: Mapped[str | None] = mapped_column(String(30))
    provider_session: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_reference: Mapped[str | None] = mapped_column(String(64))
    redirect_url: Mapped[str | None] = mapped_column(String(500))
    confirmation_url: Mapped[str | None] = mapped_column(String(500))
    # none | pending | sent | failed
    confirmation_state: Mapped[str] = mapped_column(String(10))
    confirmation_attempts: Mapped[int] = mapped_column(Integer)
    # none | pending | sent | failed: the receipt e-mails (payer, company) of an OK ticket.
    receipt_state: Mapped[str] = mapped_column(String(10))
    confirmation_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_transactions.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    pin: Mapped[str | None] = mapped_column(String(100))
    warning: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServicePin(Base):
    """A PIN of a service's list; taken once, by the first approved transaction to lock it."""

    __tablename__ = "service_pins"
    __table_args__ = (
        UniqueConstraint("service_id", "position"),
        Index("ix_service_pins_service_free", "service_id", "assigned_transaction_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"))
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(String(100))
    assigned_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkout_transactions.id"), unique=True
    )
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- Coupons and correspondent contract (issue 8, K; revision 0009) -------------------


class CouponSettings(Base):
    """How a service's coupons are printed: the biller's GLN, the correspondent agreement."""

    __tablename__ = "coupon_settings"
    __table_args__ = (UniqueConstraint("company_id", "agreement_code"),)

    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    # (415): 13 digits, GS1 check digit verified.
    gln: Mapped[str] = mapped_column(String(13))
    # The correspondent's `refId` (código de convenio) that names this service.
    agreement_code: Mapped[str] = mapped_column(String(20))
    # The coupon is payable until issue date + due_days.
    due_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Coupon(Base):
    """A printed coupon: its number is the (8020) payment reference of its barcode."""

    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("company_id", "number"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    number: Mapped[str] = mapped_column(String(25))
    service_id: Mapped[int] = mapped_column(ForeignKey("checkout_services.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("checkout_transactions.id"), unique=True)
    references: Mapped[list[list[str]]] = mapped_column(JSON)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    gln: Mapped[str] = mapped_column(String(13))
    element_string: Mapped[str] = mapped_column(String(120))
    human_readable: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once a correspondent applied it: the Recaudo payment and the approval number.
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    approval_id: Mapped[str | None] = mapped_column(String(20))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
