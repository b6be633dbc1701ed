"""The AsyncAPI 3.0 document lists every message, and every reference in it resolves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from contracts import (
    COMMAND_TYPES,
    CONTRACT_VERSION,
    EVENT_ROUTING_KEYS,
    EVENT_TYPES,
    MESSAGE_CLASSES,
    QUERY_TYPES,
    asyncapi_document,
    example_message,
)

pytestmark = pytest.mark.unit

DOC: dict[str, Any] = json.loads(json.dumps(asyncapi_document()))  # also proves it serialises
COMPONENT_KEY = re.compile(r"^[\w\d.\-_]+$")


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node: Any = DOC
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"unresolved $ref {ref}"
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def test_document_header() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert DOC["info"]["version"] == CONTRACT_VERSION
    assert DOC["info"]["title"]
    assert DOC["defaultContentType"] == "application/json"


def test_asyncapi_document_is_a_fresh_copy_each_time() -> None:
    first = asyncapi_document()
    first["channels"].clear()
    assert asyncapi_document()["channels"]


def test_every_ref_resolves() -> None:
    all_refs = list(refs(DOC))

    assert len(all_refs) > 100
    for ref in all_refs:
        resolve(ref)


def test_commands_channel_carries_every_command_and_query_on_the_topic_exchange() -> None:
    channel = DOC["channels"]["commands"]

    assert channel["address"] == "fca.commands"
    assert set(channel["messages"]) == COMMAND_TYPES | QUERY_TYPES
    exchange = channel["bindings"]["amqp"]["exchange"]
    assert channel["bindings"]["amqp"]["is"] == "routingKey"
    assert (exchange["name"], exchange["type"], exchange["durable"]) == (
        "fca.commands",
        "topic",
        True,
    )


def test_events_channel_carries_every_routed_event() -> None:
    channel = DOC["channels"]["events"]

    assert channel["address"] == "fca.events"
    assert set(channel["messages"]) == set(EVENT_ROUTING_KEYS) == EVENT_TYPES - {"QueryResult"}
    assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"


def test_replies_channel_carries_query_results_rejections_and_outcomes() -> None:
    channel = DOC["channels"]["replies"]

    assert channel["address"] is None
    assert {"QueryResult", "CommandRejected", "CustomerCreated"} <= set(channel["messages"])


def test_dead_letter_channel_is_the_durable_dlq_with_fca_headers() -> None:
    channel = DOC["channels"]["deadLetters"]

    assert channel["address"] == "fca.worker.commands.dlq"
    assert channel["bindings"]["amqp"]["queue"]["durable"] is True
    (message_ref,) = channel["messages"].values()
    headers = resolve(resolve(message_ref["$ref"])["headers"]["$ref"])
    assert "fca-error-type" in headers["required"]
    assert not any(name.startswith("x-") for name in headers["properties"])


def test_every_message_type_is_a_component_message_with_its_schema() -> None:
    messages = DOC["components"]["messages"]

    for name in MESSAGE_CLASSES:
        assert messages[name]["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert messages[name]["contentType"] == "application/json"
        assert messages[name]["bindings"]["amqp"]["messageType"] == name


def test_events_document_their_routing_key() -> None:
    for name, key in EVENT_ROUTING_KEYS.items():
        assert f"Routing key: {key}." in DOC["components"]["messages"][name]["summary"]


@pytest.mark.parametrize(
    "operation_id", ["receiveCommands", "sendEvents", "sendReplies", "sendDeadLetters"]
)
def test_operations_reference_their_channel_and_its_messages(operation_id: str) -> None:
    operation = DOC["operations"][operation_id]
    channel_ref = operation["channel"]["$ref"]
    channel = resolve(channel_ref)

    assert operation["action"] in {"send", "receive"}
    assert operation["messages"]
    for message in operation["messages"]:
        assert message["$ref"].startswith(channel_ref + "/messages/")
        resolve(message["$ref"])
    assert set(channel["messages"]) >= {m["$ref"].rsplit("/", 1)[1] for m in operation["messages"]}


def test_receive_commands_replies_on_the_reply_channel() -> None:
    reply = DOC["operations"]["receiveCommands"]["reply"]

    assert reply["channel"] == {"$ref": "#/channels/replies"}
    assert reply["address"]["location"].startswith("$message.header#/")
    for message in reply["messages"]:
        assert message["$ref"].startswith("#/channels/replies/messages/")


def test_component_keys_follow_the_asyncapi_pattern() -> None:
    for section in DOC["components"].values():
        assert all(COMPONENT_KEY.match(key) for key in section)


def test_schemas_use_asyncapi_style_discriminators() -> None:
    def discriminators(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            if "discriminator" in node:
                yield node["discriminator"]
            for value in node.values():
                yield from discriminators(value)
        elif isinstance(node, list):
            for item in node:
                yield from discriminators(item)

    found = list(discriminators(DOC["components"]["schemas"]))
    assert found
    assert all(isinstance(value, str) for value in found)


@pytest.mark.parametrize("name", sorted(MESSAGE_CLASSES))
def test_component_schema_accepts_the_example_and_rejects_an_unknown_field(name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOC["components"]}
    validator = jsonschema.Draft7Validator(schema)

    (example,) = DOC["components"]["messages"][name]["examples"]
    validator.validate(example["payload"])
    validator.validate(example_message(name))
    assert not validator.is_valid({**example_message(name), "unexpected": 1})
