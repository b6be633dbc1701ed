"""An incoming message as the worker sees it, and its parsing into a request (never raises).

Parsing checks the size first (a body over the limit is never parsed), then reads the
envelope strictly (:func:`contracts.parse_message`). A body that cannot be read still gets
the best ``message_id`` and ``type`` we can find, for the dead letter and its report: the
envelope's when they could be read, else the AMQP properties when they have the contract's
shape, else none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from contracts import (
    InvalidMessage,
    MessageId,
    QueryEnvelope,
    RequestEnvelope,
    TypeName,
    ordering_key,
    parse_message,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An incoming message, free of aio-pika types."""

    body: bytes
    routing_key: str
    headers: Mapping[str, object] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    content_type: str | None = None
    type: str | None = None
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class Parsed:
    """A delivery after parsing: the request, or why it could not be read."""

    delivery: Delivery
    request: RequestEnvelope | None
    invalid: str | None = None
    message_id: str | None = None
    type: str | None = None
    partition: int | None = None

    @property
    def ordering_key(self) -> str | None:
        """Requests with the same key run one after another, in delivery order."""
        return ordering_key(self.request) if self.request is not None else None

    @property
    def correlation_id(self) -> str | None:
        """The envelope's correlation id (where the contract puts it), else the property's."""
        if self.request is not None and self.request.correlation_id is not None:
            return self.request.correlation_id
        return self.delivery.correlation_id


# The AMQP message_id/type properties are only a fallback for unreadable bodies, and as
# free as the body itself: use them only when they have the contract's shape.
_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)
_TYPE_NAME: TypeAdapter[str] = TypeAdapter(TypeName)


def _valid(adapter: TypeAdapter[str], value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def parse(delivery: Delivery, *, max_body_bytes: int, partition: int | None = None) -> Parsed:
    """Size check, then strict parsing; never raises."""
    size = len(delivery.body)
    if size > max_body_bytes:
        reason = f"body of {size} bytes exceeds the {max_body_bytes}-byte limit"
        message_id = _valid(_MESSAGE_ID, delivery.message_id)
        message_type = _valid(_TYPE_NAME, delivery.type)
        return Parsed(delivery, None, reason, message_id, message_type, partition)
    try:
        request = parse_message(delivery.body)
    except InvalidMessage as exc:
        message_id = exc.message_id or _valid(_MESSAGE_ID, delivery.message_id)
        message_type = exc.type or _valid(_TYPE_NAME, delivery.type)
        return Parsed(delivery, None, str(exc), message_id, message_type, partition)
    if isinstance(request, QueryEnvelope) and not delivery.reply_to:
        reason = "a query must carry the AMQP reply_to property"
        return Parsed(delivery, None, reason, request.message_id, request.type, partition)
    return Parsed(delivery, request, None, request.message_id, request.type, partition)
