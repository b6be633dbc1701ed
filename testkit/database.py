"""The worker's database as a test reads it: asyncpg on a private loop, usable from sync tests.

``db_fetch(url, sql, *args) -> list[dict]``, ``db_fetchrow(...) -> dict | None``,
``db_fetchval(...)``, ``db_execute(...) -> status``
    One short-lived connection per call (``url`` in any PostgreSQL scheme).
``table_fingerprints(url, tables=DOMAIN_TABLES) -> dict``
    Row count and md5 of every row of each table: equal fingerprints, unchanged tables.
``DOMAIN_TABLES``
    The tables that hold business data (not the inbox/outbox bookkeeping).
``inbox_outcomes(url, ids) -> {message id: outcome}``, ``unsent_outbox(url) -> int``,
``wait_outbox_flushed(url, timeout)``
    The bookkeeping tables: what the inbox recorded for some commands, how many outbox rows
    are not marked published yet, and waiting until none is left.
``RowLock(url, sql, *args)``, ``.release()``
    Holds a ``SELECT … FOR UPDATE`` until released: with ``lock_timeout`` set on the worker's
    database, its transactions on those rows fail transiently, on demand.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from testkit.factories import DEFAULT_TIMEOUT, wait_until
from testkit.services import asyncpg_dsn, run_sync

__all__ = [
    "DOMAIN_TABLES",
    "RowLock",
    "db_execute",
    "db_fetch",
    "db_fetchrow",
    "db_fetchval",
    "inbox_outcomes",
    "table_fingerprints",
    "unsent_outbox",
    "wait_outbox_flushed",
]

DOMAIN_TABLES = (
    "customers",
    "accounts",
    "transactions",
    "conversations",
    "messages",
    "products",
    "faqs",
)
"""Tables that hold business data (not the inbox/outbox bookkeeping)."""


async def _run(url: str, method: str, sql: str, args: Sequence[Any]) -> Any:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return await getattr(connection, method)(sql, *args)
    finally:
        await connection.close()


def db_fetch(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run a query; its rows as dicts."""
    return [dict(r) for r in run_sync(_run(url, "fetch", sql, args))]


def db_fetchrow(url: str, sql: str, *args: Any) -> dict[str, Any] | None:
    """Run a query; its first row as a dict, or ``None``."""
    row = run_sync(_run(url, "fetchrow", sql, args))
    return dict(row) if row is not None else None


def db_fetchval(url: str, sql: str, *args: Any) -> Any:
    """Run a query; the first column of its first row."""
    return run_sync(_run(url, "fetchval", sql, args))


def db_execute(url: str, sql: str, *args: Any) -> str:
    """Run a statement; asyncpg's status string."""
    return run_sync(_run(url, "execute", sql, args))  # type: ignore[no-any-return]


async def _fingerprints(url: str, tables: Sequence[str]) -> dict[str, str]:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        result = {}
        for table in tables:
            sql = f"SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') FROM {table} t"  # noqa: E501
            result[table] = await connection.fetchval(sql)
        return result
    finally:
        await connection.close()


def table_fingerprints(url: str, tables: Sequence[str] = DOMAIN_TABLES) -> dict[str, str]:
    """Row count and md5 of every row of each table: equal fingerprints, unchanged tables."""
    return run_sync(_fingerprints(url, tables))


# --- bookkeeping tables -----------------------------------------------------------------------


def inbox_outcomes(database_url: str, ids: Iterable[str]) -> dict[str, str]:
    """The inbox rows of these message ids: ``{message id: outcome}``."""
    rows = db_fetch(
        database_url,
        "SELECT message_id, outcome FROM inbox_messages WHERE message_id = ANY($1::text[])",
        list(ids),
    )
    return {r["message_id"]: r["outcome"] for r in rows}


def unsent_outbox(database_url: str) -> int:
    """How many outbox rows were never marked published."""
    return int(
        db_fetchval(database_url, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
    )


def wait_outbox_flushed(database_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until every outbox row is marked published."""
    wait_until(
        lambda: unsent_outbox(database_url) == 0,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"{unsent_outbox(database_url)} outbox rows still unsent",
    )


class RowLock:
    """Holds ``SELECT … FOR UPDATE`` on rows until released (on a thread of its own).

    With ``lock_timeout`` set on the worker's database, the worker's transactions touching
    those rows fail with a lock timeout: a transient fault, on demand.
    """

    def __init__(self, database_url: str, sql: str, *args: Any) -> None:
        self._release = threading.Event()
        self._locked = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._hold(database_url, sql, args),), daemon=True
        )
        self._thread.start()
        assert self._locked.wait(10), f"could not take the lock: {self._failure!r}"

    async def _hold(self, database_url: str, sql: str, args: Sequence[Any]) -> None:
        try:
            connection = await asyncpg.connect(asyncpg_dsn(database_url))
        except BaseException as exc:
            self._failure = exc
            raise
        try:
            async with connection.transaction():
                await connection.execute(sql, *args)
                self._locked.set()
                while not self._release.is_set():  # noqa: ASYNC110 (a threading.Event)
                    await asyncio.sleep(0.05)
        finally:
            await connection.close()

    def release(self) -> None:
        """Commit the locking transaction (the rows are free again)."""
        self._release.set()
        self._thread.join(10)
