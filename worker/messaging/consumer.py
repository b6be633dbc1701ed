"""The consumer: the one place where deliveries are acknowledged.

Each delivery is parsed, takes its turn behind earlier deliveries with the same
ordering key, runs through the pipeline under the concurrency limit, and then the
pipeline's decision is carried out here: ack; or republish to a delay queue and ack;
or republish to the DLQ (plus a ``CommandDeadLettered`` event) and ack. If carrying
out the decision fails, the delivery is returned to the queue, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, HeadersType

from contracts import COMMAND_TYPES, QUERY_TYPES
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
)
from worker.messaging.ordering import KeyedSequencer
from worker.messaging.pipeline import Action, Decision, Parsed, Pipeline
from worker.messaging.publisher import Delivery, Publisher
from worker.messaging.retry import RetryPolicy
from worker.messaging.topology import retry_queue_name
from worker.observability.metrics import Metrics
from worker.repositories import PendingEvent

log = structlog.get_logger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before returning a delivery we could not settle (avoids a hot loop)."""


def to_delivery(message: AbstractIncomingMessage) -> Delivery:
    """Copy what the pipeline needs out of an aio-pika message."""
    return Delivery(
        body=message.body,
        routing_key=message.routing_key or "",
        headers=dict(message.headers or {}),
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        content_type=message.content_type,
        type=message.type,
        redelivered=bool(message.redelivered),
    )


def failure_headers(delivery: Delivery, decision: Decision) -> HeadersType:
    """The original headers (minus the broker's ``x-`` ones) plus our ``fca-`` failure record."""
    now = datetime.now(UTC).isoformat()
    headers: dict[str, object] = {
        k: v for k, v in delivery.headers.items() if not k.lower().startswith("x-")
    }
    headers.setdefault(HEADER_FIRST_FAILED_AT, now)
    headers.setdefault(HEADER_ORIGINAL_ROUTING_KEY, delivery.routing_key)
    headers[HEADER_LAST_FAILED_AT] = now
    headers[HEADER_ATTEMPTS] = decision.attempt
    headers[HEADER_ERROR_TYPE] = decision.error_type or "unexpected"
    headers[HEADER_ERROR_MESSAGE] = (decision.error or "")[:1000]
    return headers  # type: ignore[return-value]


class Consumer:
    """Consumes the command queue with bounded concurrency and per-key ordering."""

    def __init__(
        self,
        queue: AbstractQueue,
        pipeline: Pipeline,
        publisher: Publisher,
        policy: RetryPolicy,
        *,
        concurrency: int,
        dead_letter_queue: str,
        metrics: Metrics,
    ) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self._publisher = publisher
        self._policy = policy
        self._dlq = dead_letter_queue
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._sequencer = KeyedSequencer()
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.handled = 0

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet settled."""
        return self._in_flight

    @property
    def consuming(self) -> bool:
        """Whether the consumer is registered with the broker."""
        return self._tag is not None

    async def start(self) -> None:
        """Register with the broker (a robust channel re-registers after reconnecting)."""
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def stop(self, timeout: float) -> bool:
        """Stop taking deliveries and wait for in-flight ones; ``False`` if time ran out."""
        if self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Everything up to the first await runs in delivery order: claim the turn here.
        delivery = to_delivery(message)
        parsed = self._pipeline.parse(delivery)
        key = parsed.ordering_key
        turn = self._sequencer.claim(key)
        self._in_flight += 1
        self._metrics.in_flight.inc()
        self._idle.clear()
        started = time.perf_counter()
        try:
            async with self._sequencer.turn(key, turn), self._slots:
                decision = await self._pipeline.process(parsed)
                settled = await self._settle(message, parsed, decision)
            self._observe(parsed, decision, settled, time.perf_counter() - started)
            log.info(
                "message.handled",
                message_id=parsed.message_id,
                type=parsed.type,
                correlation_id=_correlation_id(parsed),
                attempt=decision.attempt,
                outcome=decision.outcome,
                action=decision.action.value if settled else "requeued",
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        finally:
            self.handled += 1
            self._in_flight -= 1
            self._metrics.in_flight.dec()
            if self._in_flight == 0:
                self._idle.set()

    def _observe(self, parsed: Parsed, decision: Decision, settled: bool, seconds: float) -> None:
        # Only known types become label values: a hostile sender must not create series.
        known = parsed.type in COMMAND_TYPES or parsed.type in QUERY_TYPES
        label = parsed.type if known and parsed.type else "invalid"
        self._metrics.commands.labels(label, decision.outcome).inc()
        self._metrics.latency.labels(label).observe(seconds)
        if not settled:
            return
        if decision.action is Action.RETRY:
            self._metrics.retries.labels(decision.error_type or "unexpected").inc()
        elif decision.action is Action.DEAD_LETTER:
            self._metrics.dead_letters.labels(decision.error_type or "unexpected").inc()

    async def _settle(
        self, message: AbstractIncomingMessage, parsed: Parsed, decision: Decision
    ) -> bool:
        """Carry out the decision and ack; ``False`` if the delivery went back to the queue."""
        delivery = parsed.delivery
        try:
            if decision.action is Action.RETRY:
                delay = self._policy.delay_for(decision.attempt)
                await self._publisher.to_queue(
                    retry_queue_name(self._queue.name, delay),
                    delivery,
                    failure_headers(delivery, decision),
                    expiration_ms=self._policy.expiration_ms(delay),
                )
            elif decision.action is Action.DEAD_LETTER:
                await self._publisher.to_queue(
                    self._dlq, delivery, failure_headers(delivery, decision)
                )
                await self._report_dead_letter(parsed, decision)
            await message.ack()
            return True
        except Exception as exc:
            log.warning(
                "message.settle_failed",
                message_id=parsed.message_id,
                action=decision.action.value,
                error=type(exc).__name__,
            )
            await asyncio.sleep(NACK_PAUSE)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return False

    async def _report_dead_letter(self, parsed: Parsed, decision: Decision) -> None:
        try:
            event = self._pipeline.dead_letter_event(parsed, decision)
            pending = PendingEvent(
                0,
                event.message_id,
                event.type,
                event.routing_key,
                None,
                event.correlation_id,
                event.model_dump_json(),
            )
            await self._publisher.publish_events([pending])
        except Exception as exc:  # the DLQ holds the message; the report is best effort
            log.warning("dead_letter.report_failed", error=type(exc).__name__)


def _correlation_id(parsed: Parsed) -> str | None:
    """The envelope's correlation id (where the contract puts it), else the AMQP property's."""
    if parsed.request is not None and parsed.request.correlation_id is not None:
        return parsed.request.correlation_id
    return parsed.delivery.correlation_id
