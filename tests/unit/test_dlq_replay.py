"""What a replay publishes, how outcomes are summed up and shown, how the CLI refuses bad usage.

The fixtures' AMQP ``message_id`` differs from their envelope's, or is absent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aio_pika import DeliveryMode
from click.testing import CliRunner

from contracts import body_digest_id
from worker.cli.dlq import dlq
from worker.dlq.groups import Tally
from worker.dlq.model import parse_dead_letter
from worker.dlq.render import body_text, described, groups_table, page, shorten, table
from worker.dlq.replay import Failure, ReplaySummary, replay_headers, replay_message
from worker.dlq.window import ReplayWindow

pytestmark = pytest.mark.unit

STAMP = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
WINDOW = ReplayWindow(14, STAMP + timedelta(days=1))
BODY = b'{"message_id": "m-1",  "type": "CreateCustomer"}\n'
HEADERS: dict[str, object] = {
    "fca-error-type": "transient",
    "fca-error-message": "database unavailable",
    "fca-attempts": 5,
    "fca-first-failed-at": "2026-11-21T10:00:00+00:00",
    "fca-original-routing-key": "CreateCustomer",
    "trace-id": "abc",
    "x-death": [{"reason": "expired"}],
    "X-Delivery-Count": 3,
}
PROPERTIES: dict[str, object] = {
    "message_id": "0b99a9203f334dcd9ea6c61c31edf21f",
    "type": "CreateCustomer",
    "correlation_id": "chat-42",
    "reply_to": "amq.gen-reply",
    "content_type": "application/json",
    "timestamp": STAMP,
    "expiration": "60000",
    "user_id": "someone-else",
}


def test_replay_headers_drop_broker_headers_and_attempts_and_count_the_replay() -> None:
    headers = replay_headers(HEADERS)

    assert not [name for name in headers if name.lower().startswith("x-")]
    assert "fca-attempts" not in headers
    assert headers["fca-replay-count"] == 1
    assert headers["fca-original-routing-key"] == "CreateCustomer"
    assert headers["trace-id"] == "abc"


@pytest.mark.parametrize(("before", "after"), [(b"2", 3), ("2", 3), (2, 3), (b"junk", 1)])
def test_replay_count_grows_by_one_whatever_its_encoding(before: object, after: int) -> None:
    assert replay_headers({"fca-replay-count": before})["fca-replay-count"] == after


def test_replay_message_keeps_body_and_identity_and_drops_expiry() -> None:
    letter = parse_dead_letter(0, BODY, HEADERS, PROPERTIES)

    message = replay_message(letter)

    assert message.body == BODY
    assert message.message_id == "m-1"  # the envelope's, not the copy's random property
    assert message.type == "CreateCustomer"
    assert message.correlation_id == "chat-42"
    assert message.reply_to == "amq.gen-reply"
    assert message.content_type == "application/json"
    assert message.delivery_mode == DeliveryMode.PERSISTENT
    assert message.expiration is None
    assert message.user_id is None
    assert message.headers["fca-replay-count"] == 1


@pytest.mark.parametrize(
    ("body", "properties", "expected"),
    [
        (BODY, {}, "m-1"),
        (b"garbage", {"message_id": "from-the-sender"}, "from-the-sender"),
        (b"garbage", {}, body_digest_id(b"garbage")),
    ],
    ids=["envelope", "property", "digest"],
)
def test_a_replay_never_gets_a_new_message_id(
    body: bytes, properties: dict[str, object], expected: str
) -> None:
    message = replay_message(parse_dead_letter(0, body, HEADERS, properties))

    assert message.message_id == expected


def test_replays_to_the_original_routing_key_else_the_type() -> None:
    with_key = parse_dead_letter(0, b"{}", {"fca-original-routing-key": "a.b"}, {"type": "T"})
    without_key = parse_dead_letter(0, b"{}", {}, {"type": "T"})

    assert with_key.routing_key == "a.b"
    assert without_key.routing_key == "T"


def test_summary_counts_skipped_as_looked_at_but_not_selected() -> None:
    summary = ReplaySummary(dry_run=False, scanned=10, selected=["a", "b", "c"])
    summary.replayed = ["a", "b"]
    summary.failed = [Failure("c", "unroutable")]

    record = summary.record()

    assert summary.skipped == 7
    assert record["message_ids"] == ["a", "b"]
    assert record["failures"] == [{"message_id": "c", "reason": "unroutable"}]


def test_a_dry_run_records_the_ids_it_would_replay() -> None:
    summary = ReplaySummary(dry_run=True, scanned=3, selected=["a", "b"], admitted=["a"])
    summary.refused = [Failure("b", "too old")]

    record = summary.record()

    assert record["message_ids"] == ["a"]
    assert (record["refused"], record["refusals"]) == (
        1,
        [{"message_id": "b", "reason": "too old"}],
    )
    assert not summary.complete


def test_table_has_one_line_per_letter_and_dashes_for_unknowns() -> None:
    letter = parse_dead_letter(0, b"", {}, {})

    lines = table([letter], WINDOW).splitlines()

    assert lines[0].split()[:2] == ["MESSAGE", "ID"]
    assert lines[0].split()[-2:] == ["AGE", "REPLAYABLE"]
    assert lines[1].startswith(body_digest_id(b""))
    assert lines[1].split()[-2:] == ["-", "no"]
    assert len(lines) == 2


def test_table_shows_age_group_and_whether_replayable() -> None:
    letter = parse_dead_letter(0, BODY, HEADERS, PROPERTIES)

    [line] = table([letter], WINDOW).splitlines()[1:]

    assert line.startswith("m-1 ")
    assert letter.group in line
    assert line.split()[-3:] == ["1d", "0h", "yes"]
    assert described(letter, WINDOW)["replayable"] is True


def test_groups_table_has_one_line_per_group() -> None:
    tally = Tally(WINDOW)
    ours = {k: v for k, v in HEADERS.items() if not k.lower().startswith("x-")}
    tally.add(parse_dead_letter(0, BODY, ours, PROPERTIES))

    header, line = groups_table(tally.groups()).splitlines()

    assert header.split()[:2] == ["GROUP", "TYPE"]
    assert line.split()[1:5] == ["CreateCustomer", "transient", "1", "1"]
    assert line.endswith("database unavailable")


def test_shorten_keeps_one_line_and_cuts_long_text() -> None:
    assert shorten("a\nb") == "a b"
    assert len(shorten("x" * 500)) == 48


def test_body_is_shown_as_indented_json_or_as_escaped_bytes() -> None:
    assert body_text(b'{"a":1}') == '{\n  "a": 1\n}'
    assert body_text(b"\xff\x00") == "b'\\xff\\x00'"


def test_page_shows_properties_headers_and_body() -> None:
    letter = parse_dead_letter(0, b'{"a":1}', HEADERS, PROPERTIES)

    shown = page(letter, WINDOW)

    assert '"fca-error-message": "database unavailable"' in shown
    assert '"reason": "expired"' in shown
    assert '"correlation_id": "chat-42"' in shown
    assert json.dumps(STAMP.isoformat()) in shown
    assert shown.endswith('{\n  "a": 1\n}')
    assert '"id_source": "property"' in shown
    assert '"replayable": true' in shown


def test_page_says_why_a_dead_letter_may_not_be_replayed() -> None:
    letter = parse_dead_letter(0, BODY, HEADERS, PROPERTIES)

    shown = page(letter, ReplayWindow(14, STAMP + timedelta(days=30)))

    assert '"replayable": false' in shown
    assert "beyond the 14-day replay window" in shown


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["purge", "--all"], "--yes"),
        (["purge", "--group", "g"], "--yes"),
        (["purge", "--yes"], "say which messages"),
        (["purge", "--all", "--group", "g", "--yes"], "cannot be combined"),
        (["replay"], "say which messages"),
        (["replay", "--all", "--type", "T"], "cannot be combined"),
        (["replay", "--all", "--group", "g"], "cannot be combined"),
        (["replay", "--all", "--limit", "0"], "--limit"),
        (["show"], "MESSAGE_ID or --group"),
    ],
)
def test_cli_refuses_bad_usage_before_touching_the_broker(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(dlq, args, env={"WORKER_AMQP_URL": "amqp://nobody@127.0.0.1:1/"})

    assert result.exit_code == 2
    assert complaint in result.output
