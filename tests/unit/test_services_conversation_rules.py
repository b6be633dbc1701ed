"""``ConversationService`` rules and ``escalation_priority`` with repositories mocked (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import conversation_data, customer_data
from worker.db.models import Conversation, Customer, Message
from worker.errors import (
    AlreadyEscalated,
    ConversationClosed,
    ConversationExists,
    ConversationNotFound,
    CustomerNotFound,
)
from worker.services import ConversationService
from worker.services.conversations import escalation_priority

pytestmark = pytest.mark.unit

Build = Callable[[type[ConversationService]], Any]


@pytest.mark.parametrize(
    ("requested", "is_vip", "expected"),
    [
        ("normal", True, "high"),
        ("high", True, "high"),
        ("urgent", True, "urgent"),
        ("normal", False, "normal"),
        ("high", False, "high"),
        ("urgent", False, "urgent"),
    ],
)
def test_escalation_priority_is_never_below_high_for_a_vip(
    requested: str, is_vip: bool, expected: str
) -> None:
    assert escalation_priority(requested, is_vip=is_vip) == expected


@pytest.fixture
def service(mocked: Build) -> Any:
    """A ``ConversationService`` with mocked repositories; the one-statement start starts
    nothing, so ``start_conversation`` looks up each rule in turn."""
    service = mocked(ConversationService)
    service.conversations.start_for_live_customer.return_value = None
    service.conversations.next_escalation_id.return_value = "ESC-000001"
    service.conversations.update.side_effect = lambda _id, **data: Conversation(id=_id, **data)
    return service


def _conversation(service: Any, *, status: str = "open", is_vip: bool = False) -> Conversation:
    conversation = Conversation(**conversation_data(1, id=5, status=status))
    service.conversations.find_by_conversation_id.return_value = conversation
    service.customers.get_by_id.return_value = Customer(**customer_data(id=1, is_vip=is_vip))
    return conversation


async def _escalate(service: Any, priority: str = "normal") -> Conversation:
    return await service.escalate(conversation_id=uuid.uuid4(), reason="angry", priority=priority)


@pytest.mark.parametrize(
    ("is_vip", "requested", "expected"),
    [(True, "normal", "high"), (True, "urgent", "urgent"), (False, "normal", "normal")],
)
async def test_escalate_sets_the_priority_from_the_customers_vip_status(
    service: Any, is_vip: bool, requested: str, expected: str
) -> None:
    _conversation(service, is_vip=is_vip)

    escalated = await _escalate(service, requested)

    assert escalated.priority == expected
    assert (escalated.status, escalated.escalation_id) == ("escalated", "ESC-000001")


async def test_escalate_an_escalated_conversation_is_rejected(service: Any) -> None:
    _conversation(service, status="escalated")

    with pytest.raises(AlreadyEscalated) as caught:
        await _escalate(service)

    assert caught.value.reason == "already_escalated"
    service.conversations.update.assert_not_awaited()


@pytest.mark.parametrize("status", ["resolved", "closed"])
async def test_escalate_a_finished_conversation_is_rejected(service: Any, status: str) -> None:
    _conversation(service, status=status)

    with pytest.raises(ConversationClosed):
        await _escalate(service)


async def test_escalate_an_unknown_conversation_is_rejected(service: Any) -> None:
    service.conversations.find_by_conversation_id.return_value = None

    with pytest.raises(ConversationNotFound):
        await _escalate(service)


async def test_escalate_locks_the_conversation_row(service: Any) -> None:
    conversation = _conversation(service)

    await _escalate(service)

    kwargs = service.conversations.find_by_conversation_id.call_args.kwargs
    assert kwargs == {"for_update": True}
    assert service.conversations.update.call_args.args[0] == conversation.id


async def test_start_conversation_with_a_taken_uuid_is_rejected(service: Any) -> None:
    service.customers.find_by_business_id.return_value = Customer(**customer_data(id=1))
    _conversation(service)

    with pytest.raises(ConversationExists):
        await service.start_conversation(
            customer_id="CUST-1", channel="chat", conversation_id=uuid.uuid4()
        )

    service.conversations.create.assert_not_awaited()


async def test_start_conversation_for_an_unknown_customer_is_rejected(service: Any) -> None:
    service.customers.find_by_business_id.return_value = None

    with pytest.raises(CustomerNotFound):
        await service.start_conversation(customer_id="CUST-404", channel="chat")


async def test_start_conversation_reports_an_unknown_customer_before_a_taken_uuid(
    service: Any,
) -> None:
    service.customers.find_by_business_id.return_value = None
    _conversation(service)

    with pytest.raises(CustomerNotFound):
        await service.start_conversation(
            customer_id="CUST-404", channel="chat", conversation_id=uuid.uuid4()
        )

    service.conversations.create.assert_not_awaited()


async def test_start_conversation_takes_one_call_when_it_starts(service: Any) -> None:
    chosen = uuid.uuid4()
    started = Conversation(**conversation_data(1, id=5, conversation_id=chosen))
    service.conversations.start_for_live_customer.return_value = started

    conversation, owner = await service.start_conversation(
        customer_id="CUST-000001", channel="chat", conversation_id=chosen, subject="Hi"
    )

    assert (conversation, owner) == (started, "CUST-000001")
    service.conversations.start_for_live_customer.assert_awaited_once_with(
        "CUST-000001", channel="chat", subject="Hi", conversation_id=chosen
    )
    service.customers.find_by_business_id.assert_not_awaited()
    service.conversations.find_by_conversation_id.assert_not_awaited()
    service.conversations.create.assert_not_awaited()


async def test_append_message_locks_and_touches_the_open_conversation_in_one_call(
    service: Any,
) -> None:
    conversation_id = uuid.uuid4()
    service.conversations.touch_unless.return_value = 5
    appended = Message(conversation_id=5, sequence=4, role="agent", content="hi")
    service.messages.append.return_value = appended

    message = await service.append_message(
        conversation_id=conversation_id, role="agent", content="hi"
    )

    assert message is appended
    service.conversations.touch_unless.assert_awaited_once_with(
        conversation_id, finished=("resolved", "closed")
    )
    service.messages.append.assert_awaited_once_with(5, "agent", "hi")
    service.conversations.find_by_conversation_id.assert_not_awaited()  # no second lookup


@pytest.mark.parametrize("status", ["resolved", "closed"])
async def test_append_message_to_a_finished_conversation_is_rejected_as_closed(
    service: Any, status: str
) -> None:
    conversation = _conversation(service, status=status)
    service.conversations.touch_unless.return_value = None

    with pytest.raises(ConversationClosed):
        await service.append_message(
            conversation_id=conversation.conversation_id, role="agent", content="hi"
        )

    service.messages.append.assert_not_awaited()


async def test_append_message_to_an_unknown_conversation_is_rejected_as_not_found(
    service: Any,
) -> None:
    service.conversations.touch_unless.return_value = None
    service.conversations.find_by_conversation_id.return_value = None

    with pytest.raises(ConversationNotFound):
        await service.append_message(conversation_id=uuid.uuid4(), role="agent", content="hi")

    service.messages.append.assert_not_awaited()


async def test_append_message_to_a_conversation_that_appeared_since_the_update_locks_it_first(
    service: Any,
) -> None:
    conversation = _conversation(service)
    service.conversations.touch_unless.return_value = None

    await service.append_message(
        conversation_id=conversation.conversation_id, role="agent", content="hi"
    )

    assert service.conversations.find_by_conversation_id.call_args.kwargs == {"for_update": True}
    service.conversations.touch.assert_awaited_once_with(conversation.id)
    service.messages.append.assert_awaited_once_with(conversation.id, "agent", "hi")
