"""The command audit: who asked for each command and what came of it, kept in the same
transaction as the outcome, read back through ``AuditRepository`` (retention never prunes it:
see ``test_retention.py``).

Commands run through the real bus and services (SQLite, then PostgreSQL); the relay and the
publisher only record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts import MESSAGE_CLASSES, CommandEnvelope, example_message, parse_event
from contracts.fields import ErrorType
from tests.factories import random_email
from tests.fakes import FakePublisher
from worker.bus import CommandBus, Origin, dead_lettered
from worker.db.models import CommandAudit
from worker.db.session import SessionFactory
from worker.handlers import HANDLERS
from worker.messaging.fate import Failure
from worker.repositories import AuditRepository, InboxRepository, PendingEvent

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


@dataclass
class RecordingRelay:
    """Stands in for the outbox relay: remembers what it was asked to publish."""

    published: list[PendingEvent] = field(default_factory=list)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        self.published.extend(events)
        return True


def command(message_type: str, *, actor: str | None = None, **payload: Any) -> CommandEnvelope:
    body = example_message(message_type, payload)
    body["message_id"] = str(uuid.uuid4())
    if actor is not None:
        body["actor"] = actor
    parsed = MESSAGE_CLASSES[message_type].model_validate_json(json.dumps(body))
    assert isinstance(parsed, CommandEnvelope)
    return parsed


@pytest.fixture
def relay() -> RecordingRelay:
    return RecordingRelay()


@pytest.fixture
def bus(session_factory: SessionFactory, relay: RecordingRelay) -> CommandBus:
    return CommandBus(HANDLERS, lambda kind: kind(session_factory), relay, FakePublisher())


async def audit_of(factory: SessionFactory, message_id: str) -> list[CommandAudit]:
    async with factory() as session:
        return await AuditRepository(session).for_message(message_id)


async def test_applied_and_rejected_commands_are_audited_with_their_actor(
    bus: CommandBus, session_factory: SessionFactory, relay: RecordingRelay
) -> None:
    email = random_email()
    created = command("CreateCustomer", actor="agent:4711", email=email, full_name="Ada")
    refused = command("CreateCustomer", actor="chat-agent", email=email, full_name="Ada")
    anonymous = command("DeleteCustomer", customer_id="CUST-999999")
    started = datetime.now(UTC) - timedelta(seconds=2)

    outcomes = [await bus.handle(c, Origin()) for c in (created, refused, anonymous)]

    assert outcomes == ["applied", "rejected", "rejected"]
    records = [await audit_of(session_factory, c.message_id) for c in (created, refused, anonymous)]
    assert [[(r.message_type, r.actor, r.outcome) for r in rs] for rs in records] == [
        [("CreateCustomer", "agent:4711", "applied")],
        [("CreateCustomer", "chat-agent", "rejected")],
        [("DeleteCustomer", None, "rejected")],
    ]
    assert all(started <= rs[0].recorded_at <= datetime.now(UTC) for rs in records)
    events = [parse_event(e.body.encode()) for e in relay.published]
    assert [(e.type, e.actor) for e in events] == [
        ("CustomerCreated", "agent:4711"),
        ("CommandRejected", "chat-agent"),
        ("CommandRejected", None),
    ]


async def test_a_duplicate_is_not_audited_again(
    bus: CommandBus, session_factory: SessionFactory
) -> None:
    created = command("CreateCustomer", actor="agent:1", email=random_email(), full_name="Ada")

    assert await bus.handle(created, Origin()) == "applied"
    assert await bus.handle(created, Origin()) == "duplicate"

    assert len(await audit_of(session_factory, created.message_id)) == 1


async def test_the_audit_record_rolls_back_with_its_claim(session_factory: SessionFactory) -> None:
    async with session_factory() as session:
        await session.begin()
        assert await InboxRepository(session).claim("m-1", "OpenAccount", "applied", actor="a")
        await session.rollback()

    assert await audit_of(session_factory, "m-1") == []


async def test_postgresql_claims_and_audits_in_one_statement(
    backend: Backend, session_factory: SessionFactory
) -> None:
    statements = backend.capture()
    async with session_factory() as session, session.begin():
        assert await InboxRepository(session).claim("m-2", "OpenAccount", "applied", actor="a")
        assert not await InboxRepository(session).claim("m-2", "OpenAccount", "applied")

    per_claim = 1 if backend.name == "postgresql" else 2  # SQLite: no data-modifying CTE
    assert len(statements) == per_claim + 1  # a duplicate costs one statement either way
    assert [r.actor for r in await audit_of(session_factory, "m-2")] == ["a"]


async def test_recent_lists_newest_first_by_actor_and_pages(
    session_factory: SessionFactory,
) -> None:
    async with session_factory() as session, session.begin():
        inbox = InboxRepository(session)
        for i in range(5):
            await inbox.claim(f"m-{i}", "OpenAccount", "applied", actor=f"agent:{i % 2}")

    async with session_factory() as session:
        audit = AuditRepository(session)
        newest = await audit.recent(limit=2)
        older = await audit.recent(limit=10, before_id=newest[-1].id)
        by_agent = await audit.recent(actor="agent:1")

    assert [r.message_id for r in newest] == ["m-4", "m-3"]
    assert [r.message_id for r in older] == ["m-2", "m-1", "m-0"]
    assert [r.message_id for r in by_agent] == ["m-3", "m-1"]


async def test_a_dead_lettered_command_is_audited_once_however_often_it_is_reported(
    bus: CommandBus, session_factory: SessionFactory, relay: RecordingRelay
) -> None:
    doomed = command("OpenAccount", actor="agent:7", customer_id="CUST-1", account_type="current")
    failure = Failure(ErrorType.TRANSIENT, "transient: TimeoutError", 5)
    report = dead_lettered(doomed.message_id, doomed.type, b"{}", failure, actor=doomed.actor)

    for _ in range(2):  # the delivery came back after a crash before its ack
        await bus.report_dead_letter(report, Origin(reply_to="amq.gen-x", partition=1))

    [record] = await audit_of(session_factory, doomed.message_id)
    assert (record.message_type, record.actor, record.outcome) == (
        "OpenAccount",
        "agent:7",
        "dead_lettered",
    )
    [published] = relay.published
    assert (published.event_type, published.reply_to) == ("CommandDeadLettered", "amq.gen-x")
