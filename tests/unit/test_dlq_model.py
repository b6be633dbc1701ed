"""Reading dead letters: their name, headers as the worker and the broker write them, selection.

Every fixture gives the body and the AMQP ``message_id`` property different ids (or no
property at all), so a check on the name cannot pass by reading the wrong one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts import body_digest_id
from contracts.examples import example_message
from contracts.fields import ErrorType
from contracts.headers import dead_letter_headers_schema
from worker.dlq.headers import PEEK_LIMIT, instant, integer, peek, plain, text
from worker.dlq.model import UNKNOWN_ERROR_TYPE, DeadLetter, Selector, parse_dead_letter
from worker.messaging.consumer import failure_headers
from worker.messaging.delivery import Delivery, parse
from worker.messaging.fate import Failure

pytestmark = pytest.mark.unit

DIED_AT = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def other_id() -> str:
    """An AMQP message id unlike any envelope id (as an older worker's random copy id)."""
    return uuid.uuid4().hex


def command_body(message_type: str = "CreateCustomer") -> tuple[str, bytes]:
    """A fresh message id and a valid command body carrying it."""
    message_id = str(uuid.uuid4())
    return message_id, json.dumps(
        {**example_message(message_type), "message_id": message_id}
    ).encode()


def worker_dead_letter(
    *, error_type: str = "transient", attempt: int = 3, props: dict[str, object] | None = None
) -> DeadLetter:
    """A dead letter with the headers the worker's consumer writes, and another AMQP id."""
    _, body = command_body()
    delivery = Delivery(body=body, routing_key="CreateCustomer", message_id=other_id())
    failure = Failure(ErrorType(error_type), "database unavailable", attempt)
    headers = dict(failure_headers(delivery, failure))
    properties = props if props is not None else {"message_id": other_id(), "type": "OpenAccount"}
    return parse_dead_letter(7, body, headers, properties)


def test_the_error_message_header_stays_within_the_contracts_limit() -> None:
    _, body = command_body()
    delivery = Delivery(body=body, routing_key="CreateCustomer")
    failure = Failure(ErrorType.UNEXPECTED, "x" * 2000, 1)

    headers = dict(failure_headers(delivery, failure))

    limit = dead_letter_headers_schema()["properties"]["fca-error-message"]["maxLength"]
    assert len(str(headers["fca-error-message"])) == limit == 500


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


def test_is_named_by_the_envelope_not_by_the_amqp_property() -> None:
    amqp_id = other_id()
    letter = worker_dead_letter(props={"message_id": amqp_id, "type": "OpenAccount"})
    envelope = json.loads(letter.body)

    assert envelope["message_id"] != amqp_id
    assert (letter.message_id, letter.id_source) == (envelope["message_id"], "envelope")
    assert letter.type == "CreateCustomer"
    assert letter.summary()["message_id"] == envelope["message_id"]


def test_is_named_by_the_envelope_when_there_is_no_amqp_property() -> None:
    letter = worker_dead_letter(props={})

    assert letter.message_id == json.loads(letter.body)["message_id"]
    assert letter.type == "CreateCustomer"


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "CreateCustomer", "payload": {}}',
        b'{"message_id": 42, "type": "CreateCustomer"}',
        b'{"message_id": "", "type": "CreateCustomer"}',
        json.dumps({"message_id": "x" * 129}).encode(),
        b'{"message_id": "two\\nlines"}',
        '{"message_id": "in-utf-16"}'.encode("utf-16"),
        b"not json",
    ],
    ids=["no-id", "number", "empty", "too-long", "two-lines", "not-utf-8", "not-json"],
)
def test_falls_back_to_the_amqp_property_only_when_the_body_has_no_usable_id(body: bytes) -> None:
    amqp_id = other_id()

    letter = parse_dead_letter(0, body, {}, {"message_id": amqp_id, "type": "OpenAccount"})

    assert (letter.message_id, letter.id_source) == (amqp_id, "property")


@pytest.mark.parametrize("props", [{}, {"message_id": "bad\nid"}, {"message_id": ""}])
def test_a_dead_letter_without_any_usable_id_is_named_by_its_body_digest(
    props: dict[str, object],
) -> None:
    body = b'{"type": "CreateCustomer"'

    letter = parse_dead_letter(0, body, {}, props)

    expected = "sha256:" + hashlib.sha256(body).hexdigest()
    assert (letter.message_id, letter.id_source) == (expected, "digest")
    assert letter.message_id == body_digest_id(body)


def test_reads_the_id_of_a_truncated_body_as_the_worker_does() -> None:
    message_id, body = command_body()

    letter = parse_dead_letter(0, body[: len(body) - 20], {}, {"message_id": other_id()})

    assert letter.message_id == message_id


@pytest.mark.parametrize(
    ("body", "amqp_id"),
    [
        (command_body()[1], other_id()),
        (command_body()[1], None),
        (b'{"message_id": "m-1", "type": "CreateCustomer", "payload": {"bad": 1}}', other_id()),
        (b'{"message_id": "m-2", "type": "CreateCus', None),
        (b'{"type": "CreateCustomer", "payload": {}}', other_id()),
        (b'{"type": "CreateCustomer", "payload": {}}', None),
        (b"\xff\xfe garbage", other_id()),
        (b"\xff\xfe garbage", None),
        (b"", None),
    ],
    # Named, not shown: the AMQP ids are random, and test ids must be the same in every
    # process collecting them (pytest-xdist compares them).
    ids=[
        "valid-amqp-id",
        "valid",
        "invalid-payload-amqp-id",
        "truncated",
        "no-id-amqp-id",
        "no-id",
        "garbage-amqp-id",
        "garbage",
        "empty",
    ],
)
def test_names_every_dead_letter_as_the_worker_names_its_copy(
    body: bytes, amqp_id: str | None
) -> None:
    worker = parse(Delivery(body, "CreateCustomer", message_id=amqp_id), max_body_bytes=1 << 20)

    letter = parse_dead_letter(0, body, {}, {"message_id": amqp_id})

    assert letter.message_id == (worker.message_id or body_digest_id(body))


def test_does_not_parse_bodies_over_the_peek_limit() -> None:
    body = json.dumps({"message_id": "m", "pad": "x" * PEEK_LIMIT}).encode()

    assert peek(body) == {}
    assert parse_dead_letter(0, body, {}, {"message_id": "amqp-m"}).message_id == "amqp-m"


def test_describes_a_message_the_broker_dead_lettered_at_its_delivery_limit() -> None:
    message_id, body = command_body("OpenAccount")
    letter = parse_dead_letter(0, body, broker_headers(), {"message_id": other_id()})

    assert letter.message_id == message_id
    assert letter.type == "OpenAccount"

    assert letter.error_type == "delivery_limit"
    assert "broker" in letter.error_message
    assert "fca.worker.commands" in letter.error_message
    assert letter.first_failed_at == letter.last_failed_at == DIED_AT.isoformat()
    assert letter.dead_since == DIED_AT
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
    assert letter.dead_since is None


def test_dates_a_dead_letter_from_its_first_failure_else_the_broker_else_its_timestamp() -> None:
    ours = {"fca-first-failed-at": "2026-11-20T08:00:00+01:00"}
    stamp = {"timestamp": datetime(2026, 11, 1, 12, 0)}  # naive, as the client may give it

    assert parse_dead_letter(0, b"", {**broker_headers(), **ours}, stamp).dead_since == datetime(
        2026, 11, 20, 7, 0, tzinfo=UTC
    )
    assert parse_dead_letter(0, b"", broker_headers(), stamp).dead_since == DIED_AT
    assert parse_dead_letter(0, b"", {}, stamp).dead_since == datetime(2026, 11, 1, 12, tzinfo=UTC)
    garbled = {"fca-first-failed-at": "yesterday", **broker_headers()}
    assert parse_dead_letter(0, b"", garbled, {}).dead_since == DIED_AT


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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (DIED_AT, DIED_AT),
        (DIED_AT.replace(tzinfo=None), DIED_AT),
        (b"2026-11-22T09:30:00+00:00", DIED_AT),
        ("2026-11-22T10:30:00+01:00", DIED_AT),
        ("not a time", None),
        (None, None),
        (17, None),
    ],
)
def test_instant_reads_times_however_they_arrive(value: object, expected: datetime | None) -> None:
    assert instant(value) == expected


def letter_with(message_id: str, message_type: str, error_type: str) -> DeadLetter:
    """A dead letter with just these three facts in its body, and other ones in its properties."""
    body = json.dumps({"message_id": message_id, "type": message_type}).encode()
    props = {"message_id": f"amqp-{message_id}", "type": "SomethingElse"}
    return parse_dead_letter(0, body, {"fca-error-type": error_type}, props)


def test_an_empty_selector_selects_everything() -> None:
    selector = Selector.of()

    assert selector.selects_all
    assert selector.matches(letter_with("a", "CreateCustomer", "transient"))


def test_every_given_criterion_must_hold() -> None:
    selector = Selector.of(type="CreateCustomer", error_type="transient")

    assert selector.matches(letter_with("a", "CreateCustomer", "transient"))
    assert not selector.matches(letter_with("a", "CreateCustomer", "unexpected"))
    assert not selector.matches(letter_with("a", "OpenAccount", "transient"))
    assert not Selector.of(type="SomethingElse").matches(letter_with("a", "OpenAccount", "x"))


def test_selects_by_any_of_several_envelope_ids_and_never_by_the_amqp_id() -> None:
    selector = Selector.of(message_ids=["a", "b"])

    assert selector.matches(letter_with("b", "T", "transient"))
    assert not selector.matches(letter_with("c", "T", "transient"))
    assert not Selector.of(message_ids=["amqp-b"]).matches(letter_with("b", "T", "transient"))
    assert not selector.selects_all
    assert selector.describe()["message_ids"] == ["a", "b"]


def test_selects_by_group() -> None:
    letter = letter_with("a", "CreateCustomer", "transient")
    other = letter_with("b", "OpenAccount", "transient")

    selector = Selector.of(group=letter.group)

    assert not selector.selects_all
    assert selector.matches(letter)
    assert not selector.matches(other)
    assert selector.describe()["group"] == letter.group
