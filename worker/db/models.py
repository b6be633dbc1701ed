"""The seven domain models, the worker's inbox and outbox, and the audit tables.

Integer surrogate keys stay inside the database; messages carry business ids
(``customer_id``, ``account_number``, ``conversation_id``, ``escalation_id``, ``faq_id``).
Timestamps are UTC and filled by the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worker.db.types import ExactDecimal, UTCDateTime

# Named constraints so Alembic migrations are deterministic on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base; ``eager_defaults`` fetches server defaults with RETURNING."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    __mapper_args__ = {"eager_defaults": True}


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime(), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Customer(Base):
    """A customer; soft-deleted rows stay but finders skip them.

    An erased customer (``erased_at`` set) keeps its row and business id for the accounts
    tied to it, with no email (so the address is free again), no phone and no name.
    """

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("email IS NOT NULL OR erased_at IS NOT NULL", name="email_or_erased"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    is_vip: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erasure_basis: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Account(Base):
    """A customer's account; ``balance`` only changes under a row lock."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(16), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_type: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3), default="GBP", server_default="GBP")
    balance: Mapped[Decimal] = mapped_column(
        ExactDecimal(18, 2), default=Decimal("0.00"), server_default=text("0")
    )
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    created_at: Mapped[datetime] = _created()


class AccountStatusChange(Base):
    """One status change of an account (frozen, active again): why, by whom, by which command."""

    __tablename__ = "account_status_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(128))
    changed_at: Mapped[datetime] = _created()


class Transaction(Base):
    """One credit or debit; ``reference`` is unique per account."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("account_id", "reference", name="uq_transactions_account_reference"),
        Index("ix_transactions_account_created", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 2))
    direction: Mapped[str] = mapped_column(String(6))
    description: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str] = mapped_column(String(64))
    balance_after: Mapped[Decimal] = mapped_column(ExactDecimal(18, 2))
    created_at: Mapped[datetime] = _created()


class Conversation(Base):
    """A support conversation and, once escalated, its ticket."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_updated", "customer_id", text("updated_at DESC")),
        Index("ix_conversations_status_escalated", "status", "escalated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open", server_default="open")
    priority: Mapped[str] = mapped_column(String(10), default="normal", server_default="normal")
    escalation_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    escalation_reason: Mapped[str | None] = mapped_column(String(1000))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Message(Base):
    """One message in a conversation, numbered 1, 2, … per conversation."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "sequence", name="uq_messages_conversation_sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(10))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Product(Base):
    """A financial product in the catalogue."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text)
    interest_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(7, 4))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class FAQ(Base):
    """A frequently asked question; ``keywords`` is newline-separated lower-case text."""

    __tablename__ = "faqs"

    id: Mapped[int] = mapped_column(primary_key=True)
    faq_id: Mapped[str] = mapped_column(String(20), unique=True)
    question: Mapped[str] = mapped_column(String(500))
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(Text, default="", server_default="")
    category: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class InboxMessage(Base):
    """A command or query message id the worker has already taken effect for."""

    __tablename__ = "inbox_messages"

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), server_default=func.now(), nullable=False, index=True
    )
    """Indexed for pruning: the retention job deletes the oldest rows in small batches."""


class CommandAudit(Base):
    """Who asked for a command and what came of it; kept when the inbox forgets the id."""

    __tablename__ = "command_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(128), index=True)
    message_type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = _created()


class OutboxEvent(Base):
    """An event committed with its change and waiting to be published."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_unsent",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    routing_key: Mapped[str] = mapped_column(String(255))
    reply_to: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    partition: Mapped[int | None] = mapped_column(Integer)
    """The partition queue of the command that caused it: only its owner publishes it."""
    trace_context: Mapped[str | None] = mapped_column(String(600))
    """The W3C trace context it was staged in (``traceparent``, ``tracestate``), as JSON."""


class WorkerMember(Base):
    """A running worker replica; live while its heartbeat is recent (database time)."""

    __tablename__ = "worker_members"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = _created()
    heartbeat_at: Mapped[datetime] = _created()


class PartitionOwner(Base):
    """Which replica consumes a partition queue (none while it is being handed over)."""

    __tablename__ = "partition_owners"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdCounter(Base):
    """Business-id counters for SQLite (PostgreSQL uses sequences)."""

    __tablename__ = "id_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
