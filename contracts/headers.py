"""The AMQP headers of the contract as JSON Schemas (for AsyncAPI and the contract page).

Our own headers start with ``fca-``; none starts with ``x-`` (RabbitMQ owns those from 3.13).
"""

from __future__ import annotations

from typing import Any, Final

from contracts.fields import ErrorType
from contracts.topology import (
    ERROR_MESSAGE_MAX_CHARS,
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORDERING_KEY,
    HEADER_ORIGINAL_ROUTING_KEY,
    HEADER_REPLAY_COUNT,
    HEADER_TRACEPARENT,
    HEADER_TRACESTATE,
)

__all__ = ["dead_letter_headers_schema", "event_headers_schema", "request_headers_schema"]

_TRACEPARENT: Final = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_TIMESTAMP: Final = {"type": "string", "format": "date-time"}


def _trace() -> dict[str, Any]:
    return {
        HEADER_TRACEPARENT: {
            "type": "string",
            "pattern": _TRACEPARENT,
            "description": "W3C trace context; the worker continues the trace it names.",
        },
        HEADER_TRACESTATE: {
            "type": "string",
            "description": "W3C trace state, passed on with the trace context.",
        },
    }


def request_headers_schema() -> dict[str, Any]:
    """Headers a publisher sets on a command or query: the ordering key and trace context."""
    return {
        "type": "object",
        "properties": {
            HEADER_ORDERING_KEY: {
                "type": "string",
                "minLength": 1,
                "description": (
                    "The ordering key (contracts.ordering_key); the partitions hash it. "
                    "Without it the command is still applied, in one partition."
                ),
            },
            **_trace(),
        },
    }


def event_headers_schema() -> dict[str, Any]:
    """Headers on the worker's events and replies: the trace context of their request."""
    return {"type": "object", "properties": _trace()}


def dead_letter_headers_schema() -> dict[str, Any]:
    """Headers a dead-lettered command gains; its body stays byte for byte."""
    return {
        "type": "object",
        "properties": {
            HEADER_ERROR_TYPE: {
                "type": "string",
                "enum": [e.value for e in ErrorType],
                "description": "Why it was dead-lettered.",
            },
            HEADER_ERROR_MESSAGE: {
                "type": "string",
                "maxLength": ERROR_MESSAGE_MAX_CHARS,
                "description": "What went wrong, without personal data or secrets.",
            },
            HEADER_ATTEMPTS: {
                "type": "integer",
                "minimum": 1,
                "description": "How many times processing was attempted.",
            },
            HEADER_FIRST_FAILED_AT: {**_TIMESTAMP, "description": "First failure (RFC 3339)."},
            HEADER_LAST_FAILED_AT: {**_TIMESTAMP, "description": "Last failure (RFC 3339)."},
            HEADER_ORIGINAL_ROUTING_KEY: {
                "type": "string",
                "description": "The routing key the command was first published with.",
            },
            HEADER_REPLAY_COUNT: {
                "type": "integer",
                "minimum": 0,
                "description": "How many times it was replayed from the DLQ (absent: never).",
            },
        },
        "required": [
            HEADER_ERROR_TYPE,
            HEADER_ERROR_MESSAGE,
            HEADER_ATTEMPTS,
            HEADER_FIRST_FAILED_AT,
            HEADER_LAST_FAILED_AT,
            HEADER_ORIGINAL_ROUTING_KEY,
        ],
    }
