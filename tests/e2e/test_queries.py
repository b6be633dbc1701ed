"""Every query against a running worker: answered on reply_to only, never on fca.events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from testkit.factories import new_id, unique_code, unique_token
from testkit.harness import Harness
from testkit.messages import ReceivedMessage

pytestmark = pytest.mark.e2e


class Asker:
    """Sends queries through the harness and remembers them, to prove none caused an event."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.message_ids: set[str] = set()

    def __call__(self, query: str, payload: dict[str, Any], **publish: Any) -> ReceivedMessage:
        answer = self.harness.query(query, payload, **publish)
        assert answer.causation_id is not None
        self.message_ids.add(answer.causation_id)
        answer.parsed()  # a valid QueryResult or CommandRejected
        return answer

    def result(self, query: str, payload: dict[str, Any], **publish: Any) -> dict[str, Any]:
        """Ask, insist on a QueryResult for this query type, return its payload."""
        answer = self(query, payload, **publish)
        assert answer.type == "QueryResult", answer
        assert answer.properties.type == "QueryResult"
        assert answer.properties.content_type == "application/json"
        assert answer.payload["query_type"] == query
        return answer.payload

    def assert_nothing_published(self) -> None:
        self.harness.assert_no_more(lambda m: m.causation_id in self.message_ids)


@pytest.fixture
def ask(harness: Harness) -> Iterator[Asker]:
    asker = Asker(harness)
    yield asker
    asker.assert_nothing_published()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_get_customer_by_id_and_by_email(harness: Harness, ask: Asker) -> None:
    created = harness.create_customer(phone="+44 20 7946 0001", is_vip=True)
    before = harness.fingerprint()

    by_id = ask.result("GetCustomer", {"customer_id": created["customer_id"]})
    by_email = ask.result("GetCustomer", {"email": created["email"]})

    assert by_id["items"] == by_email["items"]
    [customer] = by_id["items"]
    assert {k: v for k, v in customer.items() if k != "created_at"} == {
        "customer_id": created["customer_id"],
        "email": created["email"],
        "full_name": created["full_name"],
        "phone": "+44 20 7946 0001",
        "is_vip": True,
    }
    _time(customer["created_at"])
    assert harness.fingerprint() == before  # queries change nothing


def test_a_query_answer_carries_the_queries_correlation_id(harness: Harness, ask: Asker) -> None:
    created = harness.create_customer()

    answer = ask("GetCustomer", {"customer_id": created["customer_id"]}, correlation_id="chat-1")

    assert answer.correlation_id == "chat-1"
    assert answer.properties.correlation_id == "chat-1"
    assert answer.persistent


def test_search_faq_matches_question_or_keywords_case_insensitively(
    harness: Harness, ask: Asker
) -> None:
    word = f"zq{unique_token(3)}"
    in_keywords = harness.expect_event(
        "UpsertFaq",
        {"question": "How do I pay?", "answer": "A.", "keywords": [word], "category": "pay"},
        event_type="FaqUpserted",
    ).payload["faq_id"]
    in_question = harness.expect_event(
        "UpsertFaq",
        {
            "question": f"What is {word.upper()} exactly?",
            "answer": "B.",
            "keywords": ["other"],
            "category": "pay",
        },
        event_type="FaqUpserted",
    ).payload["faq_id"]
    harness.expect_event(
        "UpsertFaq",
        {"question": "Unrelated?", "answer": "C.", "keywords": ["nope"], "category": "pay"},
        event_type="FaqUpserted",
    )

    result = ask.result("SearchFaq", {"keyword": word.upper()})
    limited = ask.result("SearchFaq", {"keyword": word, "limit": 1})

    assert sorted(item["faq_id"] for item in result["items"]) == sorted([in_keywords, in_question])
    by_id = {item["faq_id"]: item for item in result["items"]}
    assert by_id[in_keywords]["keywords"] == [word]
    assert by_id[in_keywords]["answer"] == "A."
    assert len(limited["items"]) == 1


def test_list_customer_accounts_newest_first(harness: Harness, ask: Asker) -> None:
    customer_id = harness.create_customer()["customer_id"]
    opened = [
        harness.open_account(customer_id, account_type=kind) for kind in ("current", "savings")
    ]

    result = ask.result("ListCustomerAccounts", {"customer_id": customer_id})

    assert [item["account_number"] for item in result["items"]] == opened[::-1]
    for item in result["items"]:
        assert item["customer_id"] == customer_id
        assert item["balance"] in {"0", "0.00"}
        assert item["is_frozen"] is False


def test_list_recent_transactions_newest_first(harness: Harness, ask: Asker) -> None:
    account = harness.open_account(harness.create_customer()["customer_id"])
    references = []
    for amount in ("10.00", "20.00", "30.00"):
        reference = unique_code("R")
        references.append(reference)
        harness.expect_event(
            "RecordTransaction",
            {
                "account_number": account,
                "amount": amount,
                "direction": "credit",
                "description": "top up",
                "reference": reference,
            },
            event_type="TransactionRecorded",
        )

    everything = ask.result("ListRecentTransactions", {"account_number": account})
    latest_two = ask.result("ListRecentTransactions", {"account_number": account, "limit": 2})

    assert [item["reference"] for item in everything["items"]] == references[::-1]
    assert [item["balance_after"] for item in everything["items"]] == ["60.00", "30.00", "10.00"]
    assert [item["reference"] for item in latest_two["items"]] == references[:0:-1]


def test_list_customer_conversations_newest_first(harness: Harness, ask: Asker) -> None:
    customer_id = harness.create_customer()["customer_id"]
    started = [harness.start_conversation(customer_id, channel="email") for _ in range(3)]

    result = ask.result("ListCustomerConversations", {"customer_id": customer_id})

    assert [item["conversation_id"] for item in result["items"]] == started[::-1]
    assert result["next_cursor"] is None
    assert {item["customer_id"] for item in result["items"]} == {customer_id}
    assert {item["status"] for item in result["items"]} == {"open"}


def test_list_escalated_conversations_oldest_escalation_first(harness: Harness, ask: Asker) -> None:
    customer_id = harness.create_customer(is_vip=True)["customer_id"]
    conversations = [harness.start_conversation(customer_id) for _ in range(3)]
    escalations = [
        harness.expect_event(
            "EscalateConversation",
            {"conversation_id": c, "reason": "please call me"},
            event_type="ConversationEscalated",
        ).payload["escalation_id"]
        for c in conversations
    ]

    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        payload: dict[str, Any] = {"limit": 2}
        if cursor:
            payload["cursor"] = cursor
        page = ask.result("ListEscalatedConversations", payload)
        assert len(page["items"]) <= 2
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ours = [item for item in items if item["customer_id"] == customer_id]
    assert [item["escalation_id"] for item in ours] == escalations
    assert [item["conversation_id"] for item in ours] == conversations
    assert {item["priority"] for item in ours} == {"high"}
    assert {item["escalation_reason"] for item in ours} == {"please call me"}
    moments = [_time(item["escalated_at"]) for item in items]
    assert moments == sorted(moments)
    assert len({item["conversation_id"] for item in items}) == len(items)


@pytest.mark.parametrize(
    ("query", "payload", "reason"),
    [
        ("GetCustomer", {"customer_id": "CUST-NONE-1"}, "customer_not_found"),
        ("GetCustomer", {"email": "nobody-at-all@e2e.example"}, "customer_not_found"),
        ("ListCustomerAccounts", {"customer_id": "CUST-NONE-2"}, "customer_not_found"),
        ("ListCustomerConversations", {"customer_id": "CUST-NONE-3"}, "customer_not_found"),
        ("ListRecentTransactions", {"account_number": "00000000007"}, "account_not_found"),
        ("ListEscalatedConversations", {"cursor": "not-a-cursor"}, "invalid_cursor"),
    ],
)
def test_a_query_rejection_is_answered_on_reply_to(
    ask: Asker, query: str, payload: dict[str, Any], reason: str
) -> None:
    answer = ask(query, payload, correlation_id=f"corr-{unique_token()}")

    assert answer.type == "CommandRejected", answer
    assert answer.properties.type == "CommandRejected"
    assert answer.payload["reason"] == reason
    assert answer.payload["command_type"] == query
    assert answer.payload["command_message_id"] == answer.causation_id


@pytest.mark.slow
def test_paging_sees_every_conversation_once_while_new_ones_arrive(
    harness: Harness, ask: Asker
) -> None:
    customer_id = harness.create_customer()["customer_id"]
    originals = [new_id() for _ in range(120)]
    sent = harness.client.publish_many(
        {
            "type": "StartConversation",
            "payload": {"customer_id": customer_id, "channel": "chat", "conversation_id": c},
        }
        for c in originals
    )
    sent_ids = {s.message_id for s in sent}
    started = harness.events.wait_for(lambda m: m.causation_id in sent_ids, count=120, timeout=60)
    assert {m.type for m in started} == {"ConversationStarted"}

    seen: list[dict[str, Any]] = []
    inserted: list[str] = []
    cursor = None
    pages = 0
    while True:
        payload: dict[str, Any] = {"customer_id": customer_id, "limit": 25}
        if cursor:
            payload["cursor"] = cursor
        page = ask.result("ListCustomerConversations", payload)
        pages += 1
        assert len(page["items"]) <= 25
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 20, "paging does not end"
        for _ in range(3):  # newer conversations arrive between pages
            inserted.append(harness.start_conversation(customer_id))

    seen_ids = [item["conversation_id"] for item in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a conversation was repeated"
    assert set(originals) <= set(seen_ids), "a conversation was skipped"
    assert not set(inserted) & set(seen_ids), "rows inserted after page 1 leaked into later pages"
    assert pages == 5
    expected = harness.fetch(
        "SELECT c.conversation_id FROM conversations c JOIN customers u ON u.id = c.customer_id "
        "WHERE u.customer_id = $1 AND c.conversation_id = ANY($2::uuid[]) "
        "ORDER BY c.updated_at DESC, c.id DESC",
        customer_id,
        [uuid.UUID(c) for c in originals],
    )
    assert seen_ids == [str(r["conversation_id"]) for r in expected]
    moments = [_time(item["updated_at"]) for item in seen]
    assert moments == sorted(moments, reverse=True)
