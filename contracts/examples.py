"""One valid example of every message type, as it appears on the wire.

Derived from the ``example`` each message class declares (and each query's ``result``).
Used by the AsyncAPI document, the contract page and the tests; every example validates.
"""

from __future__ import annotations

import copy
from typing import Any

from contracts.base import QueryEnvelope, RequestEnvelope
from contracts.registry import MESSAGE_CLASSES
from contracts.samples import AT, EVENT_ID, REQUEST_ID

__all__ = ["example_message", "example_payload", "example_result_payload"]


def example_payload(message_type: str) -> dict[str, Any]:
    """A fresh copy of the example payload of a message type."""
    return copy.deepcopy(MESSAGE_CLASSES[message_type].example)


def example_result_payload(query_type: str) -> dict[str, Any]:
    """A fresh copy of an example QueryResult payload answering a query type."""
    query = MESSAGE_CLASSES[query_type]
    if not issubclass(query, QueryEnvelope):
        raise KeyError(query_type)
    return {"query_type": query_type, **copy.deepcopy(query.result.example)}


def example_message(message_type: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete example body (as a dict) of a message type, optionally with another payload."""
    cls = MESSAGE_CLASSES.get(message_type)
    is_request = cls is not None and issubclass(cls, RequestEnvelope)
    message: dict[str, Any] = {
        "message_id": REQUEST_ID if is_request else EVENT_ID,
        "type": message_type,
        "version": 1,
        "correlation_id": "chat-session-42",
    }
    if not is_request:
        message["causation_id"] = REQUEST_ID
    message["occurred_at"] = AT
    message["payload"] = example_payload(message_type) if payload is None else payload
    return message
