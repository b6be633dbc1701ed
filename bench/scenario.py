"""One benchmark run: fresh vhost and database, processes started, warm-up, measured phases.

Phases, in order:

0. ready: every partition queue has a consumer and, for the worker, the replicas have
   settled their shares of the partitions (:mod:`bench.replicas`);
1. warm-up through the system under test (customers, then accounts and conversations, then
   one transaction and one message each), not measured;
2. throughput: the ``n``-command mix published as fast as possible (``backlog`` caps the
   commands awaiting their event, for the soak); CPU split, RSS samples and (optionally) a
   py-spy profile cover this phase; for the worker, the commands each replica applied;
3. latency: a fixed rate of half the throughput just measured, for ``latency_seconds``;
   for the worker, also its own time per command in that phase (from its log), to tell the
   time spent inside the worker from the time spent in the broker and the driver; and, for
   both, how long a durable write to the disk took meanwhile (:mod:`bench.diskprobe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bench import flame, profiling, replicas
from bench.diskprobe import DiskProbe
from bench.driver import Driver, Names, percentiles
from bench.env import Servers, sandbox
from bench.procs import (
    BaselineTarget,
    CpuMeter,
    RssSampler,
    Target,
    WorkerTarget,
    peak_rss_mb,
    steal_seconds,
    worker_env,
)
from bench.workload import Workload, entity_count


@dataclass(frozen=True)
class Spec:
    """What one run measures, and with which settings."""

    label: str
    group: str = "main"
    target: Literal["worker", "baseline"] = "worker"
    n: int = 20_000
    prefetch: int = 16
    concurrency: int = 16
    processes: int = 1
    """Replicas of the worker (``worker run`` processes); the baseline always runs one."""
    partitions: int = 16
    uvloop: bool = False
    log_level: str = "INFO"
    latency_seconds: float = 15.0
    backlog: int | None = None
    rss_interval: float = 1.0
    profile_seconds: float = 0.0
    round: int = 1
    extra: tuple[tuple[str, str], ...] = ()
    """More environment for the worker processes (``--set``), e.g. ``WORKER_GROUP_COMMIT``."""

    def settings(self) -> dict[str, str]:
        """The ``WORKER_*`` variables of the processes (the pool is sized to the concurrency;
        the prefetch is per partition queue, as the worker's setting is)."""
        return {
            "WORKER_PREFETCH": str(self.prefetch),
            "WORKER_CONCURRENCY": str(self.concurrency),
            "WORKER_DB_POOL_SIZE": str(max(10, self.concurrency)),
            "WORKER_EVENT_LOOP": "uvloop" if self.uvloop else "asyncio",
            "WORKER_LOG_LEVEL": self.log_level,
            **dict(self.extra),
        }


async def run(spec: Spec, servers: Servers, artifacts: Path) -> dict[str, Any]:
    """Run one spec; the result has ``error`` instead of measurements when it failed."""
    started = time.monotonic()
    result: dict[str, Any] = {"spec": asdict(spec), "settings": spec.settings()}
    with sandbox(servers) as box, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        env = worker_env(box.amqp_url, box.database_url, spec.settings(), spec.partitions)
        kind = WorkerTarget if spec.target == "worker" else BaselineTarget
        target: Target = kind(env, spec.processes, Path(tmp))
        driver: Driver | None = None
        try:
            await asyncio.to_thread(target.start)
            result["ready"] = await replicas.wait_ready(
                box.amqp_url,
                box.database_url,
                env.topology.partition_queues(),
                replicas=spec.processes,
                membership=spec.target == "worker",
                check=target.check,
            )
            driver = await Driver.connect(box.amqp_url, Names())
            workload = Workload()
            count = entity_count(spec.n)
            result["warmup_commands"] = await driver.warm_up(workload, count, target.check)
            database = box.database_url if spec.target == "worker" else None
            result.update(
                await _measure(spec, driver, workload, target, artifacts, database, Path(tmp))
            )
            result["peak_rss_mb"] = [peak_rss_mb(pid) for pid in target.pids]
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["log_tail"] = target.log_tail(0) if target.procs else ""
        finally:
            if driver is not None:
                await driver.close()
            result["exit_codes"] = await asyncio.to_thread(target.stop)
            if spec.target == "worker":
                lines = worker_log(Path(tmp))
                window = result.get("latency", {}).pop("wall_clock", None)
                if window is not None:
                    result["latency"]["worker_handled"] = handled_between(Path(tmp), *window)
                result["gc_pauses"] = [x for x in lines if x.get("event") == "worker.gc_pause"]
                result["worker_warnings"] = dict(
                    Counter(
                        str(x.get("event")) for x in lines if x.get("event") != "worker.gc_pause"
                    )
                )
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


_LOUD = ('"level": "warning"', '"level": "error"', '"level": "critical"')


def worker_log(log_dir: Path) -> list[dict[str, Any]]:
    """The worker processes' log lines at level warning or above (a soak logs a line per
    command at info: those are not parsed)."""
    found = []
    for line in _lines(log_dir):
        if any(level in line for level in _LOUD):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


def _lines(log_dir: Path) -> Iterator[str]:
    """Every line of every worker process's log, process by process."""
    for path in sorted(log_dir.glob("proc-*.log")):
        with path.open(errors="replace") as log:
            yield from log


def handled_between(log_dir: Path, since: float, until: float) -> dict[str, Any]:
    """The worker's own time per command (``message.handled``'s ``duration_ms``: from the
    delivery reaching the consumer to its ack) for the commands it finished between two
    wall-clock times, as p50/p95/p99/max and a count.

    Read next to the driver's latency (publish to event received) over the same phase, it
    says whether a slow command was slow inside the worker or on its way through the broker.
    """
    seconds = []
    for line in _lines(log_dir):
        if '"message.handled"' not in line:
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            record = json.loads(line)
            at = datetime.fromisoformat(record["timestamp"]).timestamp()
            if since <= at <= until:
                seconds.append(float(record["duration_ms"]) / 1000)
    return {"commands": len(seconds), **percentiles(seconds)}


async def _measure(
    spec: Spec,
    driver: Driver,
    workload: Workload,
    target: Target,
    artifacts: Path,
    database_url: str | None,
    scratch: Path,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # built (and their ordering keys computed) before the clock starts; the soak streams them
    commands = workload.mixed(spec.n) if spec.backlog else list(workload.mixed(spec.n))
    owners = await replicas.ownership(database_url) if database_url else None
    meter = CpuMeter(target.pids)
    sampler = RssSampler(target.pids, spec.rss_interval)
    raw = artifacts.with_suffix(".profile.txt")
    spy = (
        profiling.start(target.pids[0], spec.profile_seconds, raw) if spec.profile_seconds else None
    )
    sampler.start()
    meter.start()
    out["throughput"] = await driver.burst(commands, target.check, spec.backlog)
    out["cpu"] = meter.stop(spec.n)
    if database_url and owners is not None:
        out["replicas"] = await replicas.work_per_replica(database_url, owners, target.pids)
    out["rss"] = rss_summary(sampler.stop(), keep_samples=spec.group == "soak")
    if spy is not None:
        await asyncio.to_thread(profiling.finish, spy)
        out["profile"] = profiling.summarise(raw)
        svg = artifacts.with_suffix(".profile.svg")
        flame.render(raw, svg, f"fca-worker, {spec.label}: py-spy, CPU samples")
        out["profile"]["files"] = {"raw": profiling.compress(raw).name, "svg": svg.name}
    if spec.latency_seconds > 0:
        rate = out["throughput"]["msgs_per_s"] / 2
        count = max(50, min(spec.n, int(rate * spec.latency_seconds)))
        disk = DiskProbe(scratch)
        disk.start()
        stolen, started, since = steal_seconds(), time.perf_counter(), time.time()
        out["latency"] = await driver.steady(list(workload.mixed(count)), rate, target.check)
        wall = time.perf_counter() - started
        out["latency"]["steal_cores"] = round((steal_seconds() - stolen) / wall, 3)
        out["latency"]["disk_sync"] = disk.stop()
        out["latency"]["wall_clock"] = [since, time.time()]
    return out


def rss_summary(samples: list[tuple[float, float]], *, keep_samples: bool) -> dict[str, Any]:
    """First, last and largest total RSS (MiB) during the phase, and the drift.

    ``drift_pct`` compares the last sample with the first; ``drift_after_warm_pct`` with the
    first sample after 10% of the phase (allocator pools and caches filled by then).
    """
    if not samples:
        return {}
    first, last = samples[0][1], samples[-1][1]
    settle_at = samples[-1][0] * 0.1
    settled = next(mib for t, mib in samples if t >= settle_at)
    summary: dict[str, Any] = {
        "first_mb": first,
        "last_mb": last,
        "max_mb": max(mib for _, mib in samples),
        "drift_pct": round(100 * (last - first) / first, 1),
        "drift_after_warm_pct": round(100 * (last - settled) / settled, 1),
        "samples": len(samples),
    }
    if keep_samples:
        summary["series"] = samples
    return summary
