"""Which partitions this replica consumes: membership, the fair share, and safe hand-over.

Every ``interval`` seconds a replica records its heartbeat and reads the live replicas (a
replica is live while its heartbeat, in database time, is younger than ``liveness``). Its
share is ``P // n`` partitions, one more for the first ``P % n`` replicas in id order, so
shares differ by at most one. Over its share it gives partitions up, the highest first,
each only after draining it: it cancels the partition's consumer, waits until every
delivery it holds is settled (so nothing goes back to the queue out of order), publishes
what the outbox still holds for it, and only then clears its ownership. Under its share it
claims partitions that nobody owns, or whose owner is no longer live, with a compare-and-set,
publishes what the outbox holds for them, and only then consumes. The queues' single active
consumer is the last line of defence: a replica that wrongly believed it owned a partition
would stand by, not consume.

A replica that cannot record its heartbeat for half the liveness window stops consuming
everything, before anyone else may take its partitions. On SIGTERM it hands every partition
over the same way and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq.abc import DeliveredMessage

from contracts import partition_queue_name
from worker.db.session import SessionFactory
from worker.messaging.connection import BrokerConnection
from worker.messaging.incoming import Incoming, RawDelivery
from worker.observability.metrics import Metrics
from worker.observability.tracing import instrumented
from worker.repositories.members import MembershipRepository

log = structlog.get_logger(__name__)

Handler = Callable[[Incoming, "PartitionQueue"], Awaitable[None]]

BROKER_STEP_TIMEOUT = 15.0
"""Seconds one broker step (open a channel, subscribe, close) may take: a queue without a
leader (an election after a node died) may not answer at once, but must not stall a round."""


class PartitionQueue:
    """One partition queue this replica consumes: its channel, its consumer, its deliveries."""

    def __init__(self, index: int, name: str, handle: Handler) -> None:
        self.index = index
        self.name = name
        self._handle = handle
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def consuming(self) -> bool:
        """Whether this replica's consumer is registered with the broker."""
        return self._tag is not None and self._channel is not None and not self._channel.is_closed

    def delivery_started(self) -> None:
        """A delivery of this partition is in flight."""
        self.in_flight += 1
        self._idle.clear()

    def delivery_settled(self) -> None:
        """A delivery of this partition was settled."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def start(self, broker: BrokerConnection, prefetch: int) -> None:
        """Open a channel and register the consumer (single active consumer per queue)."""
        async with asyncio.timeout(BROKER_STEP_TIMEOUT):
            channel = await broker.connection.channel()
            self._channel = channel
            await channel.set_qos(prefetch_count=prefetch)
            self._queue = await channel.get_queue(self.name, ensure=True)
            if instrumented():  # through aio-pika, which the instrumentation wraps
                self._tag = await self._queue.consume(self._on_message, no_ack=False)
                return
            underlay = await channel.get_underlay_channel()
            ok = await underlay.basic_consume(self.name, self._on_delivered, no_ack=False)
            if ok.consumer_tag is None:  # the broker always names it; pamqp types it optional
                raise RuntimeError(f"no consumer tag for {self.name}")
            self._tag = ok.consumer_tag

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self._handle(message, self)

    async def _on_delivered(self, message: DeliveredMessage) -> None:
        await self._handle(RawDelivery(message), self)

    async def stop(self, timeout: float) -> bool:
        """Cancel the consumer and wait for every held delivery to settle; ``False`` on timeout."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(BROKER_STEP_TIMEOUT):
                    await self._queue.cancel(self._tag)
        self._tag = None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            await self.abort()

    async def abort(self) -> None:
        """Close the channel at once; the broker returns whatever was not acked."""
        self._tag = None
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(BROKER_STEP_TIMEOUT):
                    await channel.close()


def fair_share(partitions: int, members: list[str], me: str) -> int:
    """How many partitions ``me`` should own: within one of every other live member's share."""
    if me not in members:
        return 0
    base, extra = divmod(partitions, len(members))
    return base + (1 if members.index(me) < extra else 0)


class PartitionManager:
    """Keeps this replica's share of the partitions, claiming and handing over safely."""

    def __init__(
        self,
        session_factory: SessionFactory,
        broker: BrokerConnection,
        handle: Handler,
        *,
        command_queue: str,
        partitions: int,
        prefetch: int,
        interval: float,
        liveness: float,
        drain_timeout: float,
        publish_backlog: Callable[[int], Awaitable[None]],
        metrics: Metrics,
    ) -> None:
        self.member_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(4).hex()}"
        self._sf = session_factory
        self._broker = broker
        self._handle = handle
        self._command_queue = command_queue
        self._count = partitions
        self._prefetch = prefetch
        self._interval = interval
        self._liveness = timedelta(seconds=liveness)
        self._drain_timeout = drain_timeout
        self._publish_backlog = publish_backlog
        self._metrics = metrics
        self.owned: dict[int, PartitionQueue] = {}
        self._last_heartbeat = asyncio.get_running_loop().time()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    def active(self) -> frozenset[int]:
        """The partitions this replica consumes now (their events are its to publish)."""
        return frozenset(self.owned)

    @property
    def heartbeat_fresh(self) -> bool:
        """Whether the last heartbeat is recent enough to keep consuming."""
        age = asyncio.get_running_loop().time() - self._last_heartbeat
        return age < self._liveness.total_seconds() / 2

    async def start(self) -> None:
        """Join: record the first heartbeat, take a first share, then keep it in the background."""
        async with self._sf() as session, session.begin():
            await MembershipRepository(session).ensure_partitions(self._count)
        await self.tick()
        self._task = asyncio.create_task(self._run(), name="partitions")
        self._broker.on_lost(self._connection_lost)
        self._broker.on_restored(self._connection_restored)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.tick()
            except Exception as exc:
                log.warning("partitions.tick_failed", error=type(exc).__name__)
                if not self.heartbeat_fresh and self.owned:
                    log.error("partitions.fenced", partitions=sorted(self.owned))
                    await self._abort_all()

    async def tick(self) -> None:
        """One round: heartbeat, read the live replicas, give up or take partitions."""
        async with self._lock:
            members, owners = await self._survey()
            self._last_heartbeat = asyncio.get_running_loop().time()
            for index in [p for p in self.owned if owners.get(p) != self.member_id]:
                log.error("partitions.lost", partition=index)  # someone took it: stop at once
                await self.owned.pop(index).abort()
            for partition in [q for q in self.owned.values() if not q.consuming]:
                await self._resume(partition)
            target = fair_share(self._count, members, self.member_id)
            excess = sorted(self.owned, reverse=True)[: max(0, len(self.owned) - target)]
            for index in excess:
                await self._hand_over(index)
            live = set(members)
            free = [p for p, o in sorted(owners.items()) if o is None or o not in live]
            for index in free[: max(0, target - len(self.owned))]:
                await self._take(index, owners[index])
            self._metrics.partitions_owned.set(len(self.owned))

    async def _survey(self) -> tuple[list[str], dict[int, str | None]]:
        async with self._sf() as session, session.begin():
            members = MembershipRepository(session)
            now = await members.heartbeat(
                self.member_id, host=socket.gethostname(), pid=os.getpid()
            )
            await members.forget_dead(now - 30 * self._liveness)
            live = await members.live_members(now - self._liveness)
            owners = await members.owners(self._count)
        return live, owners

    async def _take(self, index: int, previous: str | None) -> None:
        async with self._sf() as session, session.begin():
            taken = await MembershipRepository(session).claim(index, self.member_id, previous)
        if not taken:
            return
        partition = PartitionQueue(
            index, partition_queue_name(index, self._command_queue), self._handle
        )
        try:
            await self._publish_backlog(index)  # the previous owner's unsent events go first
            await partition.start(self._broker, self._prefetch)
        except Exception:
            await partition.abort()
            await self._release([index])
            raise
        self.owned[index] = partition
        self._metrics.rebalances.labels("taken").inc()
        log.info("partitions.taken", partition=index, previous=previous)

    async def _hand_over(self, index: int) -> None:
        partition = self.owned.pop(index)
        drained = await partition.stop(self._drain_timeout)
        if not drained:
            log.warning("partitions.drain_timeout", partition=index, in_flight=partition.in_flight)
        with contextlib.suppress(Exception):
            await self._publish_backlog(index)
        await self._release([index])
        self._metrics.rebalances.labels("given").inc()
        log.info("partitions.given_up", partition=index, drained=drained)

    async def _resume(self, partition: PartitionQueue) -> None:
        """Subscribe again to a partition we own (after a reconnect, or a failed attempt)."""
        try:
            await partition.start(self._broker, self._prefetch)
        except Exception as exc:  # the next round tries again
            await partition.abort()
            log.warning(
                "partitions.resume_failed", partition=partition.index, error=type(exc).__name__
            )
            return
        log.info("partitions.resumed", partition=partition.index)

    async def _release(self, indexes: list[int]) -> None:
        async with self._sf() as session, session.begin():
            await MembershipRepository(session).release(indexes, self.member_id)

    async def _abort_all(self) -> None:
        for index in list(self.owned):
            await self.owned.pop(index).abort()
        self._metrics.partitions_owned.set(0)

    async def _connection_lost(self) -> None:
        # The broker has returned every unacked delivery; keep ownership, re-subscribe later.
        for partition in list(self.owned.values()):
            await partition.abort()

    async def _connection_restored(self, _connection: object) -> None:
        self._wake.set()  # the next round re-subscribes every partition we still own

    async def stop(self) -> None:
        """Hand every partition over (drained), then leave the group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._lock:
            await asyncio.gather(
                *(self._hand_over(i) for i in list(self.owned)), return_exceptions=True
            )
            async with self._sf() as session, session.begin():
                await MembershipRepository(session).forget(self.member_id)
        self._metrics.partitions_owned.set(0)
