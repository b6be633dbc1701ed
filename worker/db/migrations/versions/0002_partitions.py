"""partitions: replica membership, partition ownership, the partition of each outbox row

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_members",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "started_at",
            worker.db.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "heartbeat_at",
            worker.db.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_worker_members")),
    )
    op.create_table(
        "partition_owners",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("since", worker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_partition_owners")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partition", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_column("partition")
    op.drop_table("partition_owners")
    op.drop_table("worker_members")
