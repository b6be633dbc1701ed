"""The collection timer: each collection noted by the callback, then observed by generation and,
if long, logged when reported from the event loop."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram
from structlog.testing import capture_logs

from worker.observability.gcpauses import GcPauses

pytestmark = pytest.mark.unit


def pauses_histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("gc_pause_seconds", "pauses", ["generation"], registry=registry)


def observed(registry: CollectorRegistry, generation: int) -> float:
    value = registry.get_sample_value("gc_pause_seconds_count", {"generation": str(generation)})
    return value or 0.0


def collect_timed(generation: int, *, slow_ms: float) -> tuple[CollectorRegistry, list[Any]]:
    """One collection of ``generation`` under a timer, reported: its registry, and the
    pauses logged."""
    registry, histogram = pauses_histogram()
    pauses = GcPauses(histogram, slow_ms=slow_ms)
    pauses.install()
    try:
        gc.collect(generation)
    finally:
        pauses.remove()
    with capture_logs() as logs:
        pauses.report()
    return registry, [entry for entry in logs if entry["event"] == "worker.gc_pause"]


def test_notes_each_collection_and_observes_it_by_generation_when_reported() -> None:
    registry, histogram = pauses_histogram()
    pauses = GcPauses(histogram, slow_ms=10_000)
    pauses.install()
    pauses.install()  # once, however often installed
    try:
        gc.collect(1)
        gc.collect(2)
        gc.collect(2)
    finally:
        pauses.remove()
    gc.collect(2)

    assert observed(registry, 2) == 0, "nothing is observed inside the collector's callback"
    reported = pauses.report()

    assert observed(registry, 2) == 2
    assert observed(registry, 1) >= 1
    assert reported >= 3
    assert pauses not in gc.callbacks
    assert pauses.report() == 0, "each collection is reported once"
    total = registry.get_sample_value("gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None
    assert total > 0


def test_logs_a_collection_at_least_as_long_as_the_limit() -> None:
    _, slow = collect_timed(2, slow_ms=0)

    assert slow
    assert slow[-1]["generation"] == 2
    assert slow[-1]["ms"] >= 0
    assert 0 <= slow[-1]["cpu_ms"] <= slow[-1]["ms"] + 1  # clocks of different resolution
    assert slow[-1]["ended_at"].endswith("+00:00")


def test_a_quick_collection_is_not_logged() -> None:
    registry, slow = collect_timed(0, slow_ms=10_000)

    assert slow == []
    assert observed(registry, 0) >= 1


async def test_reports_in_the_background_and_once_more_when_stopped() -> None:
    registry, histogram = pauses_histogram()
    pauses = GcPauses(histogram, slow_ms=10_000)
    pauses.install()
    reporting = asyncio.create_task(pauses.report_forever(every=0.01))
    try:
        gc.collect(2)
        for _ in range(200):
            if observed(registry, 2) >= 1:
                break
            await asyncio.sleep(0.01)
        assert observed(registry, 2) >= 1

        gc.collect(2)
        seen = observed(registry, 2)
        reporting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reporting
        assert observed(registry, 2) >= seen + 1, "a last report when stopped"
    finally:
        pauses.remove()
        reporting.cancel()
