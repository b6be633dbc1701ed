"""parse_message turns every bad body into InvalidMessage: peeked id/type, no input values."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    MAX_ERROR_MESSAGE_CHARS,
    InvalidMessage,
    example_message,
    parse_event,
    parse_message,
)

pytestmark = pytest.mark.unit

MID = "7b6f1c1e-0000-4000-8000-000000000001"


def body_of(message: Any) -> bytes:
    return json.dumps(message).encode()


def with_payload(message_type: str, **changes: Any) -> dict[str, Any]:
    message = example_message(message_type)
    message["payload"].update(changes)
    return message


def without(message: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in keys}


def rejected(body: bytes) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(body)
    return caught.value


CREATE = example_message("CreateCustomer")
NESTED = b'{"message_id":"m-1","type":"CreateCustomer","payload":' + b"[" * 5000 + b"]" * 5000
CASES: dict[str, tuple[bytes, str | None, str | None, str]] = {
    # name: (body, peeked message_id, peeked type, text expected in the reason)
    "not utf-8": (b'{"message_id": "m-1", "x": "\xff\xfe"}', None, None, "UTF-8"),
    "latin-1 body": ('{"message_id": "caf\xe9"}'.encode("latin-1"), None, None, "UTF-8"),
    "not json": (b"hello there", None, None, "Invalid JSON"),
    "empty body": (b"", None, None, "Invalid JSON"),
    "byte order mark": (b"\xef\xbb\xbf" + body_of(CREATE), None, None, "Invalid JSON"),
    "json array": (b'[{"message_id": "m-1"}]', None, None, "Input should be an object"),
    "json string": (b'"CreateCustomer"', None, None, "Input should be an object"),
    "json number": (b"42", None, None, "Input should be an object"),
    "json null": (b"null", None, None, "Input should be an object"),
    "truncated json": (body_of(CREATE)[:-20], MID, "CreateCustomer", "Invalid JSON"),
    "truncated inside message_id": (b'{"message_id": "7b6f1c1e-00', None, None, "EOF"),
    "trailing garbage": (body_of(CREATE) + b" }", MID, "CreateCustomer", "Invalid JSON"),
    "lone surrogate": (b'{"message_id": "\\ud800"}', None, None, "Invalid JSON"),
    "deeply nested": (NESTED, None, None, "recursion limit"),
    "missing message_id": (
        body_of(without(CREATE, "message_id")),
        None,
        "CreateCustomer",
        "message_id: Field required",
    ),
    "empty message_id": (
        body_of({**CREATE, "message_id": ""}),
        None,
        "CreateCustomer",
        "at least 1",
    ),
    "blank message_id": (
        body_of({**CREATE, "message_id": "   "}),
        None,
        "CreateCustomer",
        "message_id: String has an invalid format",
    ),
    "message_id too long": (
        body_of({**CREATE, "message_id": "m" * 129}),
        None,
        "CreateCustomer",
        "at most 128",
    ),
    "message_id not a string": (
        body_of({**CREATE, "message_id": 12345}),
        None,
        "CreateCustomer",
        "valid string",
    ),
    "message_id with newline": (
        body_of({**CREATE, "message_id": "m-1\nX-Injected: 1"}),
        None,
        "CreateCustomer",
        "invalid format",
    ),
    "message_id over 255 utf-8 bytes": (
        body_of({**CREATE, "message_id": "€" * 100}),
        None,
        "CreateCustomer",
        "255 UTF-8 bytes",
    ),
    "missing type": (body_of(without(CREATE, "type")), MID, None, "field 'type' is missing"),
    "unknown type": (
        body_of({**CREATE, "type": "DropAllTables"}),
        MID,
        "DropAllTables",
        "unknown message type",
    ),
    "type not a string": (body_of({**CREATE, "type": 7}), MID, None, ""),
    "event type sent as a command": (
        body_of({**CREATE, "type": "CustomerCreated"}),
        MID,
        "CustomerCreated",
        "unknown message type",
    ),
    "missing payload": (body_of(without(CREATE, "payload")), MID, "CreateCustomer", "payload"),
    "payload not an object": (
        body_of({**CREATE, "payload": ["x"]}),
        MID,
        "CreateCustomer",
        "payload",
    ),
    "payload missing field": (
        body_of({**CREATE, "payload": {"full_name": "Ada"}}),
        MID,
        "CreateCustomer",
        "CreateCustomer.payload.email: Field required",
    ),
    "unknown payload field": (
        body_of(with_payload("CreateCustomer", nickname="Ada")),
        MID,
        "CreateCustomer",
        "payload.<unknown-field>: Extra inputs are not permitted",
    ),
    "unknown envelope field": (
        body_of({**CREATE, "priority": "high"}),
        MID,
        "CreateCustomer",
        "CreateCustomer.<unknown-field>: Extra inputs are not permitted",
    ),
    "number for a string": (
        body_of(with_payload("CreateCustomer", full_name=42)),
        MID,
        "CreateCustomer",
        "payload.full_name: Input should be a valid string",
    ),
    "string for a bool": (
        body_of(with_payload("CreateCustomer", is_vip="true")),
        MID,
        "CreateCustomer",
        "payload.is_vip: Input should be a valid boolean",
    ),
    "string for an int": (
        body_of(with_payload("SearchFaq", limit="10")),
        MID,
        "SearchFaq",
        "payload.limit: Input should be a valid integer",
    ),
    "string version": (body_of({**CREATE, "version": "1"}), MID, "CreateCustomer", "version"),
    "version zero": (body_of({**CREATE, "version": 0}), MID, "CreateCustomer", "version"),
    "version from the future": (
        body_of({**CREATE, "version": 2}),
        MID,
        "CreateCustomer",
        "newer than this contract knows",
    ),
    "unix timestamp": (
        body_of({**CREATE, "occurred_at": 1_700_000_000}),
        MID,
        "CreateCustomer",
        "occurred_at",
    ),
    "naive timestamp": (
        body_of({**CREATE, "occurred_at": "2026-11-21T10:00:00"}),
        MID,
        "CreateCustomer",
        "timezone",
    ),
    "bad enum value": (
        body_of(with_payload("OpenAccount", account_type="mortgage")),
        MID,
        "OpenAccount",
        "payload.account_type",
    ),
    "bad uuid": (
        body_of(with_payload("AppendMessage", conversation_id="not-a-uuid")),
        MID,
        "AppendMessage",
        "valid UUID",
    ),
    "negative amount": (
        body_of(with_payload("RecordTransaction", amount="-12.50")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "zero amount": (
        body_of(with_payload("RecordTransaction", amount="0.00")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "three decimal places": (
        body_of(with_payload("RecordTransaction", amount="12.505")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "exponent amount": (
        body_of(with_payload("RecordTransaction", amount="1e3")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "nan amount": (
        body_of(with_payload("RecordTransaction", amount="NaN")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "json number amount": (
        body_of(with_payload("RecordTransaction", amount=12.5)),
        MID,
        "RecordTransaction",
        "not a JSON number",
    ),
    "sixteen integer digits": (
        body_of(with_payload("RecordTransaction", amount="1234567890123456")),
        MID,
        "RecordTransaction",
        "payload.amount",
    ),
    "content too long": (
        body_of(with_payload("AppendMessage", content="x" * 10_001)),
        MID,
        "AppendMessage",
        "at most 10000 characters",
    ),
    "blank content": (
        body_of(with_payload("AppendMessage", content=" \n\t ")),
        MID,
        "AppendMessage",
        "payload.content",
    ),
    "nul in a name": (
        body_of(with_payload("CreateCustomer", full_name="Ada\x00Lovelace")),
        MID,
        "CreateCustomer",
        "payload.full_name",
    ),
    "huge string": (
        body_of(with_payload("CreateCustomer", full_name="A" * 1_000_000)),
        MID,
        "CreateCustomer",
        "at most 200 characters",
    ),
    "huge message_id": (
        body_of({**CREATE, "message_id": "m" * 1_000_000}),
        None,
        "CreateCustomer",
        "at most 128",
    ),
    "limit above maximum": (
        body_of(with_payload("SearchFaq", limit=51)),
        MID,
        "SearchFaq",
        "less than or equal to 50",
    ),
    "too many accounts": (
        body_of(with_payload("FreezeAccounts", account_numbers=[str(n) for n in range(1001)])),
        MID,
        "FreezeAccounts",
        "at most 1000",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_body_is_an_invalid_message_with_what_could_be_peeked(case: str) -> None:
    body, message_id, message_type, expected = CASES[case]

    error = rejected(body)

    assert (error.message_id, error.type) == (message_id, message_type)
    assert expected in str(error)
    assert str(error) == error.reason
    assert len(str(error)) <= MAX_ERROR_MESSAGE_CHARS
    assert isinstance(error, ValueError)


PII = {
    "email": "jane.secret.doe@private-mail.example",
    "full_name": "Jane Secretname Doe",
    "phone": "+44 7700 900 461",
    "reason": "Customer SSN 078-05-1120 was exposed",
    "content": "My card number is 4111 1111 1111 1111",
}

PII_BODIES = {
    "valid pii next to an unknown field": with_payload(
        "CreateCustomer", email=PII["email"], full_name=PII["full_name"], ssn="078-05-1120"
    ),
    "pii in an invalid email": with_payload("CreateCustomer", email=PII["full_name"]),
    "pii in an overlong name": with_payload("CreateCustomer", full_name=PII["full_name"] * 20),
    "pii in a bad phone": with_payload("CreateCustomer", phone=PII["reason"]),
    "pii as a wrong type": with_payload("CreateCustomer", is_vip=PII["email"]),
    "pii as a type": {**CREATE, "type": PII["content"]},
    "pii as a uuid": with_payload("AppendMessage", conversation_id=PII["content"]),
    "pii in an overlong content": with_payload("AppendMessage", content=PII["content"] * 400),
    "pii in an amount": with_payload("RecordTransaction", amount=PII["content"]),
    "pii in a literal": with_payload("OpenAccount", account_type=PII["email"]),
    "pii in a timestamp": {**CREATE, "occurred_at": PII["phone"]},
    "valid pii in a reason next to an error": with_payload(
        "EscalateConversation", reason=PII["reason"], x=1
    ),
}


@pytest.mark.parametrize("case", PII_BODIES, ids=list(PII_BODIES))
def test_error_text_never_contains_input_values(case: str) -> None:
    error = rejected(body_of(PII_BODIES[case]))

    text = f"{error} {error!r} {error.reason}"
    for value in (*PII.values(), "078-05-1120", "4111", "Secretname", "private-mail"):
        assert value not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_error_text_is_truncated_and_mentions_further_errors() -> None:
    payload = {f"field_{n}_{'x' * 40}": n for n in range(50)}

    error = rejected(body_of({**CREATE, "payload": payload}))

    assert len(str(error)) <= MAX_ERROR_MESSAGE_CHARS
    assert "more errors" in str(error) or str(error).endswith("…")


def test_odd_characters_in_unknown_field_names_are_neutralised() -> None:
    error = rejected(body_of(with_payload("CreateCustomer", **{"bad\nkey\x1b[31m": 1})))

    assert "\n" not in str(error)
    assert "\x1b" not in str(error)


def test_body_over_the_size_limit_is_rejected_unparsed() -> None:
    body = body_of(CREATE)

    with pytest.raises(InvalidMessage, match="exceeds the limit") as caught:
        parse_message(body, max_bytes=len(body) - 1)

    assert (caught.value.message_id, caught.value.type) == (None, None)
    assert parse_message(body, max_bytes=len(body)).message_id == MID


def test_parse_event_rejects_a_command_body() -> None:
    with pytest.raises(InvalidMessage, match="unknown message type"):
        parse_event(body_of(CREATE))


def test_parse_event_requires_causation_and_occurred_at() -> None:
    event = without(example_message("CustomerCreated"), "causation_id", "occurred_at")

    with pytest.raises(InvalidMessage) as caught:
        parse_event(body_of(event))

    assert "causation_id: Field required" in str(caught.value)
    assert "occurred_at: Field required" in str(caught.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_either_parse_or_raise_invalid_message(body: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        parse_message(body)


@settings(max_examples=300, deadline=None, database=None)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["message_id", "type", "version", "payload", "occurred_at", "x"]),
        JSON_VALUES,
    ),
    message_type=st.sampled_from(["CreateCustomer", "RecordTransaction", "SearchFaq", "Nope"]),
)
def test_arbitrary_json_objects_raise_only_invalid_message(
    envelope: dict[str, Any], message_type: str
) -> None:
    body = json.dumps({"type": message_type, **envelope}).encode()
    caught: InvalidMessage | None = None
    try:
        parse_message(body)
    except InvalidMessage as error:
        caught = error
    if caught is not None:
        assert len(str(caught)) <= MAX_ERROR_MESSAGE_CHARS
        assert caught.type is None or caught.type == envelope.get("type", message_type)
