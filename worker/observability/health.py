"""``/metrics``, ``/healthz`` and ``/readyz`` on one port (``WORKER_METRICS_PORT``).

``/metrics`` is prometheus-client's own aiohttp handler: it negotiates the format from the
scraper's ``Accept`` header (Prometheus text 0.0.4, or OpenMetrics when asked), honours
``?name[]=`` filters and lets aiohttp compress on ``Accept-Encoding``. We only refresh the
database-backed gauges before it runs.

The same server answers for a whole host under ``worker run --processes N``: the supervisor
gives it the children's merged metrics (:class:`~worker.observability.metrics.HostMetrics`)
and one readiness check per child.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

Check = Callable[[], Awaitable[bool]]


class Exported(Protocol):
    """What ``/metrics`` serves: one process's :class:`Metrics`, or a host's merged ones."""

    @property
    def registry(self) -> CollectorRegistry:
        """The registry to expose."""


CHECK_TIMEOUT = 2.0


class HealthServer:
    """A small aiohttp server: liveness, readiness (named checks) and metrics."""

    def __init__(
        self,
        metrics: Exported,
        checks: dict[str, Check],
        *,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._exposition = make_aiohttp_handler(metrics.registry)
        self._checks = checks
        self._refresh = refresh
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.started = time.monotonic()

    def application(self) -> web.Application:
        """The three routes, as an aiohttp application."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"status": "alive", "uptime_s": round(time.monotonic() - self.started, 1)}
        )

    async def _readyz(self, _: web.Request) -> web.Response:
        results = dict(
            zip(
                self._checks,
                await asyncio.gather(*(self._run(c) for c in self._checks.values())),
                strict=True,
            )
        )
        ready = all(results.values())
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return web.json_response(body, status=200 if ready else 503)

    async def _run(self, check: Check) -> bool:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception:
            return False

    async def _metrics_page(self, request: web.Request) -> web.StreamResponse:
        if self._refresh is not None:
            with contextlib.suppress(Exception):  # stale gauges beat no page at all
                await asyncio.wait_for(self._refresh(), CHECK_TIMEOUT)
        return await self._exposition(request)
