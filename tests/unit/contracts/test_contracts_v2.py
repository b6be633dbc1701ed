"""Contract v2: UnfreezeAccounts, GetConversationTranscript and the envelope's actor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import (
    CONTRACT_VERSION,
    MESSAGE_CLASSES,
    AccountsUnfrozen,
    AccountsUnfrozenPayload,
    CustomerCreated,
    GetConversationTranscriptPayload,
    GetConversationTranscriptResult,
    InvalidMessage,
    QueryResult,
    UnfreezeAccounts,
    UnfreezeAccountsPayload,
    dump_message,
    example_message,
    example_payload,
    example_result_payload,
    make_event,
    parse_event,
    parse_message,
)

pytestmark = pytest.mark.unit

COMMAND_ID = "7b6f1c1e-0000-4000-8000-000000000001"


def body_of(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def from_json(model: Any, data: dict[str, Any]) -> Any:
    return model.model_validate_json(json.dumps(data))


def test_contract_version_is_two() -> None:
    assert CONTRACT_VERSION == "2.0.0"


def test_unfreeze_accounts_produces_accounts_unfrozen_on_account_unfrozen() -> None:
    assert UnfreezeAccounts.events == (AccountsUnfrozen,)
    assert AccountsUnfrozen.routing_key == "account.unfrozen"
    assert UnfreezeAccounts.rejections == ("accounts_not_found",)
    assert UnfreezeAccounts.ordering_fields == ("account_numbers",)


def test_unfreeze_accounts_takes_one_to_a_thousand_numbers_and_a_reason() -> None:
    payload = example_payload("UnfreezeAccounts")

    assert (
        len(
            from_json(
                UnfreezeAccountsPayload, {**payload, "account_numbers": ["1"] * 1000}
            ).account_numbers
        )
        == 1000
    )
    for numbers in ([], ["1"] * 1001, ["has space"]):
        with pytest.raises(ValidationError, match="account_numbers"):
            from_json(UnfreezeAccountsPayload, {**payload, "account_numbers": numbers})
    for reason in ("", "two\nlines", "x" * 501):
        with pytest.raises(ValidationError, match="reason"):
            from_json(UnfreezeAccountsPayload, {**payload, "reason": reason})


def test_accounts_unfrozen_may_list_no_account() -> None:
    assert AccountsUnfrozenPayload(account_numbers=()).account_numbers == ()


def test_transcript_limit_defaults_to_100_and_stops_at_500() -> None:
    fields = {"conversation_id": "0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90"}

    assert from_json(GetConversationTranscriptPayload, fields).limit == 100
    assert from_json(GetConversationTranscriptPayload, {**fields, "limit": 500}).limit == 500
    for bad in (0, 501, "5", 1.0):
        with pytest.raises(ValidationError, match="limit"):
            from_json(GetConversationTranscriptPayload, {**fields, "limit": bad})
    with pytest.raises(ValidationError, match="cursor"):
        from_json(GetConversationTranscriptPayload, {**fields, "cursor": "has space"})


def test_transcript_result_items_are_numbered_messages_with_a_next_cursor() -> None:
    result = from_json(
        GetConversationTranscriptResult, example_result_payload("GetConversationTranscript")
    )

    assert [item.sequence for item in result.items] == [1, 2]
    assert result.next_cursor
    bad = example_result_payload("GetConversationTranscript")
    bad["items"][0]["sequence"] = 0
    with pytest.raises(ValidationError, match="sequence"):
        from_json(GetConversationTranscriptResult, bad)
    with pytest.raises(ValidationError, match="next_cursor"):
        from_json(GetConversationTranscriptResult, {**bad, "items": [], "next_cursor": 5})


def test_transcript_result_travels_in_a_query_result() -> None:
    payload = example_result_payload("GetConversationTranscript")

    result = parse_event(body_of(example_message("QueryResult", payload)))

    assert isinstance(result, QueryResult)
    assert isinstance(result.payload, GetConversationTranscriptResult)
    assert parse_event(dump_message(result)) == result


@pytest.mark.parametrize("message_type", ["CreateCustomer", "GetCustomer", "CustomerCreated"])
def test_actor_is_optional_and_round_trips_on_requests_and_events(message_type: str) -> None:
    parse = parse_event if message_type == "CustomerCreated" else parse_message
    message = parse(body_of({**example_message(message_type), "actor": "agent:4711"}))

    assert message.actor == "agent:4711"
    assert json.loads(dump_message(message))["actor"] == "agent:4711"


@pytest.mark.parametrize("actor", ["", "   ", "agent\n4711", "a" * 129, 4711])
def test_actor_is_one_line_of_1_to_128_chars(actor: Any) -> None:
    with pytest.raises(InvalidMessage, match="actor"):
        parse_message(body_of({**example_message("CreateCustomer"), "actor": actor}))


def test_a_message_without_actor_is_dumped_exactly_as_in_v1() -> None:
    for name in MESSAGE_CLASSES:
        message = MESSAGE_CLASSES[name].model_validate_json(body_of(example_message(name)))
        assert message.actor is None  # type: ignore[attr-defined]
        assert "actor" not in json.loads(dump_message(message))
        assert "actor" not in json.loads(message.model_dump_json())


def test_make_event_copies_the_commands_actor() -> None:
    command = parse_message(body_of({**example_message("CreateCustomer"), "actor": "agent:4711"}))

    event = make_event(
        CustomerCreated,
        command_message_id=command.message_id,
        correlation_id=command.correlation_id,
        payload=example_payload("CustomerCreated"),
        actor=command.actor,
    )
    anonymous = make_event(
        CustomerCreated,
        command_message_id=command.message_id,
        correlation_id=None,
        payload=example_payload("CustomerCreated"),
    )

    assert event.actor == "agent:4711"
    assert json.loads(dump_message(event))["actor"] == "agent:4711"
    assert anonymous.actor is None
    assert event.message_id == anonymous.message_id  # the actor does not change the event id


def test_a_v1_message_is_still_valid() -> None:
    v1 = {
        "message_id": "m-1",
        "type": "FreezeAccounts",
        "payload": {"account_numbers": ["40000001"], "reason": "Suspected fraud"},
    }

    message = parse_message(body_of(v1))

    assert message.type == "FreezeAccounts"
    assert message.actor is None
