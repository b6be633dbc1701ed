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
    MessageAppended,
    MessageAppendedPayload,
    ResolveConversation,
    RoutedEvent,
    StartConversation,
)
from worker.handlers.base import emit
from worker.services import ConversationService


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
