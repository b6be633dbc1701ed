"""``ConversationService`` rules against a real database: messages, escalation, resolution."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from contracts import ConversationView
from tests.factories import EPOCH
from worker.db.models import Conversation, Customer
from worker.db.session import SessionFactory
from worker.errors import (
    AlreadyEscalated,
    ConversationClosed,
    ConversationExists,
    ConversationNotFound,
    CustomerNotFound,
)
from worker.repositories import ConversationRepository, MessageRepository, Page
from worker.services import ConversationService, CustomerService

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

MakeCustomer = Callable[..., Awaitable[Customer]]
StartConversation = Callable[..., Awaitable[Conversation]]


@pytest.fixture
def start(session_factory: SessionFactory, make_customer: MakeCustomer) -> StartConversation:
    """Start (and commit) a conversation for a new customer (``is_vip`` optional)."""

    async def start_(*, is_vip: bool = False) -> Conversation:
        customer = await make_customer(is_vip=is_vip)
        async with ConversationService(session_factory) as service:
            conversation, _ = await service.start_conversation(
                customer_id=customer.customer_id, channel="chat"
            )
            await service.commit()
        return conversation

    return start_


async def _escalate(
    factory: SessionFactory, conversation_id: uuid.UUID, priority: str = "normal"
) -> Conversation:
    async with ConversationService(factory) as service:
        escalated = await service.escalate(
            conversation_id=conversation_id, reason="needs a human", priority=priority
        )
        await service.commit()
    return escalated


async def _resolve(factory: SessionFactory, **target: object) -> Conversation:
    async with ConversationService(factory) as service:
        resolved = await service.resolve(resolution="sorted", **target)
        await service.commit()
    return resolved


async def _append(factory: SessionFactory, conversation_id: uuid.UUID, content: str) -> int:
    async with ConversationService(factory) as service:
        message = await service.append_message(
            conversation_id=conversation_id, role="customer", content=content
        )
        await service.commit()
    return message.sequence


async def test_start_conversation_opens_one_with_a_fresh_uuid(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()

    async with ConversationService(session_factory) as service:
        conversation, owner = await service.start_conversation(
            customer_id=customer.customer_id, channel="email", subject="Card lost"
        )
        await service.commit()

    assert owner == customer.customer_id
    assert isinstance(conversation.conversation_id, uuid.UUID)
    assert (conversation.status, conversation.priority) == ("open", "normal")
    assert (conversation.channel, conversation.subject) == ("email", "Card lost")


async def test_start_conversation_keeps_the_callers_uuid_and_refuses_it_twice(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    chosen = uuid.uuid4()

    async with ConversationService(session_factory) as service:
        conversation, _ = await service.start_conversation(
            customer_id=customer.customer_id, channel="chat", conversation_id=chosen
        )
        await service.commit()
    async with ConversationService(session_factory) as service:
        with pytest.raises(ConversationExists) as caught:
            await service.start_conversation(
                customer_id=customer.customer_id, channel="chat", conversation_id=chosen
            )

    assert conversation.conversation_id == chosen
    assert (caught.value.reason, caught.value.detail) == (
        "conversation_exists",
        f"conversation {chosen} already exists",
    )


@pytest.mark.parametrize("chosen", [False, True], ids=["fresh-uuid", "callers-uuid"])
async def test_start_conversation_takes_one_statement_on_postgresql(
    backend: Backend, session_factory: SessionFactory, make_customer: MakeCustomer, chosen: bool
) -> None:
    customer = await make_customer()
    conversation_id = uuid.uuid4() if chosen else None
    statements = backend.capture()

    async with ConversationService(session_factory) as service:
        conversation, owner = await service.start_conversation(
            customer_id=customer.customer_id,
            channel="email",
            conversation_id=conversation_id,
            subject="Card lost",
        )
        await service.commit()

    verbs = [s.split()[0].upper() for s in statements]
    if backend.name == "postgresql":  # the customer and UUID checks inside the INSERT
        assert verbs == ["INSERT"]
    else:  # find the customer (and the caller's UUID), insert
        assert verbs == (["SELECT", "SELECT", "INSERT"] if chosen else ["SELECT", "INSERT"])
    assert owner == customer.customer_id
    assert conversation.conversation_id == (conversation_id or conversation.conversation_id)
    async with ConversationService(session_factory) as service:
        page = await service.customer_conversations(customer.customer_id)
    assert [(v.conversation_id, v.status, v.subject) for v in page.items] == [
        (conversation.conversation_id, "open", "Card lost")
    ]
    assert page.items[0].created_at == conversation.created_at


async def test_start_conversation_for_an_unknown_customer_under_a_taken_uuid_is_customer_not_found(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    taken = (await start()).conversation_id

    async with ConversationService(session_factory) as service:
        with pytest.raises(CustomerNotFound) as caught:
            await service.start_conversation(
                customer_id="CUST-999999", channel="chat", conversation_id=taken
            )

    assert caught.value.detail == "no customer CUST-999999"


@pytest.mark.parametrize("deleted", [False, True], ids=["missing", "deleted"])
async def test_start_conversation_for_an_unknown_or_deleted_customer_is_rejected(
    session_factory: SessionFactory, make_customer: MakeCustomer, deleted: bool
) -> None:
    customer_id = "CUST-999999"
    if deleted:
        customer_id = (await make_customer()).customer_id
        async with CustomerService(session_factory) as customers:
            await customers.delete_customer(customer_id)
            await customers.commit()

    async with ConversationService(session_factory) as service:
        with pytest.raises(CustomerNotFound):
            await service.start_conversation(customer_id=customer_id, channel="chat")


async def test_append_message_numbers_messages_one_to_n(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()

    sequences = [await _append(session_factory, conversation.conversation_id, t) for t in "abcd"]

    assert sequences == [1, 2, 3, 4]
    async with session_factory() as session:
        listed = await MessageRepository(session).list_for_conversation(conversation.id)
    assert [(m.sequence, m.content) for m in listed] == list(enumerate("abcd", start=1))


async def test_append_message_bumps_the_conversations_updated_at(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()
    async with session_factory() as session, session.begin():
        await ConversationRepository(session).update(conversation.id, updated_at=EPOCH)

    await _append(session_factory, conversation.conversation_id, "hello")

    async with session_factory() as session:
        repo = ConversationRepository(session)
        reloaded = await repo.find_by_conversation_id(conversation.conversation_id)
    assert reloaded is not None
    assert reloaded.updated_at > EPOCH


async def test_append_message_to_an_unknown_conversation_is_rejected(
    session_factory: SessionFactory,
) -> None:
    with pytest.raises(ConversationNotFound):
        await _append(session_factory, uuid.uuid4(), "hello?")


async def test_append_message_after_resolution_is_rejected_but_allowed_while_escalated(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()
    await _escalate(session_factory, conversation.conversation_id)
    assert await _append(session_factory, conversation.conversation_id, "still there?") == 1
    await _resolve(session_factory, conversation_id=conversation.conversation_id)

    with pytest.raises(ConversationClosed):
        await _append(session_factory, conversation.conversation_id, "one more thing")


async def test_escalate_opens_a_ticket_with_a_unique_escalation_id(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    first, second = await start(), await start()

    tickets = [await _escalate(session_factory, c.conversation_id) for c in (first, second)]

    ids = [t.escalation_id for t in tickets]
    assert all(i is not None and re.fullmatch(r"ESC-\d{6}", i) for i in ids)
    assert len(set(ids)) == 2
    assert tickets[0].status == "escalated"
    assert tickets[0].escalation_reason == "needs a human"
    assert tickets[0].escalated_at is not None


async def test_escalate_twice_is_rejected(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()
    await _escalate(session_factory, conversation.conversation_id)

    with pytest.raises(AlreadyEscalated):
        await _escalate(session_factory, conversation.conversation_id)


@pytest.mark.parametrize(
    ("is_vip", "requested", "expected"),
    [
        (True, "normal", "high"),
        (True, "high", "high"),
        (True, "urgent", "urgent"),
        (False, "normal", "normal"),
        (False, "urgent", "urgent"),
    ],
)
async def test_escalate_never_gives_a_vip_less_than_high_priority(
    session_factory: SessionFactory,
    start: StartConversation,
    is_vip: bool,
    requested: str,
    expected: str,
) -> None:
    conversation = await start(is_vip=is_vip)

    escalated = await _escalate(session_factory, conversation.conversation_id, requested)

    assert escalated.priority == expected


async def test_escalate_unknown_or_resolved_conversations_is_rejected(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()
    await _resolve(session_factory, conversation_id=conversation.conversation_id)

    with pytest.raises(ConversationClosed):
        await _escalate(session_factory, conversation.conversation_id)
    with pytest.raises(ConversationNotFound):
        await _escalate(session_factory, uuid.uuid4())


async def test_resolve_by_conversation_id_closes_the_conversation(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()

    resolved = await _resolve(session_factory, conversation_id=conversation.conversation_id)

    assert (resolved.status, resolved.resolution) == ("resolved", "sorted")
    with pytest.raises(ConversationClosed):
        await _resolve(session_factory, conversation_id=conversation.conversation_id)


async def test_resolve_by_escalation_id_closes_the_ticket(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    conversation = await start()
    ticket = await _escalate(session_factory, conversation.conversation_id)

    resolved = await _resolve(session_factory, escalation_id=ticket.escalation_id)

    assert resolved.conversation_id == conversation.conversation_id
    assert resolved.status == "resolved"


async def test_resolve_an_unknown_conversation_or_ticket_is_rejected(
    session_factory: SessionFactory, start: StartConversation
) -> None:
    await start()

    with pytest.raises(ConversationNotFound):
        await _resolve(session_factory, conversation_id=uuid.uuid4())
    with pytest.raises(ConversationNotFound):
        await _resolve(session_factory, escalation_id="ESC-999999")


async def test_listings_show_a_customers_conversations_and_the_escalation_queue(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    async with ConversationService(session_factory) as service:
        started = [
            (await service.start_conversation(customer_id=customer.customer_id, channel="chat"))[0]
            for _ in range(3)
        ]
        await service.commit()
    await _escalate(session_factory, started[1].conversation_id)

    async with ConversationService(session_factory) as service:
        mine = await service.customer_conversations(customer.customer_id, limit=2)
        rest = await service.customer_conversations(customer.customer_id, cursor=mine.next_cursor)
        queue = await service.escalated()
        listed = [c.conversation_id for c in mine.items + rest.items]
        assert sorted(listed) == sorted(c.conversation_id for c in started)
        assert [c.conversation_id for c in queue.items] == [started[1].conversation_id]
        assert {c.customer_id for c in listed_views(mine, rest, queue)} == {customer.customer_id}
        with pytest.raises(CustomerNotFound):
            await service.customer_conversations("CUST-999999")


def listed_views(*pages: Page[ConversationView]) -> list[ConversationView]:
    return [view for page in pages for view in page.items]
