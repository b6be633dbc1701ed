"""What the scale, crash, bad-input and observability e2e tests need beyond ``e2e.py``.

Like ``e2e.py`` this never imports the worker: it drives it over RabbitMQ and HTTP and reads
its database.

Isolation
    ``isolated_env(base, **overrides)`` (context manager): a :class:`WorkerEnv` with a fresh
    database and fresh topology names, both removed on exit, for module-scoped worlds (the
    ``isolated_worker_env`` fixture is per test). Stop the workers using it before it exits.

A workload of independent commands
    ``seed(h, count) -> Seed``: ``count`` customers, each with one account and one conversation,
    created through the worker (and waited for). ``build_workload(seed, total) -> Workload``:
    ``total`` commands that may run in any order and on any worker without a rejection:
    ``CreateCustomer`` (new emails), ``AppendMessage`` to the seeded conversations and
    ``RecordTransaction`` credits to the seeded accounts. ``Workload.specs`` are
    ``AmqpClient.publish_many`` specs with message ids chosen up front.
    ``wait_outcomes(collector, ids, timeout) -> {command id: [events]}`` waits until every
    command has at least one event. ``assert_one_event_id_each(outcomes, workload)`` and
    ``assert_applied_once(h, workload)`` check the results (events and rows).

Bookkeeping tables
    ``inbox_outcomes(url, ids) -> {id: outcome}``, ``unsent_outbox(url) -> int``,
    ``wait_outbox_flushed(url, timeout)``.

HTTP and metrics
    ``http_get(url, timeout) -> (status, body)``, ``http_json(url) -> (status, dict)``,
    ``Scrape(text)`` with ``.value(name, **labels)`` (one sample, 0.0 when absent) and
    ``.total(name, **labels)`` (sum of the samples whose labels include ``labels``);
    ``scrape(port)``.

Messages
    ``take_dead_letter(client, body, timeout)``: wait for the dead letter whose body is exactly
    ``body``; ``BROKER_HEADER_PREFIX`` names the headers the broker adds on its own;
    ``pii_token()`` a unique marker to embed in personal data and search for afterwards.
"""

from __future__ import annotations

import contextlib
import json
import random
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.e2e import (
    DEFAULT_TIMEOUT,
    AmqpClient,
    EventCollector,
    Harness,
    ReceivedMessage,
    SentMessage,
    Topology,
    WorkerEnv,
    db_fetch,
    db_fetchval,
    new_id,
    unique_code,
    unique_email,
    unique_token,
    wait_until,
)
from tests.support.services import create_database, drop_database

__all__ = [
    "BROKER_HEADER_PREFIX",
    "EVENT_OF",
    "Scrape",
    "Seed",
    "Workload",
    "assert_applied_once",
    "assert_one_event_id_each",
    "build_workload",
    "http_get",
    "http_json",
    "inbox_outcomes",
    "isolated_env",
    "pii_token",
    "scrape",
    "seed",
    "take_dead_letter",
    "unsent_outbox",
    "wait_outbox_flushed",
    "wait_outcomes",
]

BROKER_HEADER_PREFIX = "x-"
"""Headers the broker sets itself (e.g. a quorum queue's ``x-delivery-count``)."""

EVENT_OF = {
    "CreateCustomer": "CustomerCreated",
    "AppendMessage": "MessageAppended",
    "RecordTransaction": "TransactionRecorded",
}
"""The success event of each command type a workload contains."""


# --- isolation --------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_env(base: WorkerEnv, **overrides: str | int | float) -> Iterator[WorkerEnv]:
    """A worker environment with its own database and topology, removed on exit."""
    database_url = create_database(base.database_url, prefix="worker_e2e_")
    env = WorkerEnv(
        amqp_url=base.amqp_url, database_url=database_url, topology=Topology.unique()
    ).with_overrides(**overrides)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception), AmqpClient(base.amqp_url) as client:
            client.delete_topology(env.topology, env.retry_delays)
        drop_database(database_url)


# --- a workload of independent commands -------------------------------------------------------


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


# --- bookkeeping tables -----------------------------------------------------------------------


def inbox_outcomes(database_url: str, ids: Iterable[str]) -> dict[str, str]:
    """The inbox rows of these message ids: ``{message id: outcome}``."""
    rows = db_fetch(
        database_url,
        "SELECT message_id, outcome FROM inbox_messages WHERE message_id = ANY($1::text[])",
        list(ids),
    )
    return {r["message_id"]: r["outcome"] for r in rows}


def unsent_outbox(database_url: str) -> int:
    """How many outbox rows were never marked published."""
    return int(
        db_fetchval(database_url, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
    )


def wait_outbox_flushed(database_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until every outbox row is marked published."""
    wait_until(
        lambda: unsent_outbox(database_url) == 0,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"{unsent_outbox(database_url)} outbox rows still unsent",
    )


# --- HTTP and metrics -------------------------------------------------------------------------


def http_get(url: str, *, timeout: float = 5) -> tuple[int, bytes]:
    """GET ``url``; its status and body (error statuses are returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def http_json(url: str, *, timeout: float = 5) -> tuple[int, Any]:
    """GET ``url`` and parse the body as JSON (``None`` if it is not JSON)."""
    status, body = http_get(url, timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


class Scrape:
    """One Prometheus text exposition, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def _matching(self, name: str, labels: Mapping[str, str]) -> list[float]:
        return [
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(self._matching(name, labels))

    def value(self, name: str, **labels: str) -> float:
        """The one sample called ``name`` with these labels (0.0 if there is none)."""
        found = self._matching(name, labels)
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else 0.0

    def names(self) -> set[str]:
        """Every sample name present."""
        return {name for name, _, _ in self.samples}


def scrape(port: int) -> Scrape:
    """Fetch and parse ``/metrics`` of a worker on ``127.0.0.1:port``."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, (status, body[:200])
    return Scrape(body.decode())


# --- messages ---------------------------------------------------------------------------------


def take_dead_letter(
    client: AmqpClient, body: bytes, *, timeout: float = DEFAULT_TIMEOUT
) -> ReceivedMessage:
    """Wait for the dead letter whose body is exactly ``body`` and remove it from the DLQ."""
    return client.wait_dead_letter(lambda m: m.body == body, timeout=timeout)


def pii_token() -> str:
    """A marker to embed in personal data, easy to search for in logs and headers."""
    return f"pii{unique_token(6)}"
