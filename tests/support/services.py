"""Find the PostgreSQL server and RabbitMQ broker to test against, and carve out private space.

Discovery order (see ``tests/conftest.py``):

1. ``WORKER_TEST_DATABASE_URL`` / ``WORKER_TEST_AMQP_URL`` when set (CI sets both);
2. otherwise testcontainers, but only if a Docker engine answers;
3. otherwise the test is skipped with a reason that starts with ``NO_SERVICE``.

Each test session then gets a fresh database (``create_database``) and a fresh vhost
(``create_vhost``), removed at the end. These helpers are plain functions without pytest, so
the benchmark can reuse them. They raise ``ServiceUnavailable`` when the server cannot be
reached; messages never contain passwords.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

__all__ = [
    "AMQP_URL_ENV",
    "DATABASE_URL_ENV",
    "NO_SERVICE",
    "AmqpServer",
    "ServiceUnavailable",
    "create_database",
    "create_vhost",
    "delete_vhost",
    "docker_engine_available",
    "drop_database",
    "normalise_database_url",
    "postgres_container",
    "rabbitmq_container",
    "random_suffix",
    "redact",
    "run_sync",
    "vhost_of",
]

DATABASE_URL_ENV = "WORKER_TEST_DATABASE_URL"
AMQP_URL_ENV = "WORKER_TEST_AMQP_URL"
NO_SERVICE = "[no-service]"
"""Marker in every skip reason caused by a missing service; counted as ``SERVICE-SKIPS``."""

POSTGRES_IMAGE = "postgres:15"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
MANAGEMENT_PORT = 15672

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_PROTECTED_DATABASES = frozenset({"postgres", "template0", "template1"})

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


# --- PostgreSQL -------------------------------------------------------------------------------


def normalise_database_url(url: str) -> str:
    """Return ``url`` as a ``postgresql+asyncpg://`` URL (accepts ``postgres(ql)://`` too)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return f"postgresql+asyncpg://{rest}"


def _asyncpg_dsn(url: str) -> str:
    return "postgresql://" + normalise_database_url(url).partition("://")[2]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(normalise_database_url(url))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(server_url: str, *, prefix: str = "worker_test_") -> str:
    """Create an empty database on the server of ``server_url``; return its asyncpg URL."""
    name = f"{prefix}{random_suffix()}"
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unsafe database name {name!r}")
    try:
        run_sync(_execute(server_url, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(
            f"cannot create a database on {redact(server_url)}: {type(exc).__name__}: {exc}"
        ) from exc
    return _with_database(server_url, name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, closing its connections (``WITH (FORCE)``)."""
    name = _database_of(url)
    if not _IDENTIFIER.match(name) or name in _PROTECTED_DATABASES:
        raise ValueError(f"refusing to drop database {name!r}")
    statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    last: Exception | None = None
    for maintenance_db in ("postgres", "template1"):
        try:
            run_sync(_execute(_with_database(url, maintenance_db), statement))
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            last = exc
        else:
            return
    raise ServiceUnavailable(f"cannot drop {redact(url)}: {type(last).__name__}: {last}")


# --- RabbitMQ ---------------------------------------------------------------------------------


def vhost_of(amqp_url: str) -> str:
    """Return the (decoded) vhost of an AMQP URL; an empty path means ``/``."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _with_vhost(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def _check_reachable(amqp_url: str) -> None:
    parts = urlsplit(amqp_url)
    host, port = parts.hostname or "localhost", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"broker {redact(amqp_url)} is not listening: {exc}") from exc


def _rabbitmqctl(*args: str) -> bool:
    """Run ``rabbitmqctl -q ARGS``; return whether it succeeded."""
    try:
        result = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@functools.cache
def _local_node_amqp_ports() -> frozenset[int]:
    """AMQP ports of the node a bare ``rabbitmqctl`` talks to (empty if it cannot)."""
    if shutil.which("rabbitmq-diagnostics") is None:
        return frozenset()
    try:
        result = subprocess.run(
            ["rabbitmq-diagnostics", "-q", "listeners"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    if result.returncode != 0:
        return frozenset()
    return frozenset(int(p) for p in re.findall(r"port: (\d+), protocol: amqp\b", result.stdout))


def _can_use_rabbitmqctl(amqp_url: str) -> bool:
    """Whether a bare ``rabbitmqctl`` manages the very broker ``amqp_url`` points at."""
    parts = urlsplit(amqp_url)
    if (parts.hostname or "localhost") not in _LOCAL_HOSTS or shutil.which("rabbitmqctl") is None:
        return False
    return (parts.port or 5672) in _local_node_amqp_ports()


def _management_call(base: str, method: str, path: str, user: str, password: str) -> None:
    body = None
    if method == "PUT" and path.startswith("/api/permissions/"):
        body = json.dumps({"configure": ".*", "write": ".*", "read": ".*"}).encode()
    request = urllib.request.Request(base.rstrip("/") + path, data=body, method=method)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _default_management_url(amqp_url: str) -> str:
    return f"http://{urlsplit(amqp_url).hostname or 'localhost'}:{MANAGEMENT_PORT}"


def _via_management(amqp_url: str, management_url: str | None, *calls: tuple[str, str]) -> None:
    parts = urlsplit(amqp_url)
    user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
    base = management_url or _default_management_url(amqp_url)
    try:
        for method, path in calls:
            _management_call(base, method, path, user, password)
    except (OSError, urllib.error.URLError) as exc:
        raise ServiceUnavailable(
            f"rabbitmqctl unusable and management API at {base} unusable: {exc}"
        ) from exc


def create_vhost(amqp_url: str, *, management_url: str | None = None, prefix: str = "test-") -> str:
    """Create a fresh vhost on the broker of ``amqp_url``; return the URL pointing at it.

    Uses a local ``rabbitmqctl`` when the broker is on this host, else the management API.
    The URL's user is granted full permissions on the new vhost.
    """
    _check_reachable(amqp_url)
    vhost = f"{prefix}{random_suffix()}"
    user = unquote(urlsplit(amqp_url).username or "guest")
    if (
        management_url is None
        and _can_use_rabbitmqctl(amqp_url)
        and _rabbitmqctl("add_vhost", vhost)
        and _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    ):
        return _with_vhost(amqp_url, vhost)
    encoded = quote(vhost, safe="")
    _via_management(
        amqp_url,
        management_url,
        ("PUT", f"/api/vhosts/{encoded}"),
        ("PUT", f"/api/permissions/{encoded}/{quote(user, safe='')}"),
    )
    return _with_vhost(amqp_url, vhost)


def delete_vhost(url: str, *, management_url: str | None = None) -> None:
    """Delete the vhost ``url`` points at, with everything in it (never the default ``/``)."""
    vhost = vhost_of(url)
    if vhost == "/":
        raise ValueError("refusing to delete the default vhost '/'")
    if management_url is None and _can_use_rabbitmqctl(url) and _rabbitmqctl("delete_vhost", vhost):
        return
    _via_management(url, management_url, ("DELETE", f"/api/vhosts/{quote(vhost, safe='')}"))


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
