"""``worker run``: consume commands until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import click
import structlog

from worker.cli.common import load_settings
from worker.errors import StartupError
from worker.settings import Settings

log = structlog.get_logger(__name__)


@click.command()
def run() -> None:
    """Consume commands until SIGTERM/SIGINT (a second signal exits at once)."""
    from worker.observability.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.event_loop == "uvloop":
        import uvloop

        sys.exit(uvloop.run(run_worker(settings)))
    sys.exit(asyncio.run(run_worker(settings)))


async def run_worker(settings: Settings) -> int:
    """Start, wait for SIGTERM/SIGINT, stop gracefully; a second signal exits at once."""
    from worker.bootstrap import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("worker.forced_exit", signal=signum)
            os._exit(128 + signum)
        log.info("worker.stopping", signal=signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    worker = Worker(settings)
    try:
        await worker.start()
    except StartupError as exc:
        log.error("worker.start_failed", error=str(exc))
        await worker.stop()
        return 1
    await stop.wait()
    await worker.stop()
    return 0
