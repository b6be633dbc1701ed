"""Dead-letter groups: the error fingerprint, stable group ids, and counting a pass."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from worker.dlq.groups import Tally, group_of, pattern
from worker.dlq.model import DeadLetter, parse_dead_letter
from worker.dlq.window import ReplayWindow

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def dead_letter(
    message_type: str,
    error_type: str,
    error_message: str,
    *,
    first: datetime = NOW,
    last: datetime | None = None,
) -> DeadLetter:
    """A dead letter as the worker writes one; its AMQP message_id differs from the body's."""
    message_id = str(uuid.uuid4())
    body = json.dumps({"message_id": message_id, "type": message_type}).encode()
    headers: dict[str, object] = {
        "fca-error-type": error_type,
        "fca-error-message": error_message,
        "fca-first-failed-at": first.isoformat(),
        "fca-last-failed-at": (last or first).isoformat(),
    }
    return parse_dead_letter(0, body, headers, {"message_id": uuid.uuid4().hex})


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("transient: OperationalError", "transient: OperationalError"),
        (
            "body of 300000 bytes exceeds the 262144-byte limit",
            "body of <n> bytes exceeds the <n>-byte limit",
        ),
        (
            "customer 7b6f1c1e-0000-4000-8000-000000000001 not found",
            "customer <uuid> not found",
        ),
        ("at 2026-11-21T10:00:00.123+00:00 in p03", "at <time> in p<n>"),
        ("digest sha256:9f86d081884c7d65 and 12345678", "digest sha<n>:<hex> and <n>"),
        ("a  multi\nline   message", "a multi line message"),
        (
            "payload.amount: value is not a valid decimal",
            "payload.amount: value is not a valid decimal",
        ),
        ("deadbeef facade", "deadbeef facade"),
    ],
)
def test_pattern_replaces_what_varies_and_keeps_the_words(message: str, expected: str) -> None:
    assert pattern(message) == expected


def test_errors_that_differ_only_in_ids_and_numbers_share_a_group() -> None:
    one = group_of("RecordTransaction", "transient", "timeout after 30s on p03 (ACC-00000012)")
    two = group_of("RecordTransaction", "transient", "timeout after 31s on p11 (ACC-00000977)")

    assert one == two


@pytest.mark.parametrize(
    "other",
    [
        ("OpenAccount", "transient", "timeout after 30s"),
        ("RecordTransaction", "unexpected", "timeout after 30s"),
        ("RecordTransaction", "transient", "deadlock detected"),
        (None, "transient", "timeout after 30s"),
    ],
)
def test_type_error_type_and_error_each_split_groups(other: tuple[str | None, str, str]) -> None:
    assert group_of("RecordTransaction", "transient", "timeout after 30s") != group_of(*other)


def test_group_ids_are_stable_across_runs() -> None:
    group, fingerprint = group_of("CreateCustomer", "transient", "transient: OperationalError")

    # Fixed values: operators keep group ids in tickets and runbooks between runs.
    assert (group, fingerprint) == ("c70dcded8cfd", "689a9fa42f40")


def test_a_tally_counts_each_group_with_its_first_and_last_failure() -> None:
    window = ReplayWindow(14, NOW)
    early, late = NOW - timedelta(days=20), NOW - timedelta(hours=1)
    letters = [
        dead_letter("OpenAccount", "transient", "timeout after 3s", first=NOW - timedelta(days=2)),
        dead_letter("CreateCustomer", "invalid_message", "payload.email: bad"),
        dead_letter("OpenAccount", "transient", "timeout after 5s", first=early, last=late),
        dead_letter("OpenAccount", "transient", "timeout after 9s"),
    ]
    tally = Tally(window)
    for letter in letters:
        tally.add(letter)

    first, second = tally.groups()

    assert (first.id, first.count, first.replayable) == (letters[0].group, 3, 2)
    assert (first.type, first.error_type, first.pattern) == (
        "OpenAccount",
        "transient",
        "timeout after <n>s",
    )
    assert (first.first_seen, first.last_seen) == (early, NOW)
    assert first.example == letters[0].message_id
    assert (second.id, second.count) == (letters[1].group, 1)
    assert first.summary()["first_seen"] == early.isoformat()
    json.dumps(first.summary())
