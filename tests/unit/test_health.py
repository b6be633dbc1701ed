"""``/metrics``, ``/healthz`` and ``/readyz``, requested in memory (no socket).

Each request goes through the application's own router to its handler, built with aiohttp's
``make_mocked_request``; ``/metrics`` bodies are read back with prometheus-client's parsers,
as a scraper would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from worker.observability import health
from worker.observability.health import HealthServer
from worker.observability.metrics import Metrics

pytestmark = pytest.mark.unit

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


async def request(
    server: HealthServer, path: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """GET ``path`` through the server's application, without a socket."""
    app = server.application()
    mocked = make_mocked_request("GET", path, headers=dict(headers or {}), app=app)
    match = await app.router.resolve(mocked)
    response = await match.handler(mocked)
    assert isinstance(response, web.Response)
    return response


def body(response: web.Response) -> str:
    """A response's body as text."""
    assert isinstance(response.body, bytes)
    return response.body.decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus text page, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def always(result: bool) -> Callable[[], Awaitable[bool]]:
    """A readiness check that answers ``result``."""

    async def check() -> bool:
        return result

    return check


async def broken() -> bool:
    """A readiness check that raises."""
    raise ConnectionError("database unreachable")


async def slow() -> bool:
    """A readiness check that never answers in time."""
    await asyncio.sleep(10)
    return True


# --- /metrics -----------------------------------------------------------------------------


async def test_metrics_are_scraped_in_the_prometheus_text_format() -> None:
    metrics = Metrics()
    metrics.commands.labels("CreateCustomer", "applied").inc(3)
    metrics.latency.labels("CreateCustomer").observe(0.02)
    metrics.in_flight.set(2)

    response = await request(HealthServer(metrics, {}), "/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    scraped = samples(body(response))
    applied = (("outcome", "applied"), ("type", "CreateCustomer"))
    assert scraped[("fca_commands_total", applied)] == 3
    assert scraped[("fca_command_duration_seconds_count", (("type", "CreateCustomer"),))] == 1
    assert scraped[("fca_in_flight", ())] == 2


async def test_metrics_negotiate_openmetrics_when_the_scraper_asks_for_it() -> None:
    metrics = Metrics()
    metrics.retries.labels("transient").inc()

    response = await request(
        HealthServer(metrics, {}), "/metrics", {"Accept": "application/openmetrics-text"}
    )

    assert response.headers["Content-Type"] == OPENMETRICS
    text = body(response)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["fca_retries"].samples[0].value == 1


async def test_metrics_can_be_filtered_by_name() -> None:
    response = await request(HealthServer(Metrics(), {}), "/metrics?name[]=fca_in_flight")
    names = {name for name, _ in samples(body(response))}
    assert names == {"fca_in_flight"}


async def test_the_gauges_are_refreshed_before_each_scrape() -> None:
    metrics = Metrics()

    async def refresh() -> None:
        metrics.outbox_backlog.set(7)

    response = await request(HealthServer(metrics, {}, refresh=refresh), "/metrics")
    assert samples(body(response))[("fca_outbox_backlog", ())] == 7


@pytest.mark.parametrize("refresh", [broken, slow], ids=["failing", "too-slow"])
async def test_a_refresh_that_fails_still_serves_the_page(
    refresh: Callable[[], Awaitable[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)
    metrics = Metrics()
    metrics.events_published.inc(5)

    response = await request(HealthServer(metrics, {}, refresh=refresh), "/metrics")

    assert response.status == 200
    assert samples(body(response))[("fca_events_published_total", ())] == 5


# --- /healthz and /readyz -----------------------------------------------------------------


async def test_healthz_answers_while_the_process_runs() -> None:
    response = await request(HealthServer(Metrics(), {"broker": always(False)}), "/healthz")
    assert response.status == 200
    assert json.loads(body(response))["status"] == "alive"


async def test_readyz_is_200_when_every_check_passes() -> None:
    checks = {"broker": always(True), "database": always(True)}
    response = await request(HealthServer(Metrics(), checks), "/readyz")
    assert response.status == 200
    assert json.loads(body(response)) == {
        "status": "ready",
        "checks": {"broker": True, "database": True},
    }


async def test_readyz_is_503_and_names_each_check_that_failed_raised_or_hung(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)
    checks = {"broker": always(True), "database": broken, "heartbeat": slow, "x": always(False)}

    response = await request(HealthServer(Metrics(), checks), "/readyz")

    assert response.status == 503
    assert json.loads(body(response))["checks"] == {
        "broker": True,
        "database": False,
        "heartbeat": False,
        "x": False,
    }
