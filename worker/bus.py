"""The command bus: one request in, one committed outcome out.

For a command, one unit of work (the handler's service) holds the inbox claim of its
message id, the handler's change and the outbox rows of its events; it commits, and only
then does the relay publish the events (the fast path; the relay's sweep catches what it
misses). A message id already in the inbox is a duplicate: nothing happens. A business
rejection (:class:`~worker.errors.DomainError`) rolls the change back, and a fresh unit of
work commits the answer instead: the inbox claim and a ``CommandRejected``. A query reads
through a unit of work that is never committed and is answered on ``reply_to`` only.

Anything else propagates to the caller, which asks :mod:`worker.messaging.fate` what to do.
The bus knows nothing of AMQP: its ports are in :mod:`worker.ports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts import (
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    EventEnvelope,
    QueryEnvelope,
    QueryResult,
    RequestEnvelope,
    RoutedEvent,
    body_digest_id,
    make_event,
)
from worker.errors import DomainError
from worker.handlers import Handlers
from worker.messaging.fate import AckOutcome, Failure
from worker.observability.tracing import current_context
from worker.ports import EventRelay, Replies, UnitOfWork, UnitsOfWork
from worker.repositories import NewEvent, PendingEvent
from worker.services import BaseService


@dataclass(frozen=True, slots=True)
class Origin:
    """What the outcome of a request needs to know about where it came from."""

    reply_to: str | None = None
    partition: int | None = None
    """The partition queue it arrived on: its events are published by that partition's owner."""


class CommandBus:
    """Runs each request's handler in its unit of work and commits its outcome."""

    def __init__(
        self,
        handlers: Handlers,
        units_of_work: UnitsOfWork,
        relay: EventRelay,
        replies: Replies,
        *,
        report_kind: type[UnitOfWork] = BaseService,
    ) -> None:
        self._handlers = handlers
        self._uow = units_of_work
        self._relay = relay
        self._replies = replies
        self._report_kind = report_kind

    async def handle(self, request: RequestEnvelope, origin: Origin) -> AckOutcome:
        """Apply a command or answer a query; raises whatever is not a business answer."""
        if isinstance(request, QueryEnvelope):
            await self._answer(request, origin)
            return "answered"
        assert isinstance(request, CommandEnvelope)
        return await self._apply(request, origin)

    async def _apply(self, command: CommandEnvelope, origin: Origin) -> AckOutcome:
        handler = self._handlers.commands[command.type]
        try:
            async with self._uow(handler.service) as uow:
                if not await uow.inbox.claim(
                    command.message_id, command.type, "applied", actor=command.actor
                ):
                    return "duplicate"
                events = await handler.handle(command, uow)
                _check_declared(command, events)
                pending = await stage(uow, events, origin)
                await uow.commit()
        except DomainError as exc:  # the change rolled back; commit the answer instead
            rejection = rejected(command, exc)
            async with self._uow(handler.service) as uow:
                if not await uow.inbox.claim(
                    command.message_id, command.type, "rejected", actor=command.actor
                ):
                    return "duplicate"
                pending = await stage(uow, [rejection], origin)
                await uow.commit()
            await self._relay.publish_committed(pending)
            return "rejected"
        await self._relay.publish_committed(pending)
        return "applied"

    async def _answer(self, query: QueryEnvelope, origin: Origin) -> None:
        handler = self._handlers.queries[query.type]
        reply: EventEnvelope
        try:
            async with self._uow(handler.service) as uow:
                answer = await handler.handle(query, uow)
            payload: dict[str, object] = {"query_type": query.type, "items": answer.items}
            if "next_cursor" in type(query).result.model_fields:  # a paged query
                payload["next_cursor"] = answer.next_cursor
            reply = make_event(
                QueryResult,
                command_message_id=query.message_id,
                correlation_id=query.correlation_id,
                payload=payload,
                actor=query.actor,
            )
        except DomainError as exc:
            reply = rejected(query, exc)
        assert origin.reply_to is not None, "parsing refuses a query without reply_to"
        await self._replies.reply(origin.reply_to, reply)

    async def report_dead_letter(self, report: CommandDeadLettered, origin: Origin) -> None:
        """Commit a dead letter's report to the outbox (answering ``reply_to``), then publish it.

        The report has a deterministic id, so a second attempt (the delivery came back after
        a crash before its ack) finds it staged already and adds nothing.
        """
        async with self._uow(self._report_kind) as uow:
            pending = await stage(uow, [report], origin, skip_existing=True)
            if pending:  # the first time this dead-lettering is reported: audit it too
                p = report.payload
                await uow.audit.record(
                    p.command_message_id or report.causation_id,
                    p.command_type or "unknown",
                    "dead_lettered",
                    actor=report.actor,
                )
            await uow.commit()
        await self._relay.publish_committed(pending)


def _check_declared(command: CommandEnvelope, events: Sequence[RoutedEvent]) -> None:
    """A handler emits only what its command declares (subscribers are promised no other)."""
    undeclared = [e.type for e in events if type(e) not in type(command).events]
    if undeclared:
        raise TypeError(f"{command.type} does not declare {', '.join(undeclared)}")


def rejected(request: RequestEnvelope, error: DomainError) -> CommandRejected:
    """The ``CommandRejected`` answering ``request``."""
    return make_event(
        CommandRejected,
        command_message_id=request.message_id,
        correlation_id=request.correlation_id,
        actor=request.actor,
        payload={
            "command_type": request.type,
            "command_message_id": request.message_id,
            "reason": error.reason,
            "detail": error.detail[:1000],
        },
    )


def dead_lettered(
    message_id: str | None,
    message_type: str | None,
    body: bytes,
    failure: Failure,
    *,
    replays: int = 0,
    correlation_id: str | None = None,
    actor: str | None = None,
) -> CommandDeadLettered:
    """The ``CommandDeadLettered`` report of a delivery moved to the DLQ.

    A body whose id could not be read is named by its digest (the report's causation id).
    Each replay that ends in the DLQ again is a new dead-lettering, so the replay count is
    part of the report's deterministic id.
    """
    return make_event(
        CommandDeadLettered,
        command_message_id=message_id or body_digest_id(body),
        correlation_id=correlation_id,
        actor=actor,
        index=replays,
        payload={
            "command_message_id": message_id,
            "command_type": message_type,
            "error_type": failure.error_type.value,
            "error_message": failure.message[:1000] or "unknown",
            "attempts": failure.attempt,
        },
    )


def new_event(
    event: RoutedEvent, *, reply_to: str | None = None, partition: int | None = None
) -> NewEvent:
    """The outbox row of ``event``; with ``reply_to`` it also answers that queue."""
    return NewEvent(
        message_id=event.message_id,
        event_type=event.type,
        routing_key=event.routing_key,
        body=event.model_dump_json(),
        correlation_id=event.correlation_id,
        reply_to=reply_to,
        partition=partition,
        trace=current_context() or None,
    )


async def stage(
    uow: UnitOfWork, events: Sequence[RoutedEvent], origin: Origin, *, skip_existing: bool = False
) -> list[PendingEvent]:
    """Write the outbox rows into the unit of work's open transaction.

    The first event answers ``reply_to`` (the contract: "the first result event").
    """
    rows = [
        new_event(e, reply_to=origin.reply_to if i == 0 else None, partition=origin.partition)
        for i, e in enumerate(events)
    ]
    return await uow.outbox.add_many(rows, skip_existing=skip_existing)
