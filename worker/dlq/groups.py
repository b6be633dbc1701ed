"""Dead-letter groups: the same failure of the same command type, counted once.

A group is the dead letters that share a command type, an error type and the fingerprint of
the error message. The fingerprint hashes the message with what varies from one message to
the next replaced by placeholders (times by ``<time>``, UUIDs by ``<uuid>``, hex strings of
8 or more digits mixing letters and digits by ``<hex>``, other numbers by ``<n>``), so
``timeout after 30s on p03`` and ``timeout after 31s on p11`` fall in one group. Group ids
(12 hex digits) depend only on those three values: the same dead letters get the same ids
in every run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from worker.dlq.headers import instant

if TYPE_CHECKING:
    from worker.dlq.model import DeadLetter
    from worker.dlq.window import ReplayWindow

ID_LENGTH = 12
"""Hex digits of a group id and of a fingerprint."""

_PLACEHOLDERS = (
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
            re.IGNORECASE,
        ),
        "<time>",
    ),
    (re.compile(r"\b[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\b", re.IGNORECASE), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)*"), "<n>"),
)


def pattern(error_message: str) -> str:
    """The error message with times, ids and numbers replaced by placeholders, on one line."""
    shown = " ".join(error_message.split())
    for regex, placeholder in _PLACEHOLDERS:
        shown = regex.sub(placeholder, shown)
    return shown


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:ID_LENGTH]


def group_of(message_type: str | None, error_type: str, error_message: str) -> tuple[str, str]:
    """The group id and the error's fingerprint of a dead letter with these facts."""
    fingerprint = _digest(pattern(error_message))
    return _digest(message_type or "", error_type, fingerprint), fingerprint


@dataclass(slots=True)
class Group:
    """Dead letters of one command type, error type and error fingerprint."""

    id: str
    type: str | None
    error_type: str
    fingerprint: str
    pattern: str
    example: str
    count: int = 0
    replayable: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def add(self, letter: DeadLetter, replayable: bool) -> None:
        """Count one more dead letter of this group."""
        self.count += 1
        self.replayable += replayable
        first = instant(letter.first_failed_at) or letter.dead_since
        last = instant(letter.last_failed_at) or first
        if first is not None and (self.first_seen is None or first < self.first_seen):
            self.first_seen = first
        if last is not None and (self.last_seen is None or last > self.last_seen):
            self.last_seen = last

    def summary(self) -> dict[str, object]:
        """The group as JSON-friendly data."""
        return {
            "group": self.id,
            "type": self.type,
            "error_type": self.error_type,
            "fingerprint": self.fingerprint,
            "error": self.pattern,
            "count": self.count,
            "replayable": self.replayable,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "example_message_id": self.example,
        }


class Tally:
    """Sorts dead letters into groups as a pass sees them, keeping no bodies."""

    def __init__(self, window: ReplayWindow) -> None:
        self._window = window
        self._groups: dict[str, Group] = {}

    def add(self, letter: DeadLetter) -> None:
        """Count ``letter`` in its group."""
        group = self._groups.get(letter.group)
        if group is None:
            group = Group(
                letter.group,
                letter.type,
                letter.error_type,
                letter.fingerprint,
                pattern(letter.error_message),
                letter.message_id,
            )
            self._groups[letter.group] = group
        group.add(letter, self._window.refusal(letter) is None)

    def groups(self) -> list[Group]:
        """The groups, largest first (ties: the one seen first first)."""
        return sorted(self._groups.values(), key=lambda g: -g.count)
