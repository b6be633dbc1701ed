"""The system under test as processes, and what they cost: CPU split and memory.

``WorkerTarget`` starts the worker exactly as the README does (``worker db upgrade``, then
``worker run`` once per replica, configured only through ``WORKER_*`` variables, each with
``WORKER_METRICS_PORT=0``; the replicas share the vhost, the database and the partitions).
``BaselineTarget`` migrates the same schema and starts ``python -m bench.baseline`` with the
same variables.

CPU is accounted per group from ``psutil`` ``cpu_times`` deltas (user + system): the worker
processes, the broker (``beam.smp``), the database (every ``postgres`` process), this
driver, and "other" (the rest of the machine's busy time, e.g. another job running); and
each worker process on its own (``worker_cores_each``, one entry per replica).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from testkit.config import Topology, WorkerEnv
from testkit.processes import WorkerProcess

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


class Target:
    """A set of processes consuming the partition queues (the replicas, for the worker)."""

    def __init__(self, env: WorkerEnv, processes: int, log_dir: Path) -> None:
        self.env = env
        self.count = processes
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        """The process ids, in start order."""
        return [p.pid for p in self.procs]

    def migrate(self) -> None:
        """``worker db upgrade`` on the run's database."""
        WorkerProcess(self.env, self.log_dir / "migrate.log", name="migrate").migrate()

    def start(self) -> None:
        """Migrate, then launch the processes."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise if a process has exited."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"process {i} exited with {proc.returncode}; log tail:\n{self.log_tail(i)}"
                )

    def log_tail(self, index: int, lines: int = 30) -> str:
        """The end of one process's log."""
        path = self.log_dir / f"proc-{index}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> list[int]:
        """SIGTERM every process, wait for a graceful exit (SIGKILL after ``timeout``)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait(10))
        return codes

    def _spawn(self, argv: list[str], environ: Mapping[str, str]) -> None:
        index = len(self.procs)
        with (self.log_dir / f"proc-{index}.log").open("ab") as log:
            self.procs.append(
                subprocess.Popen(
                    argv,
                    env=dict(environ),
                    cwd=self.log_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )


class WorkerTarget(Target):
    """``worker run`` processes."""

    def start(self) -> None:
        """Migrate, then start every worker."""
        self.migrate()
        for _ in range(self.count):
            self._spawn([str(BIN / "worker"), "run"], self.env.environ())


class BaselineTarget(Target):
    """The raw aio-pika + asyncpg loop of ``bench/baseline.py``."""

    def start(self) -> None:
        """Migrate (the worker's schema), then start the baseline processes."""
        self.migrate()
        environ = {**self.env.environ(), "PYTHONPATH": str(ROOT)}
        for _ in range(self.count):
            self._spawn([sys.executable, "-m", "bench.baseline"], environ)


def worker_env(
    amqp_url: str, database_url: str, settings: Mapping[str, str], partitions: int = 16
) -> WorkerEnv:
    """The environment of a worker (or baseline) process on the run's vhost and database:
    the contract's names, ``partitions`` partition queues, ``WORKER_METRICS_PORT=0`` (so
    replicas on one host do not clash) and ``settings``."""
    return WorkerEnv(amqp_url, database_url, Topology(partitions=partitions), dict(settings))


# --- measuring --------------------------------------------------------------------------------

GROUPS = ("worker", "broker", "database", "driver")


def _cpu_by_group(worker_pids: set[int]) -> dict[tuple[str, int, float], float]:
    seconds: dict[tuple[str, int, float], float] = {}
    me = psutil.Process().pid
    for proc in psutil.process_iter(["name", "cpu_times", "create_time"]):
        info = proc.info
        if proc.pid in worker_pids:
            group = "worker"
        elif proc.pid == me:
            group = "driver"
        elif info["name"] == "beam.smp":
            group = "broker"
        elif info["name"] == "postgres":
            group = "database"
        else:
            continue
        times = info["cpu_times"]
        if times is not None:
            seconds[(group, proc.pid, info["create_time"])] = times.user + times.system
    return seconds


_SS_PEER_PORT = re.compile(r":(\d+)\s+users:.*?pid=(\d+),")
_SS_SEGS = re.compile(r"\bdata_segs_out:(\d+)")
PORTS = {5432: "database", 5672: "broker"}


def data_segments(pids: set[int]) -> dict[str, int]:
    """TCP data segments the processes sent so far, per peer (``ss -tinp``): each is one
    write to the socket, so their delta per message counts round trips."""
    try:
        out = subprocess.run(
            ["ss", "-tinpH", "state", "established"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    sent = dict.fromkeys(PORTS.values(), 0)
    peer: str | None = None
    for line in out.splitlines():
        if match := _SS_PEER_PORT.search(line):
            port, pid = int(match[1]), int(match[2])
            peer = PORTS.get(port) if pid in pids else None
        elif peer is not None and (segs := _SS_SEGS.search(line)):
            sent[peer] += int(segs[1])
            peer = None
    return sent


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, all CPUs together, since boot: what makes
    a VM stall with nothing of its own running."""
    return float(psutil.cpu_times().steal)


def _busy(times: Any) -> float:
    return float(times.user + times.nice + times.system + times.irq + times.softirq + times.steal)


class CpuMeter:
    """CPU seconds spent by each group between :meth:`start` and :meth:`stop`."""

    def __init__(self, worker_pids: list[int]) -> None:
        self._order = list(worker_pids)
        self._pids = set(worker_pids)

    def start(self) -> None:
        """Take the first snapshot."""
        self._wall = time.perf_counter()
        self._machine = _busy(psutil.cpu_times())
        self._steal = steal_seconds()
        self._before = _cpu_by_group(self._pids)
        self._segments = data_segments(self._pids)

    def stop(self, messages: int) -> dict[str, Any]:
        """Deltas per group: seconds, cores busy on average, and milliseconds per message; and
        the worker's socket writes (TCP data segments) per message to each server."""
        after = _cpu_by_group(self._pids)
        wall = time.perf_counter() - self._wall
        machine = _busy(psutil.cpu_times()) - self._machine
        spent = dict.fromkeys(GROUPS, 0.0)
        for key, value in after.items():
            spent[key[0]] += value - self._before.get(key, 0.0)
        spent["other"] = max(0.0, machine - sum(spent.values()))
        each = dict.fromkeys(self._order, 0.0)
        for key, value in after.items():
            if key[0] == "worker" and key[1] in each:
                each[key[1]] += value - self._before.get(key, 0.0)
        segments = data_segments(self._pids)
        return {
            "worker_writes_per_msg": {
                peer: round((count - self._segments.get(peer, 0)) / max(messages, 1), 2)
                for peer, count in segments.items()
            },
            "wall_s": round(wall, 2),
            "cpus": psutil.cpu_count(),
            "seconds": {k: round(v, 2) for k, v in spent.items()},
            "cores": {k: round(v / wall, 2) for k, v in spent.items()},
            "worker_cores_each": [round(v / wall, 2) for v in each.values()],
            "ms_per_msg": {k: round(1000 * v / max(messages, 1), 3) for k, v in spent.items()},
            "machine_busy_pct": round(100 * machine / (wall * (psutil.cpu_count() or 1)), 1),
            "steal_cores": round((steal_seconds() - self._steal) / wall, 3),
        }


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``) in MiB, while it runs."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """Samples the total RSS of some processes every ``interval`` seconds, in a thread."""

    def __init__(self, pids: list[int], interval: float) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self._procs = [psutil.Process(pid) for pid in pids]
        self._interval = interval
        self._stop_event = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)

    def run(self) -> None:
        started = time.perf_counter()
        while not self._stop_event.is_set():
            try:
                rss = sum(p.memory_info().rss for p in self._procs)
            except psutil.Error:
                return
            self.samples.append((round(time.perf_counter() - started, 1), round(rss / 2**20, 1)))
            self._stop_event.wait(self._interval)

    def stop(self) -> list[tuple[float, float]]:
        """Stop sampling; the samples."""
        self._stop_event.set()
        self.join(5)
        return self.samples
