"""The consumer: parse → bus → decide → settle. The one place where deliveries are acked.

Each delivery is parsed (:mod:`worker.messaging.delivery`), takes its turn behind earlier
deliveries with the same ordering key, goes through the command bus (:mod:`worker.bus`)
under the concurrency limit, and its fate (:mod:`worker.messaging.fate`) is carried out
here: ack; or copy it to a delay queue, then ack; or copy it to the DLQ, report it, then
ack. If carrying out the decision fails, the delivery goes back to the queue, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, HeadersType

from contracts import COMMAND_TYPES, QUERY_TYPES, retry_queue_name
from contracts.fields import ErrorType
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
)
from worker.bus import CommandBus, Origin, dead_lettered, new_event
from worker.messaging.delivery import Delivery, Parsed, parse
from worker.messaging.fate import (
    Ack,
    DeadLetter,
    Decision,
    Failure,
    Retry,
    RetryPolicy,
    attempts_so_far,
    outcome_of,
)
from worker.messaging.ordering import KeyedSequencer
from worker.observability.metrics import Metrics
from worker.ports import Publisher

log = structlog.get_logger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before returning a delivery we could not settle (avoids a hot loop)."""


def to_delivery(message: AbstractIncomingMessage) -> Delivery:
    """Copy what the worker needs out of an aio-pika message."""
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


async def decide(bus: CommandBus, policy: RetryPolicy, parsed: Parsed) -> Decision:
    """Run the request through the bus; every exception becomes its fate. Never raises."""
    attempt = attempts_so_far(parsed.delivery.headers) + 1
    if parsed.request is None:
        return policy.invalid(parsed.invalid or "invalid message", attempt)
    try:
        origin = Origin(reply_to=parsed.delivery.reply_to)
        return Ack(await bus.handle(parsed.request, origin), attempt)
    except Exception as exc:
        decision = policy.after_failure(exc, attempt)
        if decision.failure.error_type is ErrorType.UNEXPECTED:
            log.exception("message.unexpected_error", error=type(exc).__name__)
        return decision


def failure_headers(delivery: Delivery, failure: Failure) -> HeadersType:
    """The original headers (minus the broker's ``x-`` ones) plus our ``fca-`` failure record."""
    now = datetime.now(UTC).isoformat()
    headers: dict[str, object] = {
        k: v for k, v in delivery.headers.items() if not k.lower().startswith("x-")
    }
    headers.setdefault(HEADER_FIRST_FAILED_AT, now)
    headers.setdefault(HEADER_ORIGINAL_ROUTING_KEY, delivery.routing_key)
    headers[HEADER_LAST_FAILED_AT] = now
    headers[HEADER_ATTEMPTS] = failure.attempt
    headers[HEADER_ERROR_TYPE] = failure.error_type.value
    headers[HEADER_ERROR_MESSAGE] = failure.message[:1000]
    return headers  # type: ignore[return-value]


class Consumer:
    """Consumes the command queue with bounded concurrency and per-key ordering."""

    def __init__(
        self,
        queue: AbstractQueue,
        bus: CommandBus,
        publisher: Publisher,
        policy: RetryPolicy,
        *,
        concurrency: int,
        max_body_bytes: int,
        command_queue: str,
        dead_letter_queue: str,
        metrics: Metrics,
    ) -> None:
        self._queue = queue
        self._command_queue = command_queue  # the base of the delay queues' names
        self._bus = bus
        self._publisher = publisher
        self._policy = policy
        self._max_body_bytes = max_body_bytes
        self._dlq = dead_letter_queue
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._sequencer = KeyedSequencer()
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

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
        parsed = parse(to_delivery(message), max_body_bytes=self._max_body_bytes)
        key = parsed.ordering_key
        turn = self._sequencer.claim(key)
        self._in_flight += 1
        self._metrics.in_flight.inc()
        self._idle.clear()
        started = time.perf_counter()
        try:
            async with self._sequencer.turn(key, turn), self._slots:
                decision = await decide(self._bus, self._policy, parsed)
                settled = await self._settle(message, parsed, decision)
            self._observe(parsed, decision, settled, time.perf_counter() - started)
        finally:
            self._in_flight -= 1
            self._metrics.in_flight.dec()
            if self._in_flight == 0:
                self._idle.set()

    async def _settle(
        self, message: AbstractIncomingMessage, parsed: Parsed, decision: Decision
    ) -> bool:
        """Carry out the decision and ack; ``False`` if the delivery went back to the queue."""
        delivery = parsed.delivery
        try:
            if isinstance(decision, Retry):
                await self._publisher.to_queue(
                    retry_queue_name(decision.delay, self._command_queue),
                    delivery,
                    failure_headers(delivery, decision.failure),
                    expiration_ms=self._policy.expiration_ms(decision.delay),
                )
            elif isinstance(decision, DeadLetter):
                await self._publisher.to_queue(
                    self._dlq, delivery, failure_headers(delivery, decision.failure)
                )
                await self._report(parsed, decision.failure)
            await message.ack()
            return True
        except Exception as exc:
            log.warning(
                "message.settle_failed",
                message_id=parsed.message_id,
                action=_action(decision),
                error=type(exc).__name__,
            )
            await asyncio.sleep(NACK_PAUSE)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return False

    async def _report(self, parsed: Parsed, failure: Failure) -> None:
        report = dead_lettered(parsed.message_id, parsed.type, parsed.delivery.body, failure)
        try:
            await self._publisher.publish_events([new_event(report)])
        except Exception as exc:  # the DLQ holds the message; the report is best effort
            log.warning("dead_letter.report_failed", error=type(exc).__name__)

    def _observe(self, parsed: Parsed, decision: Decision, settled: bool, seconds: float) -> None:
        # Only known types become label values: a hostile sender must not create series.
        known = parsed.type in COMMAND_TYPES or parsed.type in QUERY_TYPES
        label = parsed.type if known and parsed.type else "invalid"
        outcome = outcome_of(decision)
        self._metrics.commands.labels(label, outcome).inc()
        self._metrics.latency.labels(label).observe(seconds)
        if settled and isinstance(decision, Retry):
            self._metrics.retries.labels(outcome).inc()
        elif settled and isinstance(decision, DeadLetter):
            self._metrics.dead_letters.labels(outcome).inc()
        log.info(
            "message.handled",
            message_id=parsed.message_id,
            type=parsed.type,
            correlation_id=parsed.correlation_id,
            attempt=decision.attempt,
            outcome=outcome,
            action=_action(decision) if settled else "requeued",
            duration_ms=round(seconds * 1000, 2),
        )


def _action(decision: Decision) -> str:
    if isinstance(decision, Retry):
        return "retry"
    return "dead_letter" if isinstance(decision, DeadLetter) else "ack"
