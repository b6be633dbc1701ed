"""``worker run --processes 2`` as a real process: two replicas under one supervisor, one port.

Each test starts its own supervisor on a fresh database and topology (16 partitions, short
heartbeats so that a restarted child gets its share back within seconds) with the host's
metrics and health on a free port. The children are found with psutil as the supervisor's
child processes; teardown kills any that a failed test left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import psutil
import pytest

from testkit.config import WorkerEnv
from testkit.factories import unique_email, unique_token, wait_until
from testkit.harness import harness_for
from testkit.http import http_get, http_json, scrape
from testkit.ordered import assert_in_order, build_ordered, partition_owners, wait_balanced
from testkit.private import free_port
from testkit.processes import WorkerPool, WorkerProcess
from testkit.workload import wait_outcomes

pytestmark = pytest.mark.e2e

FAST_MEMBERSHIP = {
    "WORKER_MEMBERSHIP_INTERVAL": "0.5",
    "WORKER_MEMBERSHIP_LIVENESS": "3",
    "WORKER_OUTBOX_GRACE_SECONDS": "0.5",
    "WORKER_OUTBOX_POLL_INTERVAL": "0.2",
    "WORKER_SHUTDOWN_TIMEOUT": "10",
}
PARTITIONS = 16
TWO = ("--processes", "2")


@dataclass
class Host:
    """A supervisor of two workers, its environment and its metrics port."""

    env: WorkerEnv
    supervisor: WorkerProcess
    port: int

    def children(self) -> list[psutil.Process]:
        """The supervisor's child processes now."""
        assert self.supervisor.pid is not None
        return psutil.Process(self.supervisor.pid).children()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ready(self) -> bool:
        return http_get(self.url("/readyz"))[0] == 200


def alive(process: psutil.Process) -> bool:
    """Whether ``process`` still runs (a zombie waiting for its parent does not)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def start_host(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> Iterator[Callable[..., Host]]:
    """``start_host(**settings)``: a started supervisor of two workers on fresh names."""
    seen: list[psutil.Process] = []

    def start(**settings: str) -> Host:
        port = free_port()
        overrides = {**FAST_MEMBERSHIP, "WORKER_METRICS_PORT": str(port), **settings}
        env = isolated_worker_env(partitions=PARTITIONS, **overrides)
        host = Host(env, workers.start(env, name=f"host-{unique_token(3)}", args=TWO), port)
        seen.append(psutil.Process(host.supervisor.pid))
        return host

    yield start
    for parent in seen:  # a failed test may leave children: none may outlive the test
        if alive(parent):
            for child in parent.children(recursive=True):
                child.kill()


def test_two_processes_split_the_partitions_and_one_port_counts_for_both(
    start_host: Callable[..., Host],
) -> None:
    host = start_host()

    owners = wait_balanced(host.env.database_url, 2, PARTITIONS)

    assert sorted(owners.values()) == [8, 8]
    assert len(host.children()) == 2
    wait_until(host.ready, timeout=30, message="/readyz never answered 200")
    assert http_json(host.url("/readyz"))[1]["checks"] == {"process-1": True, "process-2": True}
    with harness_for(host.env) as h:
        sent = [
            h.send("CreateCustomer", {"email": unique_email(), "full_name": "Two"})
            for _ in range(40)
        ]
        outcomes = h.outcomes(sent)
    assert {m.type for m in outcomes.values()} == {"CustomerCreated"}

    def counted() -> float:
        return scrape(host.port).total("fca_commands_total", type="CreateCustomer")

    wait_until(lambda: counted() >= len(sent), timeout=30, message=lambda: f"{counted()}")
    page = scrape(host.port)
    assert page.total("fca_commands_total", type="CreateCustomer") == len(sent)
    assert page.value("fca_partitions_owned") == PARTITIONS  # livesum over both children
    assert page.value("fca_consumer_connected") == 1
    assert http_get(host.url("/healthz"))[0] == 200


def test_sigterm_to_the_supervisor_drains_every_child_and_exits_0(
    start_host: Callable[..., Host],
) -> None:
    host = start_host()
    wait_balanced(host.env.database_url, 2, PARTITIONS)
    children = host.children()
    assert len(children) == 2

    code = host.supervisor.terminate(timeout=120)

    assert code == 0, host.supervisor.log_tail()
    assert not [c.pid for c in children if alive(c)]
    assert host.supervisor.count_log("worker.stopped") == 2
    assert host.supervisor.count_log("supervisor.child_exited", expected=True, exit_status=0) == 2
    assert partition_owners(host.env.database_url) == {}  # both handed their partitions back


def test_a_child_killed_mid_load_is_restarted_and_nothing_is_lost(
    start_host: Callable[..., Host],
) -> None:
    host = start_host()
    wait_balanced(host.env.database_url, 2, PARTITIONS)
    with harness_for(host.env) as h:
        ordered = build_ordered(h, conversations=60, accounts=30, unkeyed=40)
        h.client.publish_many(ordered.specs)
        wait_outcomes(h.events, ordered.ids[: len(ordered.ids) // 4], timeout=120)

        victim = host.children()[0]
        victim.kill()  # SIGKILL mid-load: its deliveries go back to their queues

        exited = host.supervisor.wait_for_log(
            "supervisor.child_exited", timeout=30, pid=victim.pid, exit_status=-9
        )
        host.supervisor.wait_for_log(
            "supervisor.child_restarted", timeout=60, process=exited["process"]
        )
        outcomes = wait_outcomes(h.events, ordered.ids, timeout=180)
        assert_in_order(h, ordered, outcomes)

    owners = wait_balanced(host.env.database_url, 2, PARTITIONS)
    assert sorted(owners.values()) == [8, 8]
    children = host.children()
    assert len(children) == 2
    assert victim.pid not in {c.pid for c in children}
    wait_until(host.ready, timeout=30, message="/readyz never answered 200 after the restart")
    assert host.supervisor.terminate(timeout=120) == 0
    assert not [c.pid for c in children if alive(c)]


def test_children_follow_a_supervisor_killed_with_sigkill(
    start_host: Callable[..., Host],
) -> None:
    host = start_host()
    wait_balanced(host.env.database_url, 2, PARTITIONS)
    children = host.children()

    host.supervisor.kill()

    wait_until(
        lambda: not any(alive(c) for c in children),
        timeout=60,
        message=lambda: f"still running: {[c.pid for c in children if alive(c)]}",
    )


def test_children_that_cannot_start_make_the_supervisor_give_up_with_one_line(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    base = isolated_worker_env()
    nowhere = base.database_url.replace(":5432", f":{free_port()}", 1)
    assert nowhere != base.database_url
    env = replace(base, database_url=nowhere)
    name = f"crash-loop-{unique_token(3)}"
    supervisor = workers.start(env, name=name, args=TWO, migrate=False, wait=False)

    code = supervisor.wait_exit(timeout=180)

    assert code == 1
    [gave_up] = supervisor.find_logs("supervisor.gave_up")
    assert "exited 6 times in a row" in gave_up["error"], gave_up
    assert supervisor.count_log("worker.start_failed") >= 6
    assert "Traceback" not in supervisor.logs()
    exited = [r["pid"] for r in supervisor.find_logs("supervisor.child_exited")]
    assert len(exited) >= 7  # process 1 or 2 six times, the other at least once
    assert not [pid for pid in exited if is_child_of(pid, supervisor)]


def is_child_of(pid: int, supervisor: WorkerProcess) -> bool:
    """Whether ``pid`` is still one of ``supervisor``'s children (its pid not reused since)."""
    try:
        process = psutil.Process(pid)
        return alive(process) and f"--parent-pid {supervisor.pid}" in " ".join(process.cmdline())
    except psutil.Error:
        return False
