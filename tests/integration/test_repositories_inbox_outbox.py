"""The worker's own tables: ``InboxRepository`` and ``OutboxRepository``."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import EPOCH, moments, new_event
from worker.db.models import InboxMessage, OutboxEvent
from worker.db.session import SessionFactory
from worker.repositories import InboxRepository, OutboxRepository

pytestmark = pytest.mark.integration


async def inbox_ids(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(InboxMessage.message_id))).all())


async def test_inbox_claim_succeeds_once_per_message_id(session: AsyncSession) -> None:
    inbox = InboxRepository(session)

    assert await inbox.claim("msg-1", "CreateCustomer", "applied") is True
    assert await inbox.claim("msg-1", "CreateCustomer", "rejected") is False
    assert await inbox.claim("msg-2", "CreateCustomer", "applied") is True
    assert await inbox_ids(session) == {"msg-1", "msg-2"}


async def test_inbox_claim_of_a_duplicate_leaves_the_transaction_usable(
    session: AsyncSession,
) -> None:
    inbox = InboxRepository(session)
    await inbox.claim("msg-1", "CreateCustomer", "applied")

    assert await inbox.claim("msg-1", "CreateCustomer", "applied") is False
    assert await inbox.claim("msg-3", "CreateCustomer", "applied") is True


async def test_inbox_entries_survive_commit(session_factory: SessionFactory) -> None:
    async with session_factory() as session, session.begin():
        await InboxRepository(session).claim("msg-9", "FreezeAccounts", "applied")

    async with session_factory() as session:
        assert await InboxRepository(session).claim("msg-9", "FreezeAccounts", "x") is False
        assert "msg-9" in await inbox_ids(session)


async def test_add_many_inserts_in_order_and_returns_increasing_ids(
    session: AsyncSession,
) -> None:
    outbox = OutboxRepository(session)
    events = [new_event(routing_key=f"key.{i}") for i in range(5)]

    rows = await outbox.add_many(events)
    ids = [row.id for row in rows]
    claimed = await outbox.claim_unsent()

    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert [e.id for e in claimed] == ids
    assert [e.message_id for e in claimed] == [e.message_id for e in events]
    assert [e.routing_key for e in claimed] == [f"key.{i}" for i in range(5)]
    assert await outbox.add_many([]) == []


async def test_add_many_keeps_the_optional_fields(session: AsyncSession) -> None:
    outbox = OutboxRepository(session)
    event = new_event(reply_to="amq.rabbitmq.reply-to", correlation_id="corr-1")

    await outbox.add_many([event])
    [pending] = await outbox.claim_unsent()

    assert (pending.reply_to, pending.correlation_id) == ("amq.rabbitmq.reply-to", "corr-1")
    assert (pending.event_type, pending.body) == (event.event_type, event.body)
    assert isinstance(pending.created_at, datetime)
    assert pending.created_at.tzinfo is not None


async def test_outbox_rejects_a_duplicate_message_id(session: AsyncSession) -> None:
    outbox = OutboxRepository(session)
    event = new_event()
    await outbox.add_many([event])

    with pytest.raises(IntegrityError):
        await outbox.add_many([new_event(message_id=event.message_id)])


async def test_claim_unsent_returns_the_oldest_unsent_events_within_the_limit(
    session: AsyncSession,
) -> None:
    outbox = OutboxRepository(session)
    ids = [e.id for e in await outbox.add_many([new_event() for _ in range(6)])]
    await outbox.mark_published(ids[:2])

    claimed = await outbox.claim_unsent(limit=3)

    assert [e.id for e in claimed] == ids[2:5]


async def test_claim_unsent_can_leave_out_events_newer_than_a_moment(
    session: AsyncSession,
) -> None:
    outbox = OutboxRepository(session)
    ids = [e.id for e in await outbox.add_many([new_event() for _ in range(3)])]
    for event_id, at in zip(ids, moments(3), strict=True):
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(created_at=at)
        )

    claimed = await outbox.claim_unsent(created_before=moments(3)[1])

    assert [e.id for e in claimed] == ids[:2]
    assert [e.created_at for e in claimed] == moments(3)[:2]


async def test_mark_published_counts_only_rows_not_yet_published(session: AsyncSession) -> None:
    outbox = OutboxRepository(session)
    ids = [e.id for e in await outbox.add_many([new_event() for _ in range(4)])]

    assert await outbox.mark_published(ids[:3]) == 3
    assert await outbox.mark_published([ids[0], ids[3], 999_999]) == 1
    assert await outbox.mark_published([]) == 0
    assert await outbox.claim_unsent() == []


async def test_backlog_counts_unsent_events_and_dates_the_oldest(session: AsyncSession) -> None:
    outbox = OutboxRepository(session)
    assert await outbox.backlog() == (0, None)
    ids = [e.id for e in await outbox.add_many([new_event() for _ in range(4)])]
    for event_id, at in zip(ids, moments(4), strict=True):
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(created_at=at)
        )
    await outbox.mark_published(ids[:1])

    count, oldest = await outbox.backlog()

    assert count == 3
    assert oldest == moments(4)[1]
    assert oldest is not None
    assert oldest > EPOCH
