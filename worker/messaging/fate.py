"""A delivery's fate, decided in one place: the failure's class, the limits, the decision.

::

    what happened                           decision
    the bus answered (applied, duplicate,   Ack
      rejected, answered)
    invalid message (unreadable, too large, DeadLetter at once, never retried
      bad envelope or payload)
    transient (translated by                Retry(delay) until ``max_attempts``, then DeadLetter
      worker.errors to TransientError)
    anything else: a bug ("unexpected")     Retry(delay) up to ``unexpected_attempts``, then
                                            DeadLetter

The consumer (:mod:`worker.messaging.consumer`) only carries a decision out. Which driver
error counts as transient is :func:`worker.errors.translate`'s table; the attempt count
travels in our own ``fca-attempts`` header. Beyond the worker's decisions the broker has a
last resort: a message that kills the process over and over never gets a decision, so the
input queues dead-letter it after :data:`DELIVERY_LIMIT` deliveries.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contracts.fields import ErrorType
from contracts.topology import HEADER_ATTEMPTS, HEADER_REPLAY_COUNT
from worker.errors import TransientError, translate

UNEXPECTED_ATTEMPTS = 3
"""Unexpected errors are probably bugs: a few tries, then the DLQ."""
JITTER = 0.1
"""A delay queue holds a message for its delay ±10%, so failures do not return in a herd."""
MAX_RECORDED_ATTEMPTS = 10_000
"""Anyone can set ``fca-attempts``: larger values are read as this (a signed 32-bit count)."""
DELIVERY_LIMIT = 20
"""Broker-side: an input queue dead-letters a message delivered this often without an ack
(a crash loop); RabbitMQ 4 applies 20 by default and drops without a dead-letter target."""
DLQ_DELIVERY_LIMIT = 1_000_000_000
"""Effectively none: on RabbitMQ 4.0-4.2 every `worker dlq list` pass counts as a delivery,
and the default limit of 20 would silently drop dead letters (they have nowhere to go)."""

AckOutcome = Literal["applied", "duplicate", "rejected", "answered"]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an attempt failed: the contract's error type and a message free of data."""

    error_type: ErrorType
    message: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledge: the bus answered the delivery (its outcome is committed or sent)."""

    outcome: AckOutcome
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Retry:
    """Park the delivery in the delay queue for ``delay`` seconds, then try again."""

    failure: Failure
    delay: int

    @property
    def attempt(self) -> int:
        """The attempt that failed."""
        return self.failure.attempt


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Move the delivery to the dead-letter queue, with the failure in its headers."""

    failure: Failure

    @property
    def attempt(self) -> int:
        """The attempt that failed."""
        return self.failure.attempt


Decision = Ack | Retry | DeadLetter


def outcome_of(decision: Decision) -> str:
    """The ``outcome`` a decision is logged and counted under."""
    if isinstance(decision, Ack):
        return decision.outcome
    return decision.failure.error_type.value


def classify(exc: BaseException) -> ErrorType:
    """``transient`` for what :func:`worker.errors.translate` calls transient, else ``unexpected``.

    A business rejection never gets here: the bus answers it. One that does is a bug.
    """
    return (
        ErrorType.TRANSIENT if isinstance(translate(exc), TransientError) else ErrorType.UNEXPECTED
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt limits and the back-off (``WORKER_MAX_ATTEMPTS``, ``WORKER_RETRY_DELAYS``)."""

    max_attempts: int
    delays: tuple[int, ...]
    unexpected_attempts: int = UNEXPECTED_ATTEMPTS

    def attempts_allowed(self, error_type: ErrorType) -> int:
        """Total attempts (the first one included) before dead-lettering."""
        if error_type is ErrorType.TRANSIENT:
            return self.max_attempts
        if error_type is ErrorType.UNEXPECTED:
            return min(self.max_attempts, self.unexpected_attempts)
        return 1

    def after_failure(self, exc: BaseException, attempt: int) -> Retry | DeadLetter:
        """The fate of a delivery whose attempt number ``attempt`` (1-based) raised ``exc``."""
        error_type = classify(exc)
        # The class name only: an exception's message may quote customer data.
        failure = Failure(error_type, f"{error_type.value}: {type(exc).__name__}", attempt)
        if attempt < self.attempts_allowed(error_type):
            return Retry(failure, self.delay_for(attempt))
        return DeadLetter(failure)

    def invalid(self, reason: str, attempt: int) -> DeadLetter:
        """The fate of a delivery that is not a valid message: the DLQ at once."""
        return DeadLetter(Failure(ErrorType.INVALID_MESSAGE, reason, attempt))

    def delay_for(self, attempt: int) -> int:
        """Seconds to wait after failed attempt ``attempt``: the schedule, then its last."""
        return self.delays[min(attempt, len(self.delays)) - 1]

    def expiration_ms(self, delay: int, rng: random.Random | None = None) -> int:
        """The per-message TTL in the delay queue: ``delay`` with ±:data:`JITTER`."""
        factor = 1 + (rng or random).uniform(-JITTER, JITTER)
        return max(1, round(delay * 1000 * factor))


def attempts_so_far(headers: Mapping[str, object]) -> int:
    """Failed attempts recorded on the message in our own ``fca-attempts`` header."""
    return _count(headers, HEADER_ATTEMPTS)


def replays_so_far(headers: Mapping[str, object]) -> int:
    """How often the message was replayed from the DLQ (our ``fca-replay-count`` header)."""
    return _count(headers, HEADER_REPLAY_COUNT)


def _count(headers: Mapping[str, object], name: str) -> int:
    value = headers.get(name, 0)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        count = int(str(value))
    except ValueError:
        return 0
    return min(max(0, count), MAX_RECORDED_ATTEMPTS)
