"""A private corner of a shared server: a fresh database, a fresh vhost, and their removal.

Each test session (and each benchmark run) works in a database and a vhost of its own, so
runs never see one another's rows or queues:

``create_database(server_url, prefix="worker_test_") -> url``
    An empty database on that PostgreSQL server; its ``postgresql+asyncpg://`` URL.
``drop_database(url)``
    Drop it, closing its connections (``WITH (FORCE)``); refuses ``postgres``/``template*``.
``create_vhost(amqp_url, management_url=None, prefix="test-") -> url``
    A fresh vhost on that broker, the URL's user granted everything on it; the URL pointing
    at it. Uses a local ``rabbitmqctl`` when it manages that broker, else the management API.
``delete_vhost(url, management_url=None)``
    Delete the vhost ``url`` points at, with everything in it (never the default ``/``).
``vhost_of(amqp_url)``
    The decoded vhost of an AMQP URL (an empty path means ``/``).
``rabbitmqctl_manages(amqp_url)``
    Whether a bare ``rabbitmqctl`` on this machine administers the broker ``amqp_url`` names.

Failures to reach a server raise :class:`testkit.services.ServiceUnavailable`.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from testkit.services import (
    MANAGEMENT_PORT,
    ServiceUnavailable,
    asyncpg_dsn,
    normalise_database_url,
    random_suffix,
    redact,
    run_sync,
)

__all__ = [
    "create_database",
    "create_vhost",
    "delete_vhost",
    "drop_database",
    "rabbitmqctl_manages",
    "vhost_of",
]

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_PROTECTED_DATABASES = frozenset({"postgres", "template0", "template1"})


# --- PostgreSQL -------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(normalise_database_url(url))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
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


_NODE_PORTS: list[frozenset[int]] = []


def _local_node_amqp_ports() -> frozenset[int]:
    """AMQP ports of the node a bare ``rabbitmqctl`` talks to (empty if it cannot).

    Asked up to three times (a busy machine can make the CLI time out once); only an answer
    is remembered, never a failure.
    """
    if _NODE_PORTS:
        return _NODE_PORTS[0]
    if shutil.which("rabbitmq-diagnostics") is None:
        return frozenset()
    for attempt in range(3):
        try:
            result = subprocess.run(
                ["rabbitmq-diagnostics", "-q", "listeners"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0:
            found = re.findall(r"port: (\d+), protocol: amqp\b", result.stdout)
            _NODE_PORTS.append(frozenset(int(p) for p in found))
            return _NODE_PORTS[0]
        time.sleep(2 * (attempt + 1))
    return frozenset()


def rabbitmqctl_manages(amqp_url: str) -> bool:
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
        and rabbitmqctl_manages(amqp_url)
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
    if management_url is None and rabbitmqctl_manages(url) and _rabbitmqctl("delete_vhost", vhost):
        return
    _via_management(url, management_url, ("DELETE", f"/api/vhosts/{quote(vhost, safe='')}"))
