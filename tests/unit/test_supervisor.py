"""The supervisor of ``worker run --processes N``, with fake children (no process is started).

A :class:`FakeChild` exits when the test says so, or when it gets a signal it was told to
obey; the launcher records every start. Restart pauses are milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from testkit.factories import eventually
from worker.observability.health import HealthServer
from worker.observability.metrics import Metrics
from worker.processes.restarts import RestartPolicy
from worker.processes.supervisor import Supervisor

pytestmark = pytest.mark.unit

FAST = {"first_delay": 0.001, "max_delay": 0.004}
DIES = -1000
"""A fake child with ``on_signal=DIES`` is ended by any signal (no handler installed)."""


class FakeChild:
    """A child process whose exit the test controls."""

    def __init__(self, pid: int, *, on_signal: int | None) -> None:
        self.pid = pid
        self.on_signal = on_signal
        """The status a signal makes it exit with: ``DIES`` (``-signum``), or ``None`` (none)."""
        self.signals: list[int] = []
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def wait(self) -> int:
        return await self._exit

    def send_signal(self, signum: int) -> None:
        if self._exit.done():
            raise ProcessLookupError(self.pid)
        self.signals.append(signum)
        if self.on_signal is not None:
            self.exit(-signum if self.on_signal == DIES else self.on_signal)

    def exit(self, status: int) -> None:
        """End the process with ``status`` (``-N``: signal N ended it)."""
        self._exit.set_result(status)


class Launcher:
    """Starts fake children; ``on_signal`` is what each new child does on a signal."""

    def __init__(self, *, on_signal: int | None = 0, fail: bool = False) -> None:
        self.on_signal = on_signal
        self.fail = fail
        self.started: dict[int, list[FakeChild]] = {}
        self._pids = iter(range(1000, 2000))

    async def __call__(self, number: int) -> FakeChild:
        if self.fail:
            raise PermissionError(13, "Permission denied")
        child = FakeChild(next(self._pids), on_signal=self.on_signal)
        self.started.setdefault(number, []).append(child)
        return child

    def current(self, number: int) -> FakeChild:
        return self.started[number][-1]


async def always_ready(number: int) -> bool:
    return True


async def until(condition: Callable[[], object], timeout: float = 5) -> None:
    """Let the event loop run until ``condition()`` holds (fail after ``timeout`` seconds)."""
    await eventually(condition, timeout=timeout, interval=0.001)


def supervisor(launcher: Launcher, count: int = 2, **policy: float) -> Supervisor:
    return Supervisor(
        count, launcher, probe=always_ready, policy=RestartPolicy(**{**FAST, **policy})
    )


# --- the restart policy --------------------------------------------------------------------


def test_the_pause_doubles_with_each_quick_exit_up_to_the_cap() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3, max_restarts=10, stable_after=60)
    assert [policy.after_exit(1, ran_for=1) for _ in range(5)] == [0.5, 1, 2, 3, 3]


def test_the_exit_after_the_last_allowed_restart_is_a_crash_loop() -> None:
    policy = RestartPolicy(max_restarts=3, stable_after=60)
    delays = [policy.after_exit(1, ran_for=0.1) for _ in range(4)]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert delays[3] is None
    assert policy.exits_in_a_row(1) == 4


def test_a_child_that_ran_long_enough_starts_a_fresh_count() -> None:
    policy = RestartPolicy(max_restarts=2, stable_after=60)
    policy.after_exit(1, ran_for=1)
    policy.after_exit(1, ran_for=1)
    assert policy.after_exit(1, ran_for=61) == 0.5
    assert policy.exits_in_a_row(1) == 1


def test_each_child_has_its_own_count() -> None:
    policy = RestartPolicy(max_restarts=1)
    assert policy.after_exit(1, ran_for=0) == 0.5
    assert policy.after_exit(2, ran_for=0) == 0.5
    assert policy.after_exit(1, ran_for=0) is None


# --- running, restarting, stopping -----------------------------------------------------------


async def test_a_signal_is_forwarded_to_every_child_and_a_clean_stop_exits_0() -> None:
    launcher = Launcher(on_signal=0)
    sup = supervisor(launcher, count=3)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 3)

    sup.stop(signal.SIGINT)

    assert await running == 0
    assert [launcher.current(n).signals for n in (1, 2, 3)] == [[signal.SIGINT]] * 3
    assert all(len(children) == 1 for children in launcher.started.values())


async def test_a_child_that_exits_unexpectedly_is_restarted_and_logged() -> None:
    launcher = Launcher()
    sup = supervisor(launcher)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)
    first = launcher.current(1)

    with structlog.testing.capture_logs() as logs:
        first.exit(-signal.SIGKILL)
        await until(lambda: len(launcher.started[1]) == 2 and 1 in sup.pids())

    replacement = launcher.current(1)
    assert sup.pids() == {1: replacement.pid, 2: launcher.current(2).pid}
    exited = [e for e in logs if e["event"] == "supervisor.child_exited"]
    assert exited == [
        {
            "event": "supervisor.child_exited",
            "log_level": "warning",
            "process": 1,
            "pid": first.pid,
            "exit_status": -signal.SIGKILL,
            "ran_s": exited[0]["ran_s"],
            "expected": False,
        }
    ]
    [restarted] = [e for e in logs if e["event"] == "supervisor.child_restarted"]
    assert (restarted["process"], restarted["pid"], restarted["restarts"]) == (
        1,
        replacement.pid,
        1,
    )
    sup.stop()
    assert await running == 0


async def test_a_crash_loop_stops_the_others_and_exits_1_with_one_line() -> None:
    launcher = Launcher(on_signal=0)
    sup = supervisor(launcher, max_restarts=2)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)
    healthy = launcher.current(2)

    with structlog.testing.capture_logs() as logs:
        for attempt in range(3):
            await until(lambda attempt=attempt: len(launcher.started[1]) == attempt + 1)
            await until(lambda: 1 in sup.pids())
            launcher.current(1).exit(1)
        code = await running

    assert code == 1
    assert len(launcher.started[1]) == 3  # the first start and two restarts
    assert healthy.signals == [signal.SIGTERM]
    [gave_up] = [e for e in logs if e["event"] == "supervisor.gave_up"]
    assert gave_up["log_level"] == "error"
    assert "process 1 exited 3 times in a row" in gave_up["error"]
    assert "\n" not in gave_up["error"]
    assert sup.failure == gave_up["error"]


async def test_a_child_that_cannot_be_started_ends_the_supervisor() -> None:
    sup = supervisor(Launcher(fail=True))
    assert await sup.run() == 1
    assert sup.failure is not None
    assert sup.failure.startswith("cannot start process")


async def test_a_child_that_cannot_be_started_during_a_stop_does_not_force_the_stop() -> None:
    async def stop_then_fail(number: int) -> FakeChild:
        sup.stop()  # the stop arrives while the child is being started
        raise PermissionError(13, "Permission denied")

    sup = Supervisor(1, stop_then_fail, probe=always_ready)

    assert await sup.run() == 1  # not 128 + SIGTERM: nothing was forced


async def test_a_stop_during_the_pause_before_a_restart_starts_nothing() -> None:
    launcher = Launcher(on_signal=0)
    sup = supervisor(launcher, first_delay=30, max_delay=30)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)

    launcher.current(1).exit(3)
    await until(lambda: 1 not in sup.pids())
    sup.stop()

    assert await asyncio.wait_for(running, 5) == 1  # process 1's last exit was not clean
    assert len(launcher.started[1]) == 1


async def test_a_child_that_dies_of_the_forwarded_signal_counts_as_a_clean_stop() -> None:
    launcher = Launcher(on_signal=DIES)  # no handler installed yet: SIGTERM ends it
    sup = supervisor(launcher)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)

    sup.stop(signal.SIGTERM)

    assert await running == 0


async def test_a_child_that_fails_its_drain_makes_the_exit_status_1() -> None:
    launcher = Launcher(on_signal=None)
    sup = supervisor(launcher)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)

    sup.stop()
    launcher.current(1).exit(0)
    launcher.current(2).exit(1)

    assert await running == 1
    assert len(launcher.started[2]) == 1  # never restarted during the stop


async def test_a_second_signal_kills_every_child_and_exits_128_plus_it() -> None:
    launcher = Launcher(on_signal=None)  # stuck: it never acts on SIGTERM
    sup = supervisor(launcher)
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)

    sup.stop(signal.SIGTERM)
    sup.stop(signal.SIGINT)
    for number in (1, 2):
        launcher.current(number).exit(-signal.SIGKILL)

    assert await running == 128 + signal.SIGINT
    assert launcher.current(1).signals == [signal.SIGTERM, signal.SIGKILL]


async def test_a_stop_before_the_children_started_starts_none() -> None:
    launcher = Launcher()
    sup = supervisor(launcher)
    sup.stop()
    assert await sup.run() == 0
    assert launcher.started == {}


# --- readiness of the host ------------------------------------------------------------------


async def readyz(server: HealthServer) -> tuple[int, dict[str, object]]:
    app = server.application()
    mocked = make_mocked_request("GET", "/readyz", app=app)
    response = await (await app.router.resolve(mocked)).handler(mocked)
    assert isinstance(response, web.Response)
    assert isinstance(response.body, bytes)
    return response.status, json.loads(response.body)


async def test_the_host_is_ready_only_while_every_child_is() -> None:
    launcher = Launcher()
    answers = {1: True, 2: False}

    async def probe(number: int) -> bool:
        return answers[number]

    sup = Supervisor(2, launcher, probe=probe, policy=RestartPolicy(**FAST))
    server = HealthServer(Metrics(), sup.checks())
    assert await readyz(server) == (
        503,
        {"status": "not ready", "checks": {"process-1": False, "process-2": False}},
    )
    running = asyncio.create_task(sup.run())
    await until(lambda: len(sup.pids()) == 2)

    status, body = await readyz(server)
    assert (status, body["checks"]) == (503, {"process-1": True, "process-2": False})

    answers[2] = True
    assert (await readyz(server))[0] == 200

    sup.stop()
    await running
    assert (await readyz(server))[0] == 503  # a child that is not running is not ready
