"""The bench's disk probe: durable writes timed in a thread, summarised with the stalls."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.diskprobe import STALL_MS, DiskProbe, summarise

pytestmark = pytest.mark.unit


def test_the_summary_gives_the_spread_and_lists_every_stall_with_when_it_ended() -> None:
    syncs = [(0.01 * i, 1.0) for i in range(97)] + [(1.5, 25.0), (3.25, 104.0), (4.0, 19.9)]

    got = summarise(syncs)

    assert got == {
        "syncs": 100,
        "p50_ms": 1.0,
        "p99_ms": 104.0,
        "max_ms": 104.0,
        "stalls": [[1.5, 25.0], [3.25, 104.0]],
    }
    assert STALL_MS == 20.0


def test_no_sample_is_said_as_such() -> None:
    assert summarise([]) == {"syncs": 0}


def test_the_probe_syncs_a_real_file_until_stopped_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    probe = DiskProbe(tmp_path, interval=0.001)
    probe.start()
    deadline = time.monotonic() + 10
    while len(probe.syncs) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)

    got = probe.stop()

    assert got["syncs"] >= 5
    assert 0 < got["p50_ms"] <= got["p99_ms"] <= got["max_ms"]
    assert not probe.is_alive()
    assert list(tmp_path.iterdir()) == []
