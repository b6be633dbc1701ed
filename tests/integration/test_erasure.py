"""``EraseCustomer``: the customer's personal data leaves every table; the money stays.

A customer goes through the real bus and services (SQLite, then PostgreSQL): registered,
changed, given accounts, transactions, conversations, messages, an escalation, a resolution
and a freeze, with events in the outbox (some published, some not). After the erasure a dump
of every table in the database, every column as text, holds none of the erased values, while
a second customer's values are all still there (so the dump does see them).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError

from contracts import MESSAGE_CLASSES, CommandEnvelope, example_message, parse_event
from tests.factories import customer_data, new_event, random_email
from tests.fakes import FakePublisher
from worker.bus import CommandBus, Origin
from worker.db.models import Account, Customer, Transaction
from worker.db.session import SessionFactory
from worker.handlers import HANDLERS
from worker.repositories import (
    CustomerRepository,
    OutboxRepository,
    PendingEvent,
    StoredEventRepository,
)

pytestmark = pytest.mark.integration


@dataclass
class RecordingRelay:
    """Stands in for the outbox relay: remembers what it was asked to publish."""

    published: list[PendingEvent] = field(default_factory=list)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        self.published.extend(events)
        return True


class World:
    """The real bus over the test database; ``send`` returns the outcome and the events."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.relay = RecordingRelay()
        self.bus = CommandBus(HANDLERS, lambda kind: kind(factory), self.relay, FakePublisher())

    async def send(self, message_type: str, **payload: Any) -> tuple[str, list[Any]]:
        body = example_message(message_type, payload)
        body["message_id"] = str(uuid.uuid4())
        body["actor"] = "agent:dpo"
        command = MESSAGE_CLASSES[message_type].model_validate_json(json.dumps(body))
        assert isinstance(command, CommandEnvelope)
        seen = len(self.relay.published)
        outcome = await self.bus.handle(command, Origin())
        events = [parse_event(e.body.encode()) for e in self.relay.published[seen:]]
        return outcome, events

    async def applied(self, message_type: str, **payload: Any) -> Any:
        outcome, events = await self.send(message_type, **payload)
        assert outcome == "applied", events
        return events[0].payload


@dataclass
class Person:
    """A customer's life in the system, and every personal value it left behind."""

    customer_id: str
    accounts: list[str]
    conversations: list[str]
    personal: list[str]


async def live_a_life(world: World) -> Person:
    """Register, change, bank, talk, escalate, resolve and freeze; return what was stored."""
    tag = secrets.token_hex(4)
    first_email, second_email = random_email(), random_email()
    names = [f"Erin Zephyrine {tag}", f"Erin Quillfeather {tag}"]
    phones = [f"+44 20 7{secrets.randbelow(10**6):06d}", f"07{secrets.randbelow(10**9):09d}"]
    texts = [f"my card {tag} was stolen", f"I live at 12 {tag} Lane", f"sort code {tag}"]
    created = await world.applied(
        "CreateCustomer", email=first_email, full_name=names[0], phone=phones[0]
    )
    customer_id = created.customer_id
    await world.applied(
        "UpdateCustomer",
        customer_id=customer_id,
        email=second_email,
        full_name=names[1],
        phone=phones[1],
    )
    accounts = []
    for kind in ("current", "savings"):
        opened = await world.applied("OpenAccount", customer_id=customer_id, account_type=kind)
        accounts.append(opened.account_number)
        for i, (direction, amount) in enumerate([("credit", "100.00"), ("debit", "12.50")]):
            await world.applied(
                "RecordTransaction",
                account_number=opened.account_number,
                amount=amount,
                direction=direction,
                description="card payment",
                reference=f"REF-{tag}-{i}",
            )
    conversations = []
    for subject in (f"Lost card {tag}", None):
        fields = {"subject": subject} if subject else {}
        started = await world.applied(
            "StartConversation", customer_id=customer_id, channel="chat", **fields
        )
        conversations.append(str(started.conversation_id))
        for content in texts:
            await world.applied(
                "AppendMessage",
                conversation_id=str(started.conversation_id),
                role="customer",
                content=content,
            )
    reason, resolution = f"customer {tag} distressed", f"refunded {tag} to the customer"
    await world.applied("EscalateConversation", conversation_id=conversations[0], reason=reason)
    await world.applied(
        "ResolveConversation", conversation_id=conversations[0], resolution=resolution
    )
    await world.applied("FreezeAccounts", account_numbers=accounts[:1], reason="Suspected fraud")
    # The first phone is stored nowhere (CustomerCreated carries no phone); the rest is.
    personal = [first_email, second_email, *names, phones[1], *texts, f"Lost card {tag}"]
    return Person(customer_id, accounts, conversations, [*personal, reason, resolution])


def dump_every_table(connection: Connection) -> str:
    """Every row of every table in the database (the migrations' own too), as text."""
    lines = []
    for table in sorted(inspect(connection).get_table_names()):
        for row in connection.execute(text(f'SELECT * FROM "{table}"')):
            lines.append(f"{table}: " + " | ".join(str(value) for value in row))
    return "\n".join(lines)


async def database_dump(factory: SessionFactory) -> str:
    async with factory() as session:
        connection = await session.connection()
        return await connection.run_sync(dump_every_table)


async def publish_half_of_the_outbox(factory: SessionFactory, relay: RecordingRelay) -> None:
    ids = [e.id for e in relay.published]
    async with factory() as session, session.begin():
        await OutboxRepository(session).mark_published(ids[: len(ids) // 2])


async def money_of(factory: SessionFactory, numbers: list[str]) -> list[tuple[Any, ...]]:
    stmt = (
        select(Account.account_number, Account.balance, Transaction.reference, Transaction.amount)
        .join(Transaction, Transaction.account_id == Account.id)
        .where(Account.account_number.in_(numbers))
        .order_by(Transaction.reference)
    )
    async with factory() as session:
        return [tuple(row) for row in (await session.execute(stmt)).all()]


@pytest.fixture
def world(session_factory: SessionFactory) -> World:
    return World(session_factory)


async def test_erasure_leaves_no_personal_value_in_any_table_and_keeps_the_money(
    world: World, session_factory: SessionFactory
) -> None:
    erased, kept = await live_a_life(world), await live_a_life(world)
    await publish_half_of_the_outbox(session_factory, world.relay)
    money_before = await money_of(session_factory, erased.accounts)
    before = await database_dump(session_factory)
    assert [value for value in erased.personal + kept.personal if value not in before] == []

    outcome, events = await world.send(
        "EraseCustomer", customer_id=erased.customer_id, legal_basis="gdpr_art17"
    )

    assert outcome == "applied"
    assert [(e.type, e.payload.customer_id, e.actor) for e in events] == [
        ("CustomerErased", erased.customer_id, "agent:dpo")
    ]
    after = (await database_dump(session_factory)).lower()
    assert [value for value in erased.personal if value.lower() in after] == []
    assert [value for value in kept.personal if value.lower() not in after] == []
    assert erased.customer_id.lower() in after  # the pseudonymous id stays
    assert await money_of(session_factory, erased.accounts) == money_before
    assert len(money_before) == 4


async def test_stored_events_stay_valid_against_the_contract_after_scrubbing(
    world: World, session_factory: SessionFactory
) -> None:
    person = await live_a_life(world)

    await world.applied("EraseCustomer", customer_id=person.customer_id, legal_basis="gdpr_art17")

    async with session_factory() as session:
        pending = await OutboxRepository(session).claim_unsent(limit=1000)
    bodies = [parse_event(e.body.encode()) for e in pending]
    created = next(b for b in bodies if b.type == "CustomerCreated")
    assert (created.payload.email, created.payload.full_name) == (
        "erased@erased.invalid",
        "[erased]",
    )
    resolved = next(b for b in bodies if b.type == "ConversationResolved")
    assert resolved.payload.resolution == "[erased]"


async def test_the_erased_email_is_free_for_a_new_customer(
    world: World, session_factory: SessionFactory
) -> None:
    person = await live_a_life(world)
    await world.applied("EraseCustomer", customer_id=person.customer_id, legal_basis="gdpr_art17")

    for email in person.personal[:2]:  # the first and the changed email
        created = await world.applied("CreateCustomer", email=email, full_name="Someone New")
        assert created.customer_id != person.customer_id

    async with session_factory() as session:
        row = await session.scalar(
            select(Customer).where(Customer.customer_id == person.customer_id)
        )
    assert row is not None
    assert (row.email, row.phone, row.full_name, row.is_deleted) == (None, None, "[erased]", True)
    assert (row.erasure_basis, row.erased_at is not None) == ("gdpr_art17", True)


async def test_an_erased_customer_is_gone_for_every_later_command(world: World) -> None:
    person = await live_a_life(world)
    await world.applied(
        "EraseCustomer", customer_id=person.customer_id, legal_basis="retention_expired"
    )

    later = [
        ("UpdateCustomer", {"customer_id": person.customer_id, "full_name": "Back"}),
        ("OpenAccount", {"customer_id": person.customer_id, "account_type": "current"}),
        ("StartConversation", {"customer_id": person.customer_id, "channel": "chat"}),
        (
            "AppendMessage",
            {"conversation_id": person.conversations[1], "role": "customer", "content": "hi"},
        ),
    ]
    reasons = []
    for message_type, payload in later:
        outcome, [event] = await world.send(message_type, **payload)
        reasons.append((outcome, event.payload.reason))

    assert reasons == [
        ("rejected", "customer_not_found"),
        ("rejected", "customer_not_found"),
        ("rejected", "customer_not_found"),
        ("rejected", "conversation_closed"),
    ]


async def test_erasing_again_succeeds_and_an_unknown_customer_is_not_found(world: World) -> None:
    person = await live_a_life(world)
    await world.applied("DeleteCustomer", customer_id=person.customer_id)  # deleted first

    first = await world.send(
        "EraseCustomer", customer_id=person.customer_id, legal_basis="gdpr_art17"
    )
    again = await world.send(
        "EraseCustomer", customer_id=person.customer_id, legal_basis="gdpr_art17"
    )
    unknown = await world.send("EraseCustomer", customer_id="CUST-999999", legal_basis="gdpr_art17")

    assert [(o, [e.type for e in es]) for o, es in (first, again)] == [
        ("applied", ["CustomerErased"]),
        ("applied", ["CustomerErased"]),
    ]
    assert unknown[0] == "rejected"
    assert unknown[1][0].payload.reason == "customer_not_found"


async def test_scrubbing_matches_the_exact_customer_id_not_a_longer_one(
    session_factory: SessionFactory,
) -> None:
    def created(customer_id: str) -> str:
        payload = {"customer_id": customer_id, "email": "x@example.test", "full_name": "X Y"}
        return json.dumps({"type": "CustomerCreated", "payload": payload})

    async with session_factory() as session, session.begin():
        outbox = OutboxRepository(session)
        await outbox.add_many(
            [new_event(body=created("CUST-1")), new_event(body=created("CUST-10"))]
        )
        assert await StoredEventRepository(session).scrub_customer("CUST-1") == 1
        pending = await outbox.claim_unsent()

    names = [json.loads(e.body)["payload"]["full_name"] for e in pending]
    assert names == ["[erased]", "X Y"]


async def test_balances_do_not_depend_on_the_erased_data(
    world: World, session_factory: SessionFactory
) -> None:
    person = await live_a_life(world)
    await world.applied("EraseCustomer", customer_id=person.customer_id, legal_basis="gdpr_art17")

    moved = await world.applied(
        "RecordTransaction",
        account_number=person.accounts[1],
        amount="1.00",
        direction="credit",
        description="interest",
        reference="INT-1",
    )

    assert moved.balance_after == Decimal("88.50")


async def test_only_an_erased_customer_may_lack_an_email(session_factory: SessionFactory) -> None:
    async with session_factory() as session, session.begin():
        customer = await CustomerRepository(session).create(**customer_data())

    async with session_factory() as session, session.begin():
        with pytest.raises(IntegrityError):
            await CustomerRepository(session).update(customer.id, email=None)
