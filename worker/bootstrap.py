"""The composition root: builds the engine, broker connections, relay, bus, consumer, partitions.

Nothing connects at import time; :class:`Worker` wires everything on :meth:`Worker.start`
and takes it apart on :meth:`Worker.stop`, which finishes even when the database or the
broker is down (every step is bounded and its failure logged).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topology import delay_queue_name, partitions_exchange_name
from worker.bus import CommandBus
from worker.db.session import SessionFactory, create_engine, create_session_factory
from worker.errors import StartupError
from worker.handlers import HANDLERS
from worker.messaging.connection import BrokerConnection
from worker.messaging.consumer import Consumer
from worker.messaging.delays import DelayWatch
from worker.messaging.fate import RetryPolicy
from worker.messaging.migration import migrate_v1
from worker.messaging.outbox import OutboxRelay
from worker.messaging.partitions import PartitionManager
from worker.messaging.publisher import AmqpPublisher
from worker.messaging.topology import declare, require_plugin
from worker.observability.health import HealthServer
from worker.observability.metrics import Metrics
from worker.observability.tracing import configure_tracing, shutdown_tracing
from worker.ports import UnitOfWorkT
from worker.retention import RetentionJob
from worker.settings import Settings

log = structlog.get_logger(__name__)

MIGRATION_INTERVAL = 30.0
"""Seconds between looks for contract v1 queues still holding commands."""

DELAY_WATCH_INTERVAL = 5.0
"""Seconds between looks at the delay queues' heads, and how overdue a retry must be to move."""


class Worker:
    """One worker process: its share of the partitions, applied, and their events relayed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.session_factory: SessionFactory | None = None
        self.consuming: BrokerConnection | None = None
        self.publishing: BrokerConnection | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: Consumer | None = None
        self.partitions: PartitionManager | None = None
        self.metrics = Metrics()
        self.health: HealthServer | None = None
        self.retention: RetentionJob | None = None
        self.delay_watch: DelayWatch | None = None
        self._migrating: asyncio.Task[None] | None = None
        self.tracing = False

    async def start(self) -> None:
        """Connect to the database and broker, declare the topology, join the partitions."""
        s = self.settings
        await self._start_health()
        self.session_factory = await self._open_database()
        self.tracing = configure_tracing()
        self.consuming = await _open_broker(s, "fca-worker consume")
        await require_plugin(s.amqp_urls[self.consuming.node], s)
        self.publishing = await _open_broker(s, "fca-worker publish")
        channel = await self.consuming.connection.channel()
        await declare(channel, s)
        await channel.close()
        publisher = AmqpPublisher(self.publishing, s.events_exchange, timeout=s.publish_timeout)
        self.relay = OutboxRelay(
            self.session_factory,
            publisher,
            owned=self._owned,
            poll_interval=s.outbox_poll_interval,
            grace=s.outbox_grace_seconds,
            on_published=self.metrics.events_published.inc,
        )
        bus = CommandBus(
            HANDLERS,
            self._unit_of_work,
            self.relay,
            publisher,
            group_commit=s.group_commit,
            commit_runners=s.commit_runners,
            on_group=self.metrics.group_sizes.observe,
            on_fallback=self.metrics.group_fallbacks.inc,
        )
        self.consumer = Consumer(
            bus,
            publisher,
            RetryPolicy(s.max_attempts, s.retry_delays),
            concurrency=s.concurrency,
            max_body_bytes=s.max_body_bytes,
            command_queue=s.command_queue,
            dead_letter_queue=s.dead_letter_queue,
            metrics=self.metrics,
            in_place_retries=s.in_place_retries,
            in_place_backoff=s.in_place_backoff,
            reply_to_pattern=s.reply_to_pattern,
        )
        migrated = await migrate_v1(s.amqp_urls[self.consuming.node], s)
        self.partitions = PartitionManager(
            self.session_factory,
            self.consuming,
            self.consumer.handle,
            command_queue=s.command_queue,
            partitions=s.partitions,
            prefetch=s.prefetch,
            interval=s.membership_interval,
            liveness=s.membership_liveness,
            drain_timeout=s.shutdown_timeout,
            publish_backlog=self.relay.drain_partition,
            metrics=self.metrics,
        )
        self.retention = RetentionJob(
            self.session_factory,
            inbox_days=s.inbox_retention_days,
            outbox_hours=s.outbox_retention_hours,
            interval=s.retention_interval,
        )
        self.delay_watch = DelayWatch(
            self.publishing,
            [delay_queue_name(d, s.command_queue) for d in sorted(set(s.retry_delays))],
            partitions_exchange_name(s.command_queue),
            interval=DELAY_WATCH_INTERVAL,
            grace=DELAY_WATCH_INTERVAL,
            timeout=s.publish_timeout,
            on_moved=self.metrics.delays_moved.inc,
        )
        self.relay.start()
        self.retention.start()
        self.delay_watch.start()
        await self.partitions.start()
        if migrated.left:  # v1 workers may still be running: look again until it is gone
            self._migrating = asyncio.create_task(self._migrate_forever(), name="migrate-v1")
        log.info(
            "worker.started",
            member=self.partitions.member_id,
            partitions=sorted(self.partitions.owned),
            prefetch=s.prefetch,
            concurrency=s.concurrency,
        )

    def _owned(self) -> frozenset[int]:
        return self.partitions.active() if self.partitions is not None else frozenset()

    def _unit_of_work(self, kind: type[UnitOfWorkT]) -> UnitOfWorkT:
        # Every service is a unit of work over the same session factory.
        return kind(self.session_factory)  # type: ignore[call-arg]

    async def _open_database(self) -> SessionFactory:
        url = self.settings.database_url.get_secret_value()
        self.engine = create_engine(url, pool_size=self.settings.db_pool_size)
        try:  # fail fast, with one clear line, on a bad URL, password or host
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise startup_error("the database", safe_url(url), exc) from None
        return create_session_factory(self.engine)

    async def _start_health(self) -> None:
        s = self.settings
        if not s.metrics_port:
            return
        self.health = HealthServer(
            self.metrics,
            {"broker": self._broker_ready, "database": self._database_ready},
            refresh=self._refresh_gauges,
        )
        try:
            await self.health.start(s.metrics_host, s.metrics_port)
        except OSError as exc:
            self.health = None
            if exc.errno != errno.EADDRINUSE:
                raise StartupError(f"cannot listen on port {s.metrics_port}: {exc}") from None
            raise StartupError(
                f"port {s.metrics_port} (metrics and health) is already in use, perhaps by "
                "another worker: set WORKER_METRICS_PORT to a free port, or 0 to turn it off"
            ) from None

    async def _migrate_forever(self) -> None:
        while True:
            await asyncio.sleep(MIGRATION_INTERVAL)
            assert self.consuming is not None
            try:
                url = self.settings.amqp_urls[self.consuming.node]
                if not (await migrate_v1(url, self.settings)).left:
                    return
            except Exception as exc:
                log.warning("migration.failed", error=type(exc).__name__)

    async def _broker_ready(self) -> bool:
        up = all(c is not None and c.up.is_set() for c in (self.consuming, self.publishing))
        fresh = self.partitions is not None and self.partitions.heartbeat_fresh
        ready = up and fresh
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
        """Hand the partitions over (drained), flush the outbox's confirms, close everything.

        Each step is bounded and may fail (the database or broker may be down at SIGTERM);
        the next one runs regardless.
        """
        timeout = self.settings.shutdown_timeout
        if self._migrating is not None:
            self._migrating.cancel()
        if self.partitions is not None:
            await _step("partitions", self.partitions.stop(), timeout * 2)
        if self.retention is not None:
            await _step("retention", self.retention.stop(), timeout)
        if self.delay_watch is not None:
            await _step("delay watch", self.delay_watch.stop(), timeout)
        if self.relay is not None:
            await _step("relay", self.relay.stop(), timeout)
        for broker in (self.consuming, self.publishing):
            if broker is not None:
                await _step("broker", broker.close(), timeout)
        if self.health is not None:
            await _step("health", self.health.stop(), timeout)
        if self.engine is not None:
            await _step("database", self.engine.dispose(), timeout)
        if self.tracing:
            await _step("tracing", asyncio.to_thread(shutdown_tracing), timeout)
        log.info("worker.stopped")


async def _step(name: str, work: Awaitable[None], timeout: float) -> None:
    try:
        await asyncio.wait_for(work, timeout)
    except Exception as exc:
        log.warning("worker.stop_step_failed", step=name, error=type(exc).__name__)


async def _open_broker(settings: Settings, name: str) -> BrokerConnection:
    broker = BrokerConnection(settings.amqp_urls, name=name)
    try:
        await broker.open()
    except Exception as exc:
        urls = ", ".join(safe_url(u) for u in settings.amqp_urls)
        raise startup_error("the broker", urls, exc) from None
    return broker


def safe_url(url: str) -> str:
    """Where a URL points, without its credentials: ``scheme://host:port/path (user u)``.

    (Not ``user:***@host``: that reads as an email address to the log redaction.)
    """
    try:
        parsed = make_url(url)
        shown = parsed._replace(username=None, password=None).render_as_string()
    except Exception:
        return "<unparseable URL>"
    return f"{shown} (user {parsed.username})" if parsed.username else shown


def startup_error(service: str, where: str, exc: BaseException) -> StartupError:
    """A :class:`StartupError` that says which service, where (masked), and what failed."""
    text = f"{type(exc).__name__} {exc}".lower()
    if any(word in text for word in ("password", "authentication", "access_refused", "login")):
        what = "rejected the credentials"
    elif "does not exist" in text or "not_found" in text or "vhost" in text:
        what = "has no such database or virtual host"
    else:
        what = "is unreachable"
    return StartupError(f"{service} at {where} {what} ({type(exc).__name__})")
