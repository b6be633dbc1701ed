"""The contract as JSON Schema (one per message type) and as an AsyncAPI 3.0 document."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Final

from contracts.base import CommandEnvelope, MessageEnvelope, QueryEnvelope, RoutedEvent
from contracts.examples import example_message
from contracts.headers import (
    dead_letter_headers_schema,
    event_headers_schema,
    request_headers_schema,
)
from contracts.registry import (
    COMMAND_TYPES,
    EVENT_ROUTING_KEYS,
    MESSAGE_CLASSES,
    QUERY_TYPES,
    type_name,
)
from contracts.topology import (
    COMMAND_QUEUE,
    COMMANDS_EXCHANGE,
    CONTENT_TYPE,
    DEAD_LETTER_QUEUE,
    EVENTS_EXCHANGE,
    EXCHANGE_TYPE,
    HEADER_ORDERING_KEY,
    PARTITIONS_EXCHANGE,
)

__all__ = ["CONTRACT_VERSION", "JSON_SCHEMA_DIALECT", "asyncapi_document", "json_schemas"]

CONTRACT_VERSION: Final = "2.0.0"
"""Version of the contract as a whole (the AsyncAPI ``info.version``)."""
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_AMQP: Final = "0.3.0"
_SCHEMAS: Final = "#/components/schemas/"
_DEAD_LETTER: Final = "DeadLetteredCommand"


def json_schemas() -> dict[str, Any]:
    """One JSON Schema (draft 2020-12, with ``$defs``) per message type, keyed by type."""
    return {
        name: {"$schema": JSON_SCHEMA_DIALECT, **cls.model_json_schema(mode="validation")}
        for name, cls in MESSAGE_CLASSES.items()
    }


def asyncapi_document() -> dict[str, Any]:
    """The whole wire contract as an AsyncAPI 3.0.0 document (a JSON-serialisable dict)."""
    requests = [name for name in MESSAGE_CLASSES if name in COMMAND_TYPES | QUERY_TYPES]
    events = list(EVENT_ROUTING_KEYS)
    replies = ["QueryResult", "CommandRejected", *(e for e in events if e != "CommandRejected")]
    channels = {
        "commands": _exchange_channel(COMMANDS_EXCHANGE, requests, _COMMANDS_TEXT),
        "events": _exchange_channel(EVENTS_EXCHANGE, events, _EVENTS_TEXT),
        "replies": {
            "address": None,
            "title": "reply_to",
            "description": _REPLIES_TEXT,
            "messages": _message_refs(replies),
        },
        "deadLetters": {
            "address": DEAD_LETTER_QUEUE,
            "title": DEAD_LETTER_QUEUE,
            "description": _DLQ_TEXT,
            "messages": _message_refs([_DEAD_LETTER]),
            "bindings": {
                "amqp": {"is": "queue", "queue": _queue(DEAD_LETTER_QUEUE), "bindingVersion": _AMQP}
            },
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "fca-worker wire contract", "version": CONTRACT_VERSION},
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "The default broker (setting WORKER_AMQP_URL).",
            }
        },
        "channels": channels,
        "operations": {
            "receiveCommands": {
                "action": "receive",
                "channel": {"$ref": "#/channels/commands"},
                "summary": "The worker consumes commands and queries from its input queue.",
                "messages": _operation_refs("commands", requests),
                "reply": {
                    "address": {
                        "location": "$message.header#/reply_to",
                        "description": "The AMQP reply_to property of the request.",
                    },
                    "channel": {"$ref": "#/channels/replies"},
                    "messages": _operation_refs("replies", replies),
                },
            },
            "sendEvents": _operation("events", events, "Events of committed outcomes."),
            "sendReplies": _operation("replies", replies, "Query answers and outcomes."),
            "sendDeadLetters": _operation("deadLetters", [_DEAD_LETTER], "Unprocessable input."),
        },
        "components": {
            "schemas": _component_schemas(),
            "messages": {
                **{name: _message(name, cls) for name, cls in MESSAGE_CLASSES.items()},
                _DEAD_LETTER: _dead_letter_message(),
            },
        },
    }


_COMMANDS_TEXT: Final = (
    "Topic exchange, durable. Publish commands and queries here with the message type as "
    f"routing key (e.g. CreateCustomer) and the {HEADER_ORDERING_KEY} header "
    f"(contracts.ordering_key). It is bound with '#' to the consistent-hash exchange "
    f"{PARTITIONS_EXCHANGE}, which spreads the messages by that header over the quorum, "
    f"single-active-consumer partition queues {COMMAND_QUEUE}.p00, p01, ... so the commands of "
    "one ordering key are applied in the order they were sent. Queries must set the AMQP "
    "reply_to property."
)
_EVENTS_TEXT: Final = (
    "Topic exchange, durable. Committed outcomes are published here, persistent, with the "
    "event's dotted lower-case routing key (e.g. customer.created)."
)
_REPLIES_TEXT: Final = (
    "The queue named by a request's reply_to, reached through the default exchange with the "
    "AMQP correlation_id set to the envelope's correlation id: the QueryResult or "
    "CommandRejected of a query, or the first outcome of a command (its first event, its "
    "rejection, or its CommandDeadLettered report). reply_to must name a reply queue "
    "(WORKER_REPLY_TO_PATTERN); any other gets no answer."
)
_DLQ_TEXT: Final = (
    "Durable quorum queue of commands that could not be processed. Each keeps its original "
    "body byte for byte and gains the fca-* headers; a CommandDeadLettered event reports it."
)


def _queue(name: str) -> dict[str, Any]:
    return {"name": name, "durable": True, "exclusive": False, "autoDelete": False, "vhost": "/"}


def _exchange_channel(address: str, names: Iterable[str], description: str) -> dict[str, Any]:
    exchange = {
        "name": address,
        "type": EXCHANGE_TYPE,
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }
    return {
        "address": address,
        "title": address,
        "description": description,
        "messages": _message_refs(names),
        "bindings": {"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": _AMQP}},
    }


def _message_refs(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/messages/{name}"} for name in names}


def _operation_refs(channel: str, names: Iterable[str]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]


def _operation(channel: str, names: Iterable[str], summary: str) -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": _operation_refs(channel, names),
    }


def _message(name: str, cls: type[MessageEnvelope]) -> dict[str, Any]:
    summary = (cls.__doc__ or name).strip().splitlines()[0]
    if issubclass(cls, RoutedEvent):
        summary += f" Routing key: {cls.routing_key}."
    else:
        summary += f" Routing key: {name}." if name in COMMAND_TYPES | QUERY_TYPES else ""
    headers = "RequestHeaders" if name in COMMAND_TYPES | QUERY_TYPES else "TraceHeaders"
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": f"{_SCHEMAS}{headers}"},
        "payload": {"$ref": f"{_SCHEMAS}{name}"},
        "correlationId": {
            "location": "$message.payload#/correlation_id",
            "description": "Also the AMQP correlation_id property.",
        },
        "bindings": {"amqp": {"messageType": name, "bindingVersion": _AMQP}},
        "examples": [{"name": f"{name}Example", "payload": example_message(name)}],
        **_declarations(cls),
    }


def _declarations(cls: type[MessageEnvelope]) -> dict[str, Any]:
    """What a request class declares, as ``x-fca-*`` specification extensions."""
    if issubclass(cls, CommandEnvelope):
        return {
            "x-fca-events": [type_name(event) for event in cls.events],
            "x-fca-ordering-fields": list(cls.ordering_fields),
            "x-fca-rejections": list(cls.rejections),
        }
    if issubclass(cls, QueryEnvelope):
        return {"x-fca-result": cls.result.__name__, "x-fca-rejections": list(cls.rejections)}
    return {}


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": _DEAD_LETTER,
        "title": "Dead-lettered command",
        "summary": "A command the worker could not process, with the reason in fca-* headers.",
        "headers": {"$ref": f"{_SCHEMAS}DeadLetterHeaders"},
        "payload": {"$ref": f"{_SCHEMAS}DeadLetteredBody"},
    }


def _component_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, cls in MESSAGE_CLASSES.items():
        schema = cls.model_json_schema(mode="validation", ref_template=_SCHEMAS + "{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            _add(schemas, def_name, definition)
        _add(schemas, name, schema)
    _add(schemas, "RequestHeaders", request_headers_schema())
    _add(schemas, "TraceHeaders", event_headers_schema())
    _add(schemas, "DeadLetterHeaders", dead_letter_headers_schema())
    _add(
        schemas,
        "DeadLetteredBody",
        {"description": "The original body, byte for byte; it may not even be valid JSON."},
    )
    converted: dict[str, Any] = _asyncapi_discriminators(schemas)
    return converted


def _add(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if name in schemas and schemas[name] != schema:
        raise ValueError(f"two different schemas are both named {name!r}")
    schemas[name] = schema


def _asyncapi_discriminators(node: Any) -> Any:
    """AsyncAPI's Schema Object wants ``discriminator`` as a property name, not an object."""
    if isinstance(node, dict):
        node = {key: _asyncapi_discriminators(value) for key, value in node.items()}
        if isinstance(node.get("discriminator"), dict):
            node["discriminator"] = node["discriminator"]["propertyName"]
        return node
    if isinstance(node, list):
        return [_asyncapi_discriminators(item) for item in node]
    return copy.copy(node)
