"""The outbox: events committed with their change, waiting to be published in commit order."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import OutboxEvent

# On every command's hot path: Core statements built once (no ORM unit of work, no
# per-call statement construction).
_OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]
_ADD_EVENTS = insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True)
_ADD_NEW = {
    name: dialect_insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(_OUTBOX.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
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


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write into the outbox: its id, routing, body and where to answer."""

    message_id: str
    event_type: str
    routing_key: str
    body: str
    correlation_id: str | None = None
    reply_to: str | None = None
    partition: int | None = None
    trace: Mapping[str, str] | None = None
    """The trace context it was staged in, so that publishing it later continues the trace."""

    def committed(self, id_: int) -> PendingEvent:
        """The same event as the outbox row ``id_`` that holds it."""
        return PendingEvent(
            id=id_,
            message_id=self.message_id,
            event_type=self.event_type,
            routing_key=self.routing_key,
            body=self.body,
            correlation_id=self.correlation_id,
            reply_to=self.reply_to,
            partition=self.partition,
            trace=self.trace,
        )


@dataclass(frozen=True, slots=True)
class PendingEvent(NewEvent):
    """An outbox row ready to publish, detached from any session."""

    id: int = 0
    created_at: datetime | None = None


class OutboxRepository:
    """Events committed with their change and not yet confirmed by the broker."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(
        self, events: Sequence[NewEvent], *, skip_existing: bool = False
    ) -> list[PendingEvent]:
        """Insert events in order (one executemany-style round trip); returns them as rows.

        With ``skip_existing``, an event whose message id is already in the table (the same
        deterministic id staged before) is left out instead of failing the transaction.
        """
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
                "partition": e.partition,
                "trace_context": json.dumps(dict(e.trace)) if e.trace else None,
            }
            for e in events
        ]
        if skip_existing:
            return await self._add_new(events, rows)
        result = await self.session.execute(_ADD_EVENTS, rows)
        ids = result.scalars().all()
        return [e.committed(int(i)) for e, i in zip(events, ids, strict=True)]

    async def _add_new(
        self, events: Sequence[NewEvent], rows: Sequence[Mapping[str, object]]
    ) -> list[PendingEvent]:
        insert = _ADD_NEW[self.session.get_bind().dialect.name]
        added: list[PendingEvent] = []
        for event, row in zip(events, rows, strict=True):  # rare (dead-letter reports): one by one
            new_id = (await self.session.execute(insert, row)).scalar_one_or_none()
            if new_id is not None:
                added.append(event.committed(int(new_id)))
        return added

    async def claim_unsent(
        self,
        *,
        limit: int = 100,
        created_before: datetime | None = None,
        partitions: Collection[int] | None = None,
        unpartitioned: bool = True,
    ) -> list[PendingEvent]:
        """The oldest unsent events, locked so that other workers skip them.

        ``partitions`` limits them to those partitions' events (and, with ``unpartitioned``,
        to events of no partition): only a partition's owner publishes its events, so one
        key's events are never published by two relays at once. ``FOR UPDATE SKIP LOCKED``
        keeps concurrent relays apart on PostgreSQL; SQLite ignores it and serialises.
        """
        stmt = select(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        if created_before is not None:
            stmt = stmt.where(OutboxEvent.created_at <= created_before)
        if partitions is not None:
            mine: ColumnElement[bool] = OutboxEvent.partition.in_(sorted(partitions))
            if unpartitioned:
                mine = or_(mine, OutboxEvent.partition.is_(None))
            stmt = stmt.where(mine)
        stmt = stmt.order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True)
        rows = (await self.session.scalars(stmt)).all()
        return [
            PendingEvent(
                id=r.id,
                message_id=r.message_id,
                event_type=r.event_type,
                routing_key=r.routing_key,
                body=r.body,
                correlation_id=r.correlation_id,
                reply_to=r.reply_to,
                partition=r.partition,
                trace=json.loads(r.trace_context) if r.trace_context else None,
                created_at=r.created_at,
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
