"""Everything the worker sends: events, replies, retries and dead letters, all confirmed.

The publisher has a connection of its own, apart from the one deliveries arrive on (as
RabbitMQ advises: under a memory or disk alarm the broker stops reading publishing
connections, and acks on a shared one would stall too), and its own confirmed channel,
made again after a reconnect. Every publish waits at most ``timeout`` seconds for its
confirm; a publish that times out raises ``TimeoutError`` (transient). It implements
:class:`worker.ports.Publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime

import aiormq.exceptions
from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, FieldValue, HeadersType
from pamqp.commands import Basic

from contracts import CONTENT_TYPE, EventEnvelope
from worker.messaging.connection import BrokerConnection
from worker.messaging.delivery import Delivery
from worker.observability.tracing import instrumented, outgoing_headers, publishing_in
from worker.repositories import NewEvent


class AmqpPublisher:
    """Publishes persistent messages and waits (a bounded time) for the broker's confirms."""

    def __init__(self, broker: BrokerConnection, events_exchange: str, *, timeout: float) -> None:
        self._broker = broker
        self._events_name = events_exchange
        self._timeout = timeout
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> tuple[AbstractChannel, AbstractExchange]:
        async with self._opening:
            if self._channel is None or self._channel.is_closed or self._events is None:
                channel = await self._broker.connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                self._events = await channel.declare_exchange(
                    self._events_name, ExchangeType.TOPIC, durable=True
                )
                self._channel = channel
            return self._channel, self._events

    @contextlib.asynccontextmanager
    async def _confirmed(self) -> AsyncIterator[None]:
        """Bound the wait; after a nack or a timeout, start the next publish on a new channel.

        (Measured on RabbitMQ 3.10: a channel whose first publish to a quorum queue was
        nacked, right after the leader's node died, has every later publish nacked too.)
        """
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (aiormq.exceptions.DeliveryError, TimeoutError):
            channel, self._channel, self._events = self._channel, None, None
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close()
            raise

    async def publish_events(
        self, events: Sequence[NewEvent], *, staged_here: bool = False
    ) -> None:
        """Publish events (and their replies) in order; returns once all are confirmed.

        The frames go out in order on one channel (so one key's events reach each queue in
        order); the confirms are awaited together. Each event continues the trace it was
        staged in: restored from its row, unless ``staged_here`` says that is the current one
        (the fast path; restoring costs about a tenth of a publish, measured).
        """
        channel, exchange = await self._open()
        async with self._confirmed():
            if len(events) == 1:  # the fast path's usual case: no task for one publish
                await self._publish_event(channel, exchange, events[0], staged_here)
            else:
                await asyncio.gather(
                    *(self._publish_event(channel, exchange, e, staged_here) for e in events)
                )

    async def _publish_event(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        event: NewEvent,
        staged_here: bool,
    ) -> None:
        if not instrumented():
            await self._publish_frames(channel, event)
            return
        message = json_message(
            event.body.encode(),
            message_id=event.message_id,
            type_=event.event_type,
            correlation_id=event.correlation_id,
        )
        # The command's trace (the instrumentation injects the current context), even when
        # published much later.
        with nullcontext() if staged_here else publishing_in(event.trace):
            await exchange.publish(message, routing_key=event.routing_key, mandatory=False)
            if event.reply_to:
                await channel.default_exchange.publish(
                    message, routing_key=event.reply_to, mandatory=False
                )

    async def _publish_frames(self, channel: AbstractChannel, event: NewEvent) -> None:
        """The same publish straight through aiormq, the event's stored trace context in its
        headers. Without aio-pika's ``Message`` (a lock check on each field set) and
        ``Exchange.publish``, a confirmed publish costs about a sixth less CPU (measured:
        271 to 313 against 327 to 379 µs). Only when no instrumentation wraps
        ``Exchange.publish``."""
        underlay = await channel.get_underlay_channel()
        headers: dict[str, FieldValue] = {**outgoing_headers(event.trace or {})}
        properties = Basic.Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=DeliveryMode.PERSISTENT.value,
            message_id=event.message_id,
            message_type=event.event_type,
            correlation_id=event.correlation_id,
            timestamp=datetime.now(UTC),
            headers=headers,
        )
        body = event.body.encode()
        await underlay.basic_publish(
            body, exchange=self._events_name, routing_key=event.routing_key, properties=properties
        )
        if event.reply_to:
            await underlay.basic_publish(body, routing_key=event.reply_to, properties=properties)

    async def reply(self, reply_to: str, message: EventEnvelope) -> None:
        """Send an outcome straight to a ``reply_to`` queue through the default exchange."""
        body = json_message(
            message.model_dump_json().encode(),
            message_id=message.message_id,
            type_=message.type,
            correlation_id=message.correlation_id,
            headers=outgoing_headers(),
        )
        channel, _ = await self._open()
        async with self._confirmed():
            await channel.default_exchange.publish(body, routing_key=reply_to, mandatory=False)

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
        channel, _ = await self._open()
        async with self._confirmed():
            await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)


def json_message(
    body: bytes,
    *,
    message_id: str,
    type_: str,
    correlation_id: str | None,
    headers: Mapping[str, FieldValue] | None = None,
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
        headers=dict(headers or {}),
    )
