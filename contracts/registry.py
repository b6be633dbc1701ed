"""Every message type by name, the unions over them, and the event routing keys."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias, TypeGuard, get_args

from contracts.base import MessageEnvelope, QueryEnvelope, RoutedEvent
from contracts.commands import (
    AppendMessage,
    CreateCustomer,
    DeleteCustomer,
    EscalateConversation,
    FreezeAccounts,
    OpenAccount,
    RecordTransaction,
    ResolveConversation,
    StartConversation,
    UpdateCustomer,
    UpsertFaq,
    UpsertProduct,
)
from contracts.events import (
    AccountOpened,
    AccountsFrozen,
    ConversationEscalated,
    ConversationResolved,
    ConversationStarted,
    CustomerCreated,
    CustomerDeleted,
    CustomerUpdated,
    FaqUpserted,
    MessageAppended,
    ProductUpserted,
    TransactionRecorded,
)
from contracts.queries import (
    GetCustomer,
    ListCustomerAccounts,
    ListCustomerConversations,
    ListEscalatedConversations,
    ListRecentTransactions,
    SearchFaq,
)
from contracts.replies import CommandDeadLettered, CommandRejected, QueryResult

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

Command: TypeAlias = (
    CreateCustomer
    | UpdateCustomer
    | DeleteCustomer
    | OpenAccount
    | FreezeAccounts
    | RecordTransaction
    | StartConversation
    | AppendMessage
    | EscalateConversation
    | ResolveConversation
    | UpsertProduct
    | UpsertFaq
)
"""Any command."""

Query: TypeAlias = (
    GetCustomer
    | SearchFaq
    | ListCustomerConversations
    | ListEscalatedConversations
    | ListRecentTransactions
    | ListCustomerAccounts
)
"""Any query."""

Event: TypeAlias = (
    CustomerCreated
    | CustomerUpdated
    | CustomerDeleted
    | AccountOpened
    | AccountsFrozen
    | TransactionRecorded
    | ConversationStarted
    | MessageAppended
    | ConversationEscalated
    | ConversationResolved
    | ProductUpserted
    | FaqUpserted
    | CommandRejected
    | CommandDeadLettered
    | QueryResult
)
"""Any outgoing message: an event on ``fca.events`` or a reply on ``reply_to``."""


def type_name(cls: type[MessageEnvelope]) -> str:
    """The wire ``type`` of a message class, e.g. ``"CreateCustomer"``."""
    default = cls.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{cls.__name__} does not declare a type literal")
    return default


def is_query(message: Command | Query) -> TypeGuard[Query]:
    """Whether a parsed request is a query (answered on ``reply_to``, changes nothing)."""
    return isinstance(message, QueryEnvelope)


_COMMANDS: tuple[type[MessageEnvelope], ...] = get_args(Command)
_QUERIES: tuple[type[MessageEnvelope], ...] = get_args(Query)
_EVENTS: tuple[type[MessageEnvelope], ...] = get_args(Event)

COMMAND_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in _COMMANDS)
"""The type of every command."""
QUERY_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in _QUERIES)
"""The type of every query."""
EVENT_TYPES: frozenset[str] = frozenset(type_name(cls) for cls in _EVENTS)
"""The type of every outgoing message (events, rejections, dead letters, query results)."""

MESSAGE_CLASSES: Mapping[str, type[MessageEnvelope]] = MappingProxyType(
    {type_name(cls): cls for cls in (*_COMMANDS, *_QUERIES, *_EVENTS)}
)
"""Every message class by its wire type, commands first, then queries, then events."""

EVENT_ROUTING_KEYS: Mapping[str, str] = MappingProxyType(
    {type_name(cls): cls.routing_key for cls in _EVENTS if issubclass(cls, RoutedEvent)}
)
"""Routing key on ``fca.events`` of every event type (QueryResult has none: reply_to only)."""
