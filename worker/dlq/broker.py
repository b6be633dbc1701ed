"""One pass over the dead-letter queue that can only remove what it is told to remove.

A pass counts the queue first (a passive declare) and fetches at most that many messages
with ``basic.get``, so a message that comes back to the DLQ during the run (a replay that
failed again at once) is not handled twice. Every fetched message stays unacked until the
pass ends: only :meth:`DlqPass.remove` acks (deletes) one. The rest are returned with one
``basic.nack(requeue)`` each, in the order they were fetched. If the process dies instead,
the broker returns them when the connection drops: nothing is lost.

Order (measured on RabbitMQ 3.10 quorum queues): nacked messages go back behind the
messages nobody had fetched, in the order of the nacks, while messages returned by a
closed channel or connection come back first, in no useful order. So a pass always
fetches the whole snapshot, even when the caller needs only a few, and nacks in fetch
order: the queue then keeps its order (anything that arrived during the pass ends up in
front of the returned messages). Only a killed run shuffles the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from worker.dlq.model import DeadLetter, DlqError, Progress, parse_dead_letter
from worker.settings import Settings

CONNECTION_NAME = "fca-worker dlq"
RETURN_WAIT = 5.0
"""Seconds to wait, at the end of a pass, until the returned messages are countable again."""
_POLL = 0.02


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass


_NO_PROGRESS = _NoProgress()


@dataclass(frozen=True, slots=True)
class Held:
    """A fetched, unacked dead letter and its delivery."""

    letter: DeadLetter
    message: AbstractIncomingMessage


def letter_of(message: AbstractIncomingMessage, position: int) -> DeadLetter:
    """Describe a delivery from the DLQ."""
    properties: dict[str, object] = {
        name: getattr(message, name)
        for name in (
            "message_id",
            "type",
            "correlation_id",
            "reply_to",
            "content_type",
            "content_encoding",
            "delivery_mode",
            "priority",
            "expiration",
            "timestamp",
            "user_id",
            "app_id",
            "routing_key",
            "exchange",
            "redelivered",
        )
    }
    return parse_dead_letter(position, message.body, dict(message.headers or {}), properties)


class DlqPass:
    """Fetches up to a snapshot's worth of dead letters; returns all but removed ones."""

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self._connection = connection
        self._channel = channel
        self._queue: AbstractQueue | None = None
        self._outstanding: dict[int, None] = {}
        self.snapshot = 0

    async def open(self, queue_name: str) -> None:
        """Find the queue and count it."""
        self._queue = await _passive(self._channel, queue_name)
        self.snapshot = _count(self._queue)

    async def exchange(self, name: str) -> AbstractExchange:
        """An existing exchange on a channel with confirms that raises on returned messages."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            return await channel.get_exchange(name, ensure=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise DlqError(f"exchange {name!r} does not exist") from None

    async def fetch(self, progress: Progress | None = None) -> AsyncIterator[Held]:
        """Fetch the snapshot's messages, one at a time, leaving each unacked."""
        assert self._queue is not None, "open() first"
        progress = progress or _NO_PROGRESS
        progress.start(self.snapshot)
        try:
            for position in range(self.snapshot):
                message = await self._queue.get(no_ack=False, fail=False)
                if message is None:
                    return
                assert message.delivery_tag is not None
                self._outstanding[message.delivery_tag] = None
                progress.advance(1)
                yield Held(letter_of(message, position), message)
        finally:
            progress.finish()

    async def remove(self, held: Held) -> None:
        """Ack (delete) one fetched message."""
        tag = held.message.delivery_tag
        await held.message.ack()
        self._outstanding.pop(tag or 0, None)

    async def give_back(self) -> None:
        """Return every message not removed, in fetch order, and wait until they count."""
        if self._queue is None or not self._outstanding:
            return
        waiting = _count(await _passive(self._channel, self._queue.name))
        channel = await self._channel.get_underlay_channel()
        for tag in sorted(self._outstanding):
            await channel.basic_nack(delivery_tag=tag, multiple=False, requeue=True)
        expected, self._outstanding = waiting + len(self._outstanding), {}
        await self._await_count(expected)

    async def _await_count(self, expected: int) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETURN_WAIT
        while loop.time() < deadline:
            if _count(await _passive(self._channel, self._queue.name)) >= expected:
                return
            await asyncio.sleep(_POLL)


@contextlib.asynccontextmanager
async def dlq_pass(settings: Settings) -> AsyncIterator[DlqPass]:
    """Connect, count the DLQ, and on leaving return what was not removed and disconnect."""
    connection = await _connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=False)
        run = DlqPass(connection, channel)
        await run.open(settings.dead_letter_queue)
        try:
            yield run
        finally:
            with contextlib.suppress(aiormq.exceptions.AMQPError, ConnectionError):
                await run.give_back()
    finally:
        with contextlib.suppress(aiormq.exceptions.AMQPError, ConnectionError):
            await connection.close()


async def _connect(settings: Settings) -> AbstractConnection:
    try:
        return await aio_pika.connect(
            settings.amqp_url.get_secret_value(),
            client_properties={"connection_name": CONNECTION_NAME},
            timeout=15,
        )
    except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as exc:
        raise DlqError(f"cannot connect to RabbitMQ ({type(exc).__name__})") from None


async def _passive(channel: AbstractChannel, name: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise DlqError(f"queue {name!r} does not exist") from None


def _count(queue: AbstractQueue) -> int:
    result = queue.declaration_result
    return int(result.message_count or 0) if result is not None else 0
