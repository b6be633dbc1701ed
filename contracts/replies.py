"""Outcomes that are not domain events: rejections, dead letters and query results."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictInt

from contracts.base import EventEnvelope, Payload, RoutedEvent
from contracts.fields import Cursor, ErrorType, MessageId, RejectionReason, TypeName, multi_line
from contracts.views import AccountView, ConversationView, CustomerView, FaqView, TransactionView

__all__ = [
    "CommandDeadLettered",
    "CommandDeadLetteredPayload",
    "CommandRejected",
    "CommandRejectedPayload",
    "GetCustomerResult",
    "ListCustomerAccountsResult",
    "ListCustomerConversationsResult",
    "ListEscalatedConversationsResult",
    "ListRecentTransactionsResult",
    "QueryResult",
    "QueryResultPayload",
    "RequestType",
    "SearchFaqResult",
]

RequestType = Literal[
    "CreateCustomer",
    "UpdateCustomer",
    "DeleteCustomer",
    "OpenAccount",
    "FreezeAccounts",
    "RecordTransaction",
    "StartConversation",
    "AppendMessage",
    "EscalateConversation",
    "ResolveConversation",
    "UpsertProduct",
    "UpsertFaq",
    "GetCustomer",
    "SearchFaq",
    "ListCustomerConversations",
    "ListEscalatedConversations",
    "ListRecentTransactions",
    "ListCustomerAccounts",
]
"""The type of every command and query."""

_NEXT_CURSOR = "Pass as cursor to get the next page; null on the last page."


class CommandRejectedPayload(Payload):
    """The fields of CommandRejected."""

    command_type: RequestType = Field(description="The type of the refused command or query.")
    command_message_id: MessageId = Field(description="Its message_id.")
    reason: RejectionReason = Field(description="Why it was refused (a stable code).")
    detail: Annotated[str, multi_line(1000)] = Field(
        description="A human-readable explanation (no secrets)."
    )


class CommandRejected(RoutedEvent):
    """A command or query was refused by a business rule; nothing changed."""

    routing_key: ClassVar[str] = "command.rejected"
    type: Literal["CommandRejected"] = "CommandRejected"
    payload: CommandRejectedPayload


class CommandDeadLetteredPayload(Payload):
    """The fields of CommandDeadLettered."""

    command_message_id: MessageId | None = Field(
        description="The command's message_id, or null if it could not be read."
    )
    command_type: TypeName | None = Field(
        description="The command's type as sent, or null if it could not be read."
    )
    error_type: ErrorType = Field(description="invalid_message, transient or unexpected.")
    error_message: Annotated[str, multi_line(1000)] = Field(
        description="What went wrong (no input values, no secrets)."
    )
    attempts: StrictInt = Field(ge=1, description="How many times processing was attempted.")


class CommandDeadLettered(RoutedEvent):
    """A command was moved to the dead-letter queue.

    Its ``causation_id`` is the command's ``message_id``; for a body whose id could not be
    read it is :func:`contracts.ids.body_digest_id` of the body.
    """

    routing_key: ClassVar[str] = "command.dead_lettered"
    type: Literal["CommandDeadLettered"] = "CommandDeadLettered"
    payload: CommandDeadLetteredPayload


class GetCustomerResult(Payload):
    """The answer to GetCustomer: the one customer found."""

    query_type: Literal["GetCustomer"] = Field(description="The query answered.")
    items: tuple[CustomerView, ...] = Field(max_length=1, description="The customer.")


class SearchFaqResult(Payload):
    """The answer to SearchFaq."""

    query_type: Literal["SearchFaq"] = Field(description="The query answered.")
    items: tuple[FaqView, ...] = Field(max_length=50, description="Matching FAQs.")


class ListCustomerConversationsResult(Payload):
    """The answer to ListCustomerConversations: one page, most recently updated first."""

    query_type: Literal["ListCustomerConversations"] = Field(description="The query answered.")
    items: tuple[ConversationView, ...] = Field(max_length=100, description="The page.")
    next_cursor: Cursor | None = Field(description=_NEXT_CURSOR)


class ListEscalatedConversationsResult(Payload):
    """The answer to ListEscalatedConversations: one page, oldest escalation first."""

    query_type: Literal["ListEscalatedConversations"] = Field(description="The query answered.")
    items: tuple[ConversationView, ...] = Field(max_length=200, description="The page.")
    next_cursor: Cursor | None = Field(description=_NEXT_CURSOR)


class ListRecentTransactionsResult(Payload):
    """The answer to ListRecentTransactions: newest first."""

    query_type: Literal["ListRecentTransactions"] = Field(description="The query answered.")
    items: tuple[TransactionView, ...] = Field(max_length=100, description="The transactions.")


class ListCustomerAccountsResult(Payload):
    """The answer to ListCustomerAccounts: newest first."""

    query_type: Literal["ListCustomerAccounts"] = Field(description="The query answered.")
    items: tuple[AccountView, ...] = Field(description="The customer's accounts.")


QueryResultPayload = Annotated[
    GetCustomerResult
    | SearchFaqResult
    | ListCustomerConversationsResult
    | ListEscalatedConversationsResult
    | ListRecentTransactionsResult
    | ListCustomerAccountsResult,
    Field(discriminator="query_type"),
]
"""The payload of a QueryResult, selected by ``query_type``."""


class QueryResult(EventEnvelope):
    """The answer to a query, sent only to its ``reply_to`` queue (never to ``fca.events``)."""

    type: Literal["QueryResult"] = "QueryResult"
    payload: QueryResultPayload
