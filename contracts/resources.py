"""The resource modules, and the commands, queries and events they declare, in order.

Registration order is deterministic: the modules in :data:`RESOURCE_MODULES` order, and
within a module the order of definition. A new message on an existing resource needs no
change here; a new resource module is added to :data:`RESOURCE_MODULES`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final, TypeVar

from contracts import accounts, catalog, conversations, customers, transactions, transcripts
from contracts.base import (
    CommandEnvelope,
    MessageEnvelope,
    QueryEnvelope,
    RoutedEvent,
    declared_type,
)

__all__ = [
    "COMMAND_CLASSES",
    "DOMAIN_EVENT_CLASSES",
    "QUERY_CLASSES",
    "RESOURCE_MODULES",
    "declared_in",
]

T = TypeVar("T", bound=MessageEnvelope)

RESOURCE_MODULES: Final[tuple[ModuleType, ...]] = (
    customers,
    accounts,
    transactions,
    conversations,
    transcripts,
    catalog,
)
"""Every module that declares messages of one resource, in registration order."""


def declared_in(modules: tuple[ModuleType, ...], kind: type[T]) -> tuple[type[T], ...]:
    """The concrete ``kind`` classes defined in ``modules``, in definition order."""
    return tuple(
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, kind)
        and value.__module__ == module.__name__
        and declared_type(value) is not None
    )


COMMAND_CLASSES: Final = declared_in(RESOURCE_MODULES, CommandEnvelope)
"""Every command class, in registration order."""
QUERY_CLASSES: Final = declared_in(RESOURCE_MODULES, QueryEnvelope)
"""Every query class, in registration order."""
DOMAIN_EVENT_CLASSES: Final = declared_in(RESOURCE_MODULES, RoutedEvent)
"""Every domain event class (not the replies), in registration order."""
