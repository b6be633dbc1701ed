"""The outbox relay: every committed event reaches the broker, at least once, in order.

Two paths lead out of the outbox table:

* the fast path: right after a command commits, its events are published at once
  (confirmed), and their rows are marked sent in batches;
* the sweep: every ``poll_interval`` the relay claims rows still unsent after a grace
  period (the worker crashed after commit, or the fast path failed) with
  ``FOR UPDATE SKIP LOCKED``, publishes them in id (commit) order and marks them sent.
  Several workers can sweep at once without publishing a row twice concurrently.

Events keep their deterministic ids, so a re-published event is a duplicate that
subscribers can recognise, never a second outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from worker.db.session import SessionFactory
from worker.errors import TransientError, translate
from worker.ports import Publisher
from worker.repositories import OutboxRepository, PendingEvent

log = structlog.get_logger(__name__)

SWEEP_BATCH = 200
MARK_INTERVAL = 0.05


class OutboxRelay:
    """Publishes committed events and records that the broker confirmed them."""

    def __init__(
        self,
        session_factory: SessionFactory,
        publisher: Publisher,
        *,
        poll_interval: float = 1.0,
        grace: float = 5.0,
        on_published: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher
        self._poll_interval = poll_interval
        self._grace = timedelta(seconds=grace)
        self._confirmed: list[int] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_published = on_published

    def start(self) -> None:
        """Start the sweeper and the batch marker in the background."""
        self._tasks = [
            asyncio.create_task(self._sweep_forever(), name="outbox-sweep"),
            asyncio.create_task(self._mark_forever(), name="outbox-mark"),
        ]

    async def stop(self) -> None:
        """Stop the background tasks, then record every confirm still held in memory."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._mark_confirmed()

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        """Fast path: publish just-committed events now; ``False`` leaves them to the sweep."""
        if not events:
            return True
        try:
            await self._publisher.publish_events(events)
        except Exception as exc:  # the sweep will publish them; the command stays committed
            log.warning("outbox.fast_path_failed", error=type(exc).__name__, events=len(events))
            self._wake.set()
            return False
        self._confirmed.extend(e.id for e in events)
        self._on_published(len(events))
        return True

    async def sweep(self, *, grace: timedelta | None = None) -> int:
        """Publish one batch of unsent events older than the grace period; returns how many."""
        cutoff = datetime.now(UTC) - (self._grace if grace is None else grace)
        async with self._session_factory() as session, session.begin():
            outbox = OutboxRepository(session)
            pending = await outbox.claim_unsent(limit=SWEEP_BATCH, created_before=cutoff)
            if not pending:
                return 0
            # In id order, one at a time per batch chunk: ordering matters more than speed here.
            await self._publisher.publish_events(pending)
            await outbox.mark_published([e.id for e in pending])
        self._on_published(len(pending))
        log.info("outbox.swept", events=len(pending))
        return len(pending)

    async def drain(self) -> None:
        """Publish everything unsent regardless of age (used on shutdown and in tests)."""
        await self._mark_confirmed()
        while await self.sweep(grace=timedelta(0)):
            pass

    async def _sweep_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                while await self.sweep() == SWEEP_BATCH:
                    pass
            except Exception as exc:
                transient = isinstance(translate(exc), TransientError)
                log_method = log.warning if transient else log.error
                log_method("outbox.sweep_failed", error=type(exc).__name__, transient=transient)
                await asyncio.sleep(self._poll_interval)

    async def _mark_forever(self) -> None:
        while True:
            await asyncio.sleep(MARK_INTERVAL)
            try:
                await self._mark_confirmed()
            except Exception as exc:
                log.warning("outbox.mark_failed", error=type(exc).__name__)
                await asyncio.sleep(self._poll_interval)

    async def _mark_confirmed(self) -> None:
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
