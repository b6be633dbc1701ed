"""Envelope bases: every command, query and event body is one of these JSON objects.

::

    ContractModel                 frozen, unknown fields rejected, inputs hidden in errors
    ├── Payload                   the ``payload`` of a message
    └── MessageEnvelope           message_id, type, version
        ├── RequestEnvelope       + correlation_id?, occurred_at?, payload
        │   ├── CommandEnvelope   one subclass per command (commands.py)
        │   └── QueryEnvelope     one subclass per query (queries.py)
        └── EventEnvelope         + correlation_id, causation_id, occurred_at, payload
            └── RoutedEvent       + routing_key (ClassVar): published to ``fca.events``
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from contracts.fields import CorrelationId, MessageId, Timestamp

__all__ = [
    "CommandEnvelope",
    "ContractModel",
    "EventEnvelope",
    "MessageEnvelope",
    "Payload",
    "QueryEnvelope",
    "RequestEnvelope",
    "RoutedEvent",
]


class ContractModel(BaseModel):
    """Base of every contract model: frozen, strict about unknown fields, no input in errors."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        allow_inf_nan=False,
    )


class Payload(ContractModel):
    """Base of every message payload."""


def _envelope_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Document ``type``/``payload``, require ``type`` and cap ``version`` in the JSON Schema."""
    properties = schema.get("properties", {})
    required = schema.setdefault("required", [])
    if "type" in properties:
        properties["type"].pop("default", None)
        properties["type"]["description"] = "The message type; selects the payload schema."
        if "type" not in required:
            required.insert(min(1, len(required)), "type")
    if "payload" in properties:
        properties["payload"].setdefault("description", "The message's fields.")
    version = getattr(cls, "schema_version", None)
    if "version" in properties and isinstance(version, int):
        properties["version"]["maximum"] = version


class MessageEnvelope(ContractModel):
    """Fields every message carries: its id, its type and the version of its schema."""

    model_config = ConfigDict(json_schema_extra=_envelope_schema)

    schema_version: ClassVar[int] = 1
    """The newest version of this type's schema; bump it on an incompatible change."""

    message_id: MessageId = Field(
        description="Unique id of this message (1..128 chars); the idempotency key."
    )
    type: str = Field(description="The message type; selects the payload schema.")
    version: StrictInt = Field(
        default=1,
        ge=1,
        description="Version of the payload schema (at most the type's current version).",
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version > cls.schema_version:
            raise ValueError(f"version is newer than this contract knows ({cls.schema_version})")
        return version


class RequestEnvelope(MessageEnvelope):
    """The envelope of an incoming command or query."""

    correlation_id: CorrelationId | None = Field(
        default=None,
        description="Ties related messages together; events inherit it (else the message_id).",
    )
    occurred_at: Timestamp | None = Field(
        default=None, description="When the sender created the message (RFC 3339, with offset)."
    )
    payload: Payload = Field(description="The message's fields.")


class CommandEnvelope(RequestEnvelope):
    """A request to change state, published to ``fca.commands`` with its type as routing key."""


class QueryEnvelope(RequestEnvelope):
    """A read-only request; it must carry the AMQP ``reply_to`` property."""


class EventEnvelope(MessageEnvelope):
    """The envelope of an outgoing message: an event, a rejection or a query result."""

    correlation_id: CorrelationId = Field(
        description="The command's correlation_id, or its message_id when it had none."
    )
    causation_id: MessageId = Field(description="The message_id of the command that caused this.")
    occurred_at: Timestamp = Field(description="When the outcome was committed (RFC 3339).")
    payload: Payload = Field(description="The message's fields.")


class RoutedEvent(EventEnvelope):
    """An event published to ``fca.events`` under its ``routing_key``."""

    routing_key: ClassVar[str]
    """The routing key this event is published under on ``fca.events``."""
