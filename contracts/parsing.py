"""Turning raw bodies into messages and back.

:func:`parse_message` is the one way a consumer reads a command or query; any failure is an
:class:`InvalidMessage` whose text is safe to log and to put in a header: field locations and
pydantic's messages only, never input values (they may hold personal data).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import from_json

from contracts.base import MessageEnvelope
from contracts.fields import MessageId, TypeName
from contracts.registry import Command, Event, Query

__all__ = [
    "MAX_ERROR_MESSAGE_CHARS",
    "InvalidMessage",
    "describe_validation_error",
    "dump_message",
    "parse_event",
    "parse_message",
]

T = TypeVar("T")

MAX_ERROR_MESSAGE_CHARS: Final = 500
_MAX_ERRORS: Final = 5
_MAX_LOC_PART: Final = 64

# Error types whose pydantic message may quote the input: replaced by a fixed text.
_QUOTING_ERRORS: Final = {
    "union_tag_invalid": "unknown message type",
    "union_tag_not_found": "field 'type' is missing",
    "uuid_parsing": "Input should be a valid UUID",
    "url_parsing": "Input should be a valid URL",
    "string_pattern_mismatch": "String has an invalid format",
}


class InvalidMessage(ValueError):
    """A body that is not a valid message: dead-letter it at once, never retry.

    Attributes:
        reason: A description safe to log: locations and messages, no input values.
        message_id: The body's ``message_id`` if it could be read, else None.
        type: The body's ``type`` if it could be read, else None.
    """

    def __init__(
        self, reason: str, *, message_id: str | None = None, type: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        self.type = type


_REQUESTS: TypeAdapter[Command | Query] = TypeAdapter(
    Annotated[Command | Query, Field(discriminator="type")]
)
_EVENTS: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])
_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)
_TYPE_NAME: TypeAdapter[str] = TypeAdapter(TypeName)


def parse_message(body: bytes, *, max_bytes: int | None = None) -> Command | Query:
    """Validate a command or query body (UTF-8 JSON) or raise InvalidMessage."""
    return _parse(_REQUESTS, body, max_bytes)


def parse_event(body: bytes, *, max_bytes: int | None = None) -> Event:
    """Validate an outgoing message body (event, rejection, query result) or raise."""
    return _parse(_EVENTS, body, max_bytes)


def dump_message(message: MessageEnvelope) -> bytes:
    """Serialise a message as compact UTF-8 JSON, nulls included, Decimals as strings."""
    return message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_none=False)


def _parse(adapter: TypeAdapter[T], body: bytes, max_bytes: int | None) -> T:
    if max_bytes is not None and len(body) > max_bytes:
        raise InvalidMessage(f"body of {len(body)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"body is not valid UTF-8 (at byte {exc.start})") from None
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        message_id, message_type = _peek(body)
        reason = describe_validation_error(exc)
        raise InvalidMessage(reason, message_id=message_id, type=message_type) from None


def describe_validation_error(exc: ValidationError) -> str:
    """A short description of a validation error naming locations only, never input values."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = []
    for error in errors[:_MAX_ERRORS]:
        loc = list(error["loc"])
        if error["type"] == "extra_forbidden" and loc:
            loc[-1] = "<unknown-field>"  # the sender chose that name: it may be personal data
        location = ".".join(_safe_loc(part) for part in loc)
        text = _QUOTING_ERRORS.get(error["type"], error["msg"])
        parts.append(f"{location}: {text}" if location else text)
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more errors")
    return _truncate("; ".join(parts))


def _safe_loc(part: int | str) -> str:
    if isinstance(part, int):
        return str(part)
    cleaned = "".join(char if " " < char <= "~" else "?" for char in part)
    return cleaned[:_MAX_LOC_PART]


def _truncate(text: str) -> str:
    if len(text) <= MAX_ERROR_MESSAGE_CHARS:
        return text
    return text[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"


def _peek(body: bytes) -> tuple[str | None, str | None]:
    """Best-effort ``message_id`` and ``type`` of a body; never raises."""
    try:
        data = from_json(body, allow_partial=True)
    except Exception:  # anything at all: peeking must not turn into another failure
        return None, None
    if not isinstance(data, dict):
        return None, None
    return _valid(_MESSAGE_ID, data.get("message_id")), _valid(_TYPE_NAME, data.get("type"))


def _valid(adapter: TypeAdapter[str], value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None
