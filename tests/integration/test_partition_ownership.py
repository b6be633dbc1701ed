"""Partition ownership: the repository's compare-and-set, the fair share, and hand-over.

The membership repository runs on SQLite and PostgreSQL; the managers run against the real
broker (a private set of partition queues per test) and the session's PostgreSQL, with a
handler that records which replica handled which partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from testkit.factories import eventually
from worker.db.session import SessionFactory, create_session_factory
from worker.messaging.connection import BrokerConnection
from worker.messaging.partitions import PartitionManager, PartitionQueue, fair_share
from worker.messaging.topology import declare
from worker.observability.metrics import Metrics
from worker.repositories.members import MembershipRepository
from worker.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 8


# --- the fair share --------------------------------------------------------------------------


@given(
    partitions=st.integers(min_value=1, max_value=64),
    members=st.lists(st.uuids().map(str), min_size=1, max_size=12, unique=True),
)
def test_shares_add_up_and_differ_by_at_most_one(partitions: int, members: list[str]) -> None:
    ordered = sorted(members)
    shares = [fair_share(partitions, ordered, m) for m in ordered]

    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


def test_a_replica_that_is_not_live_gets_no_share() -> None:
    assert fair_share(16, ["a", "b"], "c") == 0


# --- the repository (SQLite and PostgreSQL) -----------------------------------------------------


async def test_a_partition_is_claimed_once_and_released_only_by_its_owner(
    session_factory: SessionFactory,
) -> None:
    async with session_factory() as session, session.begin():
        members = MembershipRepository(session)
        await members.ensure_partitions(4)
        await members.ensure_partitions(4)  # idempotent

        assert await members.claim(2, "a", None) is True
        assert await members.claim(2, "b", None) is False  # a's already
        assert await members.release([2], "b") == 0
        assert (await members.owners(4))[2] == "a"
        assert await members.claim(2, "b", "a") is True  # taking over from a (gone)
        assert await members.release([2, 3], "b") == 1
        assert await members.owners(4) == {0: None, 1: None, 2: None, 3: None}


async def test_liveness_is_measured_in_database_time(session_factory: SessionFactory) -> None:
    async with session_factory() as session, session.begin():
        members = MembershipRepository(session)
        now = await members.heartbeat("a", host="h", pid=1)
        await members.heartbeat("b", host="h", pid=2)

        assert await members.live_members(now - timedelta(seconds=10)) == ["a", "b"]
        assert await members.live_members(now + timedelta(seconds=10)) == []
        assert await members.forget_dead(now + timedelta(seconds=10)) == 2


async def test_a_leaving_member_gives_up_everything_it_owned(
    session_factory: SessionFactory,
) -> None:
    async with session_factory() as session, session.begin():
        members = MembershipRepository(session)
        await members.ensure_partitions(3)
        now = await members.heartbeat("a", host="h", pid=1)
        await members.claim(0, "a", None)
        await members.claim(1, "a", None)

        await members.forget("a")

        assert await members.owners(3) == {0: None, 1: None, 2: None}
        assert await members.live_members(now - timedelta(seconds=10)) == []


# --- managers on the real broker --------------------------------------------------------------


class Replica:
    """A partition manager with a handler that acks and remembers what it saw."""

    def __init__(self, name: str, settings: Settings, session_factory: SessionFactory) -> None:
        self.name = name
        self.settings = settings
        self.session_factory = session_factory
        self.seen: Counter[int] = Counter()
        self.redelivered = 0
        self.pause = 0.0
        self.broker = BrokerConnection(settings.amqp_urls, name=f"test {name}")
        self.manager: PartitionManager | None = None

    async def handle(self, message: AbstractIncomingMessage, partition: PartitionQueue) -> None:
        partition.delivery_started()
        try:
            self.seen[partition.index] += 1
            self.redelivered += bool(message.redelivered)
            await asyncio.sleep(self.pause)
            await message.ack()
        finally:
            partition.delivery_settled()

    async def start(self) -> Replica:
        await self.broker.open()
        self.manager = PartitionManager(
            self.session_factory,
            self.broker,
            self.handle,
            command_queue=self.settings.command_queue,
            partitions=PARTITIONS,
            prefetch=4,
            interval=0.2,
            liveness=1.0,
            drain_timeout=5.0,
            publish_backlog=_no_backlog,
            metrics=Metrics(),
        )
        await self.manager.start()
        return self

    @property
    def owned(self) -> set[int]:
        assert self.manager is not None
        return set(self.manager.owned)

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
        await self.broker.close()

    async def crash(self) -> None:
        """Stop heart-beating and drop the connection, as a killed process would."""
        assert self.manager is not None
        assert self.manager._task is not None
        self.manager._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.manager._task
        await self.broker.close()


async def _no_backlog(partition: int) -> None:
    return None


@pytest.fixture
async def world(
    amqp_url: str, postgres_engine: AsyncEngine, unique_name: Callable[[str], str]
) -> AsyncIterator[Callable[[str], Any]]:
    """Start replicas on one private topology; every one is stopped at the end."""
    async with postgres_engine.begin() as connection:
        await connection.exec_driver_sql("DELETE FROM partition_owners")
        await connection.exec_driver_sql("DELETE FROM worker_members")
    prefix = unique_name("parts")
    settings = Settings(
        amqp_url=amqp_url,
        commands_exchange=f"{prefix}.commands",
        events_exchange=f"{prefix}.events",
        command_queue=f"{prefix}.q",
        dead_letter_queue=f"{prefix}.q.dlq",
        partitions=PARTITIONS,
    )
    connection = await aio_pika.connect(amqp_url)
    await declare(await connection.channel(), settings)
    factory = create_session_factory(postgres_engine)
    started: list[Replica] = []

    async def start(name: str) -> Replica:
        replica = await Replica(name, settings, factory).start()
        started.append(replica)
        return replica

    yield start
    for replica in started:
        with contextlib.suppress(Exception):
            await replica.stop()
    await connection.close()


def balanced(replicas: list[Replica]) -> bool:
    owned = [r.owned for r in replicas]
    everything = set().union(*owned)
    disjoint = sum(len(o) for o in owned) == len(everything)
    sizes = [len(o) for o in owned]
    return everything == set(range(PARTITIONS)) and disjoint and max(sizes) - min(sizes) <= 1


async def test_replicas_joining_share_the_partitions_evenly_and_never_twice(
    world: Callable[[str], Any],
) -> None:
    first = await world("first")
    assert first.owned == set(range(PARTITIONS))

    second = await world("second")
    await eventually(lambda: balanced([first, second]), timeout=10)
    third = await world("third")
    await eventually(lambda: balanced([first, second, third]), timeout=10)

    assert sorted(len(r.owned) for r in (first, second, third)) == [2, 3, 3]


async def test_a_replica_leaving_hands_its_partitions_over_at_once(
    world: Callable[[str], Any],
) -> None:
    first, second = await world("first"), await world("second")
    await eventually(lambda: balanced([first, second]), timeout=10)

    await second.stop()

    await eventually(lambda: first.owned == set(range(PARTITIONS)), timeout=5)


async def test_the_partitions_of_a_crashed_replica_are_taken_once_it_is_silent(
    world: Callable[[str], Any],
) -> None:
    first, second = await world("first"), await world("second")
    await eventually(lambda: balanced([first, second]), timeout=10)
    lost = second.owned

    await second.crash()

    await eventually(lambda: first.owned == set(range(PARTITIONS)), timeout=10)
    assert lost <= first.owned


async def test_a_hand_over_drains_first_so_nothing_is_redelivered_or_handled_twice(
    world: Callable[[str], Any], amqp_url: str
) -> None:
    first = await world("first")
    first.pause = 0.01  # slow enough that deliveries are in flight when it hands over
    settings = first.settings
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(settings.commands_exchange)
    for i in range(400):
        message = aio_pika.Message(b"{}", headers={"fca-ordering-key": f"k:{i}"})
        await exchange.publish(message, routing_key="Anything")

    second = await world("second")
    overlaps: list[set[int]] = []

    def done() -> bool:
        if shared := first.owned & second.owned:
            overlaps.append(shared)
        return sum(first.seen.values()) + sum(second.seen.values()) >= 400 and balanced(
            [first, second]
        )

    await eventually(done, timeout=30)
    await connection.close()

    assert not overlaps
    assert sum(first.seen.values()) + sum(second.seen.values()) == 400
    assert first.redelivered == second.redelivered == 0
