"""Moving from contract v1's single input queue to the partitions, without losing a command.

A v1 deployment has one quorum input queue (``WORKER_COMMAND_QUEUE``) bound to the commands
exchange, and classic delay queues ``<queue>.retry.<N>s`` that dead-letter back to it. A v2
worker, at start-up and then every ``interval`` seconds while they exist:

1. unbinds the v1 queue from the commands exchange (new commands reach the partitions only);
2. moves every message of the v1 delay queues, then of the v1 queue, into the partitions
   exchange: body and properties unchanged, the ``fca-ordering-key`` header added from the
   payload when the publisher set none; each message is acked only after its copy was
   confirmed (a move killed half-way leaves a duplicate at worst, which the inbox ignores);
3. deletes each of them once it is empty and unused (a quorum queue cannot be deleted with
   ``if-empty``/``if-unused`` on RabbitMQ 3.10, so the worker checks first, on a connection
   of its own: a refused delete closes the whole connection).

Commands published while the switch happens may reach the partitions before older ones of
the same key still in the v1 queue: stop publishers for the upgrade where that matters.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aio_pika
import aiormq.exceptions
import structlog
from aio_pika import Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from contracts import InvalidMessage, body_digest_id, ordering_key, parse_message
from contracts.topology import (
    COMMAND_QUEUE_BINDING_KEY,
    HEADER_ORDERING_KEY,
    partitions_exchange_name,
    retry_queue_name,
)
from worker.settings import Settings

log = structlog.get_logger(__name__)


def v1_queues(settings: Settings) -> list[str]:
    """The v1 queues to empty, delay queues first (they dead-letter into the input)."""
    delays = [
        retry_queue_name(d, settings.command_queue) for d in sorted(set(settings.retry_delays))
    ]
    return [*delays, settings.command_queue]


@dataclass(frozen=True, slots=True)
class Migrated:
    """What one pass did: messages moved, and how many v1 queues still exist."""

    moved: int
    left: int


async def migrate_v1(broker_url: str, settings: Settings) -> Migrated:
    """Move what the v1 queues hold into the partitions, and delete the emptied queues."""
    connection = await aio_pika.connect(
        broker_url, client_properties={"connection_name": "fca-worker migrate"}
    )
    try:
        return await _migrate(connection, settings)
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def _migrate(connection: AbstractConnection, settings: Settings) -> Migrated:
    moved = left = 0
    for name in v1_queues(settings):
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            moved += await _empty(channel, name, settings)
            left += await _exists(connection, name)
        except aiormq.exceptions.ChannelNotFoundEntity:
            pass  # no such queue: nothing to migrate
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
    if moved:
        log.info("migration.moved_v1_messages", messages=moved, queues_left=left)
    return Migrated(moved, left)


async def _exists(connection: AbstractConnection, name: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def _empty(channel: AbstractChannel, name: str, settings: Settings) -> int:
    queue = await channel.declare_queue(name, passive=True)
    if name == settings.command_queue:
        with contextlib.suppress(Exception):
            await queue.unbind(settings.commands_exchange, COMMAND_QUEUE_BINDING_KEY)
    target = await channel.get_exchange(partitions_exchange_name(settings.command_queue))
    moved = 0
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        await target.publish(_copy(message), routing_key=message.routing_key or "", mandatory=True)
        await message.ack()
        moved += 1
    if name == settings.command_queue:  # quorum: no conditional delete, so check first
        again = await channel.declare_queue(name, passive=True)
        result = again.declaration_result
        if result is not None and result.message_count == 0 and result.consumer_count == 0:
            await again.delete(if_unused=False, if_empty=False)
    else:  # classic
        with contextlib.suppress(aiormq.exceptions.ChannelClosed):
            await queue.delete(if_unused=True, if_empty=True)
    return moved


def _copy(message: AbstractIncomingMessage) -> Message:
    headers = dict(message.headers or {})
    message_id = message.message_id or body_digest_id(message.body)  # never a new id
    with contextlib.suppress(InvalidMessage):
        request = parse_message(message.body)
        message_id = request.message_id  # the envelope's id names the message
        headers.setdefault(HEADER_ORDERING_KEY, ordering_key(request))
    return Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=message.delivery_mode,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=None,
        message_id=message_id,
        timestamp=message.timestamp,
        type=message.type,
        user_id=message.user_id,
        app_id=message.app_id,
    )
