"""Outcomes that are not domain events: rejections, dead letters and query results.

Their vocabularies are derived from the resource modules: ``RequestType`` lists every
command and query type, ``RejectionReason`` every code a request declares in
``rejections``, and ``QueryResultPayload`` every query's ``result`` class.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Final, Literal, Union

from pydantic import Field, StrictInt

from contracts.base import EventEnvelope, Payload, ResultPayload, RoutedEvent, declared_type
from contracts.fields import ErrorType, MessageId, TypeName, multi_line
from contracts.resources import COMMAND_CLASSES, QUERY_CLASSES
from contracts.samples import REQUEST_ID

__all__ = [
    "REJECTION_REASONS",
    "CommandDeadLettered",
    "CommandDeadLetteredPayload",
    "CommandRejected",
    "CommandRejectedPayload",
    "QueryResult",
    "QueryResultPayload",
    "RejectionReason",
    "RequestType",
]

_REQUEST_CLASSES = (*COMMAND_CLASSES, *QUERY_CLASSES)
_REQUEST_TYPES = tuple(str(declared_type(cls)) for cls in _REQUEST_CLASSES)
_REASON_CODES = tuple(dict.fromkeys(code for cls in _REQUEST_CLASSES for code in cls.rejections))

REJECTION_REASONS: Final[frozenset[str]] = frozenset(_REASON_CODES)
"""Every ``reason`` code of CommandRejected: the union of the requests' ``rejections``."""

# RequestType: the type of every command and query (a Literal at run time).
# RejectionReason: every reason code as a StrEnum (iterate it, or use REJECTION_REASONS).
# QueryResultPayload: the payload of a QueryResult, selected by ``query_type``.
if TYPE_CHECKING:
    RequestType = str

    class RejectionReason(StrEnum):
        """Why a command or query was refused (the ``reason`` of ``CommandRejected``)."""

    QueryResultPayload = ResultPayload
else:
    RequestType = Literal[_REQUEST_TYPES]
    RejectionReason = StrEnum(
        "RejectionReason", [(code.upper(), code) for code in _REASON_CODES], module=__name__
    )
    RejectionReason.__doc__ = (
        "Why a command or query was refused (the ``reason`` of ``CommandRejected``)."
    )
    QueryResultPayload = Annotated[
        Union[tuple(cls.result for cls in QUERY_CLASSES)],  # noqa: UP007 (built at run time)
        Field(discriminator="query_type"),
    ]


class CommandRejectedPayload(Payload):
    """The fields of CommandRejected."""

    command_type: RequestType = Field(description="The type of the refused command or query.")
    command_message_id: MessageId = Field(description="Its message_id.")
    reason: RejectionReason = Field(description="Why it was refused (a stable code).")
    detail: Annotated[str, multi_line(1000)] = Field(
        description="A human-readable explanation (no secrets)."
    )


class CommandRejected(RoutedEvent):
    """A command or query was refused by a business rule; nothing changed."""

    routing_key = "command.rejected"
    example = {
        "command_type": "CreateCustomer",
        "command_message_id": REQUEST_ID,
        "reason": "email_taken",
        "detail": "another customer uses this email",
    }
    type: Literal["CommandRejected"] = "CommandRejected"
    payload: CommandRejectedPayload


class CommandDeadLetteredPayload(Payload):
    """The fields of CommandDeadLettered."""

    command_message_id: MessageId | None = Field(
        description="The command's message_id, or null if it could not be read."
    )
    command_type: TypeName | None = Field(
        description="The command's type as sent, or null if it could not be read."
    )
    error_type: ErrorType = Field(description="invalid_message, transient or unexpected.")
    error_message: Annotated[str, multi_line(1000)] = Field(
        description="What went wrong (no input values, no secrets)."
    )
    attempts: StrictInt = Field(ge=1, description="How many times processing was attempted.")


class CommandDeadLettered(RoutedEvent):
    """A command was moved to the dead-letter queue.

    Its ``causation_id`` is the command's ``message_id``; for a body whose id could not be
    read it is :func:`contracts.ids.body_digest_id` of the body.
    """

    routing_key = "command.dead_lettered"
    example = {
        "command_message_id": REQUEST_ID,
        "command_type": "CreateCustomer",
        "error_type": "invalid_message",
        "error_message": "CreateCustomer.payload.email: Field required",
        "attempts": 1,
    }
    type: Literal["CommandDeadLettered"] = "CommandDeadLettered"
    payload: CommandDeadLetteredPayload


class QueryResult(EventEnvelope):
    """The answer to a query, sent only to its ``reply_to`` queue (never to ``fca.events``)."""

    example = {"query_type": declared_type(QUERY_CLASSES[0]), **QUERY_CLASSES[0].result.example}
    type: Literal["QueryResult"] = "QueryResult"
    payload: QueryResultPayload
