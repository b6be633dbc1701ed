"""Retention: one batch of pruning per transaction, so no lock is held for long."""

from __future__ import annotations

from datetime import datetime

from worker.services.base import BaseService


class RetentionService(BaseService):
    """Deletes inbox ids and published events past their retention, a batch at a time."""

    async def prune_inbox_batch(self, *, before: datetime, limit: int) -> int:
        """Forget up to ``limit`` message ids handled before ``before``; returns how many."""
        return await self.retention.prune_inbox(before=before, limit=limit)

    async def outbox_bound(self, *, published_before: datetime) -> int | None:
        """The id below which every event published before the cutoff lies (scan bound)."""
        return await self.retention.first_outbox_id_since(published_before)

    async def prune_outbox_batch(
        self, *, published_before: datetime, limit: int, below_id: int | None = None
    ) -> int:
        """Delete up to ``limit`` events published before the cutoff (never an unsent one)."""
        return await self.retention.prune_outbox(
            published_before=published_before, limit=limit, below_id=below_id
        )
