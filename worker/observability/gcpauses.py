"""Garbage-collection pauses, timed: the event loop stops for a collection, and every command
in flight waits it out, so a long one shows as a latency outlier with no other trace.

Each collection is observed in ``fca_gc_pause_seconds`` (by generation); one of at least
``slow_ms`` is also logged (``worker.gc_pause``), to tell a collection from other stalls.

The ``gc.callbacks`` entry only notes each collection: a collection can start at any
allocation, also inside a logger's or a metric's non-reentrant lock, and taking that lock
again from the callback would deadlock the thread. :meth:`GcPauses.report` observes and
logs what was noted, from the event loop (:meth:`GcPauses.report_forever`).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, NamedTuple

import structlog
from prometheus_client import Histogram

log = structlog.get_logger(__name__)

SLOW_MS = 20.0
"""A pause this long is logged: longer than a command's whole transaction on a quiet host."""
REPORT_EVERY = 1.0
"""Seconds between two reports (a pause is in the metric and the log at most this late)."""
KEPT = 10_000
"""Collections noted between two reports beyond this many are dropped (oldest first)."""


class Pause(NamedTuple):
    """One collection, as the callback noted it."""

    at: float
    """When it ended (``time.time()``)."""
    generation: int
    seconds: float
    cpu_seconds: float
    """The collector's own work; far less than ``seconds`` means the thread was not running
    (another process had the core, or the hypervisor had the VM)."""
    collected: int


class GcPauses:
    """Times each collection from its start to its stop; reports them from the event loop."""

    def __init__(self, histogram: Histogram, *, slow_ms: float = SLOW_MS) -> None:
        # One child per generation, looked up once: young collections come hundreds a second.
        self._children = [histogram.labels(str(g)) for g in range(3)]
        self._slow = slow_ms / 1000
        self._noted: deque[Pause] = deque(maxlen=KEPT)
        self._started = 0.0
        self._cpu_started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # No lock, no I/O here (see the module's docstring): time it and note it.
        if phase == "start":
            self._started = time.perf_counter()
            self._cpu_started = time.thread_time()
            return
        seconds = time.perf_counter() - self._started
        cpu = time.thread_time() - self._cpu_started
        self._noted.append(
            Pause(time.time(), int(info["generation"]), seconds, cpu, int(info["collected"]))
        )

    def report(self) -> int:
        """Observe every collection noted since the last report and log the slow ones;
        returns how many were reported."""
        count = 0
        while self._noted:
            pause = self._noted.popleft()
            self._children[pause.generation].observe(pause.seconds)
            if pause.seconds >= self._slow:
                log.warning(
                    "worker.gc_pause",
                    generation=pause.generation,
                    ms=round(pause.seconds * 1000, 1),
                    cpu_ms=round(pause.cpu_seconds * 1000, 1),
                    collected=pause.collected,
                    ended_at=datetime.fromtimestamp(pause.at, UTC).isoformat(),
                )
            count += 1
        return count

    async def report_forever(self, every: float = REPORT_EVERY) -> None:
        """Report every ``every`` seconds until cancelled (reporting once more then)."""
        try:
            while True:
                await asyncio.sleep(every)
                self.report()
        finally:
            self.report()

    def install(self) -> None:
        """Start noting collections (once, however often called)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop noting them."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)
