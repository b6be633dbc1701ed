"""A delivery as the consumer reads and settles it, from aio-pika or straight from aiormq.

With spans recorded, deliveries come through aio-pika's ``Queue.consume`` (its
instrumentation wraps it: the consumer span) as aio-pika ``IncomingMessage`` objects.
Otherwise the partitions consume through aiormq's channel and hand over
:class:`RawDelivery`: aio-pika's message sets each of its fields through a ``__setattr__``
that checks a lock, and its consumer starts a second task per delivery; together about 3%
of the worker's CPU per command (measured in a profile of the benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiormq.abc import DeliveredMessage


class Incoming(Protocol):
    """What the consumer reads of a delivery, and how it settles it."""

    @property
    def body(self) -> bytes: ...
    @property
    def routing_key(self) -> str | None: ...
    @property
    def headers(self) -> Mapping[str, object] | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def reply_to(self) -> str | None: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def redelivered(self) -> bool | None: ...

    async def ack(self) -> None:
        """Acknowledge it: the broker forgets it."""
        ...

    async def nack(self, *, requeue: bool = True) -> None:
        """Return it to its queue (``requeue``) or drop it."""
        ...


class RawDelivery:
    """An aiormq delivery with the fields the consumer reads, settled on its own channel."""

    __slots__ = (
        "_channel",
        "_tag",
        "body",
        "content_type",
        "correlation_id",
        "headers",
        "message_id",
        "redelivered",
        "reply_to",
        "routing_key",
        "type",
    )

    def __init__(self, message: DeliveredMessage) -> None:
        properties = message.header.properties
        self.body: bytes = message.body
        self.routing_key: str | None = message.routing_key
        self.headers: Mapping[str, object] | None = properties.headers
        self.message_id: str | None = properties.message_id
        self.correlation_id: str | None = properties.correlation_id
        self.reply_to: str | None = properties.reply_to
        self.content_type: str | None = properties.content_type
        self.type: str | None = properties.message_type
        self.redelivered: bool | None = message.redelivered
        self._channel = message.channel
        tag = message.delivery_tag
        if tag is None:  # only a basic.get's "empty" answer has none; a delivery always does
            raise ValueError("a delivery without a delivery tag")
        self._tag: int = tag

    async def ack(self) -> None:
        """Acknowledge it on the channel it came on."""
        await self._channel.basic_ack(self._tag)

    async def nack(self, *, requeue: bool = True) -> None:
        """Reject it on the channel it came on; ``requeue`` puts it back in its queue."""
        await self._channel.basic_nack(self._tag, requeue=requeue)
