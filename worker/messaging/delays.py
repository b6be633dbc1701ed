"""The delay-queue watch: a retry left in a delay queue past its time is sent on by us.

A retry waits in a quorum delay queue until its expiration, then the broker dead-letters it
back to the partitions exchange. RabbitMQ does not always expire it: a quorum queue can keep
an expired message at its head (rabbitmq-server#10718, open, reported on queues set up as
ours are; not reproduced here). So every ``interval`` each replica looks at the head of each
delay queue (``basic.get``): a message overdue by more than ``grace`` is published to the
partitions exchange as the broker would have (same body and properties, our headers, so it
hashes to its own partition), confirmed, and only then acked; anything else goes back
untouched. A message moved twice (a crash between the publish and the ack) is a duplicate
the inbox recognises. When the broker works, the watch finds nothing overdue.

What it cannot reach: a message the broker has already dead-lettered but whose target has
not confirmed it yet. The queue holds those apart (neither ready nor unacked) and its
dead-letter worker sends them again every ``dead_letter_worker_publisher_confirm_timeout``
(``deploy/rabbitmq/advanced.config``); on 3.10 it keeps sending to a target partition's old
leader until that node is back (tests/e2e/test_cluster_failover.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage

from worker.messaging.connection import BrokerConnection

log = structlog.get_logger(__name__)

MAX_PER_ROUND = 200
"""Messages moved from one delay queue per round at most (the rest wait for the next)."""


def overdue(message: AbstractIncomingMessage, now: datetime, grace: timedelta) -> bool:
    """True if the broker should have dead-lettered ``message`` more than ``grace`` ago."""
    expiration = message.expiration  # an incoming message's is seconds (aio-pika decodes it)
    if message.timestamp is None or not isinstance(expiration, int | float):
        return False  # not a copy the worker made: leave it to the broker
    stamped = message.timestamp
    if stamped.tzinfo is None:
        stamped = stamped.replace(tzinfo=UTC)
    due: datetime = stamped + timedelta(seconds=expiration)
    return now > due + grace


def released(message: AbstractIncomingMessage) -> Message:
    """The message as the broker dead-letters it: the same, without the expiration.

    The broker's own ``x-`` headers (a quorum queue's ``x-delivery-count``) stay behind:
    the worker sends none of its own.
    """
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
    return Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        type=message.type,
        timestamp=message.timestamp,
    )


class DelayWatch:
    """Moves retries the broker left in a delay queue past their time."""

    def __init__(
        self,
        broker: BrokerConnection,
        queues: Sequence[str],
        exchange: str,
        *,
        interval: float = 5.0,
        grace: float = 5.0,
        timeout: float = 10.0,
        on_moved: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._broker = broker
        self._queues = list(queues)
        self._exchange = exchange
        self._interval = interval
        self._grace = timedelta(seconds=grace)
        self._on_moved = on_moved
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Watch in the background."""
        self._task = asyncio.create_task(self._watch_forever(), name="delay-watch")

    async def stop(self) -> None:
        """Stop watching (a message being moved is either acked or goes back to its queue)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except Exception as exc:  # the broker is away: the next round tries again
                log.warning("delay_watch.failed", error=type(exc).__name__)

    async def run_once(self, now: datetime | None = None) -> int:
        """One look at every delay queue; returns how many messages were moved."""
        async with asyncio.timeout(self._timeout * (1 + len(self._queues))):
            return await self._look(now)

    async def _look(self, now: datetime | None) -> int:
        # on_return_raises: a move the broker could not route raises and the original stays.
        channel = await self._broker.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        try:
            exchange = await channel.get_exchange(self._exchange, ensure=False)
            moved = 0
            for name in self._queues:
                queue = await channel.get_queue(name, ensure=False)
                for _ in range(MAX_PER_ROUND):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    if not overdue(message, now or datetime.now(UTC), self._grace):
                        await message.nack(requeue=True)  # its time has not come: untouched
                        break
                    await exchange.publish(released(message), routing_key="", mandatory=True)
                    await message.ack()
                    moved += 1
        finally:
            await channel.close()
        if moved:
            log.warning("delay_watch.moved", messages=moved)
            self._on_moved(moved)
        return moved
