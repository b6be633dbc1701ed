"""The replay window: how old a dead letter may be and still be replayed safely.

The worker remembers a handled message id for ``WORKER_INBOX_RETENTION_DAYS``; a replay
after that could apply a command a second time (one that was applied before, by a copy
replayed earlier or by a run killed between its confirm and its ack). So ``worker dlq
replay`` refuses a dead letter older than ``WORKER_DLQ_REPLAY_WINDOW_DAYS`` (default 14,
checked at start-up to end a day before the inbox forgets). Its age counts from its first
failure: ``fca-first-failed-at``, else the broker's ``x-death`` time, else the message's
timestamp; a dead letter with none of them has no known age and is refused too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.dlq.model import DeadLetter
    from worker.settings import Settings

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """Dead letters whose first failure is at most ``days`` before ``now`` may be replayed."""

    days: float
    now: datetime

    @classmethod
    def of(cls, settings: Settings, now: datetime | None = None) -> ReplayWindow:
        """The window the settings give, measured from ``now`` (default: this moment)."""
        return cls(settings.dlq_replay_window_days, now or datetime.now(UTC))

    @property
    def span(self) -> timedelta:
        """The window's length."""
        return timedelta(days=self.days)

    def age(self, letter: DeadLetter) -> timedelta | None:
        """Time since the letter's first failure (``None`` when it cannot be told)."""
        if letter.dead_since is None:
            return None
        return max(self.now - letter.dead_since, timedelta(0))

    def refusal(self, letter: DeadLetter) -> str | None:
        """Why ``letter`` must not be replayed now, or ``None`` if it may be."""
        age = self.age(letter)
        if age is None:
            return (
                "age unknown (no fca-first-failed-at, x-death time or timestamp): "
                "cannot tell it is inside the replay window"
            )
        if age > self.span:
            return (
                f"first failed {days(age)} days ago, beyond the {self.days:g}-day replay window "
                "(WORKER_DLQ_REPLAY_WINDOW_DAYS): the worker may have forgotten it applied it"
            )
        return None

    def describe(self, letter: DeadLetter) -> dict[str, object]:
        """Age and replayability as JSON-friendly data."""
        age = self.age(letter)
        until = letter.dead_since + self.span if letter.dead_since else None
        return {
            "age_days": None if age is None else round(age.total_seconds() / SECONDS_PER_DAY, 3),
            "replayable": self.refusal(letter) is None,
            "replayable_until": until.isoformat() if until else None,
        }


def days(age: timedelta) -> str:
    """An age in days with one decimal, e.g. ``15.2``."""
    return f"{age.total_seconds() / SECONDS_PER_DAY:.1f}"


def age_text(age: timedelta | None) -> str:
    """An age for a table: ``3d 4h``, ``5h 12m``, ``7m``, ``<1m``, or ``-`` if unknown."""
    if age is None:
        return "-"
    minutes = int(age.total_seconds() // 60)
    hours, minute = divmod(minutes, 60)
    day, hour = divmod(hours, 24)
    if day:
        return f"{day}d {hour}h"
    if hour:
        return f"{hour}h {minute}m"
    return f"{minute}m" if minute else "<1m"
