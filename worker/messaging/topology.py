"""Declare every exchange and queue the worker needs (idempotent, at start-up).

Retry queues are internal, one per delay: ``fca.worker.commands.retry.<N>s``, classic
durable queues with ``x-message-ttl`` that dead-letter back to the command queue
through the default exchange. No broker plugin is needed, and it works the same on
RabbitMQ 3.10 through 4.x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from contracts import retry_queue_name
from worker.messaging.fate import DELIVERY_LIMIT, DLQ_DELIVERY_LIMIT, JITTER
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class Topology:
    """The declared exchanges and queues."""

    commands: AbstractExchange
    events: AbstractExchange
    command_queue: AbstractQueue
    dead_letter_queue: AbstractQueue


async def declare(channel: AbstractChannel, settings: Settings) -> Topology:
    """Declare exchanges, the quorum command queue bound with ``#``, the DLQ and retry queues."""
    commands = await channel.declare_exchange(
        settings.commands_exchange, ExchangeType.TOPIC, durable=True
    )
    events = await channel.declare_exchange(
        settings.events_exchange, ExchangeType.TOPIC, durable=True
    )
    dead_letters = await channel.declare_queue(
        settings.dead_letter_queue,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": DLQ_DELIVERY_LIMIT},
    )
    queue = await channel.declare_queue(
        settings.command_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": settings.dead_letter_queue,
        },
    )
    await queue.bind(commands, routing_key="#")
    for delay in sorted(set(settings.retry_delays)):
        await channel.declare_queue(
            retry_queue_name(delay, settings.command_queue),
            durable=True,
            arguments={
                "x-message-ttl": math.ceil(
                    delay * 1000 * (1 + JITTER)
                ),  # a cap: messages carry their own
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": settings.command_queue,
            },
        )
    return Topology(commands, events, queue, dead_letters)
