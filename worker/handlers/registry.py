"""The dispatch table: one handler per command and query type, registered where it is defined.

::

    @HANDLERS.command(OpenAccount, AccountService)
    async def open_account(command: OpenAccount, service: AccountService) -> list[RoutedEvent]:
        ...

A handler is a short ``async def`` taking the message and the service (the unit of work)
it runs in; it never sees a session, a channel or the settings. The bus opens the service,
runs the handler and commits; :data:`HANDLERS` is filled when :mod:`worker.handlers` is
imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from contracts import CommandEnvelope, ContractModel, QueryEnvelope, RoutedEvent, make_event
from worker.services import BaseService

CommandT = TypeVar("CommandT", bound=CommandEnvelope)
QueryT = TypeVar("QueryT", bound=QueryEnvelope)
ServiceT = TypeVar("ServiceT", bound=BaseService)
EventT = TypeVar("EventT", bound=RoutedEvent)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a query handler found: the items, and where the next page starts (paged queries)."""

    items: Sequence[ContractModel]
    next_cursor: str | None = None


CommandFunction = Callable[[CommandT, ServiceT], Awaitable[list[RoutedEvent]]]
QueryFunction = Callable[[QueryT, ServiceT], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class CommandHandler(Generic[CommandT, ServiceT]):
    """A command type's handler and the service (unit of work) it runs in."""

    service: type[ServiceT]
    handle: CommandFunction[CommandT, ServiceT]


@dataclass(frozen=True, slots=True)
class QueryHandler(Generic[QueryT, ServiceT]):
    """A query type's handler and the service it reads through (never committed)."""

    service: type[ServiceT]
    handle: QueryFunction[QueryT, ServiceT]


@dataclass
class Handlers:
    """Handlers by message type; each type has exactly one."""

    commands: dict[str, CommandHandler[Any, Any]] = field(default_factory=dict)
    queries: dict[str, QueryHandler[Any, Any]] = field(default_factory=dict)

    def command(
        self, message: type[CommandT], service: type[ServiceT]
    ) -> Callable[[CommandFunction[CommandT, ServiceT]], CommandFunction[CommandT, ServiceT]]:
        """Register the decorated function as the handler of ``message``."""

        def register(
            handle: CommandFunction[CommandT, ServiceT],
        ) -> CommandFunction[CommandT, ServiceT]:
            self._check_free(message)
            self.commands[message.model_fields["type"].default] = CommandHandler(service, handle)
            return handle

        return register

    def query(
        self, message: type[QueryT], service: type[ServiceT]
    ) -> Callable[[QueryFunction[QueryT, ServiceT]], QueryFunction[QueryT, ServiceT]]:
        """Register the decorated function as the handler of ``message``."""

        def register(handle: QueryFunction[QueryT, ServiceT]) -> QueryFunction[QueryT, ServiceT]:
            self._check_free(message)
            self.queries[message.model_fields["type"].default] = QueryHandler(service, handle)
            return handle

        return register

    def _check_free(self, message: type[CommandEnvelope] | type[QueryEnvelope]) -> None:
        name = message.model_fields["type"].default
        if name in self.commands or name in self.queries:
            raise ValueError(f"{name} already has a handler")


HANDLERS = Handlers()
"""Every handler of the worker (filled by importing :mod:`worker.handlers`)."""


def emit(command: CommandEnvelope, event: type[EventT], payload: ContractModel) -> EventT:
    """The event ``command`` caused: a deterministic id, the command's correlation and actor."""
    return make_event(
        event,
        command_message_id=command.message_id,
        correlation_id=command.correlation_id,
        payload=payload,
        actor=command.actor,
    )
