"""Every command against a running worker: its event, its rows, its rejections, reply_to."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from testkit.factories import new_id, unique_code, unique_email, unique_token
from testkit.harness import Harness
from testkit.messages import ReceivedMessage, assert_outcome_message

pytestmark = pytest.mark.e2e

CUSTOMER_ID = re.compile(r"^CUST-\d{6,}$")
ESCALATION_ID = re.compile(r"^ESC-\d{6,}$")
FAQ_ID = re.compile(r"^FAQ-\d{6,}$")


def expect(
    h: Harness,
    command: str,
    payload: dict[str, Any],
    event_type: str,
    routing_key: str,
    **publish: Any,
) -> ReceivedMessage:
    """Send ``command`` and check its success event against the contract."""
    return h.expect_event(
        command, payload, event_type=event_type, routing_key=routing_key, **publish
    )


def customer_row(h: Harness, customer_id: str) -> dict[str, Any]:
    row = h.fetchrow("SELECT * FROM customers WHERE customer_id = $1", customer_id)
    assert row is not None, customer_id
    return row


def account_row(h: Harness, account_number: str) -> dict[str, Any]:
    row = h.fetchrow("SELECT * FROM accounts WHERE account_number = $1", account_number)
    assert row is not None, account_number
    return row


def conversation_row(h: Harness, conversation_id: str) -> dict[str, Any]:
    row = h.fetchrow(
        "SELECT * FROM conversations WHERE conversation_id = $1", uuid.UUID(conversation_id)
    )
    assert row is not None, conversation_id
    return row


# --- customers --------------------------------------------------------------------------------


@pytest.mark.parametrize("correlation_id", [None, "chat-session-42"], ids=["own-id", "given"])
def test_create_customer_stores_the_customer_and_publishes_customer_created(
    harness: Harness, correlation_id: str | None
) -> None:
    email = unique_email()
    payload = {"email": email, "full_name": "Ada Lovelace", "phone": "+44 20 7946 0000"}
    event = expect(
        harness,
        "CreateCustomer",
        payload,
        "CustomerCreated",
        "customer.created",
        correlation_id=correlation_id,
    )

    assert set(event.payload) == {"customer_id", "email", "full_name", "is_vip"}
    assert CUSTOMER_ID.match(event.payload["customer_id"]), event.payload
    assert event.payload["email"] == email
    assert event.payload["full_name"] == "Ada Lovelace"
    assert event.payload["is_vip"] is False
    row = customer_row(harness, event.payload["customer_id"])
    assert (row["email"], row["full_name"], row["phone"]) == (
        email,
        "Ada Lovelace",
        payload["phone"],
    )
    assert row["is_vip"] is False
    assert row["is_deleted"] is False


def test_create_customer_keeps_the_vip_flag(harness: Harness) -> None:
    created = harness.create_customer(is_vip=True)

    assert created["is_vip"] is True
    assert customer_row(harness, created["customer_id"])["is_vip"] is True


def test_update_customer_changes_only_the_given_fields(harness: Harness) -> None:
    created = harness.create_customer(full_name="Before", phone="+44 1234 567")
    new_email = unique_email()
    payload = {
        "customer_id": created["customer_id"],
        "email": new_email,
        "full_name": "After",
        "is_vip": True,
    }

    event = expect(harness, "UpdateCustomer", payload, "CustomerUpdated", "customer.updated")

    assert event.payload == {
        "customer_id": created["customer_id"],
        "changes": {"email": new_email, "full_name": "After", "is_vip": True},
    }
    row = customer_row(harness, created["customer_id"])
    assert (row["email"], row["full_name"], row["phone"], row["is_vip"]) == (
        new_email,
        "After",
        "+44 1234 567",
        True,
    )


def test_update_customer_can_clear_the_phone(harness: Harness) -> None:
    created = harness.create_customer(phone="+44 1234 567")
    payload = {"customer_id": created["customer_id"], "phone": None}

    event = expect(harness, "UpdateCustomer", payload, "CustomerUpdated", "customer.updated")

    assert event.payload["changes"] == {"phone": None}
    assert customer_row(harness, created["customer_id"])["phone"] is None


def test_delete_customer_is_a_soft_delete(harness: Harness) -> None:
    created = harness.create_customer()
    customer_id = created["customer_id"]

    event = expect(
        harness,
        "DeleteCustomer",
        {"customer_id": customer_id},
        "CustomerDeleted",
        "customer.deleted",
    )

    assert event.payload == {"customer_id": customer_id}
    assert customer_row(harness, customer_id)["is_deleted"] is True
    # finders no longer return it
    harness.expect_rejection(
        "OpenAccount", {"customer_id": customer_id, "account_type": "current"}, "customer_not_found"
    )
    answer = harness.query("GetCustomer", {"customer_id": customer_id})
    assert answer.type == "CommandRejected"
    assert answer.payload["reason"] == "customer_not_found"


# --- accounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("account_type", "currency"), [("savings", None), ("credit_card", "EUR")])
def test_open_account_assigns_an_account_number(
    harness: Harness, account_type: str, currency: str | None
) -> None:
    customer_id = harness.create_customer()["customer_id"]
    payload = {"customer_id": customer_id, "account_type": account_type}
    if currency:
        payload["currency"] = currency

    event = expect(harness, "OpenAccount", payload, "AccountOpened", "account.opened")

    number = event.payload["account_number"]
    assert event.payload == {
        "account_number": number,
        "customer_id": customer_id,
        "account_type": account_type,
        "currency": currency or "GBP",
    }
    row = account_row(harness, number)
    assert (row["account_type"], row["currency"], row["status"]) == (
        account_type,
        currency or "GBP",
        "active",
    )
    assert row["balance"] == Decimal("0")
    owner = customer_row(harness, customer_id)
    assert row["customer_id"] == owner["id"]
    assert number != str(row["id"])  # a business number, not the primary key


def test_freeze_accounts_lists_only_the_accounts_it_froze(harness: Harness) -> None:
    customer_id = harness.create_customer()["customer_id"]
    first, second, third = (harness.open_account(customer_id) for _ in range(3))

    event = expect(
        harness,
        "FreezeAccounts",
        {"account_numbers": [first, second, "99999999999"], "reason": "fraud check"},
        "AccountsFrozen",
        "account.frozen",
    )
    assert sorted(event.payload["account_numbers"]) == sorted([first, second])

    again = expect(
        harness,
        "FreezeAccounts",
        {"account_numbers": [first, third], "reason": "fraud check"},
        "AccountsFrozen",
        "account.frozen",
    )
    assert again.payload["account_numbers"] == [third]
    statuses = {n: account_row(harness, n)["status"] for n in (first, second, third)}
    assert statuses == {first: "frozen", second: "frozen", third: "frozen"}


def test_record_transaction_credits_and_debits_the_balance(harness: Harness) -> None:
    account = harness.open_account(harness.create_customer()["customer_id"])
    credit_ref, debit_ref = unique_code("CR"), unique_code("DB")

    credit = expect(
        harness,
        "RecordTransaction",
        {
            "account_number": account,
            "amount": "100.00",
            "direction": "credit",
            "description": "salary",
            "reference": credit_ref,
        },
        "TransactionRecorded",
        "transaction.recorded",
    )
    debit = expect(
        harness,
        "RecordTransaction",
        {
            "account_number": account,
            "amount": "59.5",
            "direction": "debit",
            "description": "groceries",
            "reference": debit_ref,
        },
        "TransactionRecorded",
        "transaction.recorded",
    )

    assert credit.payload == {
        "account_number": account,
        "amount": "100.00",
        "direction": "credit",
        "reference": credit_ref,
        "balance_after": "100.00",
    }
    assert Decimal(debit.payload["amount"]) == Decimal("59.50")
    assert debit.payload["direction"] == "debit"
    assert debit.payload["balance_after"] == "40.50"
    assert account_row(harness, account)["balance"] == Decimal("40.50")
    rows = harness.fetch(
        "SELECT t.reference, t.amount, t.direction, t.description, t.balance_after "
        "FROM transactions t JOIN accounts a ON a.id = t.account_id "
        "WHERE a.account_number = $1 ORDER BY t.id",
        account,
    )
    assert rows == [
        {
            "reference": credit_ref,
            "amount": Decimal("100.00"),
            "direction": "credit",
            "description": "salary",
            "balance_after": Decimal("100.00"),
        },
        {
            "reference": debit_ref,
            "amount": Decimal("59.50"),
            "direction": "debit",
            "description": "groceries",
            "balance_after": Decimal("40.50"),
        },
    ]


# --- conversations ----------------------------------------------------------------------------


def test_start_conversation_assigns_a_uuid_when_none_is_given(harness: Harness) -> None:
    customer_id = harness.create_customer()["customer_id"]

    event = expect(
        harness,
        "StartConversation",
        {"customer_id": customer_id, "channel": "email", "subject": "Lost card"},
        "ConversationStarted",
        "conversation.started",
    )

    conversation_id = event.payload["conversation_id"]
    uuid.UUID(conversation_id)
    assert event.payload == {
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "channel": "email",
    }
    row = conversation_row(harness, conversation_id)
    assert (row["channel"], row["subject"], row["status"], row["priority"]) == (
        "email",
        "Lost card",
        "open",
        "normal",
    )
    assert row["customer_id"] == customer_row(harness, customer_id)["id"]


def test_start_conversation_keeps_the_callers_id(harness: Harness) -> None:
    customer_id = harness.create_customer()["customer_id"]
    conversation_id = new_id()

    event = expect(
        harness,
        "StartConversation",
        {"customer_id": customer_id, "channel": "phone", "conversation_id": conversation_id},
        "ConversationStarted",
        "conversation.started",
    )

    assert event.payload["conversation_id"] == conversation_id
    assert conversation_row(harness, conversation_id)["channel"] == "phone"


def test_append_message_numbers_messages_from_one(harness: Harness) -> None:
    conversation_id = harness.start_conversation(harness.create_customer()["customer_id"])
    turns = [("customer", "Hello, my card is lost"), ("agent", "Sorry to hear that\nLet me help")]

    events = [
        expect(
            harness,
            "AppendMessage",
            {"conversation_id": conversation_id, "role": role, "content": content},
            "MessageAppended",
            "conversation.message_appended",
        )
        for role, content in turns
    ]

    assert [e.payload for e in events] == [
        {"conversation_id": conversation_id, "role": "customer", "sequence": 1},
        {"conversation_id": conversation_id, "role": "agent", "sequence": 2},
    ]
    rows = harness.fetch(
        "SELECT m.sequence, m.role, m.content FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.conversation_id = $1 ORDER BY m.sequence",
        uuid.UUID(conversation_id),
    )
    assert [(r["sequence"], r["role"], r["content"]) for r in rows] == [
        (1, *turns[0]),
        (2, *turns[1]),
    ]


@pytest.mark.parametrize(
    ("is_vip", "requested", "given"),
    [
        (False, None, "normal"),
        (False, "urgent", "urgent"),
        (True, "normal", "high"),
        (True, None, "high"),
        (True, "urgent", "urgent"),
    ],
)
def test_escalate_conversation_never_gives_a_vip_less_than_high(
    harness: Harness, is_vip: bool, requested: str | None, given: str
) -> None:
    customer_id = harness.create_customer(is_vip=is_vip)["customer_id"]
    conversation_id = harness.start_conversation(customer_id)
    payload = {"conversation_id": conversation_id, "reason": "wants a human"}
    if requested:
        payload["priority"] = requested

    event = expect(
        harness, "EscalateConversation", payload, "ConversationEscalated", "conversation.escalated"
    )

    escalation_id = event.payload["escalation_id"]
    assert ESCALATION_ID.match(escalation_id), event.payload
    assert event.payload == {
        "conversation_id": conversation_id,
        "escalation_id": escalation_id,
        "priority": given,
    }
    row = conversation_row(harness, conversation_id)
    assert (row["status"], row["priority"], row["escalation_id"], row["escalation_reason"]) == (
        "escalated",
        given,
        escalation_id,
        "wants a human",
    )
    assert row["escalated_at"] is not None


def test_escalation_ids_are_unique(harness: Harness) -> None:
    customer_id = harness.create_customer()["customer_id"]
    conversations = [harness.start_conversation(customer_id) for _ in range(3)]
    sent = [
        harness.send("EscalateConversation", {"conversation_id": c, "reason": "help"})
        for c in conversations
    ]

    ids = [harness.outcome(s).payload["escalation_id"] for s in sent]

    assert len(set(ids)) == 3, ids


def test_resolve_conversation_by_conversation_id(harness: Harness) -> None:
    conversation_id = harness.start_conversation(harness.create_customer()["customer_id"])

    event = expect(
        harness,
        "ResolveConversation",
        {"conversation_id": conversation_id, "resolution": "answered by the bot"},
        "ConversationResolved",
        "conversation.resolved",
    )

    assert event.payload == {
        "conversation_id": conversation_id,
        "escalation_id": None,
        "resolution": "answered by the bot",
    }
    row = conversation_row(harness, conversation_id)
    assert (row["status"], row["resolution"]) == ("resolved", "answered by the bot")


def test_resolve_conversation_by_escalation_id(harness: Harness) -> None:
    conversation_id = harness.start_conversation(harness.create_customer()["customer_id"])
    escalated = harness.expect_event(
        "EscalateConversation",
        {"conversation_id": conversation_id, "reason": "complaint"},
        event_type="ConversationEscalated",
    )
    escalation_id = escalated.payload["escalation_id"]

    event = expect(
        harness,
        "ResolveConversation",
        {"escalation_id": escalation_id, "resolution": "refunded"},
        "ConversationResolved",
        "conversation.resolved",
    )

    assert event.payload == {
        "conversation_id": conversation_id,
        "escalation_id": escalation_id,
        "resolution": "refunded",
    }
    row = conversation_row(harness, conversation_id)
    assert (row["status"], row["resolution"], row["escalation_id"]) == (
        "resolved",
        "refunded",
        escalation_id,
    )


# --- catalogue --------------------------------------------------------------------------------


def test_upsert_product_creates_then_replaces(harness: Harness) -> None:
    code = unique_code("PRD")
    product = {
        "code": code,
        "name": "Easy Saver",
        "category": "savings",
        "description": "Instant access savings.",
        "interest_rate": "3.25",
    }

    created = expect(harness, "UpsertProduct", product, "ProductUpserted", "product.upserted")
    replaced = expect(
        harness,
        "UpsertProduct",
        {**product, "name": "Easy Saver Plus", "interest_rate": "3.5", "is_active": False},
        "ProductUpserted",
        "product.upserted",
    )

    assert created.payload == {
        "code": code,
        "name": "Easy Saver",
        "category": "savings",
        "is_active": True,
        "created": True,
    }
    assert replaced.payload == {
        "code": code,
        "name": "Easy Saver Plus",
        "category": "savings",
        "is_active": False,
        "created": False,
    }
    rows = harness.fetch("SELECT * FROM products WHERE code = $1", code)
    assert len(rows) == 1
    assert (rows[0]["name"], rows[0]["interest_rate"], rows[0]["is_active"]) == (
        "Easy Saver Plus",
        Decimal("3.5"),
        False,
    )


def test_upsert_faq_creates_then_replaces(harness: Harness) -> None:
    faq = {
        "question": "How do I reset my PIN?",
        "answer": "Use the app.",
        "keywords": ["PIN", "reset"],
        "category": "cards",
    }

    created = expect(harness, "UpsertFaq", faq, "FaqUpserted", "faq.upserted")
    faq_id = created.payload["faq_id"]
    assert FAQ_ID.match(faq_id), created.payload
    replaced = expect(
        harness,
        "UpsertFaq",
        {**faq, "faq_id": faq_id, "answer": "Use the app or an ATM."},
        "FaqUpserted",
        "faq.upserted",
    )

    assert replaced.payload == {"faq_id": faq_id}
    rows = harness.fetch("SELECT * FROM faqs WHERE faq_id = $1", faq_id)
    assert len(rows) == 1
    assert (rows[0]["question"], rows[0]["answer"], rows[0]["category"]) == (
        "How do I reset my PIN?",
        "Use the app or an ATM.",
        "cards",
    )


# --- rejections -------------------------------------------------------------------------------

Case = Callable[[Harness], tuple[str, dict[str, Any]]]


def _email_taken(h: Harness) -> tuple[str, dict[str, Any]]:
    taken = h.create_customer()["email"]
    return "CreateCustomer", {"email": taken, "full_name": "Copycat"}


def _email_taken_on_update(h: Harness) -> tuple[str, dict[str, Any]]:
    taken = h.create_customer()["email"]
    other = h.create_customer()["customer_id"]
    return "UpdateCustomer", {"customer_id": other, "email": taken}


def _customer_not_found(h: Harness) -> tuple[str, dict[str, Any]]:
    return "UpdateCustomer", {"customer_id": f"CUST-NONE-{unique_token()}", "full_name": "X"}


def _customer_not_found_on_delete(h: Harness) -> tuple[str, dict[str, Any]]:
    return "DeleteCustomer", {"customer_id": f"CUST-NONE-{unique_token()}"}


def _customer_not_found_on_open(h: Harness) -> tuple[str, dict[str, Any]]:
    return "OpenAccount", {"customer_id": f"CUST-NONE-{unique_token()}", "account_type": "current"}


def _customer_not_found_on_start(h: Harness) -> tuple[str, dict[str, Any]]:
    return "StartConversation", {"customer_id": f"CUST-NONE-{unique_token()}", "channel": "chat"}


def _accounts_not_found(h: Harness) -> tuple[str, dict[str, Any]]:
    return "FreezeAccounts", {"account_numbers": ["00000000001", "00000000002"], "reason": "x"}


def _transaction(account: str, amount: str, direction: str, reference: str) -> dict[str, Any]:
    return {
        "account_number": account,
        "amount": amount,
        "direction": direction,
        "description": "e2e",
        "reference": reference,
    }


def _account_not_found(h: Harness) -> tuple[str, dict[str, Any]]:
    return "RecordTransaction", _transaction("00000000009", "1.00", "credit", unique_code("R"))


def _account_frozen(h: Harness) -> tuple[str, dict[str, Any]]:
    account = h.open_account(h.create_customer()["customer_id"])
    h.expect_event(
        "FreezeAccounts", {"account_numbers": [account], "reason": "x"}, event_type="AccountsFrozen"
    )
    return "RecordTransaction", _transaction(account, "1.00", "credit", unique_code("R"))


def _insufficient_funds(h: Harness) -> tuple[str, dict[str, Any]]:
    account = h.open_account(h.create_customer()["customer_id"])
    h.expect_event(
        "RecordTransaction",
        _transaction(account, "10.00", "credit", unique_code("R")),
        event_type="TransactionRecorded",
    )
    return "RecordTransaction", _transaction(account, "10.01", "debit", unique_code("R"))


def _duplicate_reference(h: Harness) -> tuple[str, dict[str, Any]]:
    account = h.open_account(h.create_customer()["customer_id"])
    reference = unique_code("R")
    h.expect_event(
        "RecordTransaction",
        _transaction(account, "10.00", "credit", reference),
        event_type="TransactionRecorded",
    )
    return "RecordTransaction", _transaction(account, "5.00", "credit", reference)


def _conversation_not_found(h: Harness) -> tuple[str, dict[str, Any]]:
    return "AppendMessage", {"conversation_id": new_id(), "role": "customer", "content": "hi"}


def _conversation_not_found_by_escalation(h: Harness) -> tuple[str, dict[str, Any]]:
    return "ResolveConversation", {"escalation_id": "ESC-NONE-1", "resolution": "x"}


def _resolved_conversation(h: Harness) -> str:
    conversation_id = h.start_conversation(h.create_customer()["customer_id"])
    h.expect_event(
        "ResolveConversation",
        {"conversation_id": conversation_id, "resolution": "done"},
        event_type="ConversationResolved",
    )
    return conversation_id


def _conversation_closed(h: Harness) -> tuple[str, dict[str, Any]]:
    conversation_id = _resolved_conversation(h)
    return "AppendMessage", {"conversation_id": conversation_id, "role": "agent", "content": "x"}


def _conversation_closed_on_escalate(h: Harness) -> tuple[str, dict[str, Any]]:
    conversation_id = _resolved_conversation(h)
    return "EscalateConversation", {"conversation_id": conversation_id, "reason": "again"}


def _conversation_closed_on_resolve(h: Harness) -> tuple[str, dict[str, Any]]:
    conversation_id = _resolved_conversation(h)
    return "ResolveConversation", {"conversation_id": conversation_id, "resolution": "again"}


def _conversation_exists(h: Harness) -> tuple[str, dict[str, Any]]:
    customer_id = h.create_customer()["customer_id"]
    conversation_id = h.start_conversation(customer_id, conversation_id=new_id())
    return "StartConversation", {
        "customer_id": customer_id,
        "channel": "chat",
        "conversation_id": conversation_id,
    }


def _already_escalated(h: Harness) -> tuple[str, dict[str, Any]]:
    conversation_id = h.start_conversation(h.create_customer()["customer_id"])
    payload = {"conversation_id": conversation_id, "reason": "help"}
    h.expect_event("EscalateConversation", payload, event_type="ConversationEscalated")
    return "EscalateConversation", payload


def _faq_not_found(h: Harness) -> tuple[str, dict[str, Any]]:
    return "UpsertFaq", {
        "faq_id": "FAQ-NONE-1",
        "question": "Q?",
        "answer": "A.",
        "keywords": [],
        "category": "general",
    }


REJECTIONS: list[tuple[str, Case]] = [
    ("email_taken", _email_taken),
    ("email_taken", _email_taken_on_update),
    ("customer_not_found", _customer_not_found),
    ("customer_not_found", _customer_not_found_on_delete),
    ("customer_not_found", _customer_not_found_on_open),
    ("customer_not_found", _customer_not_found_on_start),
    ("accounts_not_found", _accounts_not_found),
    ("account_not_found", _account_not_found),
    ("account_frozen", _account_frozen),
    ("insufficient_funds", _insufficient_funds),
    ("duplicate_reference", _duplicate_reference),
    ("conversation_not_found", _conversation_not_found),
    ("conversation_not_found", _conversation_not_found_by_escalation),
    ("conversation_closed", _conversation_closed),
    ("conversation_closed", _conversation_closed_on_escalate),
    ("conversation_closed", _conversation_closed_on_resolve),
    ("conversation_exists", _conversation_exists),
    ("already_escalated", _already_escalated),
    ("faq_not_found", _faq_not_found),
]


@pytest.mark.parametrize(
    ("reason", "case"),
    REJECTIONS,
    ids=[f"{reason}-{case.__name__.strip('_')}" for reason, case in REJECTIONS],
)
def test_a_business_rejection_changes_nothing_and_is_acked(
    harness: Harness, reason: str, case: Case
) -> None:
    command, payload = case(harness)
    before = harness.fingerprint()

    sent = harness.send(command, payload)
    rejection = harness.outcome(sent)

    assert_outcome_message(
        rejection, sent, event_type="CommandRejected", routing_key="command.rejected"
    )
    assert rejection.payload["reason"] == reason, rejection.payload
    assert rejection.payload["command_type"] == command
    assert rejection.payload["command_message_id"] == sent.message_id
    assert rejection.payload["detail"]
    assert harness.fingerprint() == before
    harness.assert_acked(sent)
    assert harness.events.caused_by(sent) == [rejection]


# --- reply_to ---------------------------------------------------------------------------------


@pytest.mark.parametrize("correlation_id", [None, "chat-7"], ids=["own-id", "given"])
def test_the_outcome_of_a_command_also_goes_to_reply_to(
    harness: Harness, correlation_id: str | None
) -> None:
    replies = harness.client.reply_queue()
    sent = harness.send(
        "CreateCustomer",
        {"email": unique_email(), "full_name": "Reply Me"},
        reply_to=replies.name,
        correlation_id=correlation_id,
    )

    reply = replies.get()
    event = harness.outcome(sent)

    assert_outcome_message(reply, sent, event_type="CustomerCreated")
    assert reply.routing_key == replies.name  # through the default exchange
    assert reply.exchange == ""
    assert reply.properties.correlation_id == sent.expected_correlation_id
    assert reply.body == event.body
    assert replies.drain() == []  # only the first outcome


def test_a_rejection_also_goes_to_reply_to(harness: Harness) -> None:
    replies = harness.client.reply_queue()
    sent = harness.send(
        "DeleteCustomer",
        {"customer_id": f"CUST-NONE-{unique_token()}"},
        reply_to=replies.name,
        correlation_id="support-ticket-9",
    )

    reply = replies.get()

    assert_outcome_message(reply, sent, event_type="CommandRejected")
    assert reply.properties.correlation_id == "support-ticket-9"
    assert reply.payload["reason"] == "customer_not_found"
    assert harness.outcome(sent).message_id == reply.message_id
