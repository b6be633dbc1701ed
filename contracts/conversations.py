"""Conversations: start, escalate and resolve them, and list them for agents and customers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr, model_validator

from contracts.base import (
    CommandEnvelope,
    ContractModel,
    Payload,
    QueryEnvelope,
    ResultPayload,
    RoutedEvent,
)
from contracts.fields import (
    BusinessId,
    Channel,
    ConversationId,
    ConversationStatus,
    Cursor,
    Priority,
    Timestamp,
    multi_line,
    page_limit,
    single_line,
)
from contracts.samples import AT, CONVERSATION_ID, CURSOR, CUSTOMER_ID, ESCALATION_ID

__all__ = [
    "ConversationEscalated",
    "ConversationEscalatedPayload",
    "ConversationResolved",
    "ConversationResolvedPayload",
    "ConversationStarted",
    "ConversationStartedPayload",
    "ConversationView",
    "EscalateConversation",
    "EscalateConversationPayload",
    "ListCustomerConversations",
    "ListCustomerConversationsPayload",
    "ListCustomerConversationsResult",
    "ListEscalatedConversations",
    "ListEscalatedConversationsPayload",
    "ListEscalatedConversationsResult",
    "ResolveConversation",
    "ResolveConversationPayload",
    "StartConversation",
    "StartConversationPayload",
]

_CUSTOMER_ID = "The customer's business id, e.g. CUST-000001."
_CONVERSATION_ID = "The conversation's UUID."
_CURSOR = "The next_cursor of the previous page; absent for the first page."
_NEXT_CURSOR = "Pass as cursor to get the next page; null on the last page."
_ESCALATION_REASON = "Customer asked for a human"
_VIEW: dict[str, Any] = {
    "conversation_id": CONVERSATION_ID,
    "customer_id": CUSTOMER_ID,
    "channel": "chat",
    "subject": "Card declined",
    "status": "escalated",
    "priority": "high",
    "escalation_id": ESCALATION_ID,
    "escalation_reason": _ESCALATION_REASON,
    "escalated_at": AT,
    "created_at": AT,
    "updated_at": AT,
}


class ConversationView(ContractModel):
    """A conversation, with its escalation if it has one."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    customer_id: BusinessId = Field(description="The customer's business id.")
    channel: Channel = Field(description="Where the conversation takes place.")
    subject: StrictStr | None = Field(description="What it is about, or null.")
    status: ConversationStatus = Field(description="open, escalated, resolved or closed.")
    priority: Priority = Field(description="Priority (normal unless escalated higher).")
    escalation_id: BusinessId | None = Field(description="The escalation's id, or null.")
    escalation_reason: StrictStr | None = Field(description="Why it was escalated, or null.")
    escalated_at: Timestamp | None = Field(description="When it was escalated, or null.")
    created_at: Timestamp = Field(description="When it was started.")
    updated_at: Timestamp = Field(description="When it last changed (e.g. a new message).")


# --- StartConversation ------------------------------------------------------------------------


class ConversationStartedPayload(Payload):
    """The fields of ConversationStarted."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    channel: Channel = Field(description="Where the conversation takes place.")


class ConversationStarted(RoutedEvent):
    """A conversation was started."""

    routing_key = "conversation.started"
    example = {"conversation_id": CONVERSATION_ID, "customer_id": CUSTOMER_ID, "channel": "chat"}
    type: Literal["ConversationStarted"] = "ConversationStarted"
    payload: ConversationStartedPayload


class StartConversationPayload(Payload):
    """The fields of StartConversation."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    channel: Channel = Field(description="Where the conversation takes place.")
    conversation_id: ConversationId | None = Field(
        default=None, description="A UUID chosen by the caller; assigned by the worker if absent."
    )
    subject: Annotated[str, single_line(200)] | None = Field(
        default=None, description="What the conversation is about."
    )


class StartConversation(CommandEnvelope):
    """Start a conversation with a customer."""

    events = (ConversationStarted,)
    ordering_fields = ("conversation_id", "customer_id")
    rejections = ("customer_not_found", "conversation_exists")
    example = {
        "customer_id": CUSTOMER_ID,
        "channel": "chat",
        "conversation_id": CONVERSATION_ID,
        "subject": "Card declined",
    }
    type: Literal["StartConversation"] = "StartConversation"
    payload: StartConversationPayload


# --- EscalateConversation ---------------------------------------------------------------------


class ConversationEscalatedPayload(Payload):
    """The fields of ConversationEscalated."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    escalation_id: BusinessId = Field(description="The escalation's unique id, e.g. ESC-000042.")
    priority: Priority = Field(description="The priority given (never below high for a VIP).")


class ConversationEscalated(RoutedEvent):
    """A conversation was escalated to a human agent."""

    routing_key = "conversation.escalated"
    example = {
        "conversation_id": CONVERSATION_ID,
        "escalation_id": ESCALATION_ID,
        "priority": "high",
    }
    type: Literal["ConversationEscalated"] = "ConversationEscalated"
    payload: ConversationEscalatedPayload


class EscalateConversationPayload(Payload):
    """The fields of EscalateConversation."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    reason: Annotated[str, multi_line(1000)] = Field(description="Why a human is needed.")
    priority: Priority = Field(
        default="normal", description="Requested priority; a VIP's is never below high."
    )


class EscalateConversation(CommandEnvelope):
    """Hand a conversation to a human agent."""

    events = (ConversationEscalated,)
    ordering_fields = ("conversation_id",)
    rejections = ("conversation_not_found", "conversation_closed", "already_escalated")
    example = {
        "conversation_id": CONVERSATION_ID,
        "reason": _ESCALATION_REASON,
        "priority": "normal",
    }
    type: Literal["EscalateConversation"] = "EscalateConversation"
    payload: EscalateConversationPayload


# --- ResolveConversation ----------------------------------------------------------------------


class ConversationResolvedPayload(Payload):
    """The fields of ConversationResolved."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    escalation_id: BusinessId | None = Field(
        description="The escalation it closed, or null if it was never escalated."
    )
    resolution: Annotated[str, multi_line(2000)] = Field(description="How it was resolved.")


class ConversationResolved(RoutedEvent):
    """A conversation was resolved and is now closed."""

    routing_key = "conversation.resolved"
    example = {
        "conversation_id": CONVERSATION_ID,
        "escalation_id": ESCALATION_ID,
        "resolution": "Card unblocked",
    }
    type: Literal["ConversationResolved"] = "ConversationResolved"
    payload: ConversationResolvedPayload


class ResolveConversationPayload(Payload):
    """The fields of ResolveConversation: exactly one of conversation_id or escalation_id."""

    conversation_id: ConversationId | None = Field(default=None, description=_CONVERSATION_ID)
    escalation_id: BusinessId | None = Field(
        default=None, description="The escalation's id, e.g. ESC-000042."
    )
    resolution: Annotated[str, multi_line(2000)] = Field(description="How it was resolved.")

    @model_validator(mode="after")
    def _exactly_one_target(self) -> ResolveConversationPayload:
        if (self.conversation_id is None) == (self.escalation_id is None):
            raise ValueError("give exactly one of conversation_id or escalation_id")
        return self


class ResolveConversation(CommandEnvelope):
    """Resolve a conversation (by its id or its escalation's id) and close it."""

    events = (ConversationResolved,)
    ordering_fields = ("conversation_id", "escalation_id")
    rejections = ("conversation_not_found", "conversation_closed")
    example = {"escalation_id": ESCALATION_ID, "resolution": "Card unblocked"}
    type: Literal["ResolveConversation"] = "ResolveConversation"
    payload: ResolveConversationPayload


# --- ListCustomerConversations ----------------------------------------------------------------


class ListCustomerConversationsPayload(Payload):
    """The fields of ListCustomerConversations."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    limit: int = page_limit(50, 100)
    cursor: Cursor | None = Field(default=None, description=_CURSOR)


class ListCustomerConversationsResult(ResultPayload):
    """The answer to ListCustomerConversations: one page, most recently updated first."""

    example = {"items": [_VIEW], "next_cursor": CURSOR}
    query_type: Literal["ListCustomerConversations"] = Field(description="The query answered.")
    items: tuple[ConversationView, ...] = Field(max_length=100, description="The page.")
    next_cursor: Cursor | None = Field(description=_NEXT_CURSOR)


class ListCustomerConversations(QueryEnvelope):
    """A customer's conversations, most recently updated first, keyset-paginated."""

    result = ListCustomerConversationsResult
    rejections = ("customer_not_found", "invalid_cursor")
    example = {"customer_id": CUSTOMER_ID, "limit": 50}
    type: Literal["ListCustomerConversations"] = "ListCustomerConversations"
    payload: ListCustomerConversationsPayload


# --- ListEscalatedConversations ---------------------------------------------------------------


class ListEscalatedConversationsPayload(Payload):
    """The fields of ListEscalatedConversations."""

    limit: int = page_limit(100, 200)
    cursor: Cursor | None = Field(default=None, description=_CURSOR)


class ListEscalatedConversationsResult(ResultPayload):
    """The answer to ListEscalatedConversations: one page, oldest escalation first."""

    example = {"items": [_VIEW], "next_cursor": None}
    query_type: Literal["ListEscalatedConversations"] = Field(description="The query answered.")
    items: tuple[ConversationView, ...] = Field(max_length=200, description="The page.")
    next_cursor: Cursor | None = Field(description=_NEXT_CURSOR)


class ListEscalatedConversations(QueryEnvelope):
    """Escalated conversations awaiting an agent, oldest escalation first, keyset-paginated."""

    result = ListEscalatedConversationsResult
    rejections = ("invalid_cursor",)
    example = {"limit": 100, "cursor": CURSOR}
    type: Literal["ListEscalatedConversations"] = "ListEscalatedConversations"
    payload: ListEscalatedConversationsPayload
