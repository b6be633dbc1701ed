"""The worker's own tables: the inbox of handled message ids and the event outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Table, any_, bindparam, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import InboxMessage, OutboxEvent

# The inbox and outbox sit on every command's hot path. They are written with Core
# statements built once (no ORM unit of work, no per-call statement construction).
_INBOX: Table = InboxMessage.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]
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
_ADD_EVENTS = insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True)
_MARK_PUBLISHED = {
    # One statement text for any number of ids: a prepared statement asyncpg can reuse.
    "postgresql": update(_OUTBOX)
    .where(_OUTBOX.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
    .where(_OUTBOX.c.published_at.is_(None))
    .values(published_at=bindparam("now")),
    "sqlite": update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .where(_OUTBOX.c.published_at.is_(None))
    .values(published_at=bindparam("now")),
}


class InboxRepository:
    """Message ids that already took effect, for at-most-once processing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def contains(self, message_id: str) -> bool:
        """Whether this message id was already handled."""
        stmt = select(InboxMessage.message_id).where(InboxMessage.message_id == message_id)
        return (await self.session.scalar(stmt)) is not None

    async def claim(self, message_id: str, message_type: str, outcome: str) -> bool:
        """Record the id unless present: ``True`` if this transaction claimed it.

        ``INSERT … ON CONFLICT DO NOTHING``: one round trip, no aborted transaction on a
        duplicate; on PostgreSQL a concurrent claim of the same id waits for the first
        transaction and then sees the conflict (or wins if the first rolled back).
        """
        values = {"message_id": message_id, "message_type": message_type, "outcome": outcome}
        stmt = _CLAIM[self.session.get_bind().dialect.name]
        return (await self.session.scalar(stmt, values)) is not None

    async def add(self, message_id: str, message_type: str, outcome: str) -> None:
        """Record the message id; a concurrent duplicate fails on the primary key."""
        await self.session.execute(
            insert(InboxMessage).values(
                message_id=message_id, message_type=message_type, outcome=outcome
            )
        )


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An outbox row ready to publish, detached from any session."""

    id: int
    message_id: str
    event_type: str
    routing_key: str
    reply_to: str | None
    correlation_id: str | None
    body: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write into the outbox."""

    message_id: str
    event_type: str
    routing_key: str
    body: str
    correlation_id: str | None = None
    reply_to: str | None = None


class OutboxRepository:
    """Events committed with their change and not yet confirmed by the broker."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, events: Sequence[NewEvent]) -> list[int]:
        """Insert events in order (one executemany-style round trip); returns their ids."""
        if not events:
            return []
        rows = [
            {
                "message_id": e.message_id,
                "event_type": e.event_type,
                "routing_key": e.routing_key,
                "reply_to": e.reply_to,
                "correlation_id": e.correlation_id,
                "body": e.body,
            }
            for e in events
        ]
        result = await self.session.execute(_ADD_EVENTS, rows)
        return [int(row_id) for row_id in result.scalars().all()]

    async def claim_unsent(
        self, *, limit: int = 100, created_before: datetime | None = None
    ) -> list[PendingEvent]:
        """The oldest unsent events, locked so that other workers skip them.

        ``FOR UPDATE SKIP LOCKED`` lets several relays run at once on PostgreSQL without
        publishing the same rows twice; SQLite ignores it and serialises instead.
        """
        stmt = (
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .where(OutboxEvent.created_at <= created_before if created_before else true())
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await self.session.scalars(stmt)).all()
        return [
            PendingEvent(
                r.id,
                r.message_id,
                r.event_type,
                r.routing_key,
                r.reply_to,
                r.correlation_id,
                r.body,
                r.created_at,
            )
            for r in rows
        ]

    async def mark_published(self, ids: Sequence[int]) -> int:
        """Mark events as confirmed by the broker; returns rows changed."""
        if not ids:
            return 0
        stmt = _MARK_PUBLISHED[self.session.get_bind().dialect.name]
        params = {"ids": list(ids), "now": datetime.now(UTC)}
        return int((await self.session.execute(stmt, params)).rowcount)  # type: ignore[attr-defined]

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many events are unsent and when the oldest was committed."""
        stmt = select(func.count(), func.min(OutboxEvent.created_at)).where(
            OutboxEvent.published_at.is_(None)
        )
        count, oldest = (await self.session.execute(stmt)).one()
        return int(count), oldest
