"""How the supervisor starts a child, and asks it whether it is ready.

A child is ``python -m worker run --processes 1 --parent-pid <ours>``: a new interpreter
running exactly the single-process path, with the supervisor's environment plus three
settings of its own. Its health and metrics server listens on ``127.0.0.1`` on a free port
the supervisor picks for each start (the supervisor polls ``/readyz`` there); its metrics
go to files in ``PROMETHEUS_MULTIPROC_DIR`` too, which the supervisor merges.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp

CHILD_HOST = "127.0.0.1"
PROBE_TIMEOUT = 2.0
"""Seconds a child has to answer ``/readyz`` (or ``/metrics``) before it counts as not ready."""


class Children:
    """Starts the children of one supervisor and talks to their private health servers."""

    def __init__(self, metrics_dir: Path, *, serve_health: bool) -> None:
        self._metrics_dir = metrics_dir
        self._serve_health = serve_health
        self._ports: dict[int, int] = {}
        self._session: aiohttp.ClientSession | None = None

    async def launch(self, number: int) -> asyncio.subprocess.Process:
        """Start child ``number`` (raises ``OSError`` if it cannot be executed)."""
        port = free_port() if self._serve_health else 0
        self._ports[number] = port
        env = {
            **os.environ,
            "WORKER_METRICS_HOST": CHILD_HOST,
            "WORKER_METRICS_PORT": str(port),
            # Read when the child imports prometheus-client: its values go to files here.
            "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir),
        }
        command = ["-m", "worker", "run", "--processes", "1", "--parent-pid", str(os.getpid())]
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,  # stdout and stderr: the supervisor's, one log
            # Its own session: a Ctrl-C in a terminal reaches the supervisor only, which
            # forwards it once (a second signal would make the child exit at once).
            start_new_session=True,
        )

    async def ready(self, number: int) -> bool:
        """Whether child ``number`` answers ``/readyz`` with 200."""
        return await self._get(number, "/readyz") == 200

    async def refresh(self) -> None:
        """Ask every child for its ``/metrics``, which refreshes its database-backed gauges."""
        await asyncio.gather(*(self._get(number, "/metrics") for number in self._ports))

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, number: int, path: str) -> int | None:
        port = self._ports.get(number)
        if not port:
            return None
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.get(f"http://{CHILD_HOST}:{port}{path}") as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now.

    Another process could take it before the child binds it; the child would then fail to
    start and be restarted with another port, so the race costs a restart, never a hang.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((CHILD_HOST, 0))
        return int(probe.getsockname()[1])
