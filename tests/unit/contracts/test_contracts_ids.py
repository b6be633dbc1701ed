"""Event ids are derived from the command, and make_event fills the envelope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from contracts import (
    EVENT_ID_NAMESPACE,
    CommandDeadLettered,
    CommandDeadLetteredPayload,
    CustomerCreated,
    CustomerCreatedPayload,
    ErrorType,
    GetCustomerResult,
    QueryResult,
    body_digest_id,
    dump_message,
    event_id,
    make_event,
    parse_event,
)

pytestmark = pytest.mark.unit

COMMAND_ID = "7b6f1c1e-0000-4000-8000-000000000001"


def customer_created_payload() -> CustomerCreatedPayload:
    return CustomerCreatedPayload(
        customer_id="CUST-000001", email="ada@example.com", full_name="Ada", is_vip=False
    )


def test_event_id_is_a_fixed_uuid5_of_command_type_and_index() -> None:
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{COMMAND_ID}:CustomerCreated:0")

    assert event_id(COMMAND_ID, "CustomerCreated") == str(expected)
    assert uuid.UUID(event_id(COMMAND_ID, "CustomerCreated")).version == 5


def test_event_id_namespace_never_changes() -> None:
    assert str(EVENT_ID_NAMESPACE) == "baed840f-3ead-57b2-863f-bc8a6358e074"
    assert event_id("m-1", "CustomerCreated", 0) == event_id("m-1", "CustomerCreated", 0)


def test_event_id_differs_by_command_type_and_index() -> None:
    ids = {
        event_id(COMMAND_ID, "CustomerCreated", 0),
        event_id(COMMAND_ID, "CustomerCreated", 1),
        event_id(COMMAND_ID, "CommandRejected", 0),
        event_id("another-command", "CustomerCreated", 0),
    }
    assert len(ids) == 4


def test_event_id_rejects_a_negative_index() -> None:
    with pytest.raises(ValueError, match="negative"):
        event_id(COMMAND_ID, "CustomerCreated", -1)


def test_make_event_fills_ids_correlation_and_time() -> None:
    before = datetime.now(UTC)

    event = make_event(
        CustomerCreated,
        command_message_id=COMMAND_ID,
        correlation_id="chat-session-42",
        payload=customer_created_payload(),
    )

    assert event.message_id == event_id(COMMAND_ID, "CustomerCreated")
    assert event.causation_id == COMMAND_ID
    assert event.correlation_id == "chat-session-42"
    assert event.type == "CustomerCreated"
    assert event.version == CustomerCreated.schema_version
    assert before <= event.occurred_at <= datetime.now(UTC)
    assert event.occurred_at.tzinfo is not None


def test_make_event_falls_back_to_the_command_id_for_correlation() -> None:
    event = make_event(
        CustomerCreated,
        command_message_id=COMMAND_ID,
        correlation_id=None,
        payload=customer_created_payload(),
    )

    assert event.correlation_id == COMMAND_ID


def test_make_event_keeps_a_given_time_and_index_and_accepts_a_mapping() -> None:
    at = datetime(2026, 11, 21, 10, tzinfo=timezone(timedelta(hours=1)))

    event = make_event(
        CommandDeadLettered,
        command_message_id=COMMAND_ID,
        correlation_id=None,
        payload={
            "command_message_id": COMMAND_ID,
            "command_type": "CreateCustomer",
            "error_type": ErrorType.TRANSIENT,
            "error_message": "database unavailable",
            "attempts": 5,
        },
        index=2,
        occurred_at=at,
    )

    assert event.occurred_at == at
    assert event.message_id == event_id(COMMAND_ID, "CommandDeadLettered", 2)
    assert isinstance(event.payload, CommandDeadLetteredPayload)
    assert parse_event(dump_message(event)) == event


def test_make_event_validates_the_payload_class() -> None:
    with pytest.raises(ValidationError):
        make_event(
            QueryResult,
            command_message_id=COMMAND_ID,
            correlation_id=None,
            payload=customer_created_payload(),
        )


def test_make_event_rejects_a_naive_time() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        make_event(
            CustomerCreated,
            command_message_id=COMMAND_ID,
            correlation_id=None,
            payload=customer_created_payload(),
            occurred_at=datetime(2026, 11, 21, 10),
        )


def test_make_event_builds_query_results_too() -> None:
    result = make_event(
        QueryResult,
        command_message_id=COMMAND_ID,
        correlation_id="c-1",
        payload=GetCustomerResult(query_type="GetCustomer", items=()),
    )

    assert result.payload.query_type == "GetCustomer"
    assert not hasattr(QueryResult, "routing_key")


def test_body_digest_id_is_a_valid_stable_message_id_for_unreadable_bodies() -> None:
    digest = body_digest_id(b"\xff not json")

    assert digest == body_digest_id(b"\xff not json") != body_digest_id(b"other")
    assert digest.startswith("sha256:")
    assert len(digest) == 71
    event = make_event(
        CommandDeadLettered,
        command_message_id=digest,
        correlation_id=None,
        payload=CommandDeadLetteredPayload(
            command_message_id=None,
            command_type=None,
            error_type=ErrorType.INVALID_MESSAGE,
            error_message="body is not valid UTF-8 (at byte 0)",
            attempts=1,
        ),
    )
    assert event.causation_id == digest
