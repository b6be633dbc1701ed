"""The retry policy: how many attempts each kind of failure gets, and the back-off."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts.topology import HEADER_ATTEMPTS
from worker.classify import Outcome

UNEXPECTED_ATTEMPTS = 3
"""Unexpected errors are probably bugs: a few tries, then the DLQ."""

JITTER = 0.1

MAX_RECORDED_ATTEMPTS = 10_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt limits and the delay schedule (``WORKER_MAX_ATTEMPTS``, ``WORKER_RETRY_DELAYS``)."""

    max_attempts: int
    delays: Sequence[int]

    def attempts_allowed(self, outcome: Outcome) -> int:
        """Total attempts (the first one included) before dead-lettering."""
        if outcome is Outcome.TRANSIENT:
            return self.max_attempts
        if outcome is Outcome.UNEXPECTED:
            return min(self.max_attempts, UNEXPECTED_ATTEMPTS)
        return 1

    def should_retry(self, outcome: Outcome, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based, just failed) gets another try."""
        return attempt < self.attempts_allowed(outcome)

    def delay_for(self, attempt: int) -> int:
        """Seconds to wait after failed attempt ``attempt``: the schedule, then its last."""
        return self.delays[min(attempt, len(self.delays)) - 1]

    def expiration_ms(self, delay: int, rng: random.Random | None = None) -> int:
        """The per-message TTL in the delay queue: ``delay`` with ±10% jitter, so that
        many commands failing together do not all come back in the same instant."""
        factor = 1 + (rng or random).uniform(-JITTER, JITTER)
        return max(1, round(delay * 1000 * factor))


def attempts_so_far(headers: Mapping[str, object]) -> int:
    """Failed attempts recorded on the message in our own ``fca-attempts`` header."""
    value = headers.get(HEADER_ATTEMPTS, 0)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        count = int(str(value))
    except ValueError:
        return 0
    # Anyone can set this header: keep it a count the broker can carry (a signed 32-bit
    # integer) while still far above any configured number of attempts.
    return min(max(0, count), MAX_RECORDED_ATTEMPTS)
