"""A broker connection that fails over: the first node that answers, the next one on loss.

``WORKER_AMQP_URL`` may list several nodes of one cluster (comma-separated). The first
connect tries them in order until one answers; after a loss, every reconnect attempt moves
on to the next node (round robin), with a capped exponential back-off, until one answers.
Whoever uses the connection is told when it is lost and when a new one is up; channels
belong to one connection and are made again after a reconnect by their owners.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from worker.errors import TransientError, translate

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds one connection attempt may take."""

Listener = Callable[[AbstractConnection], Awaitable[None]]


def _is_transient(exc: BaseException) -> bool:
    return isinstance(translate(exc), TransientError)


class BrokerConnection:
    """One AMQP connection to a cluster, re-made on a node after a loss."""

    def __init__(self, urls: Sequence[str], *, name: str) -> None:
        if not urls:
            raise ValueError("at least one broker URL is needed")
        self._urls = list(urls)
        self._next = 0
        self._name = name
        self._connection: AbstractConnection | None = None
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._on_restored: list[Listener] = []
        self._on_lost: list[Callable[[], Awaitable[None]]] = []
        self.up = asyncio.Event()

    @property
    def connection(self) -> AbstractConnection:
        """The current connection; raises a transient error while there is none."""
        if self._connection is None or self._connection.is_closed:
            raise TransientError("the broker connection is down")
        return self._connection

    @property
    def node(self) -> int:
        """Index (in the configured list) of the node the current connection is to."""
        return (self._next - 1) % len(self._urls)

    def on_restored(self, listener: Listener) -> None:
        """Call ``listener(connection)`` after each successful reconnect."""
        self._on_restored.append(listener)

    def on_lost(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call ``listener()`` when the connection drops (not when we close it)."""
        self._on_lost.append(listener)

    async def open(self) -> AbstractConnection:
        """Connect to the first node that answers; raises the last error if none does."""
        error: BaseException | None = None
        for _ in self._urls:
            try:
                return await self._connect_next()
            except Exception as exc:
                error = exc
        assert error is not None
        raise error

    async def _connect_next(self) -> AbstractConnection:
        url = self._urls[self._next % len(self._urls)]
        self._next += 1
        connection = await aio_pika.connect(
            url,
            client_properties={"connection_name": self._name},
            timeout=CONNECT_TIMEOUT,
        )
        connection.close_callbacks.add(self._closed)
        self._connection = connection
        self.up.set()
        log.info("broker.connected", connection=self._name, node=self.node)
        return connection

    def _closed(self, _sender: Any, exc: BaseException | None) -> None:
        self.up.clear()
        if self._closing or self._reconnecting is not None:
            return
        log.warning("broker.connection_lost", connection=self._name, error=type(exc).__name__)
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            for listener in self._on_lost:
                with contextlib.suppress(Exception):
                    await listener()
            retrying = AsyncRetrying(
                wait=wait_exponential_jitter(initial=0.5, max=5.0),
                retry=retry_if_exception(_is_transient),
                reraise=True,
            )
            connection: AbstractConnection = await retrying(self._connect_next)
            for restored in self._on_restored:
                await restored(connection)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not an outage: say so loudly, and try again later
            log.error("broker.reconnect_failed", connection=self._name, error=type(exc).__name__)
            self._reconnecting = None
            if not self._closing:
                await asyncio.sleep(5.0)
                self._closed(None, exc)
            return
        self._reconnecting = None

    async def close(self) -> None:
        """Close for good (no reconnect)."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnecting
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self.up.clear()
