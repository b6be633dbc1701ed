"""The command audit: who asked for each command and what came of it (never pruned)."""

from __future__ import annotations

from sqlalchemy import insert, select

from worker.db.models import CommandAudit
from worker.repositories.base import BaseRepository, clamp_limit


class AuditRepository(BaseRepository[CommandAudit]):
    """Audit records, written by :meth:`InboxRepository.claim`; read here."""

    model = CommandAudit

    async def record(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> None:
        """Write one record (claims write theirs themselves; this is for dead letters)."""
        values = {"message_id": message_id, "message_type": message_type, "outcome": outcome}
        await self.session.execute(insert(CommandAudit).values(actor=actor, **values))

    async def for_message(self, message_id: str) -> list[CommandAudit]:
        """The records of one message id, oldest first (more than one only if the inbox
        forgot the id and it was delivered again)."""
        stmt = select(CommandAudit).where(CommandAudit.message_id == message_id)
        return await self._all(stmt.order_by(CommandAudit.id))

    async def recent(
        self, *, limit: int = 100, actor: str | None = None, before_id: int | None = None
    ) -> list[CommandAudit]:
        """The newest records first, optionally of one actor; page with ``before_id``."""
        stmt = select(CommandAudit)
        if actor is not None:
            stmt = stmt.where(CommandAudit.actor == actor)
        if before_id is not None:
            stmt = stmt.where(CommandAudit.id < before_id)
        return await self._all(stmt.order_by(CommandAudit.id.desc()).limit(clamp_limit(limit)))
