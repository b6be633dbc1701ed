"""Reading dead letters: headers as the worker and the broker write them, and selection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts.examples import example_message
from contracts.fields import ErrorType
from worker.dlq.headers import PEEK_LIMIT, integer, peek, plain, text
from worker.dlq.model import UNKNOWN_ERROR_TYPE, DeadLetter, Selector, parse_dead_letter
from worker.messaging.consumer import failure_headers
from worker.messaging.delivery import Delivery
from worker.messaging.fate import Failure

pytestmark = pytest.mark.unit

DIED_AT = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def command_body(message_type: str = "CreateCustomer") -> tuple[str, bytes]:
    """A fresh message id and a valid command body carrying it."""
    message_id = str(uuid.uuid4())
    return message_id, json.dumps(
        {**example_message(message_type), "message_id": message_id}
    ).encode()


def worker_dead_letter(
    *, error_type: str = "transient", attempt: int = 3, props: dict[str, object] | None = None
) -> DeadLetter:
    """A dead letter with the headers the worker's consumer writes."""
    message_id, body = command_body()
    delivery = Delivery(body=body, routing_key="CreateCustomer", message_id=message_id)
    failure = Failure(ErrorType(error_type), "database unavailable", attempt)
    headers = dict(failure_headers(delivery, failure))
    properties = (
        props if props is not None else {"message_id": message_id, "type": "CreateCustomer"}
    )
    return parse_dead_letter(7, body, headers, properties)


def broker_headers() -> dict[str, object]:
    """Headers of a message the broker moved to the DLQ at its delivery limit (3.10)."""
    death = {
        "count": 1,
        "reason": "delivery_limit",
        "queue": "fca.worker.commands",
        "time": DIED_AT,
        "exchange": "fca.commands",
        "routing-keys": ["OpenAccount"],
    }
    return {
        "x-death": [death],
        "x-delivery-count": 0,
        "x-first-death-exchange": "fca.commands",
        "x-first-death-queue": "fca.worker.commands",
        "x-first-death-reason": "delivery_limit",
    }


def test_reads_the_failure_record_the_worker_writes() -> None:
    letter = worker_dead_letter()

    assert letter.position == 7
    assert letter.type == "CreateCustomer"
    assert letter.error_type == "transient"
    assert letter.error_message == "database unavailable"
    assert letter.attempts == 3
    assert letter.first_failed_at is not None
    assert letter.last_failed_at == letter.first_failed_at
    assert letter.original_routing_key == "CreateCustomer"
    assert letter.routing_key == "CreateCustomer"
    assert letter.replay_count == 0


def test_reads_header_values_that_arrive_as_bytes() -> None:
    headers: dict[str, object] = {
        "fca-error-type": b"unexpected",
        "fca-error-message": b"boom",
        "fca-attempts": b"4",
        "fca-replay-count": "2",
        "fca-original-routing-key": b"OpenAccount",
        "fca-first-failed-at": b"2026-11-21T10:00:00+00:00",
    }
    letter = parse_dead_letter(0, b"{}", headers, {})

    assert (letter.error_type, letter.error_message) == ("unexpected", "boom")
    assert (letter.attempts, letter.replay_count) == (4, 2)
    assert letter.original_routing_key == "OpenAccount"
    assert letter.first_failed_at == "2026-11-21T10:00:00+00:00"


def test_takes_id_and_type_from_the_body_when_the_properties_lack_them() -> None:
    letter = worker_dead_letter(props={})
    envelope = json.loads(letter.body)

    assert letter.message_id == envelope["message_id"]
    assert letter.type == "CreateCustomer"


def test_prefers_the_amqp_properties_to_the_body() -> None:
    letter = worker_dead_letter(props={"message_id": "from-props", "type": "OpenAccount"})

    assert (letter.message_id, letter.type) == ("from-props", "OpenAccount")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'"a string"', b"", b"[" * 100_000],
    ids=["text", "binary", "array", "string", "empty", "deeply-nested"],
)
def test_never_fails_on_a_body_that_is_not_a_json_object(body: bytes) -> None:
    letter = parse_dead_letter(0, body, {"fca-error-type": "invalid_message"}, {})

    assert (letter.message_id, letter.type) == (None, None)
    assert letter.error_type == "invalid_message"
    assert letter.routing_key is None


def test_does_not_parse_bodies_over_the_peek_limit() -> None:
    body = json.dumps({"message_id": "m", "pad": "x" * PEEK_LIMIT}).encode()

    assert peek(body) == {}


def test_describes_a_message_the_broker_dead_lettered_at_its_delivery_limit() -> None:
    letter = parse_dead_letter(0, b"{}", broker_headers(), {"type": "OpenAccount"})

    assert letter.error_type == "delivery_limit"
    assert "broker" in letter.error_message
    assert "fca.worker.commands" in letter.error_message
    assert letter.first_failed_at == letter.last_failed_at == DIED_AT.isoformat()
    assert letter.original_routing_key == "OpenAccount"
    assert letter.attempts is None


def test_the_broker_record_wins_over_an_older_worker_record() -> None:
    headers = {**broker_headers(), "fca-error-type": "transient", "fca-attempts": 2}

    letter = parse_dead_letter(0, b"{}", headers, {})

    assert letter.error_type == "delivery_limit"
    assert letter.attempts == 2


def test_a_message_without_any_failure_record_has_an_unknown_error_type() -> None:
    letter = parse_dead_letter(0, b"{}", {}, {})

    assert letter.error_type == UNKNOWN_ERROR_TYPE
    assert letter.error_message == ""
    assert letter.first_failed_at is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), ("3", 3), (b" 3 ", 3), (True, None), ("three", None), (None, None), (2.5, None)],
)
def test_integer_reads_whole_numbers_however_they_arrive(
    value: object, expected: int | None
) -> None:
    assert integer(value) == expected


def test_plain_makes_header_values_json_friendly() -> None:
    value = {"b": b"x", "bad": b"\xff", "at": DIED_AT, "list": [b"y", 1], "none": None}

    shown = plain(value)

    assert shown == {
        "b": "x",
        "bad": "b'\\xff'",
        "at": DIED_AT.isoformat(),
        "list": ["y", 1],
        "none": None,
    }
    json.dumps(shown)


def test_text_of_an_empty_value_is_none() -> None:
    assert text(b"") is None
    assert text("") is None
    assert text(5) == "5"


def letter_with(message_id: str, message_type: str, error_type: str) -> DeadLetter:
    """A dead letter with just these three facts."""
    props = {"message_id": message_id, "type": message_type}
    return parse_dead_letter(0, b"{}", {"fca-error-type": error_type}, props)


def test_an_empty_selector_selects_everything() -> None:
    selector = Selector.of()

    assert selector.selects_all
    assert selector.matches(letter_with("a", "CreateCustomer", "transient"))


def test_every_given_criterion_must_hold() -> None:
    selector = Selector.of(type="CreateCustomer", error_type="transient")

    assert selector.matches(letter_with("a", "CreateCustomer", "transient"))
    assert not selector.matches(letter_with("a", "CreateCustomer", "unexpected"))
    assert not selector.matches(letter_with("a", "OpenAccount", "transient"))


def test_selects_by_any_of_several_message_ids() -> None:
    selector = Selector.of(message_ids=["a", "b"])

    assert selector.matches(letter_with("b", "T", "transient"))
    assert not selector.matches(letter_with("c", "T", "transient"))
    assert not selector.selects_all
    assert selector.describe()["message_ids"] == ["a", "b"]
