"""The collection timer: every collection observed by generation, long ones logged."""

from __future__ import annotations

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


def test_times_each_collection_by_its_generation_until_removed() -> None:
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

    assert observed(registry, 2) == 2
    assert observed(registry, 1) >= 1
    assert pauses not in gc.callbacks
    total = registry.get_sample_value("gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None
    assert total > 0


def collect_timed(generation: int, *, slow_ms: float) -> tuple[CollectorRegistry, list[Any]]:
    """One collection of ``generation`` under a timer: its registry, and the pauses logged."""
    registry, histogram = pauses_histogram()
    pauses = GcPauses(histogram, slow_ms=slow_ms)
    pauses.install()
    try:
        with capture_logs() as logs:
            gc.collect(generation)
    finally:
        pauses.remove()
    return registry, [entry for entry in logs if entry["event"] == "worker.gc_pause"]


def test_logs_a_collection_at_least_as_long_as_the_limit() -> None:
    _, slow = collect_timed(2, slow_ms=0)

    assert slow
    assert slow[-1]["generation"] == 2
    assert slow[-1]["ms"] >= 0
    assert 0 <= slow[-1]["cpu_ms"] <= slow[-1]["ms"] + 1  # clocks of different resolution
    assert slow[-1]["tracked"] >= 0


def test_a_quick_collection_is_not_logged() -> None:
    registry, slow = collect_timed(0, slow_ms=10_000)

    assert slow == []
    assert observed(registry, 0) >= 1
