"""The bench keeps what the worker logged at warning or above, from every process's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.scenario import worker_log

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
