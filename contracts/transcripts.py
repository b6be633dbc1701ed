"""Transcripts: append messages to a conversation, and read them back in order."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from contracts.base import (
    CommandEnvelope,
    ContractModel,
    Payload,
    QueryEnvelope,
    ResultPayload,
    RoutedEvent,
)
from contracts.fields import ConversationId, Cursor, Role, Timestamp, multi_line, page_limit
from contracts.samples import AT, CONVERSATION_ID, CURSOR

__all__ = [
    "AppendMessage",
    "AppendMessagePayload",
    "ConversationMessageView",
    "GetConversationTranscript",
    "GetConversationTranscriptPayload",
    "GetConversationTranscriptResult",
    "MessageAppended",
    "MessageAppendedPayload",
]

_CONVERSATION_ID = "The conversation's UUID."
_CURSOR = "The next_cursor of the previous page; absent for the first page."
_CONTENT = "My card was declined."


class ConversationMessageView(ContractModel):
    """One message of a conversation's transcript."""

    sequence: StrictInt = Field(ge=1, description="Position in the conversation, from 1.")
    role: Role = Field(description="Who wrote the message.")
    content: StrictStr = Field(description="The text.")
    created_at: Timestamp = Field(description="When it was appended.")


# --- AppendMessage ----------------------------------------------------------------------------


class MessageAppendedPayload(Payload):
    """The fields of MessageAppended."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    role: Role = Field(description="Who wrote the message.")
    sequence: StrictInt = Field(ge=1, description="Position in the conversation, from 1.")


class MessageAppended(RoutedEvent):
    """A message was appended to a conversation."""

    routing_key = "conversation.message_appended"
    example = {"conversation_id": CONVERSATION_ID, "role": "customer", "sequence": 1}
    type: Literal["MessageAppended"] = "MessageAppended"
    payload: MessageAppendedPayload


class AppendMessagePayload(Payload):
    """The fields of AppendMessage."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    role: Role = Field(description="Who wrote the message.")
    content: Annotated[str, multi_line(10000)] = Field(description="The text (1..10000 chars).")


class AppendMessage(CommandEnvelope):
    """Append a message to an open or escalated conversation; it gets the next sequence."""

    events = (MessageAppended,)
    ordering_fields = ("conversation_id",)
    rejections = ("conversation_not_found", "conversation_closed")
    example = {"conversation_id": CONVERSATION_ID, "role": "customer", "content": _CONTENT}
    type: Literal["AppendMessage"] = "AppendMessage"
    payload: AppendMessagePayload


# --- GetConversationTranscript (contract v2) --------------------------------------------------


class GetConversationTranscriptPayload(Payload):
    """The fields of GetConversationTranscript."""

    conversation_id: ConversationId = Field(description=_CONVERSATION_ID)
    limit: int = page_limit(100, 500)
    cursor: Cursor | None = Field(default=None, description=_CURSOR)


class GetConversationTranscriptResult(ResultPayload):
    """The answer to GetConversationTranscript: one page of messages in sequence order."""

    example = {
        "items": [
            {"sequence": 1, "role": "customer", "content": _CONTENT, "created_at": AT},
            {"sequence": 2, "role": "agent", "content": "Let me check that.", "created_at": AT},
        ],
        "next_cursor": CURSOR,
    }
    query_type: Literal["GetConversationTranscript"] = Field(description="The query answered.")
    items: tuple[ConversationMessageView, ...] = Field(
        max_length=500, description="The page, in sequence order."
    )
    next_cursor: Cursor | None = Field(
        description="Pass as cursor to get the next page; null on the last page."
    )


class GetConversationTranscript(QueryEnvelope):
    """A conversation's messages in sequence order, keyset-paginated (since contract v2)."""

    result = GetConversationTranscriptResult
    rejections = ("conversation_not_found", "invalid_cursor")
    example = {"conversation_id": CONVERSATION_ID, "limit": 100}
    type: Literal["GetConversationTranscript"] = "GetConversationTranscript"
    payload: GetConversationTranscriptPayload
