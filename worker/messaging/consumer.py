"""The consumer: parse → bus → decide → settle. The one place where deliveries are acked.

Each delivery, whichever partition it came from, is parsed
(:mod:`worker.messaging.delivery`), takes its turn behind earlier deliveries with the same
ordering key, goes through the command bus (:mod:`worker.bus`) under the concurrency limit,
and its fate (:mod:`worker.messaging.fate`) is carried out here: ack; or copy it to a delay
queue, then ack; or copy it to the DLQ, report it, then ack. If carrying out the decision
fails, the delivery goes back to the queue, never lost.

A transient failure is first retried in place, a few times with a short back-off, while the
delivery keeps its key's turn (later commands of that key wait, other keys flow; the
concurrency slot is given back while it waits). Only then does it go to a delay queue, and
while it waits there later commands of its key may overtake it: that is counted
(``fca_retry_overtaken_total``) as far as this replica can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aio_pika.abc import HeadersType
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential

from contracts import COMMAND_TYPES, QUERY_TYPES
from contracts.fields import ErrorType
from contracts.topology import (
    ERROR_MESSAGE_MAX_CHARS,
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORDERING_KEY,
    HEADER_ORIGINAL_ROUTING_KEY,
    delay_queue_name,
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
    replays_so_far,
)
from worker.messaging.incoming import Incoming
from worker.messaging.ordering import KeyedSequencer
from worker.observability.metrics import Metrics
from worker.observability.tracing import delivery_context, handling_span
from worker.ports import Publisher

log = structlog.get_logger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before returning a delivery we could not settle (avoids a hot loop)."""
IN_PLACE_MAX_WAIT = 2.0
"""The longest pause between two in-place retries of a transient failure."""


def to_delivery(message: Incoming) -> Delivery:
    """Copy what the worker needs out of an incoming message."""
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


async def decide(
    bus: CommandBus, policy: RetryPolicy, parsed: Parsed, *, retry_in_place: bool = False
) -> Decision:
    """Run the request through the bus; every exception becomes its fate. Never raises."""
    attempt = attempts_so_far(parsed.delivery.headers) + 1
    if parsed.request is None:
        return policy.invalid(parsed.invalid or "invalid message", attempt)
    try:
        retry = retry_in_place or attempt > 1
        origin = Origin(reply_to=parsed.reply_to, partition=parsed.partition, retry=retry)
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
    headers[HEADER_ERROR_MESSAGE] = failure.message[:ERROR_MESSAGE_MAX_CHARS]
    return headers  # type: ignore[return-value]


class Partition(Protocol):
    """The partition a delivery arrived on, as the consumer needs it."""

    @property
    def index(self) -> int:
        """The partition's number."""
        ...

    def delivery_started(self) -> None:
        """A delivery of this partition is now in flight."""
        ...

    def delivery_settled(self) -> None:
        """A delivery of this partition was settled (acked, or returned to the queue)."""
        ...


class Consumer:
    """Handles deliveries of every partition: bounded concurrency, per-key order, their fate."""

    def __init__(
        self,
        bus: CommandBus,
        publisher: Publisher,
        policy: RetryPolicy,
        *,
        concurrency: int,
        max_body_bytes: int,
        command_queue: str,
        dead_letter_queue: str,
        metrics: Metrics,
        in_place_retries: int = 0,
        in_place_backoff: float = 0.1,
        reply_to_pattern: str | None = None,
    ) -> None:
        self._bus = bus
        self._publisher = publisher
        self._policy = policy
        self._max_body_bytes = max_body_bytes
        self._command_queue = command_queue  # the base of the delay queues' names
        self._dlq = dead_letter_queue
        self._metrics = metrics
        self._in_place = in_place_retries
        self._backoff = in_place_backoff
        self._reply_to = re.compile(reply_to_pattern) if reply_to_pattern else None
        self._slots = asyncio.Semaphore(concurrency)
        self._sequencer = KeyedSequencer()
        self._waiting_retries: Counter[str] = Counter()
        self.in_flight = 0

    async def handle(self, message: Incoming, partition: Partition) -> None:
        """Parse, wait for the key's turn, decide, settle. Never raises."""
        # Everything up to the first await runs in delivery order: claim the turn here.
        parsed = parse(
            to_delivery(message),
            max_body_bytes=self._max_body_bytes,
            partition=partition.index,
            reply_to_pattern=self._reply_to,
        )
        key = parsed.ordering_key
        turn = self._sequencer.claim(key)
        partition.delivery_started()
        self.in_flight += 1
        self._metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            with delivery_context(parsed.delivery.headers):
                await self._in_turn(message, parsed, turn, started)
        finally:
            self.in_flight -= 1
            self._metrics.in_flight.dec()
            partition.delivery_settled()

    async def _in_turn(
        self,
        message: Incoming,
        parsed: Parsed,
        turn: asyncio.Future[None],
        started: float,
    ) -> None:
        """Handle and settle the delivery in its key's turn, in the trace it carries."""
        self._check_key(parsed)
        async with self._sequencer.turn(parsed.ordering_key, turn):
            # One span per delivery; the transaction's and the publishes' spans nest in it,
            # and every message published inside carries its trace context.
            with handling_span(
                f"{parsed.type or 'invalid'} handle", parsed.message_id or ""
            ) as span:
                decision = await self._attempt(parsed)
                async with self._slots:
                    settled = await self._settle(message, parsed, decision)
                span.set_attribute("fca.outcome", outcome_of(decision))
                self._count_overtaking(parsed, decision, settled)
                self._observe(parsed, decision, settled, time.perf_counter() - started)

    async def _attempt(self, parsed: Parsed) -> Decision:
        """Decide, retrying a transient failure in place (holding the key, not a slot)."""
        tries = [0]
        first = await self._decide_in_a_slot(parsed, tries)
        if self._in_place == 0 or not _transient_retry(first):
            return first  # nearly every delivery: no retry machinery (measurable per message)
        # The in-place retries, waiting backoff, 2 x backoff, 4 x backoff … (at most
        # IN_PLACE_MAX_WAIT) before each: the first wait here, the rest tenacity's.
        self._metrics.in_place_retries.inc()
        await asyncio.sleep(min(self._backoff, IN_PLACE_MAX_WAIT))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._in_place),
            wait=wait_exponential(multiplier=self._backoff * 2, max=IN_PLACE_MAX_WAIT),
            retry=retry_if_result(_transient_retry),
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
            before_sleep=lambda _: self._metrics.in_place_retries.inc(),
        )
        decision: Decision = await retrying(self._decide_in_a_slot, parsed, tries)
        return decision

    async def _decide_in_a_slot(self, parsed: Parsed, tries: list[int]) -> Decision:
        tries[0] += 1
        async with self._slots:
            return await decide(self._bus, self._policy, parsed, retry_in_place=tries[0] > 1)

    def _check_key(self, parsed: Parsed) -> None:
        """Count deliveries without the ordering-key header, or with one that disagrees; and
        those naming a ``reply_to`` the rule refuses (they are processed, but not answered)."""
        if parsed.reply_refused:
            self._metrics.replies_refused.inc()
            log.warning("message.reply_to_refused", message_id=parsed.message_id)
        header = parsed.delivery.headers.get(HEADER_ORDERING_KEY)
        if header is None:
            self._metrics.unkeyed.inc()
        elif parsed.request is not None and not _agrees(str(header), parsed):
            self._metrics.key_mismatches.inc()
            log.warning("message.ordering_key_mismatch", message_id=parsed.message_id)

    def _count_overtaking(self, parsed: Parsed, decision: Decision, settled: bool) -> None:
        """Count commands applied while an earlier one of their key waits in a delay queue."""
        key = parsed.ordering_key
        if key is None:
            return
        if attempts_so_far(parsed.delivery.headers) > 0 and self._waiting_retries[key] > 0:
            self._waiting_retries[key] -= 1  # a retry came back
        elif isinstance(decision, Ack) and self._waiting_retries[key] > 0:
            self._metrics.overtaken.inc()
        if settled and isinstance(decision, Retry):
            self._waiting_retries[key] += 1
        if self._waiting_retries[key] <= 0:
            del self._waiting_retries[key]

    async def _settle(self, message: Incoming, parsed: Parsed, decision: Decision) -> bool:
        """Carry out the decision and ack; ``False`` if the delivery went back to the queue."""
        delivery = parsed.delivery
        try:
            copy = replace(delivery, message_id=parsed.copy_id)  # never a new id
            if isinstance(decision, Retry):
                await self._publisher.to_queue(
                    delay_queue_name(decision.delay, self._command_queue),
                    copy,
                    failure_headers(delivery, decision.failure),
                    expiration_ms=self._policy.expiration_ms(decision.delay),
                )
            elif isinstance(decision, DeadLetter):
                await self._publisher.to_queue(
                    self._dlq, copy, failure_headers(delivery, decision.failure)
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
        """Report a dead letter through the outbox; if the database is down, publish it directly.

        Only if neither works does this raise: the delivery then goes back to the queue (and
        may be copied to the DLQ a second time; the DLQ tool names both by the same id).
        """
        request = parsed.request
        report = dead_lettered(
            parsed.message_id,
            parsed.type,
            parsed.delivery.body,
            failure,
            replays=replays_so_far(parsed.delivery.headers),
            correlation_id=request.correlation_id if request is not None else None,
            actor=request.actor if request is not None else None,
        )
        origin = Origin(reply_to=parsed.reply_to, partition=parsed.partition)
        try:
            await self._bus.report_dead_letter(report, origin)
        except Exception as exc:
            log.warning("dead_letter.report_direct", error=type(exc).__name__)
            event = new_event(report, reply_to=origin.reply_to, partition=origin.partition)
            await self._publisher.publish_events([event])

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


def _transient_retry(decision: Decision) -> bool:
    return isinstance(decision, Retry) and decision.failure.error_type is ErrorType.TRANSIENT


def _agrees(header: str, parsed: Parsed) -> bool:
    key = parsed.ordering_key
    # A publisher may key a keyless message by its bare id; both spellings agree.
    return header == key or (key == f"message_id:{parsed.message_id}" and header == key[11:])


def _action(decision: Decision) -> str:
    if isinstance(decision, Retry):
        return "retry"
    return "dead_letter" if isinstance(decision, DeadLetter) else "ack"
