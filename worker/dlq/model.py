"""A dead letter as the operator sees it, and which dead letters a command selects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
    HEADER_REPLAY_COUNT,
)
from worker.dlq.headers import BrokerDeath, broker_death, integer, peek, text

UNKNOWN_ERROR_TYPE = "unknown"
"""Error type of a message with neither our ``fca-`` record nor the broker's ``x-death``."""


class Progress(Protocol):
    """Receives progress of a pass over the DLQ (a progress bar, say)."""

    def start(self, total: int) -> None:
        """The pass will look at up to ``total`` messages."""

    def advance(self, count: int) -> None:
        """``count`` more messages were looked at."""

    def finish(self) -> None:
        """The pass is over."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in the DLQ: its raw body, headers and properties, and what they say."""

    position: int
    body: bytes
    headers: Mapping[str, object]
    properties: Mapping[str, object]
    message_id: str | None
    type: str | None
    error_type: str
    error_message: str
    attempts: int | None
    first_failed_at: str | None
    last_failed_at: str | None
    original_routing_key: str | None
    replay_count: int

    @property
    def routing_key(self) -> str | None:
        """Where a replay is published: the original routing key, else the type."""
        return self.original_routing_key or self.type

    def summary(self) -> dict[str, object]:
        """The listed fields as JSON-friendly data (no body)."""
        return {
            "position": self.position,
            "message_id": self.message_id,
            "type": self.type,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
            "original_routing_key": self.original_routing_key,
            "replay_count": self.replay_count,
        }


def parse_dead_letter(
    position: int, body: bytes, headers: Mapping[str, object], properties: Mapping[str, object]
) -> DeadLetter:
    """Describe a dead letter from its parts; never raises on odd headers or bodies."""
    envelope = peek(body)
    death = broker_death(headers)
    return DeadLetter(
        position=position,
        body=body,
        headers=headers,
        properties=properties,
        message_id=text(properties.get("message_id")) or text(envelope.get("message_id")),
        type=text(properties.get("type")) or text(envelope.get("type")),
        error_type=_error_type(headers, death),
        error_message=_error_message(headers, death),
        attempts=integer(headers.get(HEADER_ATTEMPTS)),
        first_failed_at=text(headers.get(HEADER_FIRST_FAILED_AT)) or _at(death, first=True),
        last_failed_at=_at(death, first=False) or text(headers.get(HEADER_LAST_FAILED_AT)),
        original_routing_key=text(headers.get(HEADER_ORIGINAL_ROUTING_KEY))
        or (death.routing_key if death else None),
        replay_count=integer(headers.get(HEADER_REPLAY_COUNT)) or 0,
    )


def _error_type(headers: Mapping[str, object], death: BrokerDeath | None) -> str:
    if death is not None:
        return death.reason
    return text(headers.get(HEADER_ERROR_TYPE)) or UNKNOWN_ERROR_TYPE


def _error_message(headers: Mapping[str, object], death: BrokerDeath | None) -> str:
    if death is not None:
        where = f" in queue {death.queue}" if death.queue else ""
        return f"dead-lettered by the broker ({death.reason}){where}"
    return text(headers.get(HEADER_ERROR_MESSAGE)) or ""


def _at(death: BrokerDeath | None, *, first: bool) -> str | None:
    if death is None:
        return None
    return death.first_at if first else death.last_at


@dataclass(frozen=True, slots=True)
class Selector:
    """Which dead letters a command acts on: every criterion given must hold.

    ``Selector()`` selects everything (``--all``); ``message_ids`` may name several.
    """

    message_ids: frozenset[str] = field(default_factory=frozenset)
    type: str | None = None
    error_type: str | None = None

    @classmethod
    def of(
        cls,
        *,
        message_ids: Iterable[str] = (),
        type: str | None = None,
        error_type: str | None = None,
    ) -> Selector:
        """Build a selector from command-line style options."""
        return cls(frozenset(message_ids), type or None, error_type or None)

    @property
    def selects_all(self) -> bool:
        """Whether no criterion is given."""
        return not self.message_ids and self.type is None and self.error_type is None

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        return (
            (not self.message_ids or letter.message_id in self.message_ids)
            and (self.type is None or letter.type == self.type)
            and (self.error_type is None or letter.error_type == self.error_type)
        )

    def describe(self) -> dict[str, object]:
        """The criteria as JSON-friendly data (for the audit log)."""
        return {
            "all": self.selects_all,
            "message_ids": sorted(self.message_ids),
            "type": self.type,
            "error_type": self.error_type,
        }
