"""The relay publishes one key's events in commit order, whatever fails on the way.

Real outbox tables (SQLite and PostgreSQL) and the real relay; the publisher is a recording
fake that can be told to fail, so the order it was asked to send in is the order a queue
would receive (one channel keeps its publishes in order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.factories import new_event
from tests.fakes import FakePublisher
from worker.db.session import SessionFactory
from worker.messaging.outbox import OutboxRelay
from worker.repositories import NewEvent, OutboxRepository, PendingEvent

pytestmark = pytest.mark.integration


class FlakyPublisher(FakePublisher):
    """Fails the next ``failures`` calls to publish, then records."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    async def publish_events(
        self, events: Sequence[NewEvent], *, staged_here: bool = False
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError(104, "reset")
        await super().publish_events(events, staged_here=staged_here)


async def commit(factory: SessionFactory, *events: NewEvent) -> list[PendingEvent]:
    async with factory() as session, session.begin():
        return await OutboxRepository(session).add_many(list(events))


async def test_after_a_failed_fast_path_later_events_of_its_partition_wait_their_turn(
    session_factory: SessionFactory,
) -> None:
    publisher = FlakyPublisher(failures=1)
    relay = OutboxRelay(session_factory, publisher, owned=lambda: {3}, poll_interval=0.05)
    first = await commit(session_factory, new_event(partition=3))
    second = await commit(session_factory, new_event(partition=3))
    other = await commit(session_factory, new_event(partition=4))

    assert await relay.publish_committed(first) is False  # the broker hiccups
    assert await relay.publish_committed(second) is False  # must not overtake the first
    assert await relay.publish_committed(other) is True  # another partition flows
    relay.start()
    try:
        async with asyncio.timeout(10):
            # The sweep published them, then (after marking them sent) resumes the fast path.
            while len(publisher.events) < 3 or relay.paused:  # noqa: ASYNC110 (polling)
                await asyncio.sleep(0.02)
    finally:
        # Stopped before the next commit: in-memory SQLite gives every session one shared
        # connection, so a commit here would race the relay's own transactions.
        await relay.stop()
    assert await relay.publish_committed(
        third := await commit(session_factory, new_event(partition=3))
    )

    order = [e.message_id for e in publisher.events]
    assert order == [
        other[0].message_id,
        first[0].message_id,
        second[0].message_id,
        third[0].message_id,
    ]


async def test_a_relay_publishes_only_the_partitions_it_owns(
    session_factory: SessionFactory,
) -> None:
    mine, theirs = FakePublisher(), FakePublisher()
    relays = [
        OutboxRelay(session_factory, mine, owned=lambda: {0, 1}, grace=0),
        OutboxRelay(session_factory, theirs, owned=lambda: {2}, grace=0),
    ]
    rows = [await commit(session_factory, new_event(partition=p)) for p in (0, 2, 1, None, 2)]

    for relay in relays:
        await relay.drain()

    def ids(publisher: FakePublisher) -> list[str]:
        return [e.message_id for e in publisher.events]

    by_partition = {
        p: [r[0].message_id for r in rows if r[0].partition == p] for p in (0, 1, 2, None)
    }
    # Partition 0's owner also publishes what no partition claims (rows from before v2).
    assert ids(mine) == [by_partition[0][0], by_partition[1][0], by_partition[None][0]]
    assert ids(theirs) == by_partition[2]


async def test_a_relay_that_dies_between_publishing_and_marking_loses_no_event(
    session_factory: SessionFactory,
) -> None:
    """The confirm came, the mark never did: the next relay publishes it again, same id."""
    first = FakePublisher()
    dying = OutboxRelay(session_factory, first, owned=lambda: {0}, grace=0)
    [row] = await commit(session_factory, new_event(partition=0))

    assert await dying.publish_committed([row]) is True  # published, mark still in memory
    # ... and the process dies here: `dying` never marks anything.
    second = FakePublisher()
    await OutboxRelay(session_factory, second, owned=lambda: {0}, grace=0).drain()

    assert [e.message_id for e in first.events] == [row.message_id]
    assert [e.message_id for e in second.events] == [row.message_id]  # a duplicate, same id
    async with session_factory() as session:
        count, _ = await OutboxRepository(session).backlog()
    assert count == 0
