"""Retention: old inbox ids and old published events are pruned, in batches; nothing else is.

Runs on SQLite and PostgreSQL. Rows are made old by writing their timestamps directly; a
round is run with :meth:`RetentionJob.prune` (``now`` moved forward where a test needs the
future), or by the job's own schedule.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert, select, update

from contracts import MESSAGE_CLASSES, CommandEnvelope, example_message
from tests.factories import new_event, random_email
from tests.fakes import FakePublisher
from worker.bus import CommandBus, Origin
from worker.db.models import InboxMessage, OutboxEvent
from worker.db.session import SessionFactory
from worker.handlers import HANDLERS
from worker.repositories import AuditRepository, InboxRepository, OutboxRepository, PendingEvent
from worker.retention import Pruned, RetentionJob
from worker.settings import Settings

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
LONG_AGO = NOW - timedelta(days=400)
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


def job(factory: SessionFactory, *, batch: int = 500, interval: float = 3600) -> RetentionJob:
    return RetentionJob(
        factory,
        inbox_days=SETTINGS.inbox_retention_days,
        outbox_hours=SETTINGS.outbox_retention_hours,
        interval=interval,
        batch=batch,
        pause=0,
    )


async def add_inbox(factory: SessionFactory, count: int, *, at: datetime, prefix: str) -> None:
    rows = [
        {
            "message_id": f"{prefix}-{i}",
            "message_type": "X",
            "outcome": "applied",
            "processed_at": at,
        }
        for i in range(count)
    ]
    async with factory() as session, session.begin():
        await session.execute(insert(InboxMessage), rows)


async def add_outbox(
    factory: SessionFactory, count: int, *, created: datetime, published: datetime | None
) -> list[int]:
    async with factory() as session, session.begin():
        rows = await OutboxRepository(session).add_many([new_event() for _ in range(count)])
        ids = [r.id for r in rows]
        stmt = update(OutboxEvent).where(OutboxEvent.id.in_(ids))
        await session.execute(stmt.values(created_at=created, published_at=published))
    return ids


async def inbox_ids(factory: SessionFactory) -> set[str]:
    async with factory() as session:
        return set((await session.scalars(select(InboxMessage.message_id))).all())


async def outbox_ids(factory: SessionFactory) -> set[int]:
    async with factory() as session:
        return set((await session.scalars(select(OutboxEvent.id))).all())


async def test_old_inbox_ids_and_old_published_events_go_and_nothing_else(
    session_factory: SessionFactory,
) -> None:
    await add_inbox(session_factory, 3, at=LONG_AGO, prefix="old")
    await add_inbox(session_factory, 2, at=NOW - timedelta(days=29), prefix="recent")
    published_long_ago = await add_outbox(session_factory, 3, created=LONG_AGO, published=LONG_AGO)
    never_sent = await add_outbox(session_factory, 2, created=LONG_AGO, published=None)
    published_lately = await add_outbox(
        session_factory, 2, created=LONG_AGO, published=NOW - timedelta(hours=23)
    )
    just_committed = await add_outbox(session_factory, 2, created=NOW, published=None)

    pruned = await job(session_factory).prune(now=NOW)

    assert (pruned.inbox, pruned.outbox) == (3, 3)
    assert await inbox_ids(session_factory) == {"recent-0", "recent-1"}
    assert await outbox_ids(session_factory) == {*never_sent, *published_lately, *just_committed}
    assert not set(published_long_ago) & await outbox_ids(session_factory)


async def test_an_unsent_event_is_never_pruned_however_old(session_factory: SessionFactory) -> None:
    ancient = datetime(2000, 1, 1, tzinfo=UTC)
    unsent = await add_outbox(session_factory, 3, created=ancient, published=None)

    for years in (0, 1, 50):
        await job(session_factory).prune(now=NOW + timedelta(days=365 * years))

    assert await outbox_ids(session_factory) == set(unsent)
    async with session_factory() as session:
        claimed = await OutboxRepository(session).claim_unsent()
    assert [e.id for e in claimed] == unsent  # and the relay still finds them


async def test_pruning_runs_in_batches_of_bounded_size(
    backend: Backend, session_factory: SessionFactory
) -> None:
    await add_inbox(session_factory, 1250, at=LONG_AGO, prefix="old")
    await add_outbox(session_factory, 1250, created=LONG_AGO, published=LONG_AGO)
    statements = backend.capture()

    pruned = await job(session_factory).prune(now=NOW)

    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert (pruned.inbox, pruned.outbox, pruned.batches) == (1250, 1250, 6)
    assert [s.split()[2] for s in deletes] == ["inbox_messages"] * 3 + ["outbox_events"] * 3
    assert all("LIMIT" in s.upper() for s in deletes)
    assert await inbox_ids(session_factory) == set()


# Two replicas at once need two connections: in-memory SQLite has one, so PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_pruning_again_or_in_two_replicas_at_once_deletes_each_row_once(
    session_factory: SessionFactory,
) -> None:
    await add_inbox(session_factory, 700, at=LONG_AGO, prefix="old")
    await add_outbox(session_factory, 700, created=LONG_AGO, published=LONG_AGO)

    first, second = await asyncio.gather(
        job(session_factory, batch=100).prune(now=NOW),
        job(session_factory, batch=100).prune(now=NOW),
    )
    again = await job(session_factory).prune(now=NOW)

    assert (first.inbox + second.inbox, first.outbox + second.outbox) == (700, 700)
    assert (again.inbox, again.outbox) == (0, 0)


async def test_pruning_the_inbox_keeps_the_audit(session_factory: SessionFactory) -> None:
    async with session_factory() as session, session.begin():
        await InboxRepository(session).claim("m-old", "OpenAccount", "applied", actor="a")

    pruned = await job(session_factory).prune(now=datetime.now(UTC) + timedelta(days=31))

    assert pruned.inbox == 1
    assert await inbox_ids(session_factory) == set()
    async with session_factory() as session:
        audit = await AuditRepository(session).for_message("m-old")
    assert [(r.message_id, r.actor) for r in audit] == [("m-old", "a")]


# --- the duplicate window, through the real bus ---------------------------------------------


@dataclass
class RecordingRelay:
    """Stands in for the outbox relay: remembers what it was asked to publish."""

    published: list[PendingEvent] = field(default_factory=list)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        self.published.extend(events)
        return True


def create_customer() -> CommandEnvelope:
    body = example_message("CreateCustomer", {"email": random_email(), "full_name": "Ada"})
    body["message_id"] = str(uuid.uuid4())
    command = MESSAGE_CLASSES["CreateCustomer"].model_validate_json(json.dumps(body))
    assert isinstance(command, CommandEnvelope)
    return command


@pytest.fixture
def bus(session_factory: SessionFactory) -> CommandBus:
    return CommandBus(
        HANDLERS, lambda kind: kind(session_factory), RecordingRelay(), FakePublisher()
    )


async def test_a_replay_inside_the_window_is_still_a_duplicate_after_pruning(
    bus: CommandBus, session_factory: SessionFactory
) -> None:
    command = create_customer()
    assert await bus.handle(command, Origin()) == "applied"
    # The last moment a dead letter may still be replayed, with a day's margin to spare.
    last_replay = datetime.now(UTC) + timedelta(days=SETTINGS.dlq_replay_window_days)

    pruned = await job(session_factory).prune(now=last_replay)

    assert pruned.inbox == 0
    assert await bus.handle(command, Origin()) == "duplicate"
    assert await bus.handle(command.model_copy(), Origin()) == "duplicate"


async def test_the_inbox_forgets_an_id_only_after_its_retention(
    bus: CommandBus, session_factory: SessionFactory
) -> None:
    command = create_customer()
    assert await bus.handle(command, Origin()) == "applied"
    past_retention = datetime.now(UTC) + timedelta(days=SETTINGS.inbox_retention_days, hours=1)

    pruned = await job(session_factory).prune(now=past_retention)

    assert pruned.inbox == 1
    assert command.message_id not in await inbox_ids(session_factory)


# --- the schedule -----------------------------------------------------------------------------


async def test_the_job_prunes_on_its_schedule_and_stops_promptly(
    session_factory: SessionFactory,
) -> None:
    await add_inbox(session_factory, 5, at=LONG_AGO, prefix="old")
    rounds: list[Pruned | None] = []
    two_rounds = asyncio.Event()

    def finished(pruned: Pruned | None) -> None:
        rounds.append(pruned)
        if len(rounds) == 2:
            two_rounds.set()

    retention = RetentionJob(
        session_factory, inbox_days=30, outbox_hours=24, interval=0.2, on_round=finished
    )
    retention.start()
    try:  # the job owns the (single, in-memory on SQLite) connection until it is stopped
        async with asyncio.timeout(10):
            await two_rounds.wait()
    finally:
        async with asyncio.timeout(2):
            await retention.stop()

    assert [(p.inbox, p.outbox) if p else None for p in rounds[:2]] == [(5, 0), (0, 0)]
    assert await inbox_ids(session_factory) == set()
    await retention.stop()  # stopping twice is harmless
