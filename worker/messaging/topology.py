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

from worker.messaging.retry import JITTER
from worker.settings import Settings

# A crash loop (the process dies on one message) re-delivers the same message; the
# quorum queue's delivery limit then moves it to the DLQ instead of dropping it
# (RabbitMQ 4 applies a default limit of 20 and drops without a dead-letter target).
DELIVERY_LIMIT = 20


DLQ_DELIVERY_LIMIT = 1_000_000_000
"""Effectively none: on RabbitMQ 4.0-4.2 every `worker dlq list` pass counts as a delivery,
and the default limit of 20 would silently drop dead letters (they have nowhere to go)."""


def retry_queue_name(command_queue: str, delay_seconds: int) -> str:
    """The internal queue that holds a command for ``delay_seconds`` before redelivery."""
    return f"{command_queue}.retry.{delay_seconds}s"


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
            retry_queue_name(settings.command_queue, delay),
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
