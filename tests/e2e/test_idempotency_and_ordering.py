"""At-most-once effect per message id, dead-lettering of invalid queries, per-key ordering."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest

from contracts import event_id
from testkit.factories import new_id, unique_email, unique_token, wait_until
from testkit.harness import Harness
from testkit.messages import SentMessage

pytestmark = pytest.mark.e2e

CONVERSATIONS = 200
MESSAGES_PER_CONVERSATION = 5
ROLES = ("customer", "agent", "system")


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, str]:
    """Enough concurrency for commands of one conversation to race if ordering were broken."""
    return {"WORKER_CONCURRENCY": "16", "WORKER_PREFETCH": "64"}


def wait_handled_times(h: Harness, sent: SentMessage, times: int) -> list[dict[str, Any]]:
    """Wait until the worker has settled ``times`` deliveries of ``sent``; their log records."""
    assert h.worker is not None
    worker = h.worker
    return wait_until(
        lambda: (
            records
            if len(records := worker.find_logs("message.handled", message_id=sent.message_id))
            >= times
            else None
        ),
        message=lambda: f"{sent.message_id} not handled {times} times:\n{worker.log_tail()}",
    )


# --- idempotency ------------------------------------------------------------------------------


def test_the_same_message_delivered_three_times_takes_effect_once(harness: Harness) -> None:
    email = unique_email()
    first = harness.send("CreateCustomer", {"email": email, "full_name": "Only Once"})
    for _ in range(2):
        harness.client.publish_raw(
            harness.topology.commands_exchange,
            "CreateCustomer",
            first.body,
            first.properties,
            mandatory=True,
        )

    event = harness.outcome(first)
    records = wait_handled_times(harness, first, 3)
    harness.assert_no_more(lambda m: m.causation_id == first.message_id and m is not event)

    assert event.type == "CustomerCreated", event
    assert event.message_id == event_id(first.message_id, "CustomerCreated", 0)
    assert sorted(r["outcome"] for r in records) == ["applied", "duplicate", "duplicate"]
    assert {r["action"] for r in records} == {"ack"}
    rows = harness.fetch("SELECT customer_id FROM customers WHERE email = $1", email)
    assert [r["customer_id"] for r in rows] == [event.payload["customer_id"]]
    harness.client.wait_inputs_empty()


@pytest.mark.parametrize("outcome", ["applied", "rejected"])
def test_a_message_replayed_later_publishes_nothing_new(harness: Harness, outcome: str) -> None:
    if outcome == "applied":
        payload: dict[str, Any] = {"email": unique_email(), "full_name": "Replayed"}
        command = "CreateCustomer"
    else:
        payload = {"customer_id": f"CUST-NONE-{unique_token()}"}
        command = "DeleteCustomer"
    sent, original = harness.execute(command, payload)
    before = harness.fingerprint()
    replies = harness.client.reply_queue()

    harness.send(command, payload, message_id=sent.message_id, reply_to=replies.name)
    wait_handled_times(harness, sent, 2)

    assert harness.fingerprint() == before  # before the marker, which adds a customer
    harness.assert_no_more(lambda m: m.causation_id == sent.message_id and m is not original)
    assert replies.drain() == []  # a duplicate is acked with no new events, replies included


def test_a_query_without_reply_to_is_dead_lettered_as_invalid(harness: Harness) -> None:
    sent = harness.send("GetCustomer", {"customer_id": "CUST-000001"})

    dead = harness.client.wait_dead_letter(lambda m: m.properties.message_id == sent.message_id)
    report = harness.events.wait_for(
        lambda m: (
            m.type == "CommandDeadLettered"
            and m.payload.get("command_message_id") == sent.message_id
        )
    )[0]

    assert dead.body == sent.body  # byte for byte
    assert dead.persistent
    headers = dead.headers
    assert headers["fca-error-type"] == "invalid_message"
    assert "reply_to" in headers["fca-error-message"]
    assert int(headers["fca-attempts"]) == 1
    assert headers["fca-original-routing-key"] == "GetCustomer"
    assert headers["fca-first-failed-at"]
    assert headers["fca-last-failed-at"]
    # our headers never start with x- (the broker may add its own x-delivery-count)
    assert {k for k in headers if k.startswith("x-")} <= {"x-delivery-count"}, headers
    assert report.routing_key == "command.dead_lettered"
    assert report.causation_id == sent.message_id
    assert report.payload["command_type"] == "GetCustomer"
    assert report.payload["error_type"] == "invalid_message"
    assert report.persistent
    report.parsed()
    harness.assert_acked(sent)


# --- ordering ---------------------------------------------------------------------------------


def conversation_workload(
    customers: list[str], conversations: list[str]
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[int, str, str]]]]:
    """Per conversation: StartConversation, then AppendMessage 1..N, back to back.

    Returns the publish specs in publish order and, per conversation, the messages it must
    end up with: ``(sequence, role, content)``.
    """
    specs: list[dict[str, Any]] = []
    expected: dict[str, list[tuple[int, str, str]]] = {}
    for i, conversation_id in enumerate(conversations):
        start = {
            "customer_id": customers[i % len(customers)],
            "channel": "chat",
            "conversation_id": conversation_id,
        }
        specs.append({"type": "StartConversation", "payload": start})
        expected[conversation_id] = []
        for sequence in range(1, MESSAGES_PER_CONVERSATION + 1):
            role = ROLES[sequence % len(ROLES)]
            content = f"{conversation_id[:8]} message {sequence}"
            expected[conversation_id].append((sequence, role, content))
            append = {"conversation_id": conversation_id, "role": role, "content": content}
            specs.append({"type": "AppendMessage", "payload": append})
    return specs, expected


@pytest.mark.slow
def test_commands_on_one_conversation_apply_in_publish_order(harness: Harness) -> None:
    customers = [harness.create_customer()["customer_id"] for _ in range(4)]
    conversations = [new_id() for _ in range(CONVERSATIONS)]
    specs, expected = conversation_workload(customers, conversations)

    sent = harness.client.publish_many(specs)
    outcomes = harness.outcomes(sent, timeout=180)

    rejected = [m.payload for m in outcomes.values() if m.type == "CommandRejected"]
    assert not rejected, f"{len(rejected)} rejected, e.g. {rejected[:3]}"
    # MessageAppended.sequence per conversation, in publish order of the AppendMessages
    sequences: dict[str, list[int]] = defaultdict(list)
    for spec, command in zip(specs, sent, strict=True):
        outcome = outcomes[command.message_id]
        if spec["type"] == "StartConversation":
            assert outcome.type == "ConversationStarted", outcome
        else:
            assert outcome.type == "MessageAppended", outcome
            sequences[spec["payload"]["conversation_id"]].append(outcome.payload["sequence"])
    in_order = list(range(1, MESSAGES_PER_CONVERSATION + 1))
    assert {c: sequences[c] for c in conversations} == dict.fromkeys(conversations, in_order)

    rows = harness.fetch(
        "SELECT c.conversation_id, m.sequence, m.role, m.content "
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.conversation_id = ANY($1::uuid[]) ORDER BY c.conversation_id, m.sequence",
        [uuid.UUID(c) for c in conversations],
    )
    stored: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for r in rows:
        stored[str(r["conversation_id"])].append((r["sequence"], r["role"], r["content"]))
    assert stored == expected
