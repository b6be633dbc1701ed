"""The inbox: message ids that already took effect, for at-most-once processing."""

from __future__ import annotations

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import InboxMessage

# On every command's hot path: a Core statement built once per dialect (no ORM unit of
# work, no per-call statement construction).
_INBOX: Table = InboxMessage.__table__  # type: ignore[assignment]
_CLAIM = {
    name: dialect_insert(_INBOX)
    .values(
        message_id=bindparam("message_id"),
        message_type=bindparam("message_type"),
        outcome=bindparam("outcome"),
    )
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(_INBOX.c.message_id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


class InboxRepository:
    """Message ids that already took effect."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> bool:
        """Record the id unless present: ``True`` if this transaction claimed it.

        ``INSERT … ON CONFLICT DO NOTHING``: one round trip, no aborted transaction on a
        duplicate; on PostgreSQL a concurrent claim of the same id waits for the first
        transaction and then sees the conflict (or wins if the first rolled back).
        """
        values = {"message_id": message_id, "message_type": message_type, "outcome": outcome}
        stmt = _CLAIM[self.session.get_bind().dialect.name]
        return (await self.session.scalar(stmt, values)) is not None
