"""The host's ``/metrics`` under ``--processes N``: every child's values, merged per metric.

Two "children" are simulated in this process: prometheus-client's multiprocess value class
(what a child gets when it imports prometheus-client with ``PROMETHEUS_MULTIPROC_DIR`` set)
with a different process id each, writing to a temporary directory as children do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest, values
from prometheus_client.parser import text_string_to_metric_families

from worker.observability.metrics import HostMetrics, Metrics, forget_process

pytestmark = pytest.mark.unit

Child = Callable[[int], Metrics]


@pytest.fixture
def child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Child:
    """``child(pid)``: the metrics of one simulated child process writing to ``tmp_path``."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    def make(pid: int) -> Metrics:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))
        return Metrics()

    return make


def host_page(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The merged page's samples, by name and labels (without the ``pid`` of ``all`` modes)."""
    text = generate_latest(HostMetrics(directory).registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_and_histograms_add_up_over_every_child(child: Child, tmp_path: Path) -> None:
    first, second = child(101), child(102)
    first.commands.labels("CreateCustomer", "applied").inc(3)
    second.commands.labels("CreateCustomer", "applied").inc(4)
    first.latency.labels("CreateCustomer").observe(0.01)
    second.latency.labels("CreateCustomer").observe(0.02)

    page = host_page(tmp_path)

    key = (("outcome", "applied"), ("type", "CreateCustomer"))
    assert page[("fca_commands_total", key)] == 7
    assert page[("fca_command_duration_seconds_count", (("type", "CreateCustomer"),))] == 2


def test_each_gauge_combines_its_children_as_its_mode_says(child: Child, tmp_path: Path) -> None:
    first, second = child(101), child(102)
    for metrics, owned, in_flight, connected in ((first, 8, 2, 1), (second, 8, 5, 0)):
        metrics.partitions_owned.set(owned)
        metrics.in_flight.set(in_flight)
        metrics.consumer_connected.set(connected)
        metrics.outbox_backlog.set(40)  # the whole table, seen by both
    first.outbox_oldest_age.set(3.0)
    second.outbox_oldest_age.set(2.5)

    page = host_page(tmp_path)

    assert page[("fca_partitions_owned", ())] == 16  # livesum
    assert page[("fca_in_flight", ())] == 7  # livesum
    assert page[("fca_consumer_connected", ())] == 0  # livemin: one child is not consuming
    assert page[("fca_outbox_backlog", ())] == 40  # livemax: not counted twice
    assert page[("fca_outbox_oldest_age_seconds", ())] == 3.0  # livemax


def test_an_exited_childs_gauges_leave_the_page_and_its_counts_stay(
    child: Child, tmp_path: Path
) -> None:
    first, second = child(101), child(102)
    first.partitions_owned.set(8)
    second.partitions_owned.set(8)
    second.events_published.inc(5)

    forget_process(tmp_path, 102)

    page = host_page(tmp_path)
    assert page[("fca_partitions_owned", ())] == 8
    assert page[("fca_events_published_total", ())] == 5
