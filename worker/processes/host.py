"""The supervisor process: its children, the host's one metrics/health port, and signals."""

from __future__ import annotations

import asyncio
import errno
import shutil
import signal
import tempfile
from functools import partial
from pathlib import Path

import structlog

from worker.observability.health import HealthServer
from worker.observability.metrics import HostMetrics, forget_process
from worker.processes.children import Children
from worker.processes.supervisor import Supervisor
from worker.settings import Settings

log = structlog.get_logger(__name__)


async def supervise(settings: Settings, count: int) -> int:
    """Run ``count`` worker processes until SIGTERM/SIGINT; the exit status for the host.

    ``/metrics`` merges the children's metric files, ``/healthz`` answers while this
    process runs, ``/readyz`` is 200 only while every child answers its own ``/readyz``.
    """
    # Private to this supervisor (mode 0700) and fresh: no stale files of an earlier run
    # can leak into the host's counters.
    metrics_dir = Path(tempfile.mkdtemp(prefix="fca-worker-metrics-"))
    children = Children(metrics_dir, serve_health=bool(settings.metrics_port))
    supervisor = Supervisor(
        count, children.launch, probe=children.ready, forget=partial(forget_process, metrics_dir)
    )
    server: HealthServer | None = None
    try:
        if settings.metrics_port:
            server = HealthServer(
                HostMetrics(metrics_dir), supervisor.checks(), refresh=children.refresh
            )
            if not await _listen(server, settings):
                return 1
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, supervisor.stop, int(signum))
        return await supervisor.run()
    finally:
        if server is not None:
            await server.stop()
        await children.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


async def _listen(server: HealthServer, settings: Settings) -> bool:
    """Start the host's HTTP server; on failure log one line naming the setting."""
    port = settings.metrics_port
    try:
        await server.start(settings.metrics_host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            error = (
                f"port {port} (metrics and health) is already in use, perhaps by another "
                "worker: set WORKER_METRICS_PORT to a free port, or 0 to turn it off"
            )
        else:
            error = f"cannot listen on port {port}: {exc}"
        log.error("worker.start_failed", error=error)
        return False
    return True
