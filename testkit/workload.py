"""A workload of independent commands, and the checks that each one was applied once.

``seed(h, count) -> Seed``
    ``count`` customers, each with one account and one conversation, created through the
    worker of the :class:`testkit.harness.Harness` ``h`` (and waited for).
``build_workload(seed, total, rng=None) -> Workload``
    ``total`` commands that may run in any order and on any worker without a rejection:
    ``CreateCustomer`` (new emails), ``AppendMessage`` to the seeded conversations and
    ``RecordTransaction`` credits to the seeded accounts. ``Workload.specs`` are
    ``AmqpClient.publish_many`` specs with message ids chosen up front; ``.ids``,
    ``.expected_event``, ``.add(type, payload)``, and what applying each once must leave
    (``.emails``, ``.references``, ``.credits``, ``.appends``).
``wait_outcomes(collector, ids, timeout=120) -> {command id: [events]}``
    Waits until every command has at least one event on the collector.
``wait_quiet(collector, ids, quiet=5, timeout=120) -> set of ids``
    Waits until every command has an event or no new one came for ``quiet`` seconds.
``assert_one_event_id_each(outcomes, workload)``, ``assert_applied_once(h, workload)``
    Exactly one distinct event id of the expected type per command; the inbox and the
    domain tables show each command applied exactly once.
``EVENT_OF``
    The success event of each command type a workload contains.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from testkit.database import inbox_outcomes
from testkit.events import EventCollector
from testkit.factories import DEFAULT_TIMEOUT, new_id, unique_code, unique_email, wait_until
from testkit.harness import Harness
from testkit.messages import ReceivedMessage, SentMessage

__all__ = [
    "EVENT_OF",
    "Seed",
    "Workload",
    "assert_applied_once",
    "assert_one_event_id_each",
    "build_workload",
    "seed",
    "wait_outcomes",
]

EVENT_OF = {
    "CreateCustomer": "CustomerCreated",
    "AppendMessage": "MessageAppended",
    "RecordTransaction": "TransactionRecorded",
}
"""The success event of each command type a workload contains."""


@dataclass(frozen=True)
class Seed:
    """Customers created before a workload, each with one account and one conversation."""

    customers: tuple[str, ...]
    accounts: tuple[str, ...]
    conversations: tuple[str, ...]


def _outcomes_of(h: Harness, sent: Iterable[SentMessage], event_type: str) -> list[ReceivedMessage]:
    ids = [s.message_id for s in sent]
    found = wait_outcomes(h.events, ids, timeout=DEFAULT_TIMEOUT * 2)
    events = [found[i][0] for i in ids]
    wrong = [e for e in events if e.type != event_type]
    assert not wrong, f"seeding expected {event_type}: {wrong[:3]}"
    return events


def seed(h: Harness, count: int) -> Seed:
    """Create ``count`` customers with an account and a conversation each (all confirmed)."""
    created = h.client.publish_many(
        {"type": "CreateCustomer", "payload": {"email": unique_email(), "full_name": "Seed"}}
        for _ in range(count)
    )
    customers = [e.payload["customer_id"] for e in _outcomes_of(h, created, "CustomerCreated")]
    opened = h.client.publish_many(
        {"type": "OpenAccount", "payload": {"customer_id": c, "account_type": "current"}}
        for c in customers
    )
    conversations = [new_id() for _ in customers]
    started = h.client.publish_many(
        {
            "type": "StartConversation",
            "payload": {"customer_id": c, "channel": "chat", "conversation_id": conv},
        }
        for c, conv in zip(customers, conversations, strict=True)
    )
    accounts = [e.payload["account_number"] for e in _outcomes_of(h, opened, "AccountOpened")]
    _outcomes_of(h, started, "ConversationStarted")
    return Seed(tuple(customers), tuple(accounts), tuple(conversations))


@dataclass
class Workload:
    """Commands that never depend on one another, and what applying each once must leave."""

    seed: Seed
    specs: list[dict[str, Any]] = field(default_factory=list)
    expected_event: dict[str, str] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    credits: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    appends: Counter[str] = field(default_factory=Counter)

    @property
    def ids(self) -> list[str]:
        """The commands' message ids, in publish order."""
        return [s["message_id"] for s in self.specs]

    def add(self, type: str, payload: dict[str, Any]) -> None:
        """Append one command (its message id is chosen now)."""
        message_id = new_id()
        self.specs.append({"type": type, "payload": payload, "message_id": message_id})
        self.expected_event[message_id] = EVENT_OF[type]


def build_workload(seed: Seed, total: int, *, rng: random.Random | None = None) -> Workload:
    """``total`` commands: a quarter ``CreateCustomer``, the rest messages and credits."""
    rng = rng or random.Random(20261121)
    workload = Workload(seed)
    for index in range(total):
        kind = index % 8
        if kind < 2:
            email = unique_email()
            workload.emails.append(email)
            workload.add("CreateCustomer", {"email": email, "full_name": f"Load {index}"})
        elif kind < 5:
            conversation = rng.choice(seed.conversations)
            workload.appends[conversation] += 1
            payload = {"conversation_id": conversation, "role": "customer", "content": f"m{index}"}
            workload.add("AppendMessage", payload)
        else:
            account = rng.choice(seed.accounts)
            amount = Decimal(rng.randint(1, 9999)) / 100
            reference = unique_code("LOAD")
            workload.credits[account] += amount
            workload.references.append(reference)
            payload = {
                "account_number": account,
                "amount": f"{amount:.2f}",
                "direction": "credit",
                "description": "load test credit",
                "reference": reference,
            }
            workload.add("RecordTransaction", payload)
    return workload


def _by_cause(collector: EventCollector, wanted: set[str]) -> dict[str, list[ReceivedMessage]]:
    found: dict[str, list[ReceivedMessage]] = defaultdict(list)
    for message in collector.messages:
        if message.causation_id in wanted:
            found[message.causation_id].append(message)
    return found


def wait_outcomes(
    collector: EventCollector, ids: Iterable[str], *, timeout: float = 120
) -> dict[str, list[ReceivedMessage]]:
    """Wait until every command in ``ids`` caused at least one event; events by command id."""
    wanted = set(ids)
    state: dict[str, dict[str, list[ReceivedMessage]]] = {}

    def complete() -> bool:
        state["found"] = _by_cause(collector, wanted)
        return len(state["found"]) == len(wanted)

    wait_until(
        complete,
        timeout=timeout,
        interval=0.25,
        message=lambda: f"{len(wanted) - len(state['found'])} of {len(wanted)} without an event",
    )
    return state["found"]


def wait_quiet(
    collector: EventCollector, ids: Iterable[str], *, quiet: float = 5, timeout: float = 120
) -> set[str]:
    """Wait until every command in ``ids`` caused an event, or none did for ``quiet`` seconds;
    returns the ids that did."""
    wanted = set(ids)
    seen: dict[str, Any] = {"count": -1, "since": time.monotonic(), "found": set()}

    def settled() -> bool:
        found = set(_by_cause(collector, wanted))
        now = time.monotonic()
        if len(found) != seen["count"]:
            seen.update(count=len(found), since=now, found=found)
        return found == wanted or now - seen["since"] >= quiet

    wait_until(settled, timeout=timeout, interval=0.25, message="outcomes kept arriving")
    return set(seen["found"])


def assert_one_event_id_each(
    outcomes: Mapping[str, list[ReceivedMessage]], workload: Workload
) -> None:
    """Each command has exactly one distinct event id, of the expected success type."""
    distinct = {cause: {m.message_id for m in events} for cause, events in outcomes.items()}
    several = {cause: ids for cause, ids in distinct.items() if len(ids) != 1}
    assert not several, f"commands with several event ids: {list(several.items())[:5]}"
    all_ids = set().union(*distinct.values())
    assert len(all_ids) == len(workload.specs), (len(all_ids), len(workload.specs))
    wrong = [
        events[0]
        for cause, events in outcomes.items()
        if events[0].type != workload.expected_event[cause]
    ]
    assert not wrong, f"{len(wrong)} unexpected outcomes, e.g. {wrong[:3]}"


def assert_applied_once(h: Harness, workload: Workload) -> None:
    """The inbox and the domain tables show each command applied exactly once."""
    outcomes = inbox_outcomes(h.database_url, workload.ids)
    assert len(outcomes) == len(workload.specs), (len(outcomes), len(workload.specs))
    assert Counter(outcomes.values()) == {"applied": len(workload.specs)}
    customers = h.fetchval(
        "SELECT count(*) FROM customers WHERE email = ANY($1::text[])", workload.emails
    )
    assert customers == len(workload.emails)
    transactions = h.fetch(
        "SELECT a.account_number, count(*) AS n, sum(t.amount)::text AS total, a.balance::text"
        " AS balance FROM transactions t JOIN accounts a ON a.id = t.account_id"
        " WHERE t.reference = ANY($1::text[]) GROUP BY a.account_number, a.balance",
        workload.references,
    )
    assert sum(r["n"] for r in transactions) == len(workload.references)
    balances = {r["account_number"]: Decimal(r["balance"]) for r in transactions}
    totals = {r["account_number"]: Decimal(r["total"]) for r in transactions}
    assert totals == dict(workload.credits)
    assert balances == dict(workload.credits)
    sequences = h.fetch(
        "SELECT c.conversation_id::text AS conversation_id, array_agg(m.sequence ORDER BY"
        " m.sequence) AS seqs FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.conversation_id::text = ANY($1::text[]) GROUP BY c.conversation_id",
        list(workload.seed.conversations),
    )
    got = {r["conversation_id"]: list(r["seqs"]) for r in sequences}
    expected = {c: list(range(1, n + 1)) for c, n in workload.appends.items()}
    assert got == expected, "message sequences are not 1..n per conversation"
