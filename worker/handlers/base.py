"""What every handler shares: the handler signature and the event constructor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts import CommandEnvelope, Payload, QueryEnvelope, RoutedEvent, make_event
from worker.services import BaseService

CommandT = TypeVar("CommandT", bound=CommandEnvelope)
QueryT = TypeVar("QueryT", bound=QueryEnvelope)
ServiceT = TypeVar("ServiceT", bound=BaseService)
EventT = TypeVar("EventT", bound=RoutedEvent)


@dataclass(frozen=True, slots=True)
class CommandHandler(Generic[CommandT, ServiceT]):
    """A command type's handler and the service (unit of work) it runs in."""

    service: type[ServiceT]
    handle: Callable[[CommandT, ServiceT], Awaitable[list[RoutedEvent]]]


@dataclass(frozen=True, slots=True)
class QueryHandler(Generic[QueryT, ServiceT]):
    """A query type's handler: returns the QueryResult payload (items, next_cursor)."""

    service: type[ServiceT]
    handle: Callable[[QueryT, ServiceT], Awaitable[dict[str, Any]]]


def emit(command: CommandEnvelope, event: type[EventT], payload: Payload, index: int = 0) -> EventT:
    """The ``index``-th event of ``command``'s outcome, with a deterministic id."""
    return make_event(
        event,
        command_message_id=command.message_id,
        correlation_id=command.correlation_id,
        payload=payload,
        index=index,
    )
