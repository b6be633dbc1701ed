"""A dead letter as the operator sees it, and which dead letters a command selects.

A dead letter is named by its envelope's ``message_id`` (contract, guarantee 5), read from
the body the way the worker reads it; only when the body has none that fits the contract
does the AMQP ``message_id`` property name it, and only when neither exists the body's
digest (``sha256:<hex>``, what the worker puts on such a copy). The property alone is not
trusted: a publisher may not have set it, and an older worker's copy then carried a random
one. The type follows the same rule. Every command (list, show, selection, replay, purge,
the audit log) uses this one name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from contracts import body_digest_id
from contracts.fields import MessageId, TypeName
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
    HEADER_REPLAY_COUNT,
)
from worker.dlq.groups import group_of
from worker.dlq.headers import BrokerDeath, broker_death, instant, integer, peek, text

UNKNOWN_ERROR_TYPE = "unknown"
"""Error type of a message with neither our ``fca-`` record nor the broker's ``x-death``."""

_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)
_TYPE_NAME: TypeAdapter[str] = TypeAdapter(TypeName)


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
    message_id: str
    id_source: str
    type: str | None
    error_type: str
    error_message: str
    attempts: int | None
    first_failed_at: str | None
    last_failed_at: str | None
    dead_since: datetime | None
    original_routing_key: str | None
    replay_count: int
    group: str
    fingerprint: str

    @property
    def routing_key(self) -> str | None:
        """Where a replay is published: the original routing key, else the type."""
        return self.original_routing_key or self.type

    def summary(self) -> dict[str, object]:
        """The listed fields as JSON-friendly data (no body)."""
        return {
            "position": self.position,
            "message_id": self.message_id,
            "id_source": self.id_source,
            "type": self.type,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "group": self.group,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
            "dead_since": self.dead_since.isoformat() if self.dead_since else None,
            "original_routing_key": self.original_routing_key,
            "replay_count": self.replay_count,
        }


def parse_dead_letter(
    position: int, body: bytes, headers: Mapping[str, object], properties: Mapping[str, object]
) -> DeadLetter:
    """Describe a dead letter from its parts; never raises on odd headers or bodies."""
    envelope = peek(body)
    death = broker_death(headers)
    message_id, id_source = _name(body, envelope, properties)
    message_type = _valid(_TYPE_NAME, envelope.get("type")) or _valid(
        _TYPE_NAME, text(properties.get("type"))
    )
    error_type = _error_type(headers, death)
    error_message = _error_message(headers, death)
    group, fingerprint = group_of(message_type, error_type, error_message)
    return DeadLetter(
        position=position,
        body=body,
        headers=headers,
        properties=properties,
        message_id=message_id,
        id_source=id_source,
        type=message_type,
        error_type=error_type,
        error_message=error_message,
        attempts=integer(headers.get(HEADER_ATTEMPTS)),
        first_failed_at=text(headers.get(HEADER_FIRST_FAILED_AT)) or _at(death, first=True),
        last_failed_at=_at(death, first=False) or text(headers.get(HEADER_LAST_FAILED_AT)),
        dead_since=_dead_since(headers, death, properties),
        original_routing_key=text(headers.get(HEADER_ORIGINAL_ROUTING_KEY))
        or (death.routing_key if death else None),
        replay_count=integer(headers.get(HEADER_REPLAY_COUNT)) or 0,
        group=group,
        fingerprint=fingerprint,
    )


def _name(
    body: bytes, envelope: Mapping[str, object], properties: Mapping[str, object]
) -> tuple[str, str]:
    if found := _valid(_MESSAGE_ID, envelope.get("message_id")):
        return found, "envelope"
    if found := _valid(_MESSAGE_ID, text(properties.get("message_id"))):
        return found, "property"
    return body_digest_id(body), "digest"


def _valid(adapter: TypeAdapter[str], value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


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


def _dead_since(
    headers: Mapping[str, object], death: BrokerDeath | None, properties: Mapping[str, object]
) -> datetime | None:
    # The first failure we know of: ours, else the broker's, else when it was published.
    return (
        instant(headers.get(HEADER_FIRST_FAILED_AT))
        or instant(death.first_at if death else None)
        or instant(properties.get("timestamp"))
    )


@dataclass(frozen=True, slots=True)
class Selector:
    """Which dead letters a command acts on: every criterion given must hold.

    ``Selector()`` selects everything (``--all``); ``message_ids`` may name several.
    """

    message_ids: frozenset[str] = field(default_factory=frozenset)
    type: str | None = None
    error_type: str | None = None
    group: str | None = None

    @classmethod
    def of(
        cls,
        *,
        message_ids: Iterable[str] = (),
        type: str | None = None,
        error_type: str | None = None,
        group: str | None = None,
    ) -> Selector:
        """Build a selector from command-line style options."""
        return cls(frozenset(message_ids), type or None, error_type or None, group or None)

    @property
    def selects_all(self) -> bool:
        """Whether no criterion is given."""
        criteria = (self.type, self.error_type, self.group)
        return not self.message_ids and all(value is None for value in criteria)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        return (
            (not self.message_ids or letter.message_id in self.message_ids)
            and (self.type is None or letter.type == self.type)
            and (self.error_type is None or letter.error_type == self.error_type)
            and (self.group is None or letter.group == self.group)
        )

    def describe(self) -> dict[str, object]:
        """The criteria as JSON-friendly data (for the audit log)."""
        return {
            "all": self.selects_all,
            "message_ids": sorted(self.message_ids),
            "type": self.type,
            "error_type": self.error_type,
            "group": self.group,
        }
