"""Garbage-collection pauses, timed: the event loop stops for a collection, and every command
in flight waits it out, so a long one shows as a latency outlier with no other trace.

Each collection is observed in ``fca_gc_pause_seconds`` (by generation); one of at least
``slow_ms`` is also logged (``worker.gc_pause``), to tell a collection from other stalls.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import structlog
from prometheus_client import Histogram

log = structlog.get_logger(__name__)

SLOW_MS = 20.0
"""A pause this long is logged: longer than a command's whole transaction on a quiet host."""


class GcPauses:
    """A ``gc.callbacks`` entry timing each collection from its start to its stop."""

    def __init__(self, histogram: Histogram, *, slow_ms: float = SLOW_MS) -> None:
        # One child per generation, looked up once: young collections come hundreds a second.
        self._children = [histogram.labels(str(g)) for g in range(3)]
        self._slow = slow_ms / 1000
        self._started = 0.0
        self._cpu_started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._cpu_started = time.thread_time()
            return
        seconds = time.perf_counter() - self._started
        generation = int(info["generation"])
        self._children[generation].observe(seconds)
        if seconds >= self._slow:
            log.warning(
                "worker.gc_pause",
                generation=generation,
                ms=round(seconds * 1000, 1),
                # The collector's own work; far less than ``ms`` means the thread was not
                # running (another process had the core, or the hypervisor had the VM).
                cpu_ms=round((time.thread_time() - self._cpu_started) * 1000, 1),
                collected=info["collected"],
                tracked=len(gc.get_objects(generation)),
            )

    def install(self) -> None:
        """Start timing collections (once, however often called)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop timing them."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)
