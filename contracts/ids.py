"""Deterministic event ids and a constructor that fills an event's envelope.

An event's ``message_id`` is derived from the command's ``message_id``, its own type and its
position among the command's events, so a redelivered or replayed command can never produce
the same outcome under a new event id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from contracts.base import EventEnvelope
from contracts.registry import type_name

__all__ = ["EVENT_ID_NAMESPACE", "body_digest_id", "event_id", "make_event"]

EVENT_ID_NAMESPACE = uuid.UUID("baed840f-3ead-57b2-863f-bc8a6358e074")
"""Namespace of event ids (``uuid5(NAMESPACE_URL, "urn:fca-worker:event-id")``); never change."""

EventT = TypeVar("EventT", bound=EventEnvelope)


def event_id(command_message_id: str, event_type: str, index: int = 0) -> str:
    """The id of the ``index``-th ``event_type`` event caused by a command."""
    if index < 0:
        raise ValueError("index must not be negative")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_message_id}:{event_type}:{index}"))


def body_digest_id(body: bytes) -> str:
    """A stand-in message id for a body whose own id could not be read: its SHA-256."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def make_event(
    event_cls: type[EventT],
    *,
    command_message_id: str,
    correlation_id: str | None,
    payload: BaseModel | Mapping[str, Any],
    index: int = 0,
    occurred_at: datetime | None = None,
    actor: str | None = None,
) -> EventT:
    """Build an event caused by a command, with a deterministic id, validated.

    ``correlation_id`` falls back to the command's message id, ``occurred_at`` to now (UTC);
    pass the command's ``actor`` so the event names who asked for it (None: no actor).
    """
    name = type_name(event_cls)
    return event_cls.model_validate(
        {
            "message_id": event_id(command_message_id, name, index),
            "type": name,
            "version": event_cls.schema_version,
            "correlation_id": command_message_id if correlation_id is None else correlation_id,
            "causation_id": command_message_id,
            "occurred_at": datetime.now(UTC) if occurred_at is None else occurred_at,
            "actor": actor,
            "payload": payload,
        }
    )
