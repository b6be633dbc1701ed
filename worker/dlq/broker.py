"""One pass over the dead-letter queue that can only remove what it is told to remove.

A pass counts the queue first (a passive declare) and fetches at most that many messages
with ``basic.get``, so a message that comes back to the DLQ during the run (a replay that
failed again at once) is not handled twice. Every fetched message stays unacked until the
pass ends: only :meth:`DlqPass.remove` acks (deletes) one. The rest are returned with one
``basic.nack(requeue)`` each, in the order they were fetched. If the process dies instead,
the broker returns them when the connection drops: nothing is lost.

Order (measured on RabbitMQ 3.10.8 quorum queues, see the tests):

* messages returned by a closed channel or a dropped connection come back first, in no
  useful order;
* nacked messages go back behind the messages nobody fetched, in the order the queue
  applies the returns; but once more than ~32 returns are pending, the queue's client
  batches them into one command whose ids it walks as an unordered map, so a burst of
  500 nacks comes back shuffled after the first 32.

So a pass always fetches the whole snapshot (even when the caller needs only a few, else
the fetched head would move behind the rest), and returns the remainder
``RETURN_CHUNK`` nacks at a time, waiting until the queue has applied each chunk (its
ready count has grown) before sending the next. The queue then keeps its order; anything
that arrived during the pass ends up in front of the returned messages. Only a killed run
shuffles the queue. A burst of acks would get the queue's client merging too, so replays and
purges remove at most :data:`worker.dlq.audit.BATCH_SIZE` messages between two fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
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

from worker.dlq.model import DeadLetter, Progress, parse_dead_letter
from worker.errors import DlqError
from worker.settings import Settings

CONNECTION_NAME = "fca-worker dlq"
RETURN_CHUNK = 16
"""Nacks sent before waiting for the queue to apply them (below the ~32 that get batched)."""
RETURN_WAIT = 5.0
"""Seconds to wait for one chunk of returns to be applied before going on regardless."""
_POLL = 0.002


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

    async def fetch(self, progress: Progress | None = None) -> AsyncGenerator[Held, None]:
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
        """Return every message not removed, in fetch order (see the module docstring)."""
        if self._queue is None:
            return
        tags, self._outstanding = sorted(self._outstanding), {}
        channel = await self._channel.get_underlay_channel()
        for start in range(0, len(tags), RETURN_CHUNK):
            chunk = tags[start : start + RETURN_CHUNK]
            ready = await self._ready()
            for tag in chunk:
                await channel.basic_nack(delivery_tag=tag, multiple=False, requeue=True)
            await self._await_ready(ready + len(chunk))

    async def _ready(self) -> int:
        assert self._queue is not None
        return _count(await _passive(self._channel, self._queue.name))

    async def _await_ready(self, expected: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETURN_WAIT
        while loop.time() < deadline:
            if await self._ready() >= expected:
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
