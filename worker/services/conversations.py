"""Conversation rules: message ordering, escalation (VIPs never below high), resolution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import ConversationMessageView, ConversationView
from worker.db.models import Conversation, Message
from worker.errors import (
    AlreadyEscalated,
    ConversationClosed,
    ConversationExists,
    ConversationNotFound,
)
from worker.repositories import Page
from worker.services.base import BaseService
from worker.services.customers import require_customer

PRIORITIES = ("normal", "high", "urgent")
FINISHED = ("resolved", "closed")


def escalation_priority(requested: str, *, is_vip: bool) -> str:
    """The priority an escalation gets: a VIP's is never below ``high``."""
    if is_vip and PRIORITIES.index(requested) < PRIORITIES.index("high"):
        return "high"
    return requested


class ConversationService(BaseService):
    """Conversations, their messages and their escalation tickets."""

    async def start_conversation(
        self,
        *,
        customer_id: str,
        channel: str,
        conversation_id: uuid.UUID | None = None,
        subject: str | None = None,
    ) -> tuple[Conversation, str]:
        """Open a conversation for a live customer; the caller may choose its UUID.

        One statement opens it if the customer is live and the UUID free; only when it opens
        nothing does the step-by-step path below find out why and reject, in the same order
        (or open it, if the customer was created since).
        """
        started = await self.conversations.start_for_live_customer(
            customer_id, channel=channel, subject=subject, conversation_id=conversation_id
        )
        if started is not None:
            return started, customer_id  # the customer's id, which it matched exactly
        customer = await require_customer(self.customers, customer_id)
        if conversation_id is not None and await self.conversations.find_by_conversation_id(
            conversation_id
        ):
            raise ConversationExists(f"conversation {conversation_id} already exists")
        conversation = await self.conversations.create(
            conversation_id=conversation_id or uuid.uuid4(),
            customer_id=customer.id,
            channel=channel,
            subject=subject,
        )
        return conversation, customer.customer_id

    async def _open_locked(self, conversation_id: uuid.UUID) -> Conversation:
        conversation = await self.conversations.find_by_conversation_id(
            conversation_id, for_update=True
        )
        if conversation is None:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        if conversation.status in FINISHED:
            raise ConversationClosed(f"conversation {conversation_id} is {conversation.status}")
        return conversation

    async def append_message(
        self, *, conversation_id: uuid.UUID, role: str, content: str
    ) -> Message:
        """Append a message numbered after the last one (the conversation row is locked).

        One UPDATE locks the conversation and marks it active unless it is finished; only
        when it matched nothing does a lookup say why (not found, or finished).
        """
        pk = await self.conversations.touch_unless(conversation_id, finished=FINISHED)
        if pk is None:
            # Raises, unless the conversation appeared since (committed concurrently).
            pk = (await self._open_locked(conversation_id)).id
            await self.conversations.touch(pk)
        return await self.messages.append(pk, role, content)

    async def escalate(
        self, *, conversation_id: uuid.UUID, reason: str, priority: str = "normal"
    ) -> Conversation:
        """Escalate an open conversation to a ticket with a fresh ``ESC-…`` id."""
        conversation = await self._open_locked(conversation_id)
        if conversation.status == "escalated":
            raise AlreadyEscalated(f"conversation {conversation_id} is already escalated")
        customer = await self.customers.get_by_id(conversation.customer_id)
        is_vip = bool(customer and customer.is_vip)
        updated = await self.conversations.update(
            conversation.id,
            status="escalated",
            priority=escalation_priority(priority, is_vip=is_vip),
            escalation_id=await self.conversations.next_escalation_id(),
            escalation_reason=reason,
            escalated_at=datetime.now(UTC),
        )
        assert updated is not None
        return updated

    async def resolve(
        self,
        *,
        resolution: str,
        conversation_id: uuid.UUID | None = None,
        escalation_id: str | None = None,
    ) -> Conversation:
        """Resolve a conversation named by its UUID or by its escalation id."""
        if conversation_id is None:
            found = await self.conversations.find_by_ticket_id(escalation_id or "", for_update=True)
            if found is None:
                raise ConversationNotFound(f"no conversation escalated as {escalation_id}")
            conversation_id = found.conversation_id
        conversation = await self._open_locked(conversation_id)
        updated = await self.conversations.update(
            conversation.id, status="resolved", resolution=resolution
        )
        assert updated is not None
        return updated

    async def customer_conversations(
        self, customer_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ConversationView]:
        """A customer's conversations, most recently active first."""
        customer = await require_customer(self.customers, customer_id)
        page = await self.conversations.find_by_customer(customer.id, limit=limit, cursor=cursor)
        items = [conversation_view(c, customer_id) for c in page.items]
        return Page(items, page.next_cursor)

    async def transcript(
        self, conversation_id: uuid.UUID, *, limit: int = 100, cursor: str | None = None
    ) -> Page[ConversationMessageView]:
        """A page of the conversation's messages, in sequence order."""
        conversation = await self.conversations.find_by_conversation_id(conversation_id)
        if conversation is None:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        page = await self.messages.transcript_page(conversation.id, limit=limit, cursor=cursor)
        return Page([message_view(m) for m in page.items], page.next_cursor)

    async def escalated(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> Page[ConversationView]:
        """The escalation queue, oldest first."""
        page = await self.conversations.find_escalated(limit=limit, cursor=cursor)
        owners = await self.customers.business_ids({c.customer_id for c in page.items})
        items = [conversation_view(c, owners[c.customer_id]) for c in page.items]
        return Page(items, page.next_cursor)


def conversation_view(c: Conversation, customer_id: str) -> ConversationView:
    """The read model of a conversation."""
    return ConversationView.model_validate(
        {
            "conversation_id": c.conversation_id,
            "customer_id": customer_id,
            "channel": c.channel,
            "subject": c.subject,
            "status": c.status,
            "priority": c.priority,
            "escalation_id": c.escalation_id,
            "escalation_reason": c.escalation_reason,
            "escalated_at": c.escalated_at,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }
    )


def message_view(m: Message) -> ConversationMessageView:
    """The read model of one message of a transcript."""
    return ConversationMessageView(
        sequence=m.sequence, role=m.role, content=m.content, created_at=m.created_at
    )
