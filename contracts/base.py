"""Envelope bases, and the declarations every concrete message class must make.

::

    ContractModel                 frozen, unknown fields rejected, inputs hidden in errors
    ├── Payload                   the ``payload`` of a message
    │   └── ResultPayload         the ``payload`` of a QueryResult; + example (ClassVar)
    └── MessageEnvelope           message_id, type, version; + example (ClassVar)
        ├── RequestEnvelope       + correlation_id?, occurred_at?, actor?, payload
        │   ├── CommandEnvelope   + events, ordering_fields, rejections (ClassVars)
        │   └── QueryEnvelope     + result, rejections (ClassVars)
        └── EventEnvelope         + correlation_id, causation_id, occurred_at, actor?, payload
            └── RoutedEvent       + routing_key (ClassVar): published to ``fca.events``

A class is *concrete* when it pins ``type`` to a literal. A concrete class that does not
declare (on itself) every ClassVar its kind needs fails at import time with a TypeError, so
the registry, the examples, the schemas and the documentation can all be derived from it.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    field_validator,
    model_serializer,
)

from contracts.fields import Actor, CorrelationId, MessageId, Timestamp

__all__ = [
    "CommandEnvelope",
    "ContractModel",
    "EventEnvelope",
    "MessageEnvelope",
    "Payload",
    "QueryEnvelope",
    "RequestEnvelope",
    "ResultPayload",
    "RoutedEvent",
    "declared_type",
]

_ACTOR = "Who asked for this request, e.g. agent:4711 (since contract v2); its events copy it."
_EVENT_ACTOR = "The actor of the request that caused this (since contract v2); absent if none."
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_ROUTING_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


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


class ResultPayload(Payload):
    """Base of the payload answering one query type; ``example`` omits ``query_type``."""

    example: ClassVar[dict[str, Any]]
    """A valid example of this payload without ``query_type`` (added from the query)."""

    query_type: str = Field(description="The query answered.")


def declared_type(cls: type[BaseModel]) -> str | None:
    """The wire ``type`` a concrete message class pins, or None for an abstract base."""
    field = cls.model_fields.get("type")
    default = field.default if field is not None else None
    return default if isinstance(default, str) else None


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
    example: ClassVar[dict[str, Any]]
    """A valid example ``payload`` of this message type, as it appears on the wire."""

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

    @model_serializer(mode="wrap")
    def _omit_absent_actor(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave ``actor`` out when there is none, so v1 readers see v1 bodies."""
        data = handler(self)
        if isinstance(data, dict) and "actor" in data and data["actor"] is None:
            del data["actor"]
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Check the declarations of every concrete message class as it is defined."""
        super().__pydantic_init_subclass__(**kwargs)
        if declared_type(cls) is not None:
            _check_declarations(cls)


class RequestEnvelope(MessageEnvelope):
    """The envelope of an incoming command or query."""

    rejections: ClassVar[tuple[str, ...]]
    """The ``reason`` codes of the CommandRejected this request may be answered with."""

    correlation_id: CorrelationId | None = Field(
        default=None,
        description="Ties related messages together; events inherit it (else the message_id).",
    )
    occurred_at: Timestamp | None = Field(
        default=None, description="When the sender created the message (RFC 3339, with offset)."
    )
    actor: Actor | None = Field(default=None, description=_ACTOR)
    payload: Payload = Field(description="The message's fields.")


class EventEnvelope(MessageEnvelope):
    """The envelope of an outgoing message: an event, a rejection or a query result."""

    correlation_id: CorrelationId = Field(
        description="The command's correlation_id, or its message_id when it had none."
    )
    causation_id: MessageId = Field(description="The message_id of the command that caused this.")
    occurred_at: Timestamp = Field(description="When the outcome was committed (RFC 3339).")
    actor: Actor | None = Field(default=None, description=_EVENT_ACTOR)
    payload: Payload = Field(description="The message's fields.")


class RoutedEvent(EventEnvelope):
    """An event published to ``fca.events`` under its ``routing_key``."""

    routing_key: ClassVar[str]
    """The routing key this event is published under on ``fca.events``."""


class CommandEnvelope(RequestEnvelope):
    """A request to change state, published to ``fca.commands`` with its type as routing key."""

    events: ClassVar[tuple[type[RoutedEvent], ...]]
    """The events a success produces, in the order they are emitted."""
    ordering_fields: ClassVar[tuple[str, ...]]
    """Payload fields making up the ordering key, by priority; empty: keyed by message_id."""


class QueryEnvelope(RequestEnvelope):
    """A read-only request; it must carry the AMQP ``reply_to`` property."""

    result: ClassVar[type[ResultPayload]]
    """The QueryResult payload class that answers this query."""


def _required(cls: type[MessageEnvelope]) -> tuple[str, ...]:
    if issubclass(cls, CommandEnvelope):
        return ("events", "ordering_fields", "rejections", "example")
    if issubclass(cls, QueryEnvelope):
        return ("result", "rejections", "example")
    if issubclass(cls, RoutedEvent):
        return ("routing_key", "example")
    return ("example",)


def _check_declarations(cls: type[MessageEnvelope]) -> None:
    """Raise TypeError naming the class and attribute of a missing or malformed declaration."""
    for name in _required(cls):
        if name not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must declare the ClassVar {name!r}")
    problem = _problem(cls)
    if problem is not None:
        raise TypeError(f"{cls.__name__}.{problem}")


def _problem(cls: type[MessageEnvelope]) -> str | None:
    """What is wrong with a concrete class's declarations, or None."""
    if not isinstance(cls.example, dict):
        return "example must be a dict (the example payload)"
    if issubclass(cls, RequestEnvelope) and not _codes(cls.rejections):
        return "rejections must be a tuple of lower_snake_case reason codes"
    if issubclass(cls, RoutedEvent) and not (
        isinstance(cls.routing_key, str) and _ROUTING_KEY.match(cls.routing_key)
    ):
        return "routing_key must be a dotted lower-case name such as 'customer.created'"
    if issubclass(cls, CommandEnvelope):
        return _command_problem(cls)
    if issubclass(cls, QueryEnvelope):
        return _query_problem(cls)
    return None


def _codes(codes: object) -> bool:
    return isinstance(codes, tuple) and all(
        isinstance(code, str) and _CODE.match(code) for code in codes
    )


def _command_problem(cls: type[CommandEnvelope]) -> str | None:
    events = cls.events
    if not (
        isinstance(events, tuple)
        and events
        and all(isinstance(e, type) and issubclass(e, RoutedEvent) for e in events)
    ):
        return "events must be a non-empty tuple of RoutedEvent classes"
    fields = cls.ordering_fields
    known = _payload_fields(cls)
    if not isinstance(fields, tuple) or len(set(fields)) != len(fields):
        return "ordering_fields must be a tuple of distinct payload field names"
    unknown = [name for name in fields if name not in known]
    if unknown:
        return f"ordering_fields names fields its payload does not have: {unknown}"
    return None


def _payload_fields(cls: type[CommandEnvelope]) -> set[str]:
    payload = cls.model_fields["payload"].annotation
    if isinstance(payload, type) and issubclass(payload, Payload):
        return set(payload.model_fields)
    return set()


def _query_problem(cls: type[QueryEnvelope]) -> str | None:
    result = cls.result
    if not (isinstance(result, type) and issubclass(result, ResultPayload)):
        return "result must be a ResultPayload class"
    if get_args(result.model_fields["query_type"].annotation) != (declared_type(cls),):
        return f"result: {result.__name__}.query_type must be Literal[{declared_type(cls)!r}]"
    if not isinstance(result.__dict__.get("example"), dict):
        return f"result: {result.__name__} must declare the ClassVar 'example' (a dict)"
    return None
