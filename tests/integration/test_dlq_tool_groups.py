"""Dead-letter groups against a real broker: ``groups``, and ``--group`` on every command.

The DLQ holds three failures interleaved: RecordTransaction timeouts whose messages differ
only in numbers (one group), CreateCustomer validation errors (another) and RecordTransaction
bugs (a third). Replaying or purging a group keeps the tool's guarantees: only the group
leaves, what stays keeps its order, every removal is named in the audit log first, and a run
killed half-way loses nothing. Fixtures and helpers are those of ``test_dlq_tool.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testkit.services import run_sync
from tests.integration.test_dlq_tool import (
    SLOW_ACKS,
    Letter,
    audit_records,
    dlq_settings,
    envelope_id,
    invoke,
    kill_half_way,
    letter_views,
    make_letter,
    named_for_removal,
    setup_dlq,
    sink,
    take,
    views,
)
from worker.dlq.groups import group_of
from worker.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC) - timedelta(days=2)
TIMEOUT = ("RecordTransaction", "transient")
INVALID = ("CreateCustomer", "invalid_message", "payload.email: value is not a valid email")
BUG = ("RecordTransaction", "unexpected", "unexpected: KeyError")


@pytest.fixture
def settings(amqp_url: str, unique_name: Callable[[str], str]) -> Settings:
    """Settings naming exchanges and queues private to this test."""
    return dlq_settings(amqp_url, unique_name("dlq-groups"))


def failures(count: int) -> list[Letter]:
    """``count`` dead letters: 3 in 5 timeouts, then validation errors and bugs, interleaved.

    The i-th first failed ``i`` minutes after ``T0`` and last failed an hour later.
    """
    letters = []
    for i in range(count):
        first, last = T0 + timedelta(minutes=i), T0 + timedelta(minutes=i + 60)
        if i % 5 in (0, 2, 4):
            message = f"transient: timeout after {i % 40}s on p{i % 16:02d} (attempt {i})"
            facts = (*TIMEOUT, message)
        else:
            facts = INVALID if i % 5 == 1 else BUG
        letters.append(make_letter(*facts, index=i, first=first, last=last))
    return letters


def group_id(letter: Letter) -> str:
    """The group the tool should put ``letter`` in."""
    message = letter.headers["fca-error-message"]
    assert isinstance(message, str)
    return group_of(letter.type, letter.error_type, message)[0]


def members(letters: list[Letter], kind: tuple[str, ...]) -> list[Letter]:
    """The letters of one kind of failure (type and error type), in queue order."""
    return [x for x in letters if (x.type, x.error_type) == kind[:2]]


def test_groups_counts_each_failure_once_with_first_and_last_seen(
    settings: Settings, tmp_path: Path
) -> None:
    letters = failures(50)
    run_sync(setup_dlq(settings, letters))

    listed = invoke(settings, tmp_path, "groups", "--json")
    table = invoke(settings, tmp_path, "groups")
    only_bugs = invoke(settings, tmp_path, "groups", "--error-type", "unexpected", "--json")

    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.stdout)
    expected = [members(letters, kind) for kind in (TIMEOUT, INVALID, BUG)]
    assert [g["count"] for g in found] == [30, 10, 10]
    assert [g["group"] for g in found] == [group_id(x[0]) for x in expected]
    assert {group_id(x) for x in expected[0]} == {found[0]["group"]}  # numbers do not split it
    timeouts = found[0]
    assert (timeouts["type"], timeouts["error_type"]) == TIMEOUT
    assert timeouts["error"] == "transient: timeout after <n>s on p<n> (attempt <n>)"
    assert timeouts["first_seen"] == T0.isoformat()
    assert timeouts["last_seen"] == (T0 + timedelta(minutes=49 + 60)).isoformat()
    assert timeouts["example_message_id"] == letters[0].message_id
    assert timeouts["replayable"] == 30
    assert table.exit_code == 0
    assert [line.split()[:4] for line in table.stdout.splitlines()[1:]] == [
        [g["group"], g["type"], g["error_type"], str(g["count"])] for g in found
    ]
    assert [g["group"] for g in json.loads(only_bugs.stdout)] == [found[2]["group"]]
    assert views(run_sync(take(settings, settings.dead_letter_queue))) == letter_views(letters)


def test_list_and_show_take_a_group(settings: Settings, tmp_path: Path) -> None:
    letters = failures(20)
    run_sync(setup_dlq(settings, letters))
    invalid = members(letters, INVALID)
    group = group_id(invalid[0])

    listed = invoke(settings, tmp_path, "list", "--group", group, "--json")
    shown = invoke(settings, tmp_path, "show", "--group", group)
    one = invoke(settings, tmp_path, "show", invalid[1].message_id, "--group", group)
    wrong = invoke(settings, tmp_path, "show", letters[0].message_id, "--group", group)

    assert [row["message_id"] for row in json.loads(listed.stdout)] == [
        x.message_id for x in invalid
    ]
    assert {row["group"] for row in json.loads(listed.stdout)} == {group}
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count('"error_type": "invalid_message"') == len(invalid)
    assert one.stdout.count("\nbody (") == 1
    assert wrong.exit_code == 1
    assert f"no dead letter has message id {letters[0].message_id!r} and group" in wrong.output


@pytest.mark.parametrize("command", ["replay", "purge"])
def test_replaying_or_purging_a_group_removes_it_and_keeps_the_rest_in_order(
    settings: Settings, tmp_path: Path, command: str
) -> None:
    letters = failures(100)
    run_sync(setup_dlq(settings, letters))
    timeouts = members(letters, TIMEOUT)
    group = group_id(timeouts[0])
    confirm = ["--yes"] if command == "purge" else []

    result = invoke(settings, tmp_path, command, "--group", group, *confirm)

    assert result.exit_code == 0, result.output
    arrived = run_sync(take(settings, sink(settings)))
    expected = [x.message_id for x in timeouts] if command == "replay" else []
    assert [envelope_id(m) for m in arrived] == expected
    assert [m.message_id for m in arrived] == expected  # a replay carries the envelope id
    rest = [x for x in letters if x not in timeouts]
    assert views(run_sync(take(settings, settings.dead_letter_queue))) == letter_views(rest)
    records = audit_records(tmp_path / "audit.log")
    assert records[0]["selector"] == {
        "all": False,
        "message_ids": [],
        "type": None,
        "error_type": None,
        "group": group,
    }
    assert named_for_removal(tmp_path / "audit.log") == {x.message_id for x in timeouts}
    assert records[-1]["message_ids"] == [x.message_id for x in timeouts]


@pytest.mark.parametrize("command", ["replay", "purge"])
def test_a_group_run_killed_half_way_loses_nothing_and_names_every_removal(
    settings: Settings, tmp_path: Path, command: str
) -> None:
    letters = failures(300)
    run_sync(setup_dlq(settings, letters))
    timeouts = members(letters, TIMEOUT)
    chosen = {x.message_id for x in timeouts}
    args = [command, "--group", group_id(timeouts[0]), *(["--yes"] if command == "purge" else [])]

    kill_half_way(settings, tmp_path, SLOW_ACKS, *args)

    in_dlq = [envelope_id(m) for m in run_sync(take(settings, settings.dead_letter_queue))]
    on_commands = {envelope_id(m) for m in run_sync(take(settings, sink(settings)))}
    gone = {x.message_id for x in letters} - set(in_dlq)
    assert gone, "the kill came before anything left the DLQ"
    assert gone < chosen, "the kill came too late, or took more than the group"
    assert gone <= named_for_removal(tmp_path / "audit.log")
    assert set(Counter(in_dlq).values()) == {1}
    if command == "replay":
        assert gone <= on_commands <= chosen  # confirmed before it left, maybe left twice
    run_sync(setup_dlq(settings, [x for x in letters if x.message_id in set(in_dlq)]))

    again = invoke(settings, tmp_path, *args)

    assert again.exit_code == 0, again.output
    remaining = [envelope_id(m) for m in run_sync(take(settings, settings.dead_letter_queue))]
    assert remaining == [x.message_id for x in letters if x.message_id not in chosen]
    assert chosen <= named_for_removal(tmp_path / "audit.log")
    if command == "replay":
        replayed = {envelope_id(m) for m in run_sync(take(settings, sink(settings)))}
        assert on_commands | replayed == chosen
    phases = [r["phase"] for r in audit_records(tmp_path / "audit.log") if r["phase"] != "removing"]
    assert phases == ["started", "started", "finished"]


def test_a_group_nobody_is_in_selects_nothing(settings: Settings, tmp_path: Path) -> None:
    letters = failures(10)
    run_sync(setup_dlq(settings, letters))

    replayed = invoke(settings, tmp_path, "replay", "--group", "000000000000")
    purged = invoke(settings, tmp_path, "purge", "--group", "000000000000", "--yes")
    shown = invoke(settings, tmp_path, "show", "--group", "000000000000")

    assert "replayed 0, skipped 10, failed 0, refused 0" in replayed.stdout
    assert "purged 0, skipped 10" in purged.stdout
    assert shown.exit_code == 1
    assert views(run_sync(take(settings, settings.dead_letter_queue))) == letter_views(letters)
