"""The command mix: wire-ready bodies for CreateCustomer, OpenAccount, RecordTransaction,
StartConversation and AppendMessage that all succeed.

Commands that refer to something (a customer, an account, a conversation) only refer to
entities made in the warm-up, through the system under test itself: first customers, then
one account and one conversation per customer (their ids read back from the events). The
measured mix then never waits on an earlier command of the same run and is never rejected:
transactions are credits, references and emails are unique, conversations stay open.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from contracts import ordering_key, parse_message

MIX: dict[str, int] = {
    "CreateCustomer": 10,
    "OpenAccount": 10,
    "RecordTransaction": 30,
    "StartConversation": 10,
    "AppendMessage": 40,
}
"""Relative weights of the measured mix (a support platform: mostly chat and payments)."""

_TEXTS = (
    "Hi, my card was declined at the supermarket this morning.",
    "Could you tell me when my salary payment will show up?",
    "Thanks, that worked. Is there anything else I need to do?",
    "I'd like to raise my overdraft limit, what are the options?",
    "Sorry for the wait - I can see the payment, it is pending.",
)


@dataclass(frozen=True, slots=True)
class Command:
    """One command as published: its id, its type (the routing key), its JSON body and its
    ordering key (the ``fca-ordering-key`` header, which picks its partition)."""

    message_id: str
    type: str
    body: bytes
    key: str


def entity_count(n: int) -> int:
    """How many customers (and accounts, conversations) the warm-up makes for ``n`` commands."""
    return max(10, min(500, n // 40))


@dataclass
class Workload:
    """Builds commands; ``customers``/``accounts``/``conversations`` fill up in the warm-up."""

    seed: int = 42
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    customers: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._seq = 0

    def _command(self, type_: str, payload: dict[str, object]) -> Command:
        message_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        doc = {"message_id": message_id, "type": type_, "payload": payload}
        body = json.dumps(doc, separators=(",", ":")).encode()
        # the header a v2 publisher sets (parsed here, when the command is built)
        return Command(message_id, type_, body, ordering_key(parse_message(body)))

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def create_customer(self) -> Command:
        """A new customer with a unique email."""
        i = self._next()
        return self._command(
            "CreateCustomer",
            {
                "email": f"bench-{self.tag}-{i}@example.com",
                "full_name": f"Bench Customer {i}",
                "phone": f"+44 20 7946 {i % 10000:04d}",
                "is_vip": i % 10 == 0,
            },
        )

    def open_account(self, customer_id: str | None = None) -> Command:
        """An account for a warm-up customer."""
        return self._command(
            "OpenAccount",
            {
                "customer_id": customer_id or self._rng.choice(self.customers),
                "account_type": self._rng.choice(("current", "savings", "credit_card")),
                "currency": "GBP",
            },
        )

    def record_transaction(self, account_number: str | None = None) -> Command:
        """A credit (never rejected for funds) with a unique reference."""
        return self._command(
            "RecordTransaction",
            {
                "account_number": account_number or self._rng.choice(self.accounts),
                "amount": f"{self._rng.randint(1, 50_000) / 100:.2f}",
                "direction": "credit",
                "description": "Bench deposit",
                "reference": f"BENCH-{self.tag}-{self._next()}",
            },
        )

    def start_conversation(
        self, customer_id: str | None = None, conversation_id: str | None = None
    ) -> Command:
        """A conversation with a caller-chosen UUID."""
        return self._command(
            "StartConversation",
            {
                "customer_id": customer_id or self._rng.choice(self.customers),
                "channel": self._rng.choice(("chat", "email", "phone")),
                "conversation_id": conversation_id or str(uuid.uuid4()),
                "subject": "Bench conversation",
            },
        )

    def append_message(self, conversation_id: str | None = None) -> Command:
        """A chat message in a warm-up conversation."""
        return self._command(
            "AppendMessage",
            {
                "conversation_id": conversation_id or self._rng.choice(self.conversations),
                "role": self._rng.choice(("customer", "agent")),
                "content": self._rng.choice(_TEXTS),
            },
        )

    # the warm-up, in three waves (each waits for the previous one's events)

    def warmup_customers(self, count: int) -> list[Command]:
        """Wave 1: the customers everything else refers to."""
        return [self.create_customer() for _ in range(count)]

    def warmup_dependents(self) -> list[Command]:
        """Wave 2: one account and one conversation per customer (the ids we choose kept)."""
        commands = []
        for customer_id in self.customers:
            conversation_id = str(uuid.uuid4())
            self.conversations.append(conversation_id)
            commands.append(self.open_account(customer_id))
            commands.append(self.start_conversation(customer_id, conversation_id))
        return commands

    def warmup_activity(self) -> list[Command]:
        """Wave 3: one transaction and one message per account and conversation."""
        return [self.record_transaction(a) for a in self.accounts] + [
            self.append_message(c) for c in self.conversations
        ]

    def mixed(self, n: int) -> Iterator[Command]:
        """``n`` commands drawn from :data:`MIX` (after the warm-up)."""
        if not (self.customers and self.accounts and self.conversations):
            raise RuntimeError("the warm-up has not made customers, accounts and conversations")
        makers = {
            "CreateCustomer": self.create_customer,
            "OpenAccount": self.open_account,
            "RecordTransaction": self.record_transaction,
            "StartConversation": self.start_conversation,
            "AppendMessage": self.append_message,
        }
        types, weights = list(MIX), list(MIX.values())
        for type_ in self._rng.choices(types, weights, k=n):
            yield makers[type_]()
