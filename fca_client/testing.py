"""``InMemoryClient``: a test double of ``FcaClient`` that holds every message to the contract.

Modelled on FastStream's ``TestRabbitBroker``: nothing leaves the process. Each message goes
through the same preparation as with RabbitMQ (envelope, ``fca-ordering-key``, actor, trace
headers), is parsed back with :func:`contracts.parse_message` and its headers checked, then
recorded in :attr:`InMemoryClient.sent`. A test scripts the answers per request type::

    client = InMemoryClient(actor="chat-agent")
    client.on(CreateCustomer).emit(
        lambda c: {"customer_id": "CUST-000001", **c.payload.model_dump(exclude={"phone"})}
    )
    client.on(GetCustomer).result([customer_view])      # a QueryResult with these items
    client.on(OpenAccount).reject("customer_not_found")  # a CommandRejected
    client.on(GetCustomer).no_answer()                   # request() raises RequestTimeout

A scripted answer is checked too (its kind, causation and correlation ids, the rejection
reason), so a test cannot script what the worker would never send. As with the worker, a
message id sent before gets no answer (``RequestTimeout`` at once, without waiting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast, overload

from pydantic import BaseModel

from contracts import (
    HEADER_ORDERING_KEY,
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    EventEnvelope,
    QueryEnvelope,
    QueryResult,
    RequestEnvelope,
    make_event,
    ordering_key,
    parse_message,
)
from fca_client.answers import answer_problem, command_outcome, query_outcome
from fca_client.base import (
    DEFAULT_TIMEOUT,
    CommandOutcome,
    CommandT,
    QueryOutcome,
)
from fca_client.errors import RequestTimeout
from fca_client.outgoing import Outgoing, prepare
from fca_client.tracing import trace_headers

__all__ = ["InMemoryClient", "NoAnswerScripted", "Script", "ScriptError", "Sent"]

RequestT = TypeVar("RequestT", bound=RequestEnvelope)
Answerer = Callable[[RequestT], EventEnvelope | None]
Value = Any | Callable[[RequestT], Any]


class NoAnswerScripted(AssertionError):
    """A test made a request whose type it scripted no answer for."""


class ScriptError(AssertionError):
    """A scripted answer is not one the worker could send for that request."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the double took, as the worker would read it."""

    message: RequestEnvelope
    body: bytes
    headers: Mapping[str, str]
    routing_key: str
    reply: bool
    """Sent with ``request`` (an answer was asked for)."""
    duplicate: bool
    """Its message id was sent before: the worker would ignore it, and not answer."""


class Script(Generic[RequestT]):
    """How the double answers one request type; each call replaces the previous rule."""

    def __init__(self, cls: type[RequestT], rules: dict[type[RequestEnvelope], Answerer[Any]]):
        self._cls = cls
        self._rules = rules

    def answer(self, answerer: Answerer[RequestT]) -> None:
        """Answer with ``answerer(request)``: any event, checked; None: no answer."""
        self._rules[self._cls] = answerer

    def emit(self, payload: Value[RequestT]) -> None:
        """Answer a command with its first event, of this payload (or ``payload(command)``)."""
        if not issubclass(self._cls, CommandEnvelope):
            raise TypeError(f"{self._cls.__name__} is a query: script result(), not emit()")
        event_cls = self._cls.events[0]
        self.answer(lambda r: _reply(event_cls, r, _value(payload, r)))

    def result(self, items: Value[RequestT] = (), *, next_cursor: str | None = None) -> None:
        """Answer a query with a ``QueryResult`` of these items (or ``items(query)``)."""
        if not issubclass(self._cls, QueryEnvelope):
            raise TypeError(f"{self._cls.__name__} is a command: script emit(), not result()")
        paged = "next_cursor" in self._cls.result.model_fields

        def answer(query: RequestT) -> EventEnvelope:
            payload: dict[str, Any] = {"query_type": query.type, "items": _value(items, query)}
            if paged or next_cursor is not None:
                payload["next_cursor"] = next_cursor
            return _reply(QueryResult, query, payload)

        self.answer(answer)

    def reject(self, reason: str, detail: str = "refused (scripted in a test)") -> None:
        """Answer with a ``CommandRejected`` for ``reason`` (one the type declares)."""
        self.answer(
            lambda r: _reply(
                CommandRejected,
                r,
                {
                    "command_type": r.type,
                    "command_message_id": r.message_id,
                    "reason": reason,
                    "detail": detail,
                },
            )
        )

    def dead_letter(
        self,
        error_message: str = "dead-lettered (scripted in a test)",
        *,
        error_type: str = "transient",
    ) -> None:
        """Answer with a ``CommandDeadLettered`` report, as after exhausted retries."""
        self.answer(
            lambda r: _reply(
                CommandDeadLettered,
                r,
                {
                    "command_message_id": r.message_id,
                    "command_type": r.type,
                    "error_type": error_type,
                    "error_message": error_message,
                    "attempts": 1,
                },
            )
        )

    def no_answer(self) -> None:
        """Never answer: ``request`` raises ``RequestTimeout`` (at once, without waiting)."""
        self.answer(lambda _r: None)


@dataclass
class InMemoryClient:
    """A stand-in for ``FcaClient`` in the publisher's own tests (see the module doc)."""

    actor: str | None = None
    sent: list[Sent] = field(default_factory=list)
    _rules: dict[type[RequestEnvelope], Answerer[Any]] = field(default_factory=dict)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def connect(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to close."""

    def on(self, cls: type[RequestT]) -> Script[RequestT]:
        """Script the answers to requests of type ``cls``."""
        return Script(cls, self._rules)

    def sent_messages(self, cls: type[RequestT]) -> list[RequestT]:
        """The messages of type ``cls`` sent so far, in order (duplicates included)."""
        return [s.message for s in self.sent if isinstance(s.message, cls)]

    def clear(self) -> None:
        """Forget what was sent (so ids count as new again); the scripts stay."""
        self.sent.clear()

    async def send(self, command: CommandT, *, trace: Mapping[str, str] | None = None) -> CommandT:
        """Check and record a command, as ``FcaClient.send`` would publish it."""
        if not isinstance(command, CommandEnvelope):
            raise TypeError(f"{type(command).__name__} is not a command: a query needs request()")
        sent = self._take(prepare(command, actor=self.actor, trace=trace), reply=False)
        return cast(CommandT, sent.message)

    @overload
    async def request(
        self,
        message: QueryEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> QueryOutcome: ...

    @overload
    async def request(
        self,
        message: CommandEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> CommandOutcome: ...

    async def request(
        self,
        message: RequestEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> QueryOutcome | CommandOutcome:
        """Check and record a request, and return the answer the test scripted."""
        sent = self._take(prepare(message, actor=self.actor, trace=trace), reply=True)
        request = sent.message
        rule = self._rules.get(type(request))
        if rule is None:
            raise NoAnswerScripted(
                f"no answer scripted for {request.type}: call "
                f"client.on({type(request).__name__}).emit/result/reject/... first"
            )
        answer = None if sent.duplicate else rule(request)
        if answer is None:
            raise RequestTimeout(message_id=request.message_id, timeout=timeout)
        problem = answer_problem(request, answer)
        if problem:
            raise ScriptError(f"the answer to {request.type} {request.message_id}: {problem}")
        if isinstance(request, QueryEnvelope):
            return query_outcome(request, answer)
        return command_outcome(cast(CommandEnvelope, request), answer)

    def _take(self, outgoing: Outgoing, *, reply: bool) -> Sent:
        """Hold a prepared message to the contract, then record it."""
        message = parse_message(outgoing.body)
        if outgoing.headers.get(HEADER_ORDERING_KEY) != ordering_key(message):
            raise ScriptError(f"{message.type}: the {HEADER_ORDERING_KEY} header is wrong")
        if trace_headers(outgoing.headers) != {
            k: v for k, v in outgoing.headers.items() if k != HEADER_ORDERING_KEY
        }:
            raise ScriptError(f"{message.type}: unexpected or malformed headers")
        duplicate = any(s.message.message_id == message.message_id for s in self.sent)
        sent = Sent(message, outgoing.body, dict(outgoing.headers), message.type, reply, duplicate)
        self.sent.append(sent)
        return sent


def _value(value: Value[RequestT], request: RequestT) -> Any:
    return value(request) if callable(value) else value


def _reply(
    cls: type[EventEnvelope], request: RequestEnvelope, payload: BaseModel | Mapping[str, Any]
) -> EventEnvelope:
    """An answer to ``request`` with the envelope the worker gives it."""
    try:
        return make_event(
            cls,
            command_message_id=request.message_id,
            correlation_id=request.correlation_id,
            actor=request.actor,
            payload=payload,
        )
    except ValueError as exc:  # pydantic's ValidationError: the script's payload is wrong
        raise ScriptError(f"scripted {cls.__name__} for {request.type} is invalid: {exc}") from None
