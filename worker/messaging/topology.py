"""Declare every exchange and queue the worker needs (idempotent, at start-up).

::

    fca.commands (topic) ──#──► <command queue>.partitions (x-consistent-hash, header
    fca-ordering-key) ──► <command queue>.p00 … pNN (quorum, single active consumer)
    <command queue>.delay.<N>s (quorum, TTL) ──at least once──► <command queue>.partitions
    <command queue>.dlq (quorum), fca.events (topic)

The consistent-hash exchange is RabbitMQ's bundled ``rabbitmq_consistent_hash_exchange``
plugin; a broker without it is refused at start-up with one line saying how to enable it.
Every queue that holds a command is a quorum queue, and every hop between them is at least
once: delay queues and partitions dead-letter with ``x-dead-letter-strategy:
at-least-once`` (which needs ``x-overflow: reject-publish``). Works on RabbitMQ 3.10 to 4.x.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import aio_pika
import aiormq.exceptions
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from contracts.topology import (
    COMMAND_QUEUE_BINDING_KEY,
    HEADER_ORDERING_KEY,
    PARTITIONS_EXCHANGE_TYPE,
    delay_queue_name,
    partition_queue_name,
    partitions_exchange_name,
)
from worker.errors import StartupError
from worker.messaging.fate import DELIVERY_LIMIT, DLQ_DELIVERY_LIMIT, JITTER
from worker.settings import Settings

PARTITION_WEIGHT = "10"
"""Binding key of each partition on the hash exchange: its weight on the hash ring (a larger
weight spreads keys more evenly; measured: 16 queues, 8,000 keys, weight 1 → ±10%)."""

PLUGIN_MISSING = (
    "RabbitMQ's consistent-hash exchange plugin is not enabled: "
    "run `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange` on every node"
)

_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a library logger for a moment (an expected failure is not news)."""
    target = logging.getLogger(logger)
    level, target.level = target.level, logging.CRITICAL + 1
    try:
        yield
    finally:
        target.level = level


async def require_plugin(url: str, settings: Settings) -> None:
    """Declare the consistent-hash exchange on a connection of its own, or refuse in one line.

    Without the plugin the broker closes the whole connection (503 COMMAND_INVALID), so the
    probe runs on a throw-away connection, with the client library's own complaint silenced.
    """
    connection = await aio_pika.connect(url, client_properties={"connection_name": "fca-probe"})
    try:
        with _quiet("aiormq.connection"):
            channel = await connection.channel()
            await _hash_exchange(channel, settings)
    except aiormq.exceptions.AMQPError as exc:
        if "exchange type" in str(exc).lower():
            raise StartupError(PLUGIN_MISSING) from None
        raise
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def _hash_exchange(
    channel: AbstractChannel, settings: Settings
) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(
        partitions_exchange_name(settings.command_queue),
        PARTITIONS_EXCHANGE_TYPE,
        durable=True,
        arguments={"hash-header": HEADER_ORDERING_KEY},
    )


async def declare(channel: AbstractChannel, settings: Settings) -> None:
    """Declare exchanges, partitions, delay queues and the DLQ (safe to repeat)."""
    commands = await channel.declare_exchange(
        settings.commands_exchange, ExchangeType.TOPIC, durable=True
    )
    await channel.declare_exchange(settings.events_exchange, ExchangeType.TOPIC, durable=True)
    await channel.declare_queue(
        settings.dead_letter_queue,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": DLQ_DELIVERY_LIMIT},
    )
    hash_exchange = partitions_exchange_name(settings.command_queue)
    partitions = await _hash_exchange(channel, settings)
    await partitions.bind(commands, routing_key=COMMAND_QUEUE_BINDING_KEY)
    for index in range(settings.partitions):
        queue = await channel.declare_queue(
            partition_queue_name(index, settings.command_queue),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-single-active-consumer": True,
                # A crash loop (the process dies on one message) redelivers it for ever;
                # the delivery limit moves it to the DLQ instead.
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": settings.dead_letter_queue,
                **_AT_LEAST_ONCE,
            },
        )
        await queue.bind(partitions, routing_key=PARTITION_WEIGHT)
    for delay in sorted(set(settings.retry_delays)):
        await channel.declare_queue(
            delay_queue_name(delay, settings.command_queue),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # A cap: each message carries its own jittered expiration.
                "x-message-ttl": math.ceil(delay * 1000 * (1 + JITTER)),
                "x-dead-letter-exchange": hash_exchange,
                **_AT_LEAST_ONCE,
            },
        )
