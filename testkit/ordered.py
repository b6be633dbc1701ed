"""A workload whose commands only succeed in publish order, and the checks of that order.

``build_ordered(h, conversations, accounts, unkeyed) -> Ordered``
    Creates the customers and accounts it needs through the worker (and waits), then
    builds, without sending, ``conversations`` times (StartConversation + ``APPENDS``
    AppendMessage) and ``accounts`` times (a credit of 100.00, then ``DEBITS`` debits of 30.00),
    interleaved round by round (every key's commands in order, the keys mixed), plus
    ``unkeyed`` UpsertFaq commands published *without* the ``fca-ordering-key`` header.
    Out of order, an append meets no conversation and a debit an empty account: both are
    rejections, so "no rejection" proves the order. ``Ordered.specs`` are
    ``AmqpClient.publish_many`` specs, ``.ids`` every command id.
``assert_in_order(h, ordered, outcomes)``
    No command was rejected; each conversation holds its messages in publish order; each
    account's transactions and balances follow publish order; each command took effect once;
    and every key's events reached subscribers in commit order (first copies; a re-published
    duplicate may follow, but never overtake).
``partition_owners(database_url) -> {owner: count}``, ``wait_balanced(url, replicas, total)``
    Who owns how many partitions; waiting until ``replicas`` owners hold ``total`` partitions
    within one of each other.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from testkit.database import db_fetch, inbox_outcomes
from testkit.factories import new_id, unique_email, unique_token, wait_until
from testkit.harness import Harness
from testkit.messages import ReceivedMessage

__all__ = ["Ordered", "assert_in_order", "build_ordered", "partition_owners", "wait_balanced"]

APPENDS = 5
DEBITS = 3
CUSTOMERS = 10


@dataclass
class Ordered:
    """The commands of an ordered workload and what applying them in order must leave."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[str, list[str]] = field(default_factory=dict)
    """Conversation id → the contents of its messages, in publish order."""
    accounts: dict[str, list[str]] = field(default_factory=dict)
    """Account number → the references of its transactions, in publish order."""
    keys: dict[str, str] = field(default_factory=dict)
    """Command id → the key whose order it belongs to (conversation id or account number)."""

    @property
    def ids(self) -> list[str]:
        """Every command id."""
        return [spec["message_id"] for spec in self.specs]

    def add(self, key: str | None, type_: str, payload: dict[str, Any], **kw: Any) -> None:
        message_id = new_id()
        self.specs.append({"type": type_, "payload": payload, "message_id": message_id, **kw})
        if key is not None:
            self.keys[message_id] = key


def build_ordered(h: Harness, *, conversations: int, accounts: int, unkeyed: int) -> Ordered:
    """Create the customers and accounts, then build (not send) the interleaved commands."""
    customers = [h.create_customer()["customer_id"] for _ in range(CUSTOMERS)]
    numbers = [h.open_account(customers[i % CUSTOMERS]) for i in range(accounts)]
    ordered = Ordered()
    conv_ids = [str(uuid.uuid4()) for _ in range(conversations)]
    tag = unique_token()
    for step in range(APPENDS + 1):
        for i, conv in enumerate(conv_ids):
            if step == 0:
                payload = {"customer_id": customers[i % CUSTOMERS], "channel": "chat"}
                ordered.add(conv, "StartConversation", {**payload, "conversation_id": conv})
                ordered.conversations[conv] = []
                continue
            content = f"{tag} {i} #{step}"
            ordered.conversations[conv].append(content)
            payload = {"conversation_id": conv, "role": "customer", "content": content}
            ordered.add(conv, "AppendMessage", payload)
        if step <= DEBITS:
            for number in numbers:
                reference = f"{tag}-{number}-{step}"
                ordered.accounts.setdefault(number, []).append(reference)
                ordered.add(number, "RecordTransaction", _money(number, step, reference))
        for _ in range(unkeyed // (APPENDS + 1)):
            faq = {
                "question": f"Q {unique_email()}?",
                "answer": "A.",
                "keywords": [],
                "category": "x",
            }
            ordered.add(None, "UpsertFaq", faq, keyed=False)
    return ordered


def _money(number: str, step: int, reference: str) -> dict[str, Any]:
    direction, amount = ("credit", "100.00") if step == 0 else ("debit", "30.00")
    return {
        "account_number": number,
        "amount": amount,
        "direction": direction,
        "description": "ordered",
        "reference": reference,
    }


def assert_in_order(
    h: Harness, ordered: Ordered, outcomes: dict[str, list[ReceivedMessage]]
) -> None:
    """Every check of the module docstring."""
    rejected = [m for found in outcomes.values() for m in found if m.type == "CommandRejected"]
    assert not rejected, [m.payload for m in rejected[:5]]
    for conv, contents in ordered.conversations.items():
        rows = h.fetch(
            "SELECT m.sequence, m.content FROM messages m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE c.conversation_id = $1 ORDER BY m.sequence",
            uuid.UUID(conv),
        )
        assert [r["content"] for r in rows] == contents, conv
    for number, references in ordered.accounts.items():
        rows = h.fetch(
            "SELECT t.reference, t.balance_after FROM transactions t JOIN accounts a"
            " ON a.id = t.account_id WHERE a.account_number = $1 ORDER BY t.id",
            number,
        )
        assert [r["reference"] for r in rows] == references, number
        expected = [Decimal(100) - 30 * i for i in range(len(references))]
        assert [r["balance_after"] for r in rows] == expected, number
    applied = inbox_outcomes(h.database_url, ordered.ids)
    assert Counter(applied.values()) == {"applied": len(ordered.ids)}
    for command_id, found in outcomes.items():
        assert len({m.message_id for m in found}) == 1, f"{command_id}: two different events"
    _assert_events_in_order(ordered, h.events.messages)


def _assert_events_in_order(ordered: Ordered, arrived: list[ReceivedMessage]) -> None:
    """Per key, the first copy of each event arrived in publish (= commit) order."""
    position = {spec["message_id"]: i for i, spec in enumerate(ordered.specs)}
    arrivals: dict[str, list[int]] = defaultdict(list)
    first_seen: set[str] = set()
    for message in arrived:  # the collector keeps arrival order
        command_id = message.causation_id
        key = ordered.keys.get(command_id or "")
        if key is not None and command_id not in first_seen:
            first_seen.add(command_id)
            arrivals[key].append(position[command_id])
    for key, published in arrivals.items():
        assert published == sorted(published), f"{key}: events out of commit order"


def partition_owners(database_url: str) -> dict[str, int]:
    """How many partitions each live owner holds."""
    rows = db_fetch(database_url, "SELECT owner FROM partition_owners WHERE owner IS NOT NULL")
    return dict(Counter(r["owner"] for r in rows))


def wait_balanced(
    database_url: str, replicas: int, total: int, timeout: float = 30
) -> dict[str, int]:
    """Wait until ``replicas`` owners hold all ``total`` partitions, within one of each other."""

    def balanced() -> dict[str, int] | None:
        owners = partition_owners(database_url)
        counts = list(owners.values())
        ok = len(owners) == replicas and sum(counts) == total and max(counts) - min(counts) <= 1
        return owners if ok else None

    return wait_until(
        balanced, timeout=timeout, message=lambda: str(partition_owners(database_url))
    )
