"""Pruning the worker's own tables: old inbox ids and old published outbox events.

Each call deletes at most ``limit`` rows in one ``DELETE … WHERE <key> IN (SELECT … LIMIT n)``
round trip, so the caller can commit between batches and every lock stays short. On
PostgreSQL the inner select takes its rows ``FOR UPDATE SKIP LOCKED``: replicas pruning at
once split the work instead of queueing behind each other (SQLite ignores the clause; its
writers are serialised anyway). An unsent outbox event is never selected, however old.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Delete, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import InboxMessage, OutboxEvent


class RetentionRepository:
    """Batch deletes of inbox and outbox rows past their retention; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def prune_inbox(self, *, before: datetime, limit: int) -> int:
        """Forget up to ``limit`` message ids handled before ``before``, oldest first."""
        oldest = (
            select(InboxMessage.message_id)
            .where(InboxMessage.processed_at < before)
            .order_by(InboxMessage.processed_at)  # a range scan of ix_inbox_messages_processed_at
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = delete(InboxMessage).where(InboxMessage.message_id.in_(oldest))
        return await self._deleted(stmt)

    async def first_outbox_id_since(self, moment: datetime) -> int | None:
        """The lowest outbox id created at or after ``moment`` (``None``: no such row).

        Ids grow with time, so every event published before ``moment`` has a lower id (give
        or take transactions that overlapped): the prune below stops there instead of
        scanning the whole recent part of the table for its last, short batch.
        """
        stmt = (
            select(OutboxEvent.id)
            .where(OutboxEvent.created_at >= moment)
            .order_by(OutboxEvent.id)
            .limit(1)
        )
        found = await self.session.scalar(stmt)
        return None if found is None else int(found)

    async def prune_outbox(
        self, *, published_before: datetime, limit: int, below_id: int | None = None
    ) -> int:
        """Delete up to ``limit`` events published before ``published_before``, lowest id first.

        Only published rows qualify (``published_at`` is set when the broker confirmed
        them); ``below_id`` bounds the index scan (see :meth:`first_outbox_id_since`).
        """
        oldest = select(OutboxEvent.id).where(
            OutboxEvent.published_at.is_not(None),
            OutboxEvent.published_at < published_before,
        )
        if below_id is not None:
            oldest = oldest.where(OutboxEvent.id < below_id)
        oldest = oldest.order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True)
        return await self._deleted(delete(OutboxEvent).where(OutboxEvent.id.in_(oldest)))

    async def _deleted(self, stmt: Delete) -> int:
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
