"""The delay-queue watch against the real broker: overdue retries move on, the rest stay.

Each test declares a private topology (its own exchanges, partitions and a 30 s delay queue)
and publishes retries into the delay queue as the consumer does; the watch runs once with a
clock set in the future instead of waiting for the broker to fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from contracts.topology import delay_queue_name, partition_queue_name, partitions_exchange_name
from testkit.factories import eventually
from worker.messaging.connection import BrokerConnection
from worker.messaging.delays import DelayWatch
from worker.messaging.topology import declare
from worker.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 4
DELAY = 30


@pytest.fixture
async def topology(
    amqp_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[tuple[Settings, AbstractChannel, DelayWatch, list[int]]]:
    prefix = unique_name("delays")
    settings = Settings(
        amqp_url=amqp_url,
        commands_exchange=f"{prefix}.commands",
        events_exchange=f"{prefix}.events",
        command_queue=f"{prefix}.q",
        dead_letter_queue=f"{prefix}.q.dlq",
        partitions=PARTITIONS,
        retry_delays=(DELAY,),
    )
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await declare(channel, settings)
    broker = BrokerConnection(settings.amqp_urls, name="test delay watch")
    await broker.open()
    moved: list[int] = []
    watch = DelayWatch(
        broker,
        [delay_queue_name(DELAY, settings.command_queue)],
        partitions_exchange_name(settings.command_queue),
        on_moved=moved.append,
    )
    yield settings, channel, watch, moved
    await broker.close()
    await connection.close()


async def park(channel: AbstractChannel, settings: Settings, key: str) -> None:
    """A retry as the consumer parks it: our headers, a timestamp and an expiration."""
    message = aio_pika.Message(
        f'{{"key": "{key}"}}'.encode(),
        headers={"fca-ordering-key": key, "fca-attempt": 2},
        content_type="application/json",
        message_id=f"id-{key}",
        correlation_id=f"corr-{key}",
        type="RecordTransaction",
        timestamp=datetime.now(UTC),
        expiration=DELAY,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    queue = delay_queue_name(DELAY, settings.command_queue)
    await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)


async def in_partitions(channel: AbstractChannel, settings: Settings) -> list[int]:
    counts = []
    for index in range(PARTITIONS):
        queue = await channel.declare_queue(
            partition_queue_name(index, settings.command_queue), passive=True
        )
        counts.append(queue.declaration_result.message_count or 0)
    return counts


async def drain_partitions(
    channel: AbstractChannel, settings: Settings, expected: int
) -> list[AbstractIncomingMessage]:
    """Consume ``expected`` messages from the partitions (single-active-consumer queues
    refuse ``basic.get``)."""
    found: list[AbstractIncomingMessage] = []
    arrived = asyncio.Event()

    async def take(message: AbstractIncomingMessage) -> None:
        found.append(message)
        if len(found) >= expected:
            arrived.set()

    for index in range(PARTITIONS):
        queue = await channel.get_queue(partition_queue_name(index, settings.command_queue))
        await queue.consume(take, no_ack=True)
    await asyncio.wait_for(arrived.wait(), timeout=10)
    return found


async def delayed(channel: AbstractChannel, settings: Settings, expected: int) -> int:
    """The delay queue's ready messages once they number ``expected`` (fails after 5 s).

    The watch returns a message it is not moving with a ``nack`` the broker applies after
    the watch has returned (a quorum queue through its log): until then it is unacked, not
    ready, and not counted.
    """
    name = delay_queue_name(DELAY, settings.command_queue)
    last = [0]

    async def counted() -> bool:
        queue = await channel.declare_queue(name, passive=True)
        last[0] = queue.declaration_result.message_count or 0
        return last[0] == expected

    await eventually(counted, timeout=5, message=lambda: f"{last[0]} in {name}, not {expected}")
    return last[0]


async def test_retries_not_yet_due_stay_where_they_are(
    topology: tuple[Settings, AbstractChannel, DelayWatch, list[int]],
) -> None:
    settings, channel, watch, moved = topology
    for key in ("a", "b"):
        await park(channel, settings, key)

    assert await watch.run_once() == 0
    assert await delayed(channel, settings, 2) == 2
    assert await in_partitions(channel, settings) == [0] * PARTITIONS
    assert moved == []


async def test_overdue_retries_are_moved_to_their_partition_as_the_broker_would(
    topology: tuple[Settings, AbstractChannel, DelayWatch, list[int]],
) -> None:
    settings, channel, watch, moved = topology
    keys = [f"account:{i}" for i in range(5)]
    for key in keys:
        await park(channel, settings, key)
    # A look too early puts the head back (the quorum queue then counts a redelivery).
    assert await watch.run_once() == 0
    assert await delayed(channel, settings, len(keys)) == len(keys)

    later = datetime.now(UTC) + timedelta(seconds=DELAY + 60)
    assert await watch.run_once(now=later) == 5

    assert await delayed(channel, settings, 0) == 0
    arrived = await drain_partitions(channel, settings, len(keys))
    assert sorted(m.message_id or "" for m in arrived) == sorted(f"id-{k}" for k in keys)
    for message in arrived:
        key = message.headers["fca-ordering-key"]
        assert message.headers == {"fca-ordering-key": key, "fca-attempt": 2}  # no x- headers
        assert message.body == f'{{"key": "{key}"}}'.encode()
        assert message.expiration is None
        assert message.correlation_id == f"corr-{key}"
        assert message.type == "RecordTransaction"
        assert message.content_type == "application/json"
    assert moved == [5]


async def test_one_keys_retries_land_in_one_partition(
    topology: tuple[Settings, AbstractChannel, DelayWatch, list[int]],
) -> None:
    settings, channel, watch, _ = topology
    for _ in range(3):
        await park(channel, settings, "conversation:7")

    later = datetime.now(UTC) + timedelta(seconds=DELAY + 60)
    assert await watch.run_once(now=later) == 3

    assert sorted(await in_partitions(channel, settings)) == [0] * (PARTITIONS - 1) + [3]
