"""The composition root: builds the engine, broker connection, relay, bus and consumer.

Nothing connects at import time; :class:`Worker` wires everything on :meth:`Worker.start`.
"""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.bus import CommandBus
from worker.db.session import SessionFactory, create_engine, create_session_factory
from worker.errors import StartupError
from worker.handlers import HANDLERS
from worker.messaging.consumer import Consumer
from worker.messaging.fate import RetryPolicy
from worker.messaging.outbox import OutboxRelay
from worker.messaging.publisher import AmqpPublisher
from worker.messaging.topology import declare
from worker.observability.health import HealthServer
from worker.observability.metrics import Metrics
from worker.ports import UnitOfWorkT
from worker.settings import Settings

log = structlog.get_logger(__name__)


class Worker:
    """One worker process: consume commands, apply them, relay their events."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.session_factory: SessionFactory | None = None
        self.connection: AbstractRobustConnection | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: Consumer | None = None
        self.metrics = Metrics()
        self.health: HealthServer | None = None

    async def start(self) -> None:
        """Connect to the database and broker, declare the topology, start consuming."""
        s = self.settings
        database_url, amqp_url = s.database_url.get_secret_value(), s.amqp_url.get_secret_value()
        self.engine = create_engine(database_url, pool_size=s.db_pool_size)
        try:  # fail fast, with one clear line, on a bad URL, password or host
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise startup_error("the database", database_url, exc) from None
        self.session_factory = create_session_factory(self.engine)
        try:
            self.connection = await aio_pika.connect_robust(
                amqp_url, client_properties={"connection_name": "fca-worker"}, fail_fast=True
            )
        except Exception as exc:
            raise startup_error("the broker", amqp_url, exc) from None
        publish_channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        consume_channel = await self.connection.channel()
        await consume_channel.set_qos(prefetch_count=s.prefetch)
        topology = await declare(consume_channel, s)
        events = await publish_channel.declare_exchange(
            s.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        publisher = AmqpPublisher(publish_channel, events)
        self.relay = OutboxRelay(
            self.session_factory,
            publisher,
            poll_interval=s.outbox_poll_interval,
            grace=s.outbox_grace_seconds,
            on_published=self.metrics.events_published.inc,
        )
        bus = CommandBus(HANDLERS, self._unit_of_work, self.relay, publisher)
        self.consumer = Consumer(
            topology.command_queue,
            bus,
            publisher,
            RetryPolicy(s.max_attempts, s.retry_delays),
            concurrency=s.concurrency,
            max_body_bytes=s.max_body_bytes,
            command_queue=s.command_queue,
            dead_letter_queue=s.dead_letter_queue,
            metrics=self.metrics,
        )
        self.relay.start()
        await self.consumer.start()
        if s.metrics_port:
            self.health = HealthServer(
                self.metrics,
                {"broker": self._broker_ready, "database": self._database_ready},
                refresh=self._refresh_gauges,
            )
            await self.health.start(s.metrics_host, s.metrics_port)
        log.info(
            "worker.started", queue=s.command_queue, prefetch=s.prefetch, concurrency=s.concurrency
        )

    def _unit_of_work(self, kind: type[UnitOfWorkT]) -> UnitOfWorkT:
        # Every service is a unit of work over the same session factory.
        return kind(self.session_factory)  # type: ignore[call-arg]

    async def _broker_ready(self) -> bool:
        connection, consumer = self.connection, self.consumer
        # A robust connection is not "closed" while it reconnects: ask whether it is up.
        up = bool(connection and connection.connected.is_set() and not connection.reconnecting)
        ready = up and bool(consumer and consumer.consuming)
        self.metrics.consumer_connected.set(1 if ready else 0)
        return ready

    async def _database_ready(self) -> bool:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def _refresh_gauges(self) -> None:
        await self._broker_ready()
        if self.relay is not None:
            count, age = await self.relay.backlog()
            self.metrics.outbox_backlog.set(count)
            self.metrics.outbox_oldest_age.set(age)

    async def stop(self) -> None:
        """Stop consuming, finish in-flight work, flush the outbox, close connections."""
        if self.consumer is not None:
            finished = await self.consumer.stop(self.settings.shutdown_timeout)
            if not finished:
                log.warning("worker.shutdown_timeout", in_flight=self.consumer.in_flight)
        if self.relay is not None:
            await self.relay.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.drain(), self.settings.shutdown_timeout)
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
        if self.health is not None:
            await self.health.stop()
        if self.engine is not None:
            await self.engine.dispose()
        log.info("worker.stopped")


def safe_url(url: str) -> str:
    """The URL with its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def startup_error(service: str, url: str, exc: BaseException) -> StartupError:
    """A :class:`StartupError` that says which service, where, and what kind of failure."""
    text = f"{type(exc).__name__} {exc}".lower()
    if any(word in text for word in ("password", "authentication", "access_refused", "login")):
        what = "rejected the credentials"
    elif "does not exist" in text or "not_found" in text or "vhost" in text:
        what = "has no such database or virtual host"
    else:
        what = "is unreachable"
    return StartupError(f"{service} at {safe_url(url)} {what} ({type(exc).__name__})")
