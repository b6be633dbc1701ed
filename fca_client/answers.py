"""Answers: typing one as the outcome of its request, and what the contract allows as one.

:func:`query_outcome` and :func:`command_outcome` narrow a parsed answer to the types
``request`` promises (the real client uses them); :func:`answer_problem` also checks the
envelope the worker gives an answer (the in-memory double holds scripted answers to it).
"""

from __future__ import annotations

from contracts import (
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    EventEnvelope,
    InvalidMessage,
    QueryEnvelope,
    QueryResult,
    RequestEnvelope,
    RoutedEvent,
    parse_event,
)
from fca_client.base import CommandOutcome, QueryOutcome
from fca_client.errors import InvalidReply
from fca_client.outgoing import quiet_dump

__all__ = ["answer_problem", "command_outcome", "query_outcome"]


def query_outcome(query: QueryEnvelope, answer: EventEnvelope) -> QueryOutcome:
    """``answer`` typed as the answer to ``query``, or InvalidReply if it cannot be one."""
    if isinstance(answer, CommandRejected | CommandDeadLettered):
        return answer
    if isinstance(answer, QueryResult) and answer.payload.query_type == query.type:
        return answer
    raise InvalidReply(f"{answer.type} is not an answer to the query {query.type}")


def command_outcome(command: CommandEnvelope, answer: EventEnvelope) -> CommandOutcome:
    """``answer`` typed as the answer to ``command``, or InvalidReply if it cannot be one."""
    if isinstance(answer, CommandRejected | CommandDeadLettered):
        return answer
    if isinstance(answer, RoutedEvent) and type(answer) in type(command).events:
        return answer
    raise InvalidReply(f"{answer.type} is not an answer to the command {command.type}")


def answer_problem(request: RequestEnvelope, answer: EventEnvelope) -> str | None:
    """Why the worker could never send ``answer`` to ``request``, or None if it could."""
    try:
        parse_event(quiet_dump(answer))
    except InvalidMessage as exc:
        return f"it is invalid: {exc.reason}"
    return _kind_problem(request, answer) or _envelope_problem(request, answer)


def _kind_problem(request: RequestEnvelope, answer: EventEnvelope) -> str | None:
    if isinstance(answer, CommandRejected):
        if answer.payload.command_message_id != request.message_id:
            return "its command_message_id is not the request's message_id"
        if answer.payload.reason not in type(request).rejections:
            return f"{request.type} is never rejected with {answer.payload.reason}"
        return None
    if isinstance(answer, CommandDeadLettered):
        return None
    if isinstance(request, CommandEnvelope):
        first = type(request).events[0]
        ok = type(answer) is first
        return None if ok else f"a command is answered with its first event, {first.__name__}"
    ok = isinstance(answer, QueryResult) and answer.payload.query_type == request.type
    return None if ok else f"a query is answered with a QueryResult for {request.type}"


def _envelope_problem(request: RequestEnvelope, answer: EventEnvelope) -> str | None:
    if answer.causation_id != request.message_id:
        return "its causation_id is not the request's message_id"
    if answer.correlation_id != (request.correlation_id or request.message_id):
        return "its correlation_id is not the request's (or its message_id)"
    if answer.actor != request.actor:
        return "its actor is not the request's"
    return None
