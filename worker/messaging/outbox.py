"""The outbox relay: every committed event reaches the broker, at least once, in key order.

Two paths lead out of the outbox table:

* the fast path: right after a command commits, its events are published at once
  (confirmed), and their rows are marked sent in batches;
* the sweep: every ``poll_interval`` the relay claims rows still unsent after a grace
  period (the worker crashed after commit, or the fast path failed) with
  ``FOR UPDATE SKIP LOCKED``, publishes them in id (commit) order and marks them sent.

One key's events must never overtake each other. Every row carries the partition of its
command, and only that partition's owner publishes it: the sweep takes only the partitions
this replica owns, and a new owner publishes what a partition still holds before it
consumes (:meth:`OutboxRelay.drain_partition`). Within a replica, once a fast-path publish
fails for a partition, that partition's later events skip the fast path (they stay in the
table) until a sweep has published everything the partition held, in order.

Events keep their deterministic ids, so a re-published event is a duplicate that
subscribers can recognise, never a second outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from worker.db.session import SessionFactory
from worker.errors import TransientError, translate
from worker.ports import Publisher
from worker.repositories import OutboxRepository, PendingEvent

log = structlog.get_logger(__name__)

SWEEP_BATCH = 200
MARK_INTERVAL = 0.05
STOP_GRACE = 5.0
"""Seconds :meth:`OutboxRelay.stop` lets the background tasks finish what they are doing
(a sweep, a mark) before it cancels them."""

Owned = Callable[[], Collection[int] | None]
"""The partitions whose events this relay publishes (``None``: every event)."""


class OutboxRelay:
    """Publishes committed events and records that the broker confirmed them."""

    def __init__(
        self,
        session_factory: SessionFactory,
        publisher: Publisher,
        *,
        owned: Owned = lambda: None,
        poll_interval: float = 1.0,
        grace: float = 5.0,
        on_published: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher
        self._owned = owned
        self._poll_interval = poll_interval
        self._grace = timedelta(seconds=grace)
        self._confirmed: list[int] = []
        self._blocked: set[int | None] = set()
        self._skipped: dict[int | None, int] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._on_published = on_published

    def start(self) -> None:
        """Start the sweeper and the batch marker in the background."""
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._sweep_forever(), name="outbox-sweep"),
            asyncio.create_task(self._mark_forever(), name="outbox-mark"),
        ]

    async def stop(self) -> None:
        """Stop the background tasks, then record every confirm still held in memory.

        The tasks stop between two steps, not in the middle of a transaction: a statement
        cancelled mid-way takes its connection down with it (noise in the logs; with SQLite
        in memory, the database itself). Only one still busy after :data:`STOP_GRACE` is
        cancelled.
        """
        self._stopping = True
        self._wake.set()
        if self._tasks:
            try:
                await asyncio.wait(self._tasks, timeout=STOP_GRACE)
            finally:  # also when this stop is cancelled: no task may outlive it
                for task in self._tasks:
                    task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        await self.mark_confirmed()

    @property
    def paused(self) -> frozenset[int | None]:
        """Partitions whose fast path waits until a sweep has published what they hold."""
        return frozenset(self._blocked)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        """Fast path: publish just-committed events now; ``False`` leaves them to the sweep.

        Called in the trace context the events were staged in (the command's own task).
        """
        if not events:
            return True
        partition = events[0].partition
        if partition in self._blocked:  # an earlier event of this partition is still unsent
            self._skipped[partition] = self._skipped.get(partition, 0) + 1
            self._wake.set()
            return False
        try:
            await self._publisher.publish_events(events, staged_here=True)
        except Exception as exc:  # the sweep will publish them; the command stays committed
            log.warning("outbox.fast_path_failed", error=type(exc).__name__, events=len(events))
            self._blocked.add(partition)
            self._wake.set()
            return False
        self._confirmed.extend(e.id for e in events)
        self._on_published(len(events))
        return True

    async def sweep(
        self, *, grace: timedelta | None = None, partitions: Collection[int] | None = None
    ) -> int:
        """Publish one batch of unsent events older than the grace period; returns how many."""
        cutoff = datetime.now(UTC) - (self._grace if grace is None else grace)
        mine = self._owned() if partitions is None else partitions
        async with self._session_factory() as session, session.begin():
            outbox = OutboxRepository(session)
            pending = await outbox.claim_unsent(
                limit=SWEEP_BATCH,
                created_before=cutoff,
                partitions=mine,
                unpartitioned=mine is None or 0 in mine,
            )
            if not pending:
                return 0
            await self._publisher.publish_events(pending)  # in id order, one channel
            await outbox.mark_published([e.id for e in pending])
        self._on_published(len(pending))
        log.info("outbox.swept", events=len(pending))
        return len(pending)

    async def drain_partition(self, partition: int) -> None:
        """Publish everything ``partition`` still holds, whatever its age (before consuming it)."""
        await self.mark_confirmed()
        while await self.sweep(grace=timedelta(0), partitions=[partition]) == SWEEP_BATCH:
            pass

    async def drain(self) -> None:
        """Publish everything unsent this relay may publish, regardless of age."""
        await self.mark_confirmed()
        while await self.sweep(grace=timedelta(0)) == SWEEP_BATCH:
            pass

    async def _unblock(self) -> None:
        """Publish the blocked partitions' events in order, then let their fast path resume."""
        for partition in list(self._blocked):
            while True:
                skipped = self._skipped.get(partition, 0)
                batch = [partition] if partition is not None else None
                while await self.sweep(grace=timedelta(0), partitions=batch) == SWEEP_BATCH:
                    pass
                if self._skipped.get(partition, 0) == skipped:  # nothing slipped in meanwhile
                    self._blocked.discard(partition)
                    break

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._unblock()
                while await self.sweep() == SWEEP_BATCH and not self._stopping:
                    pass
            except Exception as exc:
                transient = isinstance(translate(exc), TransientError)
                log_method = log.warning if transient else log.error
                log_method("outbox.sweep_failed", error=type(exc).__name__, transient=transient)
                await asyncio.sleep(self._poll_interval)

    async def _mark_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(MARK_INTERVAL)
            try:
                await self.mark_confirmed()
            except Exception as exc:
                log.warning("outbox.mark_failed", error=type(exc).__name__)
                await asyncio.sleep(self._poll_interval)

    async def mark_confirmed(self) -> None:
        """Record the fast path's confirms in the table (kept for a retry if that fails)."""
        if not self._confirmed:
            return
        ids, self._confirmed = self._confirmed, []
        try:
            async with self._session_factory() as session, session.begin():
                await OutboxRepository(session).mark_published(ids)
        except BaseException:
            self._confirmed.extend(ids)  # keep them for the next try
            raise

    async def backlog(self) -> tuple[int, float]:
        """Unsent events and the age in seconds of the oldest one."""
        async with self._session_factory() as session:
            count, oldest = await OutboxRepository(session).backlog()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return count, max(age, 0.0)
