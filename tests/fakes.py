"""In-memory stand-ins for the worker's ports (``worker/ports.py``), for unit tests.

``FakeUnitOfWork``: an inbox and an outbox kept in memory; what a unit of work staged is
kept only if it committed (so a test sees exactly what a rolled-back transaction would
leave behind: nothing). ``FakeUnitsOfWork`` opens them and remembers every one it opened.
``FakeRelay`` and ``FakePublisher`` record what they were asked to publish and can be told
to fail. ``FakeIncomingMessage`` records how a delivery was settled; ``FakePartition`` is where it
came from.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aio_pika.abc import HeadersType

from contracts import EventEnvelope
from worker.messaging.delivery import Delivery
from worker.repositories import Claim, NewEvent, PendingEvent


@dataclass
class Store:
    """What committed units of work left behind, shared by all of them."""

    inbox: dict[str, str] = field(default_factory=dict)
    audit: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    outbox: list[PendingEvent] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class FakeInbox:
    """The inbox of one unit of work."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.claimed: dict[str, str] = {}
        self.lock_wait_limit: int | None = None

    async def claim(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> bool:
        """Claim unless committed before or claimed in this unit of work."""
        if message_id in self._store.inbox or message_id in self.claimed:
            return False
        self.claimed[message_id] = outcome
        return True

    async def claim_many(
        self, claims: Sequence[Claim], outcome: str, *, lock_timeout_ms: int
    ) -> set[str]:
        """Claim each as :meth:`claim` would (and remember the lock limit)."""
        self.lock_wait_limit = lock_timeout_ms
        return {
            c.message_id for c in claims if await self.claim(c.message_id, c.message_type, outcome)
        }


class FakeOutbox:
    """The outbox of one unit of work."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.staged: list[PendingEvent] = []

    async def add_many(
        self, events: Sequence[NewEvent], *, skip_existing: bool = False
    ) -> list[PendingEvent]:
        """Stage events with fresh ids, in order (``skip_existing``: not those staged before)."""
        known = {e.message_id for e in [*self._store.outbox, *self.staged]}
        if skip_existing:
            events = [e for e in events if e.message_id not in known]
        rows = [e.committed(next(self._store.ids)) for e in events]
        self.staged.extend(rows)
        return rows


class FakeAudit:
    """The audit of one unit of work."""

    def __init__(self) -> None:
        self.staged: list[tuple[str, str, str, str | None]] = []

    async def record(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> None:
        """Stage one record."""
        self.staged.append((message_id, message_type, outcome, actor))


class FakeUnitOfWork:
    """A unit of work over a :class:`Store`; handlers may use it as their service."""

    def __init__(self, store: Store, *, fail_commit: BaseException | None = None) -> None:
        self._store = store
        self._fail_commit = fail_commit
        self.inbox = FakeInbox(store)
        self.outbox = FakeOutbox(store)
        self.audit = FakeAudit()
        self.entered = False
        self.committed = False
        self.closed = False
        self.joined: list[type[Any]] = []

    async def __aenter__(self) -> Self:
        if self.entered:
            raise RuntimeError("a unit of work is entered once")
        self.entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closed = True

    def join(self, kind: type[Any]) -> Any:
        """Itself: fake handlers use the unit of work as their service."""
        self.joined.append(kind)
        return self

    async def commit(self) -> None:
        """Keep what this unit of work staged."""
        if not self.entered or self.closed:
            raise RuntimeError("commit outside `async with`")
        if self._fail_commit is not None:
            raise self._fail_commit
        self._store.inbox.update(self.inbox.claimed)
        self._store.outbox.extend(self.outbox.staged)
        self._store.audit.extend(self.audit.staged)
        self.committed = True


class FakeUnitsOfWork:
    """Opens fake units of work over one store, whatever kind is asked for."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.opened: list[FakeUnitOfWork] = []
        self.fail_commit: BaseException | None = None
        """Every unit of work opened from now on fails to commit with this."""

    def __call__(self, kind: type[Any]) -> Any:
        uow = FakeUnitOfWork(self.store, fail_commit=self.fail_commit)
        self.opened.append(uow)
        return uow


@dataclass
class FakeRelay:
    """Records what it was asked to publish, and checks it had been committed."""

    store: Store
    published: list[PendingEvent] = field(default_factory=list)
    fail: bool = False

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        """Refuse to publish what no unit of work committed (that would be a lost change)."""
        missing = [e for e in events if e not in self.store.outbox]
        assert not missing, f"published before commit: {missing}"
        if self.fail:
            return False
        self.published.extend(events)
        return True


@dataclass
class FakePublisher:
    """Records everything it was asked to send; ``fail_*`` make those calls raise."""

    events: list[NewEvent] = field(default_factory=list)
    replies: list[tuple[str, EventEnvelope]] = field(default_factory=list)
    copies: list[tuple[str, Delivery, HeadersType, int | None]] = field(default_factory=list)
    fail_events: BaseException | None = None
    fail_copies: BaseException | None = None

    async def publish_events(
        self, events: Sequence[NewEvent], *, staged_here: bool = False
    ) -> None:
        """Record, or raise ``fail_events``."""
        if self.fail_events is not None:
            raise self.fail_events
        self.events.extend(events)

    async def reply(self, reply_to: str, message: EventEnvelope) -> None:
        """Record a reply."""
        self.replies.append((reply_to, message))

    async def to_queue(
        self,
        queue: str,
        delivery: Delivery,
        headers: HeadersType,
        *,
        expiration_ms: int | None = None,
    ) -> None:
        """Record a copy to a queue, or raise ``fail_copies``."""
        if self.fail_copies is not None:
            raise self.fail_copies
        self.copies.append((queue, delivery, headers, expiration_ms))


@dataclass
class FakeIncomingMessage:
    """Just enough of an aio-pika incoming message for the consumer to settle it."""

    body: bytes
    routing_key: str = "CreateCustomer"
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    content_type: str | None = "application/json"
    type: str | None = None
    redelivered: bool = False
    settled: list[str] = field(default_factory=list)
    fail_ack: BaseException | None = None

    async def ack(self) -> None:
        """Record an ack, or raise ``fail_ack``."""
        if self.fail_ack is not None:
            raise self.fail_ack
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        """Record a nack."""
        self.settled.append("nack-requeue" if requeue else "nack")


@dataclass
class FakePartition:
    """The partition a fake delivery arrived on; counts what is in flight."""

    index: int = 3
    in_flight: int = 0
    peak: int = 0

    def delivery_started(self) -> None:
        """One more delivery in flight."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def delivery_settled(self) -> None:
        """One fewer."""
        self.in_flight -= 1
