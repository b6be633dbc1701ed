"""What a publisher's code depends on: the ``Client`` protocol and the typed outcomes.

``FcaClient`` (RabbitMQ) and ``InMemoryClient`` (tests) both implement :class:`Client`, so
the chat agent's code takes a ``Client`` and its tests pass the double.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeAlias, TypeVar, overload

from contracts import (
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    QueryEnvelope,
    QueryResult,
    RequestEnvelope,
    RoutedEvent,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Client",
    "CommandOutcome",
    "CommandT",
    "QueryOutcome",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds ``request`` waits for an answer unless told otherwise."""

CommandT = TypeVar("CommandT", bound=CommandEnvelope)

QueryOutcome: TypeAlias = QueryResult | CommandRejected | CommandDeadLettered
"""The answer to a query."""
CommandOutcome: TypeAlias = RoutedEvent | CommandRejected | CommandDeadLettered
"""The answer to a command: its first domain event, a rejection or a dead-letter report."""


class Client(Protocol):
    """Sends commands and asks queries over the fca-worker contract."""

    async def send(self, command: CommandT, *, trace: Mapping[str, str] | None = None) -> CommandT:
        """Publish a command (confirmed, mandatory); returns it as sent."""
        ...

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
        """Publish a query or command and wait for its answer on direct reply-to."""
        ...
