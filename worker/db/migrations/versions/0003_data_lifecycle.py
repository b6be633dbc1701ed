"""data lifecycle: command audit, account status history, erasable customers, inbox pruning

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _created(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        worker.db.types.UTCDateTime(timezone=True),
        server_default=sa.func.now(),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "command_audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        _created("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_audit")),
    )
    op.create_index(
        op.f("ix_command_audit_message_id"), "command_audit", ["message_id"], unique=False
    )
    op.create_table(
        "account_status_changes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        _created("changed_at"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_status_changes_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_status_changes")),
    )
    op.create_index(
        op.f("ix_account_status_changes_account_id"),
        "account_status_changes",
        ["account_id"],
        unique=False,
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", worker.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("erasure_basis", sa.String(length=32), nullable=True))
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_customers_email_or_erased"), "email IS NOT NULL OR erased_at IS NOT NULL"
        )
    _inbox_time_index()


def _inbox_time_index() -> None:
    """Index the inbox by time for pruning, without blocking commands on PostgreSQL.

    The inbox has grown since the worker's first day; a plain CREATE INDEX would hold off
    every command's claim while it builds. CONCURRENTLY cannot run in a transaction, so it
    runs last, after the rest of this revision is committed.
    """
    name = op.f("ix_inbox_messages_processed_at")
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, "inbox_messages", ["processed_at"], unique=False)
        return
    with op.get_context().autocommit_block():
        op.create_index(
            name,
            "inbox_messages",
            ["processed_at"],
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    # Erased customers have no email; give them a unique placeholder in a reserved domain.
    op.execute(
        "UPDATE customers SET email = 'erased.' || lower(customer_id) || '@erased.invalid' "
        "WHERE email IS NULL"
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_customers_email_or_erased"), type_="check")
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_column("erasure_basis")
        batch_op.drop_column("erased_at")
    op.drop_index(op.f("ix_inbox_messages_processed_at"), table_name="inbox_messages")
    op.drop_index(op.f("ix_account_status_changes_account_id"), table_name="account_status_changes")
    op.drop_table("account_status_changes")
    op.drop_index(op.f("ix_command_audit_message_id"), table_name="command_audit")
    op.drop_table("command_audit")
