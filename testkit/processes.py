"""The worker as a subprocess, started the way the README says, and pools of them.

Nothing here imports the worker: ``worker db upgrade`` then ``worker run`` are run as
commands from this virtualenv (``WORKER_BIN``), configured only through the environment a
:class:`testkit.config.WorkerEnv` gives.

``WorkerProcess(env, log_path, name="worker", args=())``
    ``.start(timeout=30, migrate=True, wait=True)`` runs ``worker db upgrade`` (unless
    ``migrate=False``) then ``worker run *args`` (e.g. ``("--processes", "2")``),
    stdout+stderr appended to ``log_path``, and waits for a new JSON ``worker.started`` line
    (any child's, under ``--processes``; raises ``WorkerStartError`` with the log tail);
    calling ``.start()`` again after the process ended restarts it (same log file);
    ``.wait_started(timeout)``, ``.terminate(timeout=30) -> int`` (SIGTERM, wait, SIGKILL if it
    hangs), ``.kill() -> int`` (SIGKILL), ``.wait_exit(timeout) -> int``, ``.is_running``,
    ``.pid``, ``.returncode``, ``.send_signal(signum)``, ``.migrate()``; and its log, from
    :class:`testkit.logs.WorkerLog`: ``.logs()``, ``.log_tail(lines)``, ``.log_records()``,
    ``.find_logs(event, **fields)``, ``.wait_for_log(event, timeout, **fields)``,
    ``.count_log(event, **fields)``.
``WorkerPool(log_dir)``
    ``.start(env, name=None, args=(), **start_kwargs) -> WorkerProcess``,
    ``.spawn(env, name=None, args=())``
    (not started), ``.stop_all(timeout)``, ``.kill_all()``. The fixtures own one pool each and
    always kill every process at teardown.
``WorkerStartError``
    The worker did not migrate, or did not log ``worker.started`` in time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testkit.config import WorkerEnv
from testkit.factories import unique_token
from testkit.logs import WorkerLog
from testkit.services import redact

__all__ = ["WORKER_BIN", "WorkerPool", "WorkerProcess", "WorkerStartError"]

WORKER_BIN = Path(sys.executable).parent / "worker"
"""The ``worker`` command of this virtualenv."""


class WorkerStartError(RuntimeError):
    """The worker did not migrate or did not log ``worker.started`` in time."""


class WorkerProcess(WorkerLog):
    """One ``worker run`` subprocess whose output goes to a log file."""

    def __init__(
        self, env: WorkerEnv, log_path: Path, *, name: str = "worker", args: Sequence[str] = ()
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.name = name
        self.args = tuple(args)
        self.process: subprocess.Popen[bytes] | None = None
        self._started_before = 0

    def __repr__(self) -> str:
        return f"<WorkerProcess {self.name} pid={self.pid} rc={self.returncode}>"

    # lifecycle

    def migrate(self, timeout: float = 60) -> None:
        """Run ``worker db upgrade`` to completion (raises ``WorkerStartError`` on failure)."""
        with self.log_path.open("ab") as log:
            try:
                result = subprocess.run(
                    [str(WORKER_BIN), "db", "upgrade"],
                    env=self.env.environ(),
                    cwd=self.log_path.parent,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise WorkerStartError(self._failure("db upgrade timed out")) from exc
        if result.returncode != 0:
            raise WorkerStartError(self._failure(f"db upgrade exited {result.returncode}"))

    def start(
        self, *, timeout: float = 30, migrate: bool = True, wait: bool = True
    ) -> WorkerProcess:
        """Migrate (optionally), launch ``worker run`` and (optionally) wait until started."""
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running")
        if migrate:
            self.migrate()
        self._started_before = self._started_count()  # a restart appends to the same log
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [str(WORKER_BIN), "run", *self.args],
                env=self.env.environ(),
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on pytest does not reach it twice
            )
        finally:
            log.close()
        if wait:
            self.wait_started(timeout)
        return self

    def wait_started(self, timeout: float = 30) -> None:
        """Wait for the ``worker.started`` log line; on exit or timeout kill and raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._started_count() > self._started_before:
                return
            if self.process is not None and self.process.poll() is not None:
                raise WorkerStartError(self._failure(f"exited {self.process.returncode}"))
            time.sleep(0.05)
        self.kill()
        raise WorkerStartError(self._failure(f"no worker.started within {timeout:.0f}s"))

    def _started_count(self) -> int:
        return self.count_log("worker.started")

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status, once the process has ended."""
        return self.process.poll() if self.process is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        """Send a signal to the worker process (not its children)."""
        if self.is_running:
            assert self.process is not None
            self.process.send_signal(signum)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, wait up to ``timeout`` for a graceful exit (SIGKILL after); the exit code."""
        if self.process is None:
            return 0
        self.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit code (``-9`` when it was still running)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the process to exit on its own; the exit code."""
        assert self.process is not None, "not started"
        return self.process.wait(timeout)

    def _failure(self, what: str) -> str:
        env = self.env
        return (
            f"{self.name} {what} (broker {redact(env.amqp_url)}, database "
            f"{redact(env.database_url)}); log {self.log_path}:\n{self.log_tail(60)}"
        )


class WorkerPool:
    """Starts workers with one log file each and stops every one of them at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[WorkerProcess] = []

    def spawn(
        self, env: WorkerEnv, *, name: str | None = None, args: Sequence[str] = ()
    ) -> WorkerProcess:
        """A worker that is tracked (and killed at teardown) but not started yet."""
        name = name or f"worker-{len(self.processes) + 1}-{unique_token(3)}"
        process = WorkerProcess(env, self.log_dir / f"{name}.log", name=name, args=args)
        self.processes.append(process)
        return process

    def start(
        self, env: WorkerEnv, *, name: str | None = None, args: Sequence[str] = (), **start: Any
    ) -> WorkerProcess:
        """Spawn and start a worker (``start`` passes ``timeout``, ``migrate``, ``wait``)."""
        return self.spawn(env, name=name, args=args).start(**start)

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM every running worker, SIGKILL those that do not exit in time."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            if process.process is None:
                continue
            try:
                process.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()

    def kill_all(self) -> None:
        """SIGKILL every worker still running."""
        for process in self.processes:
            process.kill()
