"""Every message type by name, the unions over them, and the event routing keys.

All of it is derived from the classes the resource modules declare (see
:mod:`contracts.resources`) plus the replies: commands first, then queries, then events, each
in registration order. Nothing here changes when a message is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeGuard, Union

from contracts.base import (
    CommandEnvelope,
    EventEnvelope,
    MessageEnvelope,
    QueryEnvelope,
    RoutedEvent,
    declared_type,
)
from contracts.replies import CommandDeadLettered, CommandRejected, QueryResult
from contracts.resources import COMMAND_CLASSES, DOMAIN_EVENT_CLASSES, QUERY_CLASSES

__all__ = [
    "COMMAND_TYPES",
    "EVENT_ROUTING_KEYS",
    "EVENT_TYPES",
    "MESSAGE_CLASSES",
    "QUERY_TYPES",
    "Command",
    "Event",
    "Query",
    "is_query",
    "type_name",
]

_EVENT_CLASSES: tuple[type[EventEnvelope], ...] = (
    *DOMAIN_EVENT_CLASSES,
    CommandRejected,
    CommandDeadLettered,
    QueryResult,
)

# Command, Query and Event are unions of the concrete classes at run time (pydantic
# discriminates on ``type``); a type checker sees their common base class.
if TYPE_CHECKING:
    Command = CommandEnvelope
    Query = QueryEnvelope
    Event = EventEnvelope
else:
    Command = Union[COMMAND_CLASSES]  # noqa: UP007 (built at run time)
    Query = Union[QUERY_CLASSES]  # noqa: UP007
    Event = Union[_EVENT_CLASSES]  # noqa: UP007


def type_name(cls: type[MessageEnvelope]) -> str:
    """The wire ``type`` of a message class, e.g. ``"CreateCustomer"``."""
    name = declared_type(cls)
    if name is None:
        raise TypeError(f"{cls.__name__} does not declare a type literal")
    return name


def is_query(message: Command | Query) -> TypeGuard[Query]:
    """Whether a parsed request is a query (answered on ``reply_to``, changes nothing)."""
    return isinstance(message, QueryEnvelope)


COMMAND_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in COMMAND_CLASSES)
"""The type of every command."""
QUERY_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in QUERY_CLASSES)
"""The type of every query."""
EVENT_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in _EVENT_CLASSES)
"""The type of every outgoing message (events, rejections, dead letters, query results)."""


def _by_type(classes: tuple[type[MessageEnvelope], ...]) -> dict[str, type[MessageEnvelope]]:
    by_type: dict[str, type[MessageEnvelope]] = {}
    for cls in classes:
        other = by_type.setdefault(type_name(cls), cls)
        if other is not cls:
            raise TypeError(f"{cls.__name__} and {other.__name__} declare the same type")
    return by_type


MESSAGE_CLASSES: Mapping[str, type[MessageEnvelope]] = MappingProxyType(
    _by_type((*COMMAND_CLASSES, *QUERY_CLASSES, *_EVENT_CLASSES))
)
"""Every message class by its wire type, commands first, then queries, then events."""

EVENT_ROUTING_KEYS: Mapping[str, str] = MappingProxyType(
    {type_name(cls): cls.routing_key for cls in _EVENT_CLASSES if issubclass(cls, RoutedEvent)}
)
"""Routing key on ``fca.events`` of every event type (QueryResult has none: reply_to only)."""
