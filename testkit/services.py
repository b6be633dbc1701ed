"""Where the PostgreSQL server and the RabbitMQ broker to test against are.

Discovery order (the fixtures in ``tests/conftest.py`` follow it):

1. ``WORKER_TEST_DATABASE_URL`` / ``WORKER_TEST_AMQP_URL`` when set (CI sets both);
2. otherwise testcontainers, but only if a Docker engine answers;
3. otherwise the test is skipped with a reason that starts with ``NO_SERVICE``.

``DATABASE_URL_ENV``, ``AMQP_URL_ENV``
    The names of those two variables.
``NO_SERVICE``
    The marker in every skip reason caused by a missing service (counted as ``SERVICE-SKIPS``).
``AmqpServer(url, management_url=None)``
    A broker: its URL and, when known, its management API base URL.
``ServiceUnavailable``
    A server could not be reached, or refused to create or remove what we asked for.
``docker_engine_available()``, ``postgres_container()``, ``rabbitmq_container()``
    Whether Docker answers; context managers running PostgreSQL 15 (yielding its
    ``postgresql+asyncpg://`` server URL) or RabbitMQ 3 with management (yielding an
    ``AmqpServer``) in a container.
``normalise_database_url(url)``, ``asyncpg_dsn(url)``
    A ``postgres(ql)://`` URL as SQLAlchemy's ``postgresql+asyncpg://``, or as asyncpg's DSN.
``redact(url)``, ``random_suffix(n_bytes=6)``, ``run_sync(coro)``
    A URL without its password; a random hex suffix for names; a coroutine run to completion
    on a private loop in a helper thread (safe while pytest-asyncio owns this thread's loop).

Fresh databases and vhosts on these servers are made by :mod:`testkit.sandbox`. Nothing here
uses pytest, so the benchmark reuses it; messages never contain passwords.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import secrets
import shutil
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "AMQP_URL_ENV",
    "DATABASE_URL_ENV",
    "NO_SERVICE",
    "AmqpServer",
    "ServiceUnavailable",
    "asyncpg_dsn",
    "docker_engine_available",
    "normalise_database_url",
    "postgres_container",
    "rabbitmq_container",
    "random_suffix",
    "redact",
    "run_sync",
]

DATABASE_URL_ENV = "WORKER_TEST_DATABASE_URL"
AMQP_URL_ENV = "WORKER_TEST_AMQP_URL"
NO_SERVICE = "[no-service]"
"""Marker in every skip reason caused by a missing service; counted as ``SERVICE-SKIPS``."""

POSTGRES_IMAGE = "postgres:15"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
MANAGEMENT_PORT = 15672

T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """The server could not be reached or refused to create or remove what we asked for."""


@dataclass(frozen=True)
class AmqpServer:
    """A broker to test against: its URL and, when known, its management API base URL."""

    url: str
    management_url: str | None = None


def random_suffix(n_bytes: int = 6) -> str:
    """Return a random lower-case hex string, for names that must not collide across runs."""
    return secrets.token_hex(n_bytes)


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private loop in a helper thread.

    Safe to call from sync fixtures while pytest-asyncio owns this thread's event loop.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def normalise_database_url(url: str) -> str:
    """Return ``url`` as a ``postgresql+asyncpg://`` URL (accepts ``postgres(ql)://`` too)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return f"postgresql+asyncpg://{rest}"


def asyncpg_dsn(url: str) -> str:
    """Return a PostgreSQL URL (any of the schemes above) as an asyncpg ``postgresql://`` DSN."""
    return "postgresql://" + normalise_database_url(url).partition("://")[2]


# --- testcontainers ---------------------------------------------------------------------------


@functools.cache
def docker_engine_available() -> bool:
    """Whether a Docker engine answers a ping within a few seconds (cached per process)."""
    if not (os.environ.get("DOCKER_HOST") or shutil.which("docker")):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def postgres_container() -> Iterator[str]:
    """Run PostgreSQL 15 in a container; yield its ``postgresql+asyncpg://`` server URL."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.9
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver="asyncpg") as container:
        yield normalise_database_url(container.get_connection_url())


@contextlib.contextmanager
def rabbitmq_container() -> Iterator[AmqpServer]:
    """Run RabbitMQ 3.x with the management plugin in a container; yield where it listens."""
    try:
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:  # testcontainers < 4.9
        from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE).with_exposed_ports(MANAGEMENT_PORT)
    with container:
        host = container.get_container_host_ip()
        amqp_port = container.get_exposed_port(container.port)
        http_port = container.get_exposed_port(MANAGEMENT_PORT)
        user, password = quote(container.username, safe=""), quote(container.password, safe="")
        yield AmqpServer(
            url=f"amqp://{user}:{password}@{host}:{amqp_port}/",
            management_url=f"http://{host}:{http_port}",
        )
