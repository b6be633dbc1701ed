"""From one delivery to one decision: parse, dispatch, commit, publish.

For a command: one transaction holds the domain change, the inbox row (its message
id) and the outbox rows (its events); after commit the events are published with
confirms (the relay's fast path). A message id already in the inbox is a duplicate:
acked with no effect. A business rejection is committed the same way, with a
``CommandRejected`` event instead. Every failure is classified once (``classify``)
into the :class:`Decision` the consumer carries out; nothing here acks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog
from pydantic import TypeAdapter, ValidationError

from contracts import (
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    EventEnvelope,
    InvalidMessage,
    MessageId,
    QueryEnvelope,
    QueryResult,
    RequestEnvelope,
    RoutedEvent,
    TypeName,
    body_digest_id,
    make_event,
    parse_message,
)
from worker.classify import Outcome, classify
from worker.db.session import SessionFactory
from worker.errors import DomainError, InvalidCursor
from worker.handlers import COMMAND_HANDLERS, QUERY_HANDLERS
from worker.messaging.outbox import OutboxRelay
from worker.messaging.publisher import Delivery, Publisher, json_message
from worker.messaging.retry import RetryPolicy, attempts_so_far
from worker.repositories import NewEvent, PendingEvent
from worker.services import BaseService

log = structlog.get_logger(__name__)


class Action(StrEnum):
    """What the consumer does with the delivery."""

    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one delivery, for the consumer to carry out and for the logs."""

    action: Action
    outcome: str  # applied, duplicate, rejected, answered, or an Outcome value
    attempt: int = 1
    error_type: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A delivery after parsing: the request, or why it could not be read."""

    delivery: Delivery
    request: RequestEnvelope | None
    invalid: str | None = None
    message_id: str | None = None
    type: str | None = None

    @property
    def ordering_key(self) -> str | None:
        """Commands on the same conversation, customer or account share a key."""
        return ordering_key(self.request) if self.request is not None else None


# The AMQP message_id/type properties are only a fallback for unreadable bodies, and as
# free as the body itself: use them only when they have the contract's shape.
_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)
_TYPE_NAME: TypeAdapter[str] = TypeAdapter(TypeName)


def _valid(adapter: TypeAdapter[str], value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def ordering_key(request: RequestEnvelope) -> str | None:
    """The key that orders this request against others (``None``: no ordering needed)."""
    if isinstance(request, QueryEnvelope):
        return None
    p = request.payload
    accounts: tuple[str, ...] = getattr(p, "account_numbers", ())
    if len(accounts) == 1:  # freezing one account is ordered with its transactions
        return f"account_number:{accounts[0]}"
    names = ("conversation_id", "escalation_id", "account_number", "customer_id", "code", "faq_id")
    for name in names:
        value = getattr(p, name, None)
        if value is not None:
            return f"{name}:{value}"
    email = getattr(p, "email", None)
    return f"email:{str(email).lower()}" if email is not None else None


class Pipeline:
    """Turns deliveries into committed outcomes and decisions."""

    def __init__(
        self,
        session_factory: SessionFactory,
        relay: OutboxRelay,
        publisher: Publisher,
        policy: RetryPolicy,
        *,
        max_body_bytes: int,
    ) -> None:
        self._sf = session_factory
        self._relay = relay
        self._publisher = publisher
        self._policy = policy
        self._max_body_bytes = max_body_bytes

    def parse(self, delivery: Delivery) -> Parsed:
        """Size check, then strict parsing; never raises."""
        size = len(delivery.body)
        if size > self._max_body_bytes:
            reason = f"body of {size} bytes exceeds the {self._max_body_bytes}-byte limit"
            message_id = _valid(_MESSAGE_ID, delivery.message_id)
            return Parsed(delivery, None, reason, message_id, _valid(_TYPE_NAME, delivery.type))
        try:
            request = parse_message(delivery.body)
        except InvalidMessage as exc:
            message_id = exc.message_id or _valid(_MESSAGE_ID, delivery.message_id)
            message_type = exc.type or _valid(_TYPE_NAME, delivery.type)
            return Parsed(delivery, None, str(exc), message_id, message_type)
        if isinstance(request, QueryEnvelope) and not delivery.reply_to:
            reason = "a query must carry the AMQP reply_to property"
            return Parsed(delivery, None, reason, request.message_id, request.type)
        return Parsed(delivery, request, None, request.message_id, request.type)

    async def process(self, parsed: Parsed) -> Decision:
        """Handle a parsed delivery; every exception becomes a decision."""
        attempt = attempts_so_far(parsed.delivery.headers) + 1
        if parsed.request is None:
            return Decision(
                Action.DEAD_LETTER, Outcome.INVALID, attempt, Outcome.INVALID, parsed.invalid
            )
        try:
            if isinstance(parsed.request, QueryEnvelope):
                await self._answer(parsed.request, parsed.delivery)
                return Decision(Action.ACK, "answered", attempt)
            assert isinstance(parsed.request, CommandEnvelope)
            outcome = await self._apply(parsed.request, parsed.delivery)
            return Decision(Action.ACK, outcome, attempt)
        except Exception as exc:
            return self._failed(exc, attempt)

    def _failed(self, exc: Exception, attempt: int) -> Decision:
        outcome = classify(exc)
        if outcome is Outcome.UNEXPECTED:
            log.exception("message.unexpected_error", error=type(exc).__name__)
        error = f"{outcome.value}: {type(exc).__name__}"  # never the message: it may hold data
        if self._policy.should_retry(outcome, attempt):
            return Decision(Action.RETRY, outcome, attempt, outcome.value, error)
        return Decision(Action.DEAD_LETTER, outcome, attempt, outcome.value, error)

    async def _apply(self, command: CommandEnvelope, delivery: Delivery) -> str:
        handler = COMMAND_HANDLERS[command.type]
        try:
            async with handler.service(self._sf) as service:
                if not await service.inbox.claim(command.message_id, command.type, "applied"):
                    return "duplicate"
                events = await handler.handle(command, service)
                pending = await _stage(service, events, delivery.reply_to)
                await service.commit()
            outcome = "applied"
        except DomainError as exc:  # the change rolled back; commit the answer instead
            rejection = _rejection(command, exc.reason, exc.detail)
            async with BaseService(self._sf) as service:
                if not await service.inbox.claim(command.message_id, command.type, "rejected"):
                    return "duplicate"
                pending = await _stage(service, [rejection], delivery.reply_to)
                await service.commit()
            outcome = "rejected"
        await self._relay.publish_committed(pending)
        return outcome

    async def _answer(self, query: QueryEnvelope, delivery: Delivery) -> None:
        handler = QUERY_HANDLERS[query.type]
        reply: EventEnvelope
        try:
            async with handler.service(self._sf) as service:
                payload = await handler.handle(query, service)
            reply = make_event(
                QueryResult,
                command_message_id=query.message_id,
                correlation_id=query.correlation_id,
                payload={"query_type": query.type, **payload},
            )
        except (DomainError, InvalidCursor) as exc:
            reply = _rejection(query, exc.reason, str(exc))
        assert delivery.reply_to is not None
        message = json_message(
            reply.model_dump_json().encode(),
            message_id=reply.message_id,
            type_=reply.type,
            correlation_id=reply.correlation_id,
        )
        await self._publisher.reply(delivery.reply_to, message)

    def dead_letter_event(self, parsed: Parsed, decision: Decision) -> CommandDeadLettered:
        """The ``CommandDeadLettered`` event that reports a dead-lettered delivery."""
        message_id = parsed.message_id or body_digest_id(parsed.delivery.body)
        return make_event(
            CommandDeadLettered,
            command_message_id=message_id,
            correlation_id=None,
            payload={
                "command_message_id": parsed.message_id,
                "command_type": parsed.type,
                "error_type": decision.error_type or Outcome.UNEXPECTED.value,
                "error_message": (decision.error or "")[:1000] or "unknown",
                "attempts": decision.attempt,
            },
        )


def _rejection(request: RequestEnvelope, reason: str, detail: str) -> CommandRejected:
    return make_event(
        CommandRejected,
        command_message_id=request.message_id,
        correlation_id=request.correlation_id,
        payload={
            "command_type": request.type,
            "command_message_id": request.message_id,
            "reason": reason,
            "detail": detail[:1000],
        },
    )


async def _stage(
    service: BaseService,
    events: list[RoutedEvent] | list[CommandRejected],
    reply_to: str | None,
) -> list[PendingEvent]:
    """Write the outbox rows into the service's open transaction."""
    rows = [
        NewEvent(
            message_id=e.message_id,
            event_type=e.type,
            routing_key=e.routing_key,
            body=e.model_dump_json(),
            correlation_id=e.correlation_id,
            reply_to=reply_to if i == 0 else None,  # the first result event answers reply_to
        )
        for i, e in enumerate(events)
    ]
    ids = await service.outbox.add_many(rows)
    return [
        PendingEvent(
            i, r.message_id, r.event_type, r.routing_key, r.reply_to, r.correlation_id, r.body, None
        )
        for i, r in zip(ids, rows, strict=True)
    ]
