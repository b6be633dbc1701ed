"""A PostgreSQL cluster of our own: ``private_postgres()``, ``PrivatePostgres``.

``initdb`` in a temp dir, started with ``pg_ctl`` on a free port with trust auth and
``fsync=off``; as root, it runs as ``postgres`` (or ``nobody``).

``private_postgres()``
    A context manager yielding a started ``PrivatePostgres``, destroyed on exit.
``PrivatePostgres``
    ``.url`` (the ``postgres`` database as superuser), ``.port``, ``.init()``, ``.start()``,
    ``.stop(mode="fast")`` (keeps the data), ``.kill()`` (SIGKILL, as a crash),
    ``.restart()``, ``.destroy()`` (stop however it can, delete the files).
``postgres_installed()``
    Whether ``initdb`` and ``pg_ctl`` can be found.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from testkit.private.host import (
    children,
    free_port,
    make_base,
    run_as,
    service_user,
    tail,
    wait_gone,
)

__all__ = ["PrivatePostgres", "postgres_installed", "private_postgres"]


def _postgres_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("initdb not found (looked in /usr/lib/postgresql/*/bin and PATH)")


def postgres_installed() -> bool:
    """Whether ``initdb`` and ``pg_ctl`` can be found to start a private cluster."""
    try:
        return (_postgres_bin() / "pg_ctl").exists()
    except RuntimeError:
        return False


class PrivatePostgres:
    """A PostgreSQL cluster of our own, in a temp dir, on a free port, with trust auth."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = service_user("postgres")
        self.base = make_base("private-pg-", self.user)
        self.data_dir = self.base / "data"
        self.log_file = self.base / "postgres.log"
        self._bin = _postgres_bin()

    @property
    def url(self) -> str:
        """Asyncpg URL of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*run_as(self.user), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.base,
        )

    def init(self) -> None:
        """Create the cluster (``initdb``)."""
        self._run(
            str(self._bin / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            self._run(
                str(self._bin / "pg_ctl"),
                "-D", str(self.data_dir),
                "-l", str(self.log_file),
                "-o", options,
                "-w", "-t", str(int(timeout)),
                "start",
                timeout=timeout + 10,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"private postgres did not start:\n{tail(self.log_file)}") from exc

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back sessions and shut down cleanly); keep the data."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and its children; keep the data."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid, *children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        wait_gone(victims)
        # Lock files naming a dead PID are what a crash leaves, but PID 1 may be slow to reap
        # the zombies here, and postgres would take one for a live postmaster.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        (self.base / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """Stop the server however it can be stopped, then delete its files."""
        with contextlib.suppress(Exception):
            self.stop(mode="immediate")
        with contextlib.suppress(Exception):
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Yield a started ``PrivatePostgres``; it is destroyed on exit, whatever happened."""
    instance = PrivatePostgres()
    atexit.register(instance.destroy)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.destroy()
        atexit.unregister(instance.destroy)
