"""The replay window against a real broker: old dead letters are refused, stay, and are reported.

A replay of a dead letter older than ``WORKER_DLQ_REPLAY_WINDOW_DAYS`` could apply its
command twice (the worker's inbox may have forgotten it), so the tool refuses it. Fixtures
and helpers are those of ``test_dlq_tool.py``: body and AMQP ids always differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from testkit.services import run_sync
from tests.integration.test_dlq_tool import (
    Letter,
    audit_records,
    cli_env,
    dlq_settings,
    letter_views,
    make_letter,
    named_for_removal,
    setup_dlq,
    sink,
    take,
    views,
)
from worker.cli.dlq import dlq
from worker.dlq import AuditLog, Selector, replay
from worker.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(amqp_url: str, unique_name: Callable[[str], str]) -> Settings:
    """Settings naming exchanges and queues private to this test."""
    return dlq_settings(amqp_url, unique_name("dlq-window"))


def aged(index: int, days: float) -> Letter:
    """A transient OpenAccount dead letter that first failed ``days`` ago."""
    # Measured from the moment the letter is made, not from import: the tool's clock reads
    # seconds later, a module-level time would be a whole test session (20 min in CI) behind.
    first = datetime.now(UTC) - timedelta(days=days)
    return make_letter(
        "OpenAccount",
        "transient",
        "transient: OperationalError",
        index=index,
        first=first,
        last=first + timedelta(minutes=5),
    )


def ageless(index: int) -> Letter:
    """A dead letter with no failure record and no timestamp: its age cannot be told."""
    letter = make_letter("OpenAccount", "transient", "", index=index)
    return Letter(letter.message_id, letter.type, "unknown", letter.body, {}, letter.amqp_id)


def mixed() -> tuple[list[Letter], list[Letter]]:
    """Twelve dead letters, and the five of them a 14-day window refuses (queue order)."""
    letters = [
        ageless(i) if i == 7 else aged(i, 20 + i if i % 3 == 0 else 1 + i / 10) for i in range(12)
    ]
    return letters, [x for i, x in enumerate(letters) if i % 3 == 0 or i == 7]


def run_cli(settings: Settings, tmp_path: Path, *args: str, **env: str) -> Result:
    """Run ``worker dlq ARGS`` in this process with extra ``WORKER_`` variables."""
    return CliRunner().invoke(dlq, list(args), env={**cli_env(settings, tmp_path), **env})


async def test_a_replay_refuses_old_dead_letters_and_keeps_them_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    letters, old = mixed()
    await setup_dlq(settings, letters)
    audit = AuditLog(tmp_path / "audit.log")

    summary = await replay(settings, Selector(), audit=audit)

    young = [x.message_id for x in letters if x not in old]
    assert summary.replayed == young
    assert [f.message_id for f in summary.refused] == [x.message_id for x in old]
    assert "age unknown" in summary.refused[3].reason
    assert "beyond the 14-day replay window" in summary.refused[0].reason
    assert not summary.complete
    assert sorted(str(m.message_id) for m in await take(settings, sink(settings))) == sorted(young)
    assert views(await take(settings, settings.dead_letter_queue)) == letter_views(old)
    started, *_, finished = audit_records(audit.path)
    assert started["window_days"] == 14
    assert named_for_removal(audit.path) == set(young)
    refusals = finished["refusals"]
    assert isinstance(refusals, list)
    assert [r["message_id"] for r in refusals] == [x.message_id for x in old]


def test_the_cli_reports_each_refusal_and_exits_non_zero(
    settings: Settings, tmp_path: Path
) -> None:
    letters, old = mixed()
    run_sync(setup_dlq(settings, letters))

    dry = run_cli(settings, tmp_path, "replay", "--all", "--dry-run")
    real = run_cli(settings, tmp_path, "replay", "--all")

    for result, verb in ((dry, "would replay"), (real, "replayed")):
        assert result.exit_code == 1, result.output
        assert f"{verb} 7, skipped 0, failed 0, refused 5" in result.stdout
        assert f"refused {old[0].message_id}: first failed 20.0 days ago" in result.stderr
        assert f"refused {old[3].message_id}: age unknown" in result.stderr
    assert len(run_sync(take(settings, sink(settings)))) == 7
    kept = run_sync(take(settings, settings.dead_letter_queue))
    assert views(kept) == letter_views(old)


def test_the_window_is_the_setting(settings: Settings, tmp_path: Path) -> None:
    letter = aged(1, 4)
    run_sync(setup_dlq(settings, [letter]))
    narrow = {"WORKER_DLQ_REPLAY_WINDOW_DAYS": "3", "WORKER_INBOX_RETENTION_DAYS": "5"}

    refused = run_cli(settings, tmp_path, "replay", "--all", **narrow)
    replayed = run_cli(settings, tmp_path, "replay", "--all")

    assert refused.exit_code == 1
    assert "beyond the 3-day replay window" in refused.stderr
    assert replayed.exit_code == 0, replayed.output
    assert [m.body for m in run_sync(take(settings, sink(settings)))] == [letter.body]


def test_list_and_show_tell_the_age_and_whether_it_may_be_replayed(
    settings: Settings, tmp_path: Path
) -> None:
    letters, old = mixed()
    run_sync(setup_dlq(settings, letters))

    listed = run_cli(settings, tmp_path, "list", "--json")
    table = run_cli(settings, tmp_path, "list")
    shown = run_cli(settings, tmp_path, "show", old[0].message_id)

    assert listed.exit_code == 0, listed.output
    rows = {row["message_id"]: row for row in json.loads(listed.stdout)}
    assert rows.keys() == {x.message_id for x in letters}
    assert rows[old[0].message_id]["replayable"] is False
    assert rows[old[0].message_id]["age_days"] == pytest.approx(20, abs=0.01)
    assert rows[old[3].message_id]["age_days"] is None
    assert rows[letters[1].message_id]["replayable"] is True
    lines = table.stdout.splitlines()[1:]
    assert [line.split()[-1] for line in lines] == ["no" if x in old else "yes" for x in letters]
    assert lines[0].split()[-3:-1] == ["20d", "0h"]
    assert shown.exit_code == 0, shown.output
    assert '"not_replayable_because": "first failed 20.0 days ago' in shown.stdout
    assert views(run_sync(take(settings, settings.dead_letter_queue))) == letter_views(letters)
