"""An incoming message as the worker sees it, and its parsing into a request (never raises).

Parsing checks the size first (a body over the limit is never parsed), then reads the
envelope strictly (:func:`contracts.parse_message`). A body that cannot be read still gets
the best ``message_id`` and ``type`` we can find, for the dead letter and its report: the
envelope's when they could be read, else the AMQP properties when they have the contract's
shape, else none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from contracts import (
    InvalidMessage,
    MessageId,
    QueryEnvelope,
    RequestEnvelope,
    TypeName,
    body_digest_id,
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
    reply_to: str | None = None
    """Where to answer: the delivery's ``reply_to`` if the reply-to rule allows it."""
    reply_refused: bool = False
    """The delivery named a ``reply_to`` the rule refuses (it gets no answer)."""

    @property
    def copy_id(self) -> str:
        """The AMQP ``message_id`` of a copy we make (a retry, a dead letter): the envelope's
        id, else the AMQP property's, else the body's digest; never a new one."""
        return self.message_id or body_digest_id(self.delivery.body)

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


def parse(
    delivery: Delivery,
    *,
    max_body_bytes: int,
    partition: int | None = None,
    reply_to_pattern: re.Pattern[str] | None = None,
) -> Parsed:
    """Size check, the reply-to rule, then strict parsing; never raises."""
    reply_to = delivery.reply_to or None
    refused = bool(reply_to and reply_to_pattern and not reply_to_pattern.match(reply_to))
    answer_to = None if refused else reply_to

    def parsed(
        request: RequestEnvelope | None,
        invalid: str | None,
        message_id: str | None,
        type_: str | None,
    ) -> Parsed:
        return Parsed(delivery, request, invalid, message_id, type_, partition, answer_to, refused)

    size = len(delivery.body)
    if size > max_body_bytes:
        reason = f"body of {size} bytes exceeds the {max_body_bytes}-byte limit"
        message_type = _valid(_TYPE_NAME, delivery.type)
        return parsed(None, reason, _valid(_MESSAGE_ID, delivery.message_id), message_type)
    try:
        request = parse_message(delivery.body)
    except InvalidMessage as exc:
        message_id = exc.message_id or _valid(_MESSAGE_ID, delivery.message_id)
        return parsed(None, str(exc), message_id, exc.type or _valid(_TYPE_NAME, delivery.type))
    if isinstance(request, QueryEnvelope) and answer_to is None:
        reason = "a query must carry the AMQP reply_to property (naming a reply queue)"
        return parsed(None, reason, request.message_id, request.type)
    return parsed(request, None, request.message_id, request.type)
