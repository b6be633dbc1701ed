"""Where the benchmark runs: the servers, a fresh vhost and database per run, the machine.

The vhost and database helpers are the test suite's (``testkit.sandbox``), so the benchmark
creates and removes its private space exactly as the tests do.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiormq
import asyncpg
import psutil

from testkit.sandbox import create_database, create_vhost, delete_vhost, drop_database
from testkit.services import asyncpg_dsn, normalise_database_url, redact

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Servers:
    """The broker and the database server the runs carve their private space out of."""

    amqp_url: str
    database_url: str
    management_url: str | None = None

    @classmethod
    def from_env(
        cls, amqp_url: str | None, database_url: str | None, management_url: str | None
    ) -> Servers:
        """Explicit values, else ``BENCH_*``, else the test suite's ``WORKER_TEST_*``, else
        the local defaults."""
        amqp = amqp_url or _env("BENCH_AMQP_URL", "WORKER_TEST_AMQP_URL") or DEFAULT_AMQP_URL
        database = (
            database_url
            or _env("BENCH_DATABASE_URL", "WORKER_TEST_DATABASE_URL")
            or DEFAULT_DATABASE_URL
        )
        return cls(amqp, normalise_database_url(database), management_url)


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@dataclass(frozen=True)
class Sandbox:
    """One run's private vhost and database."""

    amqp_url: str
    database_url: str


@contextlib.contextmanager
def sandbox(servers: Servers) -> Iterator[Sandbox]:
    """A fresh vhost and a fresh database, both removed afterwards (also on failure)."""
    amqp_url = create_vhost(
        servers.amqp_url, management_url=servers.management_url, prefix="bench-"
    )
    try:
        database_url = create_database(servers.database_url, prefix="bench_")
        try:
            yield Sandbox(amqp_url, database_url)
        finally:
            drop_database(database_url)
    finally:
        delete_vhost(amqp_url, management_url=servers.management_url)


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def server_versions(servers: Servers) -> dict[str, str]:
    """The RabbitMQ and PostgreSQL versions, as the servers report them."""
    versions: dict[str, str] = {}
    connection = await aiormq.connect(servers.amqp_url)
    try:
        version = connection.server_properties.get("version", b"?")
        versions["rabbitmq"] = version.decode() if isinstance(version, bytes) else str(version)
    finally:
        await connection.close()
    db = await asyncpg.connect(asyncpg_dsn(servers.database_url))
    try:
        versions["postgresql"] = str(await db.fetchval("SHOW server_version"))
    finally:
        await db.close()
    return versions


def code_version() -> dict[str, Any]:
    """The commit measured, and which files under ``worker/`` and ``contracts/`` differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "worker", "contracts").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": sorted(changed)}


def machine_info() -> dict[str, Any]:
    """CPU, memory, OS and Python of this machine, and the date of the run."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


__all__ = [
    "Sandbox",
    "Servers",
    "code_version",
    "machine_info",
    "redact",
    "sandbox",
    "server_versions",
]
