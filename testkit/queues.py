"""What is in a queue: counts, purges, the dead-letter queue, and removing a topology.

:class:`QueueTools` is the queue half of :class:`testkit.amqp.AmqpClient` (which inherits
it); every operation runs on a throw-away channel, since a failed passive declare closes it.

``.queue_counts(name) -> (ready, consumers)``, ``.queue_exists(name)``,
``.wait_queue_empty(name, timeout)``, ``.purge(name) -> int``
    Ready messages and consumers of a queue (unacknowledged ones are not counted); whether
    it exists; waiting until it holds nothing ready; dropping what it holds.
``.input_counts() -> (ready, consumers)``, ``.wait_inputs_empty(timeout)``
    The same, summed over the worker's partition queues (its input).
``.dead_letters(queue=None, ack=True) -> list[ReceivedMessage]``
    Empties the DLQ into a list, or with ``ack=False`` peeks and requeues.
``.wait_dead_letter(predicate, timeout, queue=None, ack=True) -> ReceivedMessage``
    Waits for a matching dead letter and takes out only that one (others are requeued).
``.delete_topology(topology, retry_delays=(1, 5, 30))``
    Deletes a worker's queues and exchanges (best effort; for isolated topologies).
``take_dead_letter(client, body, timeout)``
    Waits for the dead letter whose body is exactly ``body`` and removes it from the DLQ.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from typing import TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from testkit.config import Topology
from testkit.factories import DEFAULT_TIMEOUT, wait_until
from testkit.messages import ReceivedMessage

__all__ = ["QueueTools", "take_dead_letter"]

T = TypeVar("T")


class QueueTools:
    """Queue inspection for a client holding a pika ``connection`` and a ``topology``."""

    connection: BlockingConnection
    topology: Topology

    def _with_scratch_channel(self, action: Callable[[BlockingChannel], T]) -> T:
        """Run ``action`` on a throw-away channel (a failed passive declare closes it)."""
        channel = self.connection.channel()
        try:
            return action(channel)
        finally:
            with contextlib.suppress(Exception):
                if channel.is_open:
                    channel.close()

    def queue_counts(self, name: str) -> tuple[int, int]:
        """``(ready messages, consumers)`` of a queue (unacknowledged ones are not counted)."""
        result = self._with_scratch_channel(lambda ch: ch.queue_declare(name, passive=True))
        return result.method.message_count, result.method.consumer_count

    def queue_exists(self, name: str) -> bool:
        """Whether the queue exists."""
        try:
            self.queue_counts(name)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        return True

    def wait_queue_empty(self, name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the queue holds no ready message."""
        wait_until(
            lambda: self.queue_counts(name)[0] == 0,
            timeout=timeout,
            message=lambda: f"{name} still holds {self.queue_counts(name)[0]} messages",
        )

    def input_counts(self) -> tuple[int, int]:
        """``(ready messages, consumers)`` summed over the worker's partition queues."""
        counts = [self.queue_counts(name) for name in self.topology.partition_queues()]
        return sum(r for r, _ in counts), sum(c for _, c in counts)

    def wait_inputs_empty(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until no partition queue holds a ready message."""
        wait_until(
            lambda: self.input_counts()[0] == 0,
            timeout=timeout,
            message=lambda: f"the partitions still hold {self.input_counts()[0]} messages",
        )

    def purge(self, name: str) -> int:
        """Drop every ready message of a queue; how many there were."""
        result = self._with_scratch_channel(lambda ch: ch.queue_purge(name))
        return int(result.method.message_count)

    def dead_letters(self, queue: str | None = None, *, ack: bool = True) -> list[ReceivedMessage]:
        """Every message now in the DLQ; removed from it unless ``ack=False`` (then requeued)."""
        name = queue or self.topology.dead_letter_queue

        def take(channel: BlockingChannel) -> list[ReceivedMessage]:
            taken = []
            while True:
                method, properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                taken.append(
                    (method.delivery_tag, ReceivedMessage.from_delivery(method, properties, body))
                )
            if taken:
                last_tag = taken[-1][0]
                if ack:
                    channel.basic_ack(last_tag, multiple=True)
                else:
                    channel.basic_nack(last_tag, multiple=True, requeue=True)
            return [message for _, message in taken]

        return self._with_scratch_channel(take)

    def wait_dead_letter(
        self,
        predicate: Callable[[ReceivedMessage], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        queue: str | None = None,
        ack: bool = True,
    ) -> ReceivedMessage:
        """Wait for a DLQ message matching ``predicate``; others taken meanwhile are requeued."""
        name = queue or self.topology.dead_letter_queue
        found: list[ReceivedMessage] = []

        def look() -> bool:
            for message in self.dead_letters(name, ack=False):
                if predicate(message):
                    found.append(message)
                    return True
            return False

        wait_until(look, timeout=timeout, interval=0.1, message=f"no matching message in {name}")
        if ack:  # take exactly the matching one out, requeue the rest
            self._remove_matching(name, predicate)
        return found[0]

    def _remove_matching(self, name: str, predicate: Callable[[ReceivedMessage], bool]) -> None:
        def remove(channel: BlockingChannel) -> None:
            keep = []
            while True:
                method, properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                if predicate(ReceivedMessage.from_delivery(method, properties, body)):
                    channel.basic_ack(method.delivery_tag)
                else:
                    keep.append(method.delivery_tag)
            for tag in keep:
                channel.basic_nack(tag, requeue=True)

        self._with_scratch_channel(remove)

    def delete_topology(self, topology: Topology, retry_delays: Iterable[int] = (1, 5, 30)) -> None:
        """Delete a worker's queues and exchanges (best effort; for isolated topologies)."""
        for queue in topology.queues(retry_delays):
            with contextlib.suppress(Exception):
                self._with_scratch_channel(functools.partial(_delete_queue, name=queue))
        exchanges = (
            topology.partitions_exchange,
            topology.commands_exchange,
            topology.events_exchange,
        )
        for exchange in exchanges:
            with contextlib.suppress(Exception):
                self._with_scratch_channel(functools.partial(_delete_exchange, name=exchange))


def _delete_queue(channel: BlockingChannel, *, name: str) -> None:
    channel.queue_delete(name)


def _delete_exchange(channel: BlockingChannel, *, name: str) -> None:
    channel.exchange_delete(name)


def take_dead_letter(
    client: QueueTools, body: bytes, *, timeout: float = DEFAULT_TIMEOUT
) -> ReceivedMessage:
    """Wait for the dead letter whose body is exactly ``body`` and remove it from the DLQ."""
    return client.wait_dead_letter(lambda m: m.body == body, timeout=timeout)
