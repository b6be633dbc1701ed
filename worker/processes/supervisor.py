"""Keep N child processes running, restart one that exits, stop them all on a signal.

The supervisor knows nothing of how a child is started or asked whether it is ready: it is
given ``launch(number)`` and ``probe(number)`` (:mod:`worker.processes.children` in
production, fakes in the unit tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from worker.processes.restarts import RestartPolicy

log = structlog.get_logger(__name__)


class Process(Protocol):
    """A started child: what :class:`asyncio.subprocess.Process` offers and we use."""

    @property
    def pid(self) -> int:
        """Its process id."""

    async def wait(self) -> int:
        """Wait for it to exit; its exit status (``-N`` when signal N ended it)."""

    def send_signal(self, signum: int) -> None:
        """Send it a signal."""


Launch = Callable[[int], Awaitable[Process]]
Probe = Callable[[int], Awaitable[bool]]


class Supervisor:
    """Runs children ``1..count``; :meth:`run` returns the host's exit status."""

    def __init__(
        self,
        count: int,
        launch: Launch,
        *,
        probe: Probe,
        policy: RestartPolicy | None = None,
        forget: Callable[[int], None] = lambda pid: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self._launch = launch
        self._probe = probe
        self._policy = policy or RestartPolicy()
        self._forget = forget
        self._clock = clock
        self._running: dict[int, Process] = {}
        self._stopping = asyncio.Event()
        self._signal = signal.SIGTERM.value
        self._forced: int | None = None
        self.failure: str | None = None
        """Why the supervisor gave up (a crash loop, a child that cannot be started)."""

    def pids(self) -> dict[int, int]:
        """The process id of each running child, by number."""
        return {number: process.pid for number, process in self._running.items()}

    def checks(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        """One readiness check per child, named ``process-<number>``, for ``/readyz``."""
        numbers = range(1, self.count + 1)
        return {f"process-{n}": functools.partial(self.ready, n) for n in numbers}

    async def ready(self, number: int) -> bool:
        """Whether child ``number`` runs and says it is ready (between restarts: not)."""
        return number in self._running and await self._probe(number)

    async def run(self) -> int:
        """Start every child and keep them running until :meth:`stop`; the exit status.

        0 when every child exited 0 (or of the very signal forwarded to it, before it had
        anything to drain); 1 otherwise or when the supervisor gave up; ``128 + signal``
        after a second signal (which kills every child).
        """
        log.info("supervisor.started", processes=self.count)
        numbers = range(1, self.count + 1)
        codes = await asyncio.gather(*(self._keep(number) for number in numbers))
        log.info("supervisor.stopped", exit_codes=list(codes))
        if self._forced is not None:
            return self._forced
        return 0 if self.failure is None and not any(codes) else 1

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Forward ``signum`` to every child and restart none; a second call kills them."""
        signum, name = int(signum), signal.Signals(signum).name
        if self._stopping.is_set():
            # What a second signal does to a single worker (exit now, nothing drained), made
            # certain: a child whose event loop is stuck never runs its signal handler.
            self._forced = 128 + signum
            log.warning("supervisor.forced_exit", signal=name, pids=sorted(self.pids().values()))
            forwarded = int(signal.SIGKILL)
        else:
            self._signal = forwarded = signum
            self._stopping.set()
            log.info("supervisor.stopping", signal=name, pids=sorted(self.pids().values()))
        for process in self._running.values():
            _send(process, forwarded)

    async def _keep(self, number: int) -> int:
        """Run child ``number`` until the stop, restarting it; its last exit status."""
        restarts, code = 0, 0
        while not self._stopping.is_set():
            try:
                process = await self._launch(number)
            except OSError as exc:
                return self._give_up(f"cannot start process {number}: {exc}")
            code, ran_for = await self._watch(number, process, restarts)
            if self._stopping.is_set():
                return 0 if code == -self._signal else code
            delay = self._policy.after_exit(number, ran_for)
            if delay is None:
                exits = self._policy.exits_in_a_row(number)
                return self._give_up(
                    f"process {number} exited {exits} times in a row, each within "
                    f"{self._policy.stable_after:g} s of its start (last exit status {code}): "
                    "stopping the others"
                )
            with contextlib.suppress(TimeoutError):  # a stop during the pause: no restart
                await asyncio.wait_for(self._stopping.wait(), delay)
            restarts += 1
        return code  # stopped while waiting to restart it: how it last exited

    async def _watch(self, number: int, process: Process, restarts: int) -> tuple[int, float]:
        """Record a launched child and wait for it to exit; its exit status and run time."""
        started = self._clock()
        self._running[number] = process
        event = "supervisor.child_restarted" if restarts else "supervisor.child_started"
        log.info(event, process=number, pid=process.pid, restarts=restarts)
        if self._stopping.is_set():  # the stop came while it was being launched
            _send(process, self._signal)
        code = await process.wait()
        del self._running[number]
        self._forget(process.pid)
        ran_for = self._clock() - started
        expected = self._stopping.is_set()
        report = log.info if expected and code in (0, -self._signal) else log.warning
        report(
            "supervisor.child_exited",
            process=number,
            pid=process.pid,
            exit_status=code,
            ran_s=round(ran_for, 1),
            expected=expected,
        )
        return code, ran_for

    def _give_up(self, why: str) -> int:
        if self.failure is None:
            self.failure = why
            log.error("supervisor.gave_up", error=why)
        if not self._stopping.is_set():  # (a stop already under way must not turn forced)
            self.stop(signal.SIGTERM)
        return 1


def _send(process: Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        process.send_signal(signum)
