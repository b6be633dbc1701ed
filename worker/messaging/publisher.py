"""Everything the worker sends: events, replies, retries and dead letters, all confirmed.

The publisher owns its own channel (with publisher confirms), separate from the
consuming channel, so a failed publish can never close the channel deliveries arrive on.
It implements :class:`worker.ports.Publisher`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, HeadersType

from contracts import CONTENT_TYPE, EventEnvelope
from worker.messaging.delivery import Delivery
from worker.repositories import NewEvent


class AmqpPublisher:
    """Publishes persistent messages and waits for the broker's confirm of each."""

    def __init__(self, channel: AbstractChannel, events: AbstractExchange) -> None:
        self._channel = channel
        self._events = events

    async def publish_events(self, events: Sequence[NewEvent]) -> None:
        """Publish events (and their replies) concurrently; returns once all are confirmed."""
        await asyncio.gather(*(self._publish_event(e) for e in events))

    async def _publish_event(self, event: NewEvent) -> None:
        message = json_message(
            event.body.encode(),
            message_id=event.message_id,
            type_=event.event_type,
            correlation_id=event.correlation_id,
        )
        await self._events.publish(message, routing_key=event.routing_key, mandatory=False)
        if event.reply_to:
            await self._send_reply(event.reply_to, message)

    async def reply(self, reply_to: str, message: EventEnvelope) -> None:
        """Send an outcome straight to a ``reply_to`` queue through the default exchange."""
        body = json_message(
            message.model_dump_json().encode(),
            message_id=message.message_id,
            type_=message.type,
            correlation_id=message.correlation_id,
        )
        await self._send_reply(reply_to, body)

    async def _send_reply(self, reply_to: str, message: Message) -> None:
        await self._channel.default_exchange.publish(message, routing_key=reply_to, mandatory=False)

    async def to_queue(
        self,
        queue: str,
        delivery: Delivery,
        headers: HeadersType,
        *,
        expiration_ms: int | None = None,
    ) -> None:
        """Republish a delivery's exact body to a queue (retry or DLQ) with new headers.

        Mandatory: if the queue is missing the broker returns the message and this raises,
        so the original is not acked and nothing is lost.
        """
        message = Message(
            delivery.body,
            headers=headers,
            content_type=delivery.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            reply_to=delivery.reply_to,
            type=delivery.type,
            timestamp=datetime.now(UTC),
            expiration=expiration_ms / 1000 if expiration_ms is not None else None,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)


def json_message(
    body: bytes,
    *,
    message_id: str,
    type_: str,
    correlation_id: str | None,
    headers: HeadersType | None = None,
) -> Message:
    """A persistent JSON message with the contract's AMQP properties."""
    return Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=type_,
        correlation_id=correlation_id,
        timestamp=datetime.now(UTC),
        headers=headers or {},
    )
