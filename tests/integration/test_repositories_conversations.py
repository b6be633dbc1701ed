"""``ConversationRepository`` finders and keyset pages, and ``MessageRepository``."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import EPOCH, conversation_data, customer_data, message_data, moments
from worker.db.models import Conversation, Customer
from worker.errors import InvalidCursor
from worker.repositories import ConversationRepository, CustomerRepository, MessageRepository
from worker.repositories.base import encode_cursor

pytestmark = pytest.mark.integration


def _key(conversation: Conversation) -> tuple[datetime, int]:
    return conversation.updated_at, conversation.id


async def test_find_by_conversation_id_returns_the_conversation(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)
    target = conversations[17]

    found = await repo.find_by_conversation_id(target.conversation_id)
    locked = await repo.find_by_conversation_id(target.conversation_id, for_update=True)

    assert found is not None
    assert found.id == target.id
    assert locked is found


async def test_find_by_conversation_id_returns_none_when_missing(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)

    assert await repo.find_by_conversation_id(uuid.uuid4()) is None
    assert await repo.find_by_conversation_id(uuid.uuid4(), for_update=True) is None


async def test_start_for_live_customer_returns_a_fully_populated_conversation_held_by_the_session(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = ConversationRepository(session)
    owner = customers[2]
    chosen = uuid.uuid4()

    started = await repo.start_for_live_customer(
        owner.customer_id, channel="email", subject="Card lost", conversation_id=chosen
    )
    fresh = await repo.start_for_live_customer(owner.customer_id, channel="chat", subject=None)

    assert started is not None
    assert fresh is not None
    assert (started.conversation_id, started.customer_id) == (chosen, owner.id)
    assert (started.channel, started.subject) == ("email", "Card lost")
    assert (started.status, started.priority, started.escalation_id) == ("open", "normal", None)
    assert isinstance(started.id, int)
    assert started.created_at.tzinfo is not None
    assert started.updated_at.tzinfo is not None
    assert isinstance(fresh.conversation_id, uuid.UUID)
    assert fresh.conversation_id != chosen
    assert (fresh.channel, fresh.subject) == ("chat", None)
    assert await repo.find_by_conversation_id(chosen) is started


@pytest.mark.parametrize("case", ["missing customer", "deleted customer", "taken uuid"])
async def test_start_for_live_customer_writes_nothing_when_a_condition_fails(
    session: AsyncSession, customers: list[Customer], conversations: list[Conversation], case: str
) -> None:
    repo = ConversationRepository(session)
    owner = customers[4]
    if case == "deleted customer":
        await CustomerRepository(session).delete(owner.id)
    customer_id = "CUST-404404" if case == "missing customer" else owner.customer_id
    chosen = conversations[0].conversation_id if case == "taken uuid" else uuid.uuid4()

    started = await repo.start_for_live_customer(
        customer_id, channel="chat", subject=None, conversation_id=chosen
    )

    assert started is None
    assert await repo.count() == len(conversations)


async def test_find_by_ticket_id_returns_the_escalated_conversation(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)
    target = conversations[3]
    await repo.update(target.id, status="escalated", escalation_id="ESC-T00042")

    found = await repo.find_by_ticket_id("ESC-T00042")

    assert found is not None
    assert found.id == target.id
    assert await repo.find_by_ticket_id("ESC-T00042", for_update=True) is found
    assert await repo.find_by_ticket_id("ESC-T00043") is None


async def test_next_escalation_id_is_unique_and_formatted(session: AsyncSession) -> None:
    repo = ConversationRepository(session)

    ids = [await repo.next_escalation_id() for _ in range(10)]

    assert len(set(ids)) == 10
    assert all(re.fullmatch(r"ESC-\d{6}", i) for i in ids)


async def test_find_by_customer_returns_only_that_customers_most_recent_first(
    session: AsyncSession, conversations: list[Conversation], customers: list[Customer]
) -> None:
    owner = customers[3]
    expected = sorted((c for c in conversations if c.customer_id == owner.id), key=_key)

    page = await ConversationRepository(session).find_by_customer(owner.id)

    assert [c.id for c in page.items] == [c.id for c in reversed(expected)]
    assert page.next_cursor is None


async def test_find_by_customer_honours_the_limit_and_hands_out_a_cursor(
    session: AsyncSession, conversations: list[Conversation], customers: list[Customer]
) -> None:
    repo = ConversationRepository(session)

    first = await repo.find_by_customer(customers[0].id, limit=2)
    rest = await repo.find_by_customer(customers[0].id, limit=50, cursor=first.next_cursor)

    assert len(first.items) == 2
    assert first.next_cursor is not None
    assert len(rest.items) == 3
    assert rest.next_cursor is None


async def test_find_by_customer_pages_without_skipping_or_repeating_while_rows_arrive(
    session: AsyncSession,
) -> None:
    customer = await CustomerRepository(session).create(**customer_data())
    repo = ConversationRepository(session)
    # 56 rows, two per minute: every timestamp is shared, so the id must break ties.
    times = [at for at in moments(28) for _ in range(2)]
    original = [await repo.create(**conversation_data(customer.id, updated_at=t)) for t in times]
    future = EPOCH + timedelta(days=1)
    seen: list[Conversation] = []
    ahead: list[Conversation] = []
    behind: list[Conversation] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await repo.find_by_customer(customer.id, limit=10, cursor=cursor)
        pages += 1
        assert len(page.items) <= 10
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        last = page.items[-1]
        # Inserted between pages: rows ahead of the cursor (newer, or the same time with a
        # higher id) must not show up; rows behind it (older) must.
        ahead.append(await repo.create(**conversation_data(customer.id, updated_at=future)))
        ahead.append(
            await repo.create(**conversation_data(customer.id, updated_at=last.updated_at))
        )
        older = last.updated_at - timedelta(seconds=30)
        behind.append(await repo.create(**conversation_data(customer.id, updated_at=older)))

    seen_ids = [c.id for c in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a row was repeated"
    assert {c.id for c in original} <= set(seen_ids), "a row was skipped"
    assert {c.id for c in behind} <= set(seen_ids)
    assert not {c.id for c in ahead} & set(seen_ids)
    assert [_key(c) for c in seen] == sorted((_key(c) for c in seen), reverse=True)
    assert pages >= 6


async def test_find_escalated_lists_the_oldest_escalation_first(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)
    order = [conversations[i] for i in (7, 2, 30, 11, 45)]
    for i, (conversation, at) in enumerate(zip(order, moments(5), strict=True)):
        await repo.update(
            conversation.id, status="escalated", escalation_id=f"ESC-T{i}", escalated_at=at
        )
    await repo.update(conversations[8].id, status="resolved", escalated_at=EPOCH)

    first = await repo.find_escalated(limit=3)
    second = await repo.find_escalated(limit=3, cursor=first.next_cursor)

    assert [c.id for c in first.items] == [c.id for c in order[:3]]
    assert [c.id for c in second.items] == [c.id for c in order[3:]]
    assert second.next_cursor is None


def _b64(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        _b64({"updated_at": "2024-01-01T00:00:00+00:00"}),
        _b64(["2024-01-01T00:00:00", 5]),
        _b64(["2024-01-01T00:00:00+00:00", "5"]),
        _b64(["yesterday", 5]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["text", "symbols", "object", "naive-time", "string-id", "bad-time", "not-json"],
)
async def test_an_invalid_cursor_raises_invalid_cursor(
    session: AsyncSession, customers: list[Customer], cursor: str
) -> None:
    repo = ConversationRepository(session)

    with pytest.raises(InvalidCursor):
        await repo.find_by_customer(customers[0].id, cursor=cursor)
    with pytest.raises(InvalidCursor):
        await repo.find_escalated(cursor=cursor)


async def test_a_cursor_we_issued_is_accepted(session: AsyncSession) -> None:
    page = await ConversationRepository(session).find_escalated(cursor=encode_cursor(EPOCH, 1))

    assert page.items == []


# --- messages ----------------------------------------------------------------------------


async def test_list_for_conversation_orders_by_sequence(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = MessageRepository(session)
    target, other = conversations[0], conversations[1]
    for sequence in (3, 1, 2):
        await repo.create(**message_data(target.id, sequence))
    await repo.create(**message_data(other.id, 1))

    listed = await repo.list_for_conversation(target.id)

    assert [m.sequence for m in listed] == [1, 2, 3]
    assert {m.conversation_id for m in listed} == {target.id}
    assert await repo.list_for_conversation(conversations[2].id) == []


async def test_next_sequence_starts_at_one_and_follows_the_last_message(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = MessageRepository(session)
    target = conversations[5]

    assert await repo.next_sequence(target.id) == 1
    for sequence in (1, 2, 3):
        await repo.create(**message_data(target.id, sequence))
    await repo.create(**message_data(conversations[6].id, 9))

    assert await repo.next_sequence(target.id) == 4


# --- the AppendMessage hot path -------------------------------------------------------------

FINISHED = ("resolved", "closed")


async def test_touch_unless_returns_the_key_and_marks_an_open_conversation_active(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)
    target = conversations[4]
    await repo.update(target.id, status="escalated")

    assert await repo.touch_unless(target.conversation_id, finished=FINISHED) == target.id

    reloaded = await repo.find_by_conversation_id(target.conversation_id)
    assert reloaded is not None
    assert reloaded.updated_at > target.updated_at


@pytest.mark.parametrize("status", [None, "resolved", "closed"], ids=["missing", "res", "closed"])
async def test_touch_unless_matches_no_missing_or_finished_conversation_and_changes_nothing(
    session: AsyncSession, conversations: list[Conversation], status: str | None
) -> None:
    repo = ConversationRepository(session)
    target = conversations[6]
    if status is not None:
        await repo.update(target.id, status=status, updated_at=EPOCH)
    conversation_id = target.conversation_id if status else uuid.uuid4()

    assert await repo.touch_unless(conversation_id, finished=FINISHED) is None

    reloaded = await repo.find_by_conversation_id(target.conversation_id)
    assert reloaded is not None
    assert reloaded.updated_at == (EPOCH if status else target.updated_at)


async def test_touch_unless_refreshes_the_copy_this_session_already_holds(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = ConversationRepository(session)
    target = conversations[8]
    loaded = await repo.find_by_conversation_id(target.conversation_id)
    assert loaded is not None

    await repo.touch_unless(target.conversation_id, finished=FINISHED)

    assert loaded.updated_at > target.updated_at
    assert await repo.find_by_conversation_id(target.conversation_id) is loaded


async def test_append_returns_a_fully_populated_message_held_by_the_session(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = MessageRepository(session)
    target = conversations[9]
    await repo.create(**message_data(target.id, 1))

    message = await repo.append(target.id, "agent", "How can I help?")

    assert (message.conversation_id, message.sequence) == (target.id, 2)
    assert (message.role, message.content) == ("agent", "How can I help?")
    assert isinstance(message.id, int)
    assert isinstance(message.created_at, datetime)
    assert message.created_at.tzinfo is not None
    assert await repo.get_by_id(message.id) is message


async def test_appends_within_one_transaction_number_on_from_each_other(
    session: AsyncSession, conversations: list[Conversation]
) -> None:
    repo = MessageRepository(session)
    first, second = conversations[10], conversations[11]

    numbers = [(await repo.append(c.id, "customer", "hi")).sequence for c in (first, second)]
    numbers += [(await repo.append(first.id, "agent", "hello")).sequence]

    assert numbers == [1, 1, 2]
    assert [m.sequence for m in await repo.list_for_conversation(first.id)] == [1, 2]
