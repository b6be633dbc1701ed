"""Every message type survives a trip to the wire and back, and matches its JSON Schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from contracts import (
    COMMAND_TYPES,
    EVENT_TYPES,
    MESSAGE_CLASSES,
    QUERY_TYPES,
    CommandEnvelope,
    EventEnvelope,
    QueryEnvelope,
    QueryResult,
    dump_message,
    example_message,
    example_result_payload,
    is_query,
    json_schemas,
    parse_event,
    parse_message,
)

pytestmark = pytest.mark.unit

ALL_TYPES = sorted(MESSAGE_CLASSES)
REQUEST_TYPES = sorted(COMMAND_TYPES | QUERY_TYPES)
SCHEMAS = json_schemas()


def body_of(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def test_the_registry_knows_every_contract_type() -> None:
    assert len(COMMAND_TYPES) == 14  # v2 added UnfreezeAccounts, EraseCustomer
    assert len(QUERY_TYPES) == 7  # v2 added GetConversationTranscript
    assert len(EVENT_TYPES) == 17  # v2 added AccountsUnfrozen, CustomerErased
    assert set(MESSAGE_CLASSES) == COMMAND_TYPES | QUERY_TYPES | EVENT_TYPES


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_example_survives_dump_and_parse(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    message = cls.model_validate_json(body_of(example_message(message_type)))

    wire = dump_message(message)

    assert cls.model_validate_json(wire) == message
    assert json.loads(wire)["type"] == message_type


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_dumped_example_is_valid_under_its_json_schema(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    message = cls.model_validate_json(body_of(example_message(message_type)))

    jsonschema.validate(json.loads(dump_message(message)), SCHEMAS[message_type])


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_wire_example_is_valid_under_its_json_schema(message_type: str) -> None:
    jsonschema.validate(example_message(message_type), SCHEMAS[message_type])


@pytest.mark.parametrize("message_type", REQUEST_TYPES)
def test_parse_message_returns_the_right_class(message_type: str) -> None:
    message = parse_message(body_of(example_message(message_type)))

    assert type(message) is MESSAGE_CLASSES[message_type]
    assert is_query(message) == (message_type in QUERY_TYPES)
    assert isinstance(message, QueryEnvelope if is_query(message) else CommandEnvelope)


@pytest.mark.parametrize("message_type", sorted(EVENT_TYPES))
def test_parse_event_returns_the_right_class(message_type: str) -> None:
    message = parse_event(body_of(example_message(message_type)))

    assert type(message) is MESSAGE_CLASSES[message_type]
    assert isinstance(message, EventEnvelope)


@pytest.mark.parametrize("query_type", sorted(QUERY_TYPES))
def test_query_result_of_every_query_round_trips(query_type: str) -> None:
    body = body_of(example_message("QueryResult", example_result_payload(query_type)))
    result = parse_event(body)

    assert isinstance(result, QueryResult)
    assert result.payload.query_type == query_type
    assert parse_event(dump_message(result)) == result
    jsonschema.validate(json.loads(dump_message(result)), SCHEMAS["QueryResult"])


def test_dump_is_compact_utf8_json_with_nulls_kept() -> None:
    message = parse_message(body_of(example_message("CreateCustomer")))

    wire = dump_message(message)

    assert b": " not in wire
    assert b", " not in wire
    assert json.loads(wire)["payload"]["phone"] is None


def test_dump_keeps_non_ascii_text_as_utf8() -> None:
    body = example_message("CreateCustomer")
    body["payload"]["full_name"] = "Zoë Ångström"

    wire = dump_message(parse_message(body_of(body)))

    assert "Zoë Ångström".encode() in wire


def test_conversation_id_is_a_uuid_in_python_and_a_string_on_the_wire() -> None:
    message = parse_message(body_of(example_message("AppendMessage")))

    assert isinstance(message.payload.conversation_id, uuid.UUID)  # type: ignore[union-attr]
    wire = json.loads(dump_message(message))
    assert (
        wire["payload"]["conversation_id"]
        == example_message("AppendMessage")["payload"]["conversation_id"]
    )


def test_occurred_at_is_an_aware_datetime_and_round_trips_as_rfc3339() -> None:
    message = parse_message(body_of(example_message("CreateCustomer")))

    assert message.occurred_at == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert json.loads(dump_message(message))["occurred_at"] == "2026-11-21T10:00:00Z"


def test_messages_are_frozen_and_hashable() -> None:
    message = parse_message(body_of(example_message("FreezeAccounts")))

    with pytest.raises(ValueError, match="frozen"):
        message.message_id = "other"  # type: ignore[misc]
    assert hash(message) == hash(parse_message(body_of(example_message("FreezeAccounts"))))


def test_update_customer_keeps_omitted_and_null_apart_on_the_wire() -> None:
    body = example_message("UpdateCustomer", {"customer_id": "CUST-000001", "phone": None})

    wire = json.loads(dump_message(parse_message(body_of(body))))

    assert wire["payload"] == {"customer_id": "CUST-000001", "phone": None}


def test_customer_updated_changes_hold_only_the_fields_that_changed() -> None:
    payload = {"customer_id": "CUST-000001", "changes": {"email": "new@example.com"}}

    event = parse_event(body_of(example_message("CustomerUpdated", payload)))

    assert json.loads(dump_message(event))["payload"]["changes"] == {"email": "new@example.com"}
