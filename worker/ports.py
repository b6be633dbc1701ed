"""The seams between the layers: what the bus and the consumer need, as Protocols.

The command bus (:mod:`worker.bus`) needs units of work (a service with an inbox and an
outbox), a relay that publishes committed events, and a way to answer on ``reply_to``.
The consumer and the relay need a publisher. Production implements these with
SQLAlchemy and aio-pika; ``tests/fakes.py`` implements them in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

from aio_pika.abc import HeadersType

from contracts import EventEnvelope
from worker.repositories import Claim, NewEvent, PendingEvent

if TYPE_CHECKING:
    from worker.messaging.delivery import Delivery


class Inbox(Protocol):
    """The message ids that already took effect."""

    async def claim(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> bool:
        """Record the id unless present: ``True`` if this unit of work claimed it."""
        ...

    async def claim_many(
        self, claims: Sequence[Claim], outcome: str, *, lock_timeout_ms: int
    ) -> set[str]:
        """Claim several distinct ids at once; returns those this unit of work claimed. The
        rest of the transaction fails instead of waiting longer than ``lock_timeout_ms`` for
        a row lock."""
        ...


class Outbox(Protocol):
    """The events waiting to be published, written in the same transaction as the change."""

    async def add_many(
        self, events: Sequence[NewEvent], *, skip_existing: bool = False
    ) -> list[PendingEvent]:
        """Stage events in order; returns them as outbox rows (``skip_existing``: leave out
        events whose id was staged before)."""
        ...


class Audit(Protocol):
    """The record of who asked for each command and what came of it."""

    async def record(
        self, message_id: str, message_type: str, outcome: str, *, actor: str | None = None
    ) -> None:
        """Write one record into this unit of work's transaction."""
        ...


JoinedT = TypeVar("JoinedT", bound="UnitOfWork")


class UnitOfWork(Protocol):
    """One transaction: nothing it did is kept unless :meth:`commit` is called."""

    @property
    def inbox(self) -> Inbox:
        """The inbox, in this transaction."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The outbox, in this transaction."""
        ...

    @property
    def audit(self) -> Audit:
        """The command audit, in this transaction."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End it, rolling back whatever was not committed."""
        ...

    async def commit(self) -> None:
        """Make the work durable."""
        ...

    def join(self, kind: type[JoinedT]) -> JoinedT:
        """A unit of work of ``kind`` inside this one's transaction, committed by this one."""
        ...


UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)


class UnitsOfWork(Protocol):
    """Opens a unit of work of the kind (service class) a handler asks for."""

    def __call__(self, kind: type[UnitOfWorkT]) -> UnitOfWorkT:
        """A new, not yet entered unit of work of this kind."""
        ...


class EventRelay(Protocol):
    """Publishes events right after the transaction that staged them committed."""

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        """Publish now; ``False`` leaves them to the relay's sweep. Called in the trace
        context the events were staged in (the events continue it)."""
        ...


class Replies(Protocol):
    """Answers a request on its ``reply_to`` queue."""

    async def reply(self, reply_to: str, message: EventEnvelope) -> None:
        """Send ``message`` to ``reply_to`` and wait for the broker's confirm."""
        ...


class Publisher(Replies, Protocol):
    """Everything the worker sends, each message confirmed by the broker."""

    async def publish_events(
        self, events: Sequence[NewEvent], *, staged_here: bool = False
    ) -> None:
        """Publish events (and their replies) in order; returns once every one is confirmed.

        ``staged_here``: the events were staged in the current trace context (the fast path,
        in the command's own task), so it need not be restored from each event's row.
        """
        ...

    async def to_queue(
        self,
        queue: str,
        delivery: Delivery,
        headers: HeadersType,
        *,
        expiration_ms: int | None = None,
    ) -> None:
        """Copy a delivery's exact body to a queue (a delay queue or the DLQ)."""
        ...
