"""Run the worker until a signal, with a graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal

import structlog

from worker.bootstrap import Worker
from worker.settings import Settings
from worker.startup import StartupError

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings) -> int:
    """Start, wait for SIGTERM/SIGINT, stop gracefully; a second signal exits at once."""
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
