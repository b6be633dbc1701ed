"""The command bus: one request in, one committed outcome out.

For a command, one unit of work (the handler's service) holds the inbox claim of its
message id, the handler's change and the outbox rows of its events; it commits, and only
then does the relay publish the events (the fast path; the relay's sweep catches what it
misses). A message id already in the inbox is a duplicate: nothing happens. A business
rejection (:class:`~worker.errors.DomainError`) rolls the change back, and a fresh unit of
work commits the answer instead: the inbox claim and a ``CommandRejected``. A query reads
through a unit of work that is never committed and is answered on ``reply_to`` only.

With group commit (:mod:`worker.group_commit`), commands that queue up while the worker is
busy share one transaction: one statement claims their ids, each handler runs in turn
with the service it asks for (joined to the shared transaction, in its command's trace
context), one statement stages every event, one commit. Each command's claim, change and
events still commit together or not at all. If one of them is rejected, it runs alone
(its rejection committed as above) and the others are tried together again; any other
failure rolls the group back and every command runs alone, meeting its own fate.

Anything else propagates to the caller, which asks :mod:`worker.messaging.fate` what to do.
The bus knows nothing of AMQP: its ports are in :mod:`worker.ports`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from opentelemetry import context as otel_context

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
from worker.group_commit import ALONE, Alone, GroupCommit
from worker.handlers import Handlers
from worker.messaging.fate import AckOutcome, Failure
from worker.observability.tracing import current_context
from worker.ports import EventRelay, Replies, UnitOfWork, UnitsOfWork
from worker.repositories import Claim, NewEvent, PendingEvent
from worker.services import BaseService


@dataclass(frozen=True, slots=True)
class Origin:
    """What the outcome of a request needs to know about where it came from."""

    reply_to: str | None = None
    partition: int | None = None
    """The partition queue it arrived on: its events are published by that partition's owner."""
    retry: bool = False
    """It failed before (a retry in place or from a delay queue): it runs in a transaction
    of its own, never in a group, since what failed it may fail it again."""


GROUP_LOCK_TIMEOUT_MS = 1000
"""A group waits at most this long for a row lock held elsewhere, then runs its commands
alone: one command stuck behind a lock must not hold the others of its group."""


@dataclass(frozen=True, slots=True)
class Queued:
    """A command waiting for a transaction, with the trace context it arrived in."""

    command: CommandEnvelope
    origin: Origin
    context: otel_context.Context


class _Rejected(Exception):
    """The group member at ``index`` was rejected: it runs alone, the others again."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


Committed = tuple[AckOutcome, list[PendingEvent]]
"""A command's outcome and the outbox rows it committed (to publish next)."""


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
        group_commit: int = 1,
        commit_runners: int = 2,
        on_group: Callable[[int], None] = lambda size: None,
        on_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self._handlers = handlers
        self._uow = units_of_work
        self._relay = relay
        self._replies = replies
        self._report_kind = report_kind
        self._group: GroupCommit[Queued, Committed] = GroupCommit(
            self._commit_queued,
            self.commit_together,
            max_batch=group_commit,
            runners=commit_runners,
            on_group=on_group,
            on_fallback=on_fallback,
        )
        self._on_fallback = on_fallback

    async def handle(self, request: RequestEnvelope, origin: Origin) -> AckOutcome:
        """Apply a command or answer a query; raises whatever is not a business answer."""
        if isinstance(request, QueryEnvelope):
            await self._answer(request, origin)
            return "answered"
        assert isinstance(request, CommandEnvelope)
        queued = Queued(request, origin, otel_context.get_current())
        if origin.retry:
            outcome, pending = await self._commit(request, origin)
        else:
            outcome, pending = await self._group.submit(queued)
        # Published by the command's own task, after its transaction slot is free again.
        await self._relay.publish_committed(pending)
        return outcome

    async def _commit_queued(self, queued: Queued) -> Committed:
        token = otel_context.attach(queued.context)  # it may run in another command's task
        try:
            return await self._commit(queued.command, queued.origin)
        finally:
            otel_context.detach(token)

    async def _commit(self, command: CommandEnvelope, origin: Origin) -> Committed:
        """One command, one transaction: its claim, change and events, or its rejection."""
        handler = self._handlers.commands[command.type]
        try:
            async with self._uow(handler.service) as uow:
                if not await uow.inbox.claim(
                    command.message_id, command.type, "applied", actor=command.actor
                ):
                    return "duplicate", []
                events = await handler.handle(command, uow)
                _check_declared(command, events)
                pending = await stage(uow, events, origin)
                await uow.commit()
            return "applied", pending
        except DomainError as exc:  # the change rolled back; commit the answer instead
            rejection = rejected(command, exc)
            async with self._uow(handler.service) as uow:
                if not await uow.inbox.claim(
                    command.message_id, command.type, "rejected", actor=command.actor
                ):
                    return "duplicate", []
                pending = await stage(uow, [rejection], origin)
                await uow.commit()
            return "rejected", pending

    async def commit_together(self, group: Sequence[Queued]) -> list[Committed | Alone]:
        """Several commands in one transaction; per command, what it committed or ALONE
        (rejected, or its id came twice). Raises, having committed nothing, if any of them
        failed otherwise: then each runs alone (group commit's fallback)."""
        results: list[Committed | Alone] = [ALONE] * len(group)
        first: dict[str, int] = {}
        for i, queued in enumerate(group):  # an id twice (unkeyed redeliveries): once here
            first.setdefault(queued.command.message_id, i)
        members = sorted(first.values())
        while len(members) > 1:
            try:
                committed = await self._commit_group([group[i] for i in members])
            except _Rejected as rejected_member:
                self._on_fallback()
                del members[rejected_member.index]  # it runs alone; the others again
                continue
            for i, result in zip(members, committed, strict=True):
                results[i] = result
            break
        return results

    async def _commit_group(self, group: Sequence[Queued]) -> list[Committed]:
        async with self._uow(self._report_kind) as uow:
            claims = [Claim(q.command.message_id, q.command.type, q.command.actor) for q in group]
            claimed = await uow.inbox.claim_many(
                claims, "applied", lock_timeout_ms=GROUP_LOCK_TIMEOUT_MS
            )
            rows: list[list[NewEvent]] = []
            for i, queued in enumerate(group):
                applied = queued.command.message_id in claimed
                rows.append(await self._run_joined(uow, queued, i) if applied else [])
            pending = iter(await uow.outbox.add_many([r for member in rows for r in member]))
            await uow.commit()
        return [
            ("applied" if q.command.message_id in claimed else "duplicate", take(pending, len(r)))
            for q, r in zip(group, rows, strict=True)
        ]

    async def _run_joined(self, uow: UnitOfWork, queued: Queued, index: int) -> list[NewEvent]:
        """One member's handler on the shared transaction, in its own trace context."""
        command = queued.command
        handler = self._handlers.commands[command.type]
        token = otel_context.attach(queued.context)
        try:
            try:
                events = await handler.handle(command, uow.join(handler.service))
            except DomainError as exc:
                raise _Rejected(index) from exc
            _check_declared(command, events)
            return event_rows(events, queued.origin)
        finally:
            otel_context.detach(token)

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


def event_rows(events: Sequence[RoutedEvent], origin: Origin) -> list[NewEvent]:
    """The outbox rows of one request's events; the first answers ``reply_to`` (the
    contract: "the first result event")."""
    return [
        new_event(e, reply_to=origin.reply_to if i == 0 else None, partition=origin.partition)
        for i, e in enumerate(events)
    ]


async def stage(
    uow: UnitOfWork, events: Sequence[RoutedEvent], origin: Origin, *, skip_existing: bool = False
) -> list[PendingEvent]:
    """Write the outbox rows into the unit of work's open transaction."""
    return await uow.outbox.add_many(event_rows(events, origin), skip_existing=skip_existing)


def take(rows: Iterator[PendingEvent], count: int) -> list[PendingEvent]:
    """The next ``count`` rows."""
    return [next(rows) for _ in range(count)]
