"""Prometheus metrics of one worker process (its own registry, no global state).

Under ``worker run --processes N`` each child writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen when the child
imports prometheus-client) and the supervisor serves them merged (:class:`HostMetrics`).
Counters and histograms are summed over every child that ever ran, so a restarted child
does not reset the host's totals. Each gauge says how its children's values combine
(``multiprocess_mode``); only ``live*`` modes are used, so a child's gauges leave the host's
page when the child exits (:func:`forget_process`). A single process ignores the modes.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

GROUP_BUCKETS = (2, 4, 8, 16, 32, 64, 128, 256)
GC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Every metric the worker exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "fca_commands",
            "Deliveries handled, by message type and outcome.",
            ["type", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "fca_command_duration_seconds",
            "Time from delivery to settlement, by type.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "fca_retries",
            "Deliveries sent to a delay queue, by error type.",
            ["error_type"],
            registry=r,
        )
        self.dead_letters = Counter(
            "fca_dead_letters",
            "Deliveries moved to the DLQ, by error type.",
            ["error_type"],
            registry=r,
        )
        self.events_published = Counter(
            "fca_events_published", "Outbox events confirmed by the broker.", registry=r
        )
        self.outbox_backlog = Gauge(
            "fca_outbox_backlog",
            "Committed events not yet confirmed by the broker.",
            # Counted over the whole outbox table, so every child reports the same number:
            # summing would multiply it by the number of processes.
            multiprocess_mode="livemax",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "fca_outbox_oldest_age_seconds",
            "Age of the oldest unsent event.",
            multiprocess_mode="livemax",  # the whole table again; the oldest is what alerts
            registry=r,
        )
        self.in_flight = Gauge(
            "fca_in_flight",
            "Deliveries received and not yet settled.",
            multiprocess_mode="livesum",  # each child's own deliveries: the host handles the sum
            registry=r,
        )
        self.consumer_connected = Gauge(
            "fca_consumer_connected",
            "1 while the broker connection is up and consuming.",
            # The host is 1 only while every child is: `fca_consumer_connected == 0` keeps
            # alerting when one child of several stops consuming.
            multiprocess_mode="livemin",
            registry=r,
        )

        self.unkeyed = Counter(
            "fca_unkeyed_commands",
            "Deliveries without the fca-ordering-key header (they share one partition).",
            registry=r,
        )
        self.key_mismatches = Counter(
            "fca_ordering_key_mismatches",
            "Deliveries whose fca-ordering-key header disagrees with their payload.",
            registry=r,
        )
        self.overtaken = Counter(
            "fca_retry_overtaken",
            "Commands applied while an earlier command of their key waited in a delay queue.",
            registry=r,
        )
        self.in_place_retries = Counter(
            "fca_in_place_retries",
            "Transient failures retried in place (holding their key) before a delay queue.",
            registry=r,
        )
        self.replies_refused = Counter(
            "fca_replies_refused",
            "Deliveries whose reply_to the reply-to rule refused (processed, not answered).",
            registry=r,
        )
        self.group_sizes = Histogram(
            "fca_group_commit_size",
            "Commands committed together in one group-commit transaction (2 or more).",
            buckets=GROUP_BUCKETS,
            registry=r,
        )
        self.group_fallbacks = Counter(
            "fca_group_commit_fallbacks",
            "Groups rolled back whose commands then ran alone (a rejection or a failure).",
            registry=r,
        )
        self.gc_pauses = Histogram(
            "fca_gc_pause_seconds",
            "Garbage collections, by generation: the event loop (every command in flight) "
            "waits for each.",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.delays_moved = Counter(
            "fca_delay_watch_moved",
            "Retries the broker left in a delay queue past their time, moved on by the worker.",
            registry=r,
        )
        self.partitions_owned = Gauge(
            "fca_partitions_owned",
            "Partition queues this replica consumes.",
            multiprocess_mode="livesum",  # each child owns its own partitions: the host's total
            registry=r,
        )
        self.rebalances = Counter(
            "fca_partition_handovers",
            "Partitions taken over or given up by this replica, by direction.",
            ["direction"],
            registry=r,
        )


class HostMetrics:
    """The metrics of every child of ``worker run --processes N``, merged from their files."""

    def __init__(self, directory: Path) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=str(directory))  # type: ignore[no-untyped-call]


def forget_process(directory: Path, pid: int) -> None:
    """Drop an exited child's gauges from the host's page (its counters stay in the totals)."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
