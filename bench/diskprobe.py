"""How long a small durable write takes on the bench's disk, sampled through a phase.

PostgreSQL's ``COMMIT`` waits for ``fdatasync`` of its WAL, and a quorum queue hands a
message to its consumer only once its log is synced: a moment in which the disk is slow to
sync is a moment in which every command waits, whatever the worker's code does. On a VM the
virtual disk's sync time varies a lot (syncs of 16 to 104 ms were seen here with the machine
otherwise idle), so the latency phase is read next to this probe.

A thread writes 512 bytes to a file in ``directory`` and ``fdatasync``s it, every
``interval`` seconds. It measures the disk under the servers only when they run on this
machine, on the same file system (as on the development machine and in CI).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.driver import percentiles

STALL_MS = 20.0
"""A sync at least this long is listed, with when it ended."""


class DiskProbe(threading.Thread):
    """Times a small write + ``fdatasync`` every ``interval`` seconds until stopped."""

    def __init__(self, directory: Path, interval: float = 0.01) -> None:
        super().__init__(daemon=True, name="disk-probe")
        self._path = directory / "disk-probe.dat"
        self._interval = interval
        self._stop_event = threading.Event()
        self.started = time.perf_counter()
        self.syncs: list[tuple[float, float]] = []  # (ended, seconds since start; ms taken)

    def run(self) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while not self._stop_event.is_set():
                began = time.perf_counter()
                os.pwrite(fd, b"\0" * 512, 0)
                os.fdatasync(fd)
                ended = time.perf_counter()
                self.syncs.append((ended - self.started, (ended - began) * 1000))
                self._stop_event.wait(self._interval)
        finally:
            os.close(fd)
            self._path.unlink(missing_ok=True)

    def stop(self) -> dict[str, Any]:
        """Stop probing; the syncs' p50/p99/max in ms and the stalls (``STALL_MS`` or more)
        as ``[seconds since the probe started, ms]``."""
        self._stop_event.set()
        self.join(5)
        return summarise(self.syncs)


def summarise(syncs: list[tuple[float, float]]) -> dict[str, Any]:
    """The probe's result from its ``(ended at, ms)`` samples."""
    if not syncs:
        return {"syncs": 0}
    spread = percentiles([ms / 1000 for _, ms in syncs])
    return {
        "syncs": len(syncs),
        "p50_ms": spread["p50_ms"],
        "p99_ms": spread["p99_ms"],
        "max_ms": spread["max_ms"],
        "stalls": [[round(at, 2), round(ms, 1)] for at, ms in syncs if ms >= STALL_MS],
    }
