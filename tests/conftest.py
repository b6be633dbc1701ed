"""Session-wide fixtures: where PostgreSQL and RabbitMQ are, and a private corner of each.

``postgres_url`` is a fresh database and ``amqp_url`` a fresh vhost, both created for this
session and removed at its end. A test that needs a service nobody provided is skipped with a
reason containing ``[no-service]``; the summary prints ``SERVICE-SKIPS: N`` so CI can fail on it.
The plain functions behind these fixtures are in ``testkit.services`` and ``testkit.sandbox``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # make `testkit` importable however pytest was started
    sys.path.insert(0, str(_ROOT))

from testkit.sandbox import create_database, create_vhost, delete_vhost, drop_database  # noqa: E402
from testkit.services import (  # noqa: E402
    AMQP_URL_ENV,
    DATABASE_URL_ENV,
    NO_SERVICE,
    AmqpServer,
    ServiceUnavailable,
    docker_engine_available,
    normalise_database_url,
    postgres_container,
    rabbitmq_container,
    random_suffix,
    redact,
)

_EXAMPLES = {
    DATABASE_URL_ENV: "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    AMQP_URL_ENV: "amqp://guest:guest@127.0.0.1:5672/",
}


def _no_service(what: str, env_var: str, why: str) -> NoReturn:
    pytest.skip(
        f"{NO_SERVICE} {what} UNAVAILABLE: {why}. Set {env_var} (e.g. {env_var}="
        f"{_EXAMPLES[env_var]}) or start a Docker engine for testcontainers."
    )


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (``postgresql+asyncpg://``) whose database we may create under."""
    if env := os.environ.get(DATABASE_URL_ENV):
        yield normalise_database_url(env)
        return
    if not docker_engine_available():
        _no_service("PostgreSQL", DATABASE_URL_ENV, f"{DATABASE_URL_ENV} unset and no Docker")
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_container())
        except Exception as exc:
            _no_service("PostgreSQL", DATABASE_URL_ENV, f"testcontainers failed: {exc}")
        yield url


@pytest.fixture(scope="session")
def amqp_server() -> Iterator[AmqpServer]:
    """A RabbitMQ broker (URL of its default vhost, and its management API when known)."""
    if env := os.environ.get(AMQP_URL_ENV):
        yield AmqpServer(url=env)
        return
    if not docker_engine_available():
        _no_service("RabbitMQ", AMQP_URL_ENV, f"{AMQP_URL_ENV} unset and no Docker")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(rabbitmq_container())
        except Exception as exc:
            _no_service("RabbitMQ", AMQP_URL_ENV, f"testcontainers failed: {exc}")
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for this session (``postgresql+asyncpg://…/worker_test_<hex>``)."""
    try:
        url = create_database(postgres_server_url)
    except ServiceUnavailable as exc:
        _no_service("PostgreSQL", DATABASE_URL_ENV, str(exc))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def amqp_url(amqp_server: AmqpServer) -> Iterator[str]:
    """A fresh vhost for this session (``amqp://…/test-<hex>``), deleted at the end."""
    try:
        url = create_vhost(amqp_server.url, management_url=amqp_server.management_url)
    except ServiceUnavailable as exc:
        _no_service("RabbitMQ", AMQP_URL_ENV, str(exc))
    yield url
    delete_vhost(url, management_url=amqp_server.management_url)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A random hex id shared by the whole session, for names that must not collide."""
    return random_suffix()


@pytest.fixture
def unique_name(run_id: str) -> Callable[[str], str]:
    """Return a factory of names unique to this test: ``unique_name("q")`` → ``q-<run>-<hex>``."""
    return lambda prefix: f"{prefix}-{run_id}-{random_suffix(4)}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which services this run uses, without passwords."""
    lines = []
    for env_var in (DATABASE_URL_ENV, AMQP_URL_ENV):
        value = os.environ.get(env_var)
        lines.append(f"{env_var}={redact(value) if value else '(unset: testcontainers or skip)'}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print ``SERVICE-SKIPS: N``, the number of tests skipped for want of a service."""
    skipped = terminalreporter.stats.get("skipped", [])
    count = sum(1 for report in skipped if NO_SERVICE in str(getattr(report, "longrepr", "")))
    if count or any(os.environ.get(v) for v in (DATABASE_URL_ENV, AMQP_URL_ENV)):
        terminalreporter.write_line(f"SERVICE-SKIPS: {count}", red=bool(count), bold=True)
