"""The retention job: every replica prunes old inbox ids and old published events on a schedule.

Without it ``inbox_messages`` and ``outbox_events`` grow forever, and published event bodies
keep personal data. Every ``WORKER_RETENTION_INTERVAL`` seconds (±10%, so replicas drift
apart) a round deletes

* inbox ids handled more than ``WORKER_INBOX_RETENTION_DAYS`` ago: a redelivery or a DLQ
  replay inside that window is still a duplicate (the settings make the replay window end a
  day earlier);
* outbox events published (confirmed by the broker) more than ``WORKER_OUTBOX_RETENTION_HOURS``
  ago; an unsent event is never deleted, however old.

A round works in batches of :data:`BATCH` rows, each its own short transaction, with a pause
of :data:`PAUSE` seconds between them, so commands never queue behind a long delete. Pruning
is idempotent: replicas may run it at the same time (on PostgreSQL they skip each other's
locked rows). The command audit is never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from worker.db.session import SessionFactory
from worker.errors import TransientError, translate
from worker.services import RetentionService

log = structlog.get_logger(__name__)

BATCH = 500
"""Rows deleted per statement (and per transaction)."""
PAUSE = 0.05
"""Seconds between two batches: other transactions get the database in between."""


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one round deleted, in how many batches, and how long it took."""

    inbox: int = 0
    outbox: int = 0
    batches: int = 0
    seconds: float = 0.0


class RetentionJob:
    """Prunes the inbox and the outbox every ``interval`` seconds until stopped."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        inbox_days: float,
        outbox_hours: float,
        interval: float,
        batch: int = BATCH,
        pause: float = PAUSE,
        on_round: Callable[[Pruned | None], None] = lambda pruned: None,
    ) -> None:
        self._session_factory = session_factory
        self._inbox = timedelta(days=inbox_days)
        self._outbox = timedelta(hours=outbox_hours)
        self._interval = interval
        self._batch = batch
        self._pause = pause
        self._task: asyncio.Task[None] | None = None
        self._on_round = on_round

    def start(self) -> None:
        """Start pruning in the background (the first round within a tenth of an interval)."""
        self._task = asyncio.create_task(self._run_forever(), name="retention")

    async def stop(self) -> None:
        """Stop at once; a batch cut short rolls back and is simply done next time."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def prune(self, *, now: datetime | None = None) -> Pruned:
        """One round: old inbox ids, then old published events, batch by batch."""
        started = time.monotonic()
        now = now or datetime.now(UTC)
        inbox_before, outbox_before = now - self._inbox, now - self._outbox

        async def inbox_batch(service: RetentionService) -> int:
            return await service.prune_inbox_batch(before=inbox_before, limit=self._batch)

        inbox, inbox_batches = await self._in_batches(inbox_batch)
        async with RetentionService(self._session_factory) as service:
            bound = await service.outbox_bound(published_before=outbox_before)

        async def outbox_batch(service: RetentionService) -> int:
            return await service.prune_outbox_batch(
                published_before=outbox_before, limit=self._batch, below_id=bound
            )

        outbox, outbox_batches = await self._in_batches(outbox_batch)
        seconds = time.monotonic() - started
        return Pruned(inbox, outbox, inbox_batches + outbox_batches, seconds)

    async def _in_batches(
        self, batch: Callable[[RetentionService], Awaitable[int]]
    ) -> tuple[int, int]:
        """Run ``batch`` in its own transaction until it deletes less than a full batch."""
        total = batches = 0
        while True:
            async with RetentionService(self._session_factory) as service:
                deleted = await batch(service)
                await service.commit()
            total, batches = total + deleted, batches + 1
            if deleted < self._batch:
                return total, batches
            await asyncio.sleep(self._pause)

    def _next_delay(self, first: bool) -> float:
        if first:
            return random.uniform(0, self._interval / 10)
        return self._interval * random.uniform(0.9, 1.1)

    async def _run_forever(self) -> None:
        first = True
        while True:
            await asyncio.sleep(self._next_delay(first))
            first = False
            try:
                pruned = await self.prune()
            except Exception as exc:  # the database may be away: try again next interval
                transient = isinstance(translate(exc), TransientError)
                (log.warning if transient else log.error)(
                    "retention.failed", error=type(exc).__name__, transient=transient
                )
                self._on_round(None)
                continue
            self._on_round(pruned)
            if pruned.inbox or pruned.outbox:
                log.info(
                    "retention.pruned",
                    inbox=pruned.inbox,
                    outbox=pruned.outbox,
                    batches=pruned.batches,
                    duration_ms=round(pruned.seconds * 1000),
                )
