"""The bench keeps what the worker logged at warning or above, from every process's log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.scenario import handled_between, worker_log

pytestmark = pytest.mark.unit


def line(event: str, level: str, **fields: object) -> str:
    return json.dumps({"event": event, "level": level, **fields})


def test_keeps_the_loud_lines_of_every_process_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "proc-0.log").write_text(
        "\n".join(
            [
                line("message.handled", "info", duration_ms=3.2),
                line("worker.gc_pause", "warning", generation=2, ms=41.6),
                "Traceback (most recent call last): not JSON",
                line("message.settle_failed", "warning", action="ack"),
            ]
        )
    )
    (tmp_path / "proc-1.log").write_text(line("worker.start_failed", "error") + "\n")
    (tmp_path / "migrate.log").write_text(line("db.failed", "error") + "\n")

    kept = worker_log(tmp_path)

    assert [x["event"] for x in kept] == [
        "worker.gc_pause",
        "message.settle_failed",
        "worker.start_failed",
    ]
    assert kept[0]["ms"] == 41.6


def test_the_worker_s_own_time_is_read_for_the_commands_it_finished_in_the_window(
    tmp_path: Path,
) -> None:
    def handled(at: str, ms: float) -> str:
        return line("message.handled", "info", timestamp=at, duration_ms=ms)

    (tmp_path / "proc-0.log").write_text(
        "\n".join(
            [
                handled("2026-12-02T18:00:00.500000Z", 900.0),  # before the window
                handled("2026-12-02T18:00:01.000000Z", 4.0),
                line("worker.gc_pause", "warning", timestamp="2026-12-02T18:00:01.2Z", ms=30),
                handled("2026-12-02T18:00:01.500000Z", 6.0),
                'not JSON, but naming "message.handled"',
                handled("2026-12-02T18:00:03.500000Z", 800.0),  # after it
            ]
        )
    )
    (tmp_path / "proc-1.log").write_text(handled("2026-12-02T18:00:02.000000Z", 40.0) + "\n")
    since = datetime(2026, 12, 2, 18, 0, 1, tzinfo=UTC).timestamp()

    got = handled_between(tmp_path, since, since + 2)

    assert got == {"commands": 3, "p50_ms": 6.0, "p95_ms": 40.0, "p99_ms": 40.0, "max_ms": 40.0}


def test_no_handled_line_in_the_window_is_a_count_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "proc-0.log").write_text(line("worker.gc_pause", "warning", ms=30) + "\n")

    assert handled_between(tmp_path, 0.0, 1e12) == {"commands": 0}
