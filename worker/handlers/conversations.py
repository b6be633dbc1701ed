"""Conversation commands."""

from __future__ import annotations

from contracts import (
    AppendMessage,
    ConversationEscalated,
    ConversationEscalatedPayload,
    ConversationResolved,
    ConversationResolvedPayload,
    ConversationStarted,
    ConversationStartedPayload,
    EscalateConversation,
    GetConversationTranscript,
    ListCustomerConversations,
    ListEscalatedConversations,
    MessageAppended,
    MessageAppendedPayload,
    ResolveConversation,
    RoutedEvent,
    StartConversation,
)
from worker.handlers.registry import HANDLERS, Answer, emit
from worker.services import ConversationService


@HANDLERS.command(StartConversation, ConversationService)
async def start_conversation(
    command: StartConversation, service: ConversationService
) -> list[RoutedEvent]:
    """Start a conversation (with the caller's UUID if given)."""
    p = command.payload
    conversation, customer_id = await service.start_conversation(
        customer_id=p.customer_id,
        channel=p.channel,
        conversation_id=p.conversation_id,
        subject=p.subject,
    )
    payload = ConversationStartedPayload(
        conversation_id=conversation.conversation_id, customer_id=customer_id, channel=p.channel
    )
    return [emit(command, ConversationStarted, payload)]


@HANDLERS.command(AppendMessage, ConversationService)
async def append_message(command: AppendMessage, service: ConversationService) -> list[RoutedEvent]:
    """Append a message to an open conversation."""
    p = command.payload
    message = await service.append_message(
        conversation_id=p.conversation_id, role=p.role, content=p.content
    )
    payload = MessageAppendedPayload(
        conversation_id=p.conversation_id, role=p.role, sequence=message.sequence
    )
    return [emit(command, MessageAppended, payload)]


@HANDLERS.command(EscalateConversation, ConversationService)
async def escalate_conversation(
    command: EscalateConversation, service: ConversationService
) -> list[RoutedEvent]:
    """Escalate a conversation to a human agent."""
    p = command.payload
    conversation = await service.escalate(
        conversation_id=p.conversation_id, reason=p.reason, priority=p.priority
    )
    assert conversation.escalation_id is not None
    payload = ConversationEscalatedPayload(
        conversation_id=conversation.conversation_id,
        escalation_id=conversation.escalation_id,
        priority=conversation.priority,
    )
    return [emit(command, ConversationEscalated, payload)]


@HANDLERS.command(ResolveConversation, ConversationService)
async def resolve_conversation(
    command: ResolveConversation, service: ConversationService
) -> list[RoutedEvent]:
    """Resolve a conversation named by its UUID or escalation id."""
    p = command.payload
    conversation = await service.resolve(
        resolution=p.resolution, conversation_id=p.conversation_id, escalation_id=p.escalation_id
    )
    payload = ConversationResolvedPayload(
        conversation_id=conversation.conversation_id,
        escalation_id=conversation.escalation_id,
        resolution=p.resolution,
    )
    return [emit(command, ConversationResolved, payload)]


@HANDLERS.query(ListCustomerConversations, ConversationService)
async def list_customer_conversations(
    query: ListCustomerConversations, service: ConversationService
) -> Answer:
    """A customer's conversations, newest activity first, keyset-paginated."""
    p = query.payload
    page = await service.customer_conversations(p.customer_id, limit=p.limit, cursor=p.cursor)
    return Answer(page.items, page.next_cursor)


@HANDLERS.query(ListEscalatedConversations, ConversationService)
async def list_escalated_conversations(
    query: ListEscalatedConversations, service: ConversationService
) -> Answer:
    """The escalation queue, oldest first, keyset-paginated."""
    page = await service.escalated(limit=query.payload.limit, cursor=query.payload.cursor)
    return Answer(page.items, page.next_cursor)


@HANDLERS.query(GetConversationTranscript, ConversationService)
async def get_conversation_transcript(
    query: GetConversationTranscript, service: ConversationService
) -> Answer:
    """A conversation's messages in sequence order, keyset-paginated."""
    p = query.payload
    page = await service.transcript(p.conversation_id, limit=p.limit, cursor=p.cursor)
    return Answer(page.items, page.next_cursor)
