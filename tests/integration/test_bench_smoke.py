"""The benchmark still runs end to end (N=200; the baseline, then the worker with 1 and with 2
replicas sharing the partitions; no sweep, soak or profile): no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.services import AmqpServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 200
REPLICAS = (1, 2)
PARTITIONS = 16


@pytest.fixture(scope="module")
def bench_results(
    postgres_server_url: str, amqp_server: AmqpServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One small benchmark run, as ``make bench`` starts it; its results document."""
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    argv = [
        sys.executable, "-m", "bench", "--n", str(N), "--latency-seconds", "1",
        "--replicas", ",".join(map(str, REPLICAS)), "--out", str(out),
        "--amqp-url", amqp_server.url, "--database-url", postgres_server_url,
    ]  # fmt: skip
    if amqp_server.management_url:
        argv += ["--management-url", amqp_server.management_url]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=420, check=False)
    assert done.returncode == 0, f"bench exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(out.read_text()))


def test_runs_the_baseline_and_the_worker_once_per_replica_count(
    bench_results: dict[str, Any],
) -> None:
    runs = [(run["spec"]["target"], run["spec"]["processes"]) for run in bench_results["runs"]]

    assert runs == [("baseline", 1), ("worker", 1), ("worker", 2)]
    assert all("error" not in run for run in bench_results["runs"])


def test_every_command_produced_its_event(bench_results: dict[str, Any]) -> None:
    for run in bench_results["runs"]:
        throughput = run["throughput"]
        assert throughput["commands"] == N
        assert throughput["events"] == N
        assert throughput["rejected"] == 0
        assert throughput["dead_lettered"] == 0
        assert run["latency"]["events"] == run["latency"]["commands"]


def test_the_replicas_shared_the_partitions_and_the_work(bench_results: dict[str, Any]) -> None:
    for run in bench_results["runs"][1:]:
        replicas = run["spec"]["processes"]
        work = run["replicas"]

        assert sorted(run["ready"]["partitions_per_replica"]) == [PARTITIONS // replicas] * replicas
        assert work["partitions"] == [PARTITIONS // replicas] * replicas
        assert not work["handed_over"]
        assert sum(work["commands"]) == N  # each command counted for the replica that applied it
        assert len(run["cpu"]["worker_cores_each"]) == replicas
        assert len(run["peak_rss_mb"]) == replicas


def test_records_the_machine_and_the_measurements(bench_results: dict[str, Any]) -> None:
    worker = bench_results["runs"][1]

    assert {"cpu_count", "cpu_model", "ram_gb", "python", "date"} <= set(bench_results["machine"])
    assert {"rabbitmq", "postgresql"} <= set(bench_results["servers"])
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(worker["latency"])
    assert {"worker", "broker", "database"} <= set(worker["cpu"]["seconds"])
    for run in bench_results["runs"]:  # what the worker logged loudly, to explain outliers
        kept = {"gc_pauses", "worker_warnings"} <= set(run)
        assert kept == (run["spec"]["target"] == "worker")
        if kept:
            assert all(p["event"] == "worker.gc_pause" for p in run["gc_pauses"])
            assert isinstance(run["worker_warnings"], dict)
    assert worker["peak_rss_mb"][0] is not None
    assert "ratio_to_baseline" in worker
    assert "scaling" in bench_results["runs"][2]
