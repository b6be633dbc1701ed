"""Group commit on real databases (SQLite, then PostgreSQL): several commands in one
transaction keep every per-command guarantee of the one-by-one path.

``CommandBus.commit_together`` is what group commit runs for a group (the queue that forms
groups is unit-tested in ``tests/unit/test_group_commit_queue.py``); the concurrent test at the
end drives whole groups through ``CommandBus.handle`` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import context as otel_context
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from contracts import MESSAGE_CLASSES, CommandEnvelope, example_message, parse_event
from testkit.database import RowLock
from tests.factories import random_email
from tests.fakes import FakePublisher
from worker.bus import GROUP_LOCK_TIMEOUT_MS, CommandBus, Committed, Origin, Queued
from worker.db.models import Account, CommandAudit, Customer, InboxMessage, OutboxEvent
from worker.db.session import SessionFactory
from worker.errors import TransientError, translate
from worker.group_commit import ALONE
from worker.handlers import HANDLERS
from worker.repositories import Claim, PendingEvent
from worker.services import BaseService

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


def command(message_type: str, **payload: Any) -> CommandEnvelope:
    body = example_message(message_type)
    body["payload"] = {**body["payload"], **payload}
    body["message_id"] = str(uuid.uuid4())
    body["actor"] = f"agent:{message_type}"
    parsed = MESSAGE_CLASSES[message_type].model_validate_json(json.dumps(body))
    assert isinstance(parsed, CommandEnvelope)
    return parsed


def queued(*commands: CommandEnvelope, partition: int = 3) -> list[Queued]:
    return [Queued(c, Origin(partition=partition), otel_context.get_current()) for c in commands]


def bus_on(session_factory: SessionFactory, **grouping: int) -> CommandBus:
    return CommandBus(
        HANDLERS, lambda kind: kind(session_factory), RecordingRelay(), FakePublisher(), **grouping
    )


@dataclass
class World:
    """A customer with an account holding 100.00 and an open conversation."""

    customer_id: str
    account_number: str
    conversation_id: str


async def seed(session_factory: SessionFactory) -> World:
    """Through an ungrouped bus, reading ids back from the events it publishes."""
    relay = RecordingRelay()
    bus = CommandBus(HANDLERS, lambda kind: kind(session_factory), relay, FakePublisher())

    async def one(message_type: str, **payload: Any) -> dict[str, Any]:
        assert await bus.handle(command(message_type, **payload), Origin()) == "applied"
        return dict(json.loads(relay.published[-1].body)["payload"])

    customer = await one("CreateCustomer", email=random_email(), full_name="Grace")
    account = await one("OpenAccount", customer_id=customer["customer_id"])
    conversation_id = str(uuid.uuid4())
    await one(
        "StartConversation", customer_id=customer["customer_id"], conversation_id=conversation_id
    )
    await one(
        "RecordTransaction",
        account_number=account["account_number"],
        amount="100.00",
        direction="credit",
        reference=f"SEED-{uuid.uuid4().hex[:8]}",
    )
    return World(customer["customer_id"], account["account_number"], conversation_id)


async def count(factory: SessionFactory, model: type[Any], *where: Any) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def balance(factory: SessionFactory, account_number: str) -> str:
    async with factory() as session:
        account = await session.scalar(
            select(Account).where(Account.account_number == account_number)
        )
        assert account is not None
        return str(account.balance)


def mixed_group(world: World) -> list[CommandEnvelope]:
    return [
        command("CreateCustomer", email=random_email(), full_name="Alan"),
        command("OpenAccount", customer_id=world.customer_id),
        command(
            "RecordTransaction",
            account_number=world.account_number,
            amount="30.00",
            direction="debit",
            reference=f"G-{uuid.uuid4().hex[:8]}",
        ),
        command("AppendMessage", conversation_id=world.conversation_id, content="Hello"),
        command(
            "StartConversation", customer_id=world.customer_id, conversation_id=str(uuid.uuid4())
        ),
    ]


def committed(result: Committed | Any) -> Committed:
    assert result is not ALONE, "expected the group to commit this one"
    assert isinstance(result, tuple)
    return result


async def test_a_mixed_group_commits_each_command_with_its_own_events(
    session_factory: SessionFactory,
) -> None:
    bus = bus_on(session_factory)
    world = await seed(session_factory)
    commands = mixed_group(world)
    customers_before = await count(session_factory, Customer)

    results = [committed(r) for r in await bus.commit_together(queued(*commands))]

    assert [outcome for outcome, _ in results] == ["applied"] * 5
    for cmd, (_, pending) in zip(commands, results, strict=True):
        events = [parse_event(p.body.encode()) for p in pending]
        assert events, cmd.type
        assert {e.causation_id for e in events} == {cmd.message_id}
        assert all(type(e) in type(cmd).events for e in events)
        assert {p.partition for p in pending} == {3}
    ids = [c.message_id for c in commands]
    assert await count(session_factory, InboxMessage, InboxMessage.message_id.in_(ids)) == 5
    audited = await count(
        session_factory,
        CommandAudit,
        CommandAudit.message_id.in_(ids),
        CommandAudit.actor.like("agent:%"),
        CommandAudit.outcome == "applied",
    )
    assert audited == 5
    assert await count(session_factory, Customer) == customers_before + 1
    assert await balance(session_factory, world.account_number) == "70.00"


async def test_duplicates_in_a_group_take_no_effect_and_an_id_twice_runs_alone(
    session_factory: SessionFactory,
) -> None:
    bus = bus_on(session_factory)
    world = await seed(session_factory)
    done_before = command("CreateCustomer", email=random_email(), full_name="Once")
    assert await bus.handle(done_before, Origin()) == "applied"
    twice = command("AppendMessage", conversation_id=world.conversation_id, content="Twice")
    fresh = command("CreateCustomer", email=random_email(), full_name="Fresh")
    outbox_before = await count(session_factory, OutboxEvent)

    results = await bus.commit_together(queued(done_before, twice, fresh, twice))

    assert committed(results[0]) == ("duplicate", [])
    assert committed(results[1])[0] == "applied"
    assert committed(results[2])[0] == "applied"
    assert results[3] is ALONE  # the same id again: alone, where the inbox sees it as a duplicate
    assert await count(session_factory, OutboxEvent) == outbox_before + 2


async def test_a_rejected_member_runs_alone_and_leaves_no_trace_in_the_group(
    session_factory: SessionFactory,
) -> None:
    bus = bus_on(session_factory)
    world = await seed(session_factory)
    overdraw = command(
        "RecordTransaction",
        account_number=world.account_number,
        amount="5000.00",
        direction="debit",
        reference=f"X-{uuid.uuid4().hex[:8]}",
    )
    others = mixed_group(world)

    results = await bus.commit_together(queued(others[0], overdraw, *others[1:]))

    assert results[1] is ALONE
    assert [committed(r)[0] for r in results[:1] + results[2:]] == ["applied"] * 5
    assert (
        await count(session_factory, InboxMessage, InboxMessage.message_id == overdraw.message_id)
        == 0
    )
    assert await balance(session_factory, world.account_number) == "70.00"
    assert await bus.handle(overdraw, Origin()) == "rejected"  # alone, as it would have been


async def test_a_failure_mid_group_rolls_back_every_member(
    session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = bus_on(session_factory)
    world = await seed(session_factory)
    commands = mixed_group(world)
    customers_before = await count(session_factory, Customer)
    handler = HANDLERS.commands["AppendMessage"]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in one handler")

    # AppendMessage runs after CreateCustomer's insert and the debit in the group below.
    monkeypatch.setitem(HANDLERS.commands, "AppendMessage", replace(handler, handle=broken))

    with pytest.raises(RuntimeError, match="a bug in one handler"):
        await bus.commit_together(queued(*commands))

    ids = [c.message_id for c in commands]
    assert await count(session_factory, InboxMessage, InboxMessage.message_id.in_(ids)) == 0
    assert await count(session_factory, CommandAudit, CommandAudit.message_id.in_(ids)) == 0
    assert await count(session_factory, Customer) == customers_before
    assert await balance(session_factory, world.account_number) == "100.00"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_group_behind_a_row_lock_gives_up_instead_of_holding_the_others(
    backend: Backend, session_factory: SessionFactory
) -> None:
    bus = bus_on(session_factory)
    world = await seed(session_factory)
    url = backend.engine.url.render_as_string(hide_password=False)
    lock = RowLock(
        url, "SELECT 1 FROM accounts WHERE account_number = $1 FOR UPDATE", world.account_number
    )
    try:
        # A hang guard, not a timing assertion: the group gives up after its lock limit.
        with pytest.raises(DBAPIError) as failed:
            await asyncio.wait_for(bus.commit_together(queued(*mixed_group(world))), 30)
        assert isinstance(translate(failed.value), TransientError), failed.value
    finally:
        lock.release()
    assert await balance(session_factory, world.account_number) == "100.00"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_concurrent_commands_grouped_end_as_they_would_one_by_one(
    session_factory: SessionFactory,
) -> None:
    """Many commands at once through a grouping bus: each has the outcome it would have
    alone, and the database ends as if they had run one after another."""
    bus = bus_on(session_factory, group_commit=8, commit_runners=2)
    worlds = [await seed(session_factory) for _ in range(6)]
    commands: list[tuple[CommandEnvelope, str]] = []
    for i, world in enumerate(worlds):  # one world per key: what the consumer's order gives
        commands += [(c, "applied") for c in mixed_group(world)]
        if i % 2:  # every other world also gets a rejection
            overdraw = command(
                "RecordTransaction",
                account_number=world.account_number,
                amount="999.00",
                direction="debit",
                reference=f"R-{uuid.uuid4().hex[:8]}",
            )
            commands.append((overdraw, "rejected"))

    outcomes = await asyncio.gather(*(bus.handle(c, Origin(partition=1)) for c, _ in commands))

    assert list(outcomes) == [expected for _, expected in commands]
    for world in worlds:
        assert await balance(session_factory, world.account_number) == "70.00"
    ids = [c.message_id for c, _ in commands]
    assert await count(session_factory, InboxMessage, InboxMessage.message_id.in_(ids)) == len(ids)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("configured", "expected"), [(None, "1s"), ("200ms", "200ms")])
async def test_a_groups_lock_limit_never_loosens_a_stricter_one(
    session_factory: SessionFactory, configured: str | None, expected: str
) -> None:
    async with BaseService(session_factory) as uow:
        if configured is not None:  # as ALTER DATABASE/ROLE … SET lock_timeout would
            await uow.session.execute(text(f"SET LOCAL lock_timeout = '{configured}'"))
        claim = Claim(f"lock-limit-{uuid.uuid4()}", "CreateCustomer")
        claimed = await uow.inbox.claim_many(
            [claim], "applied", lock_timeout_ms=GROUP_LOCK_TIMEOUT_MS
        )
        assert claimed == {claim.message_id}
        assert await uow.session.scalar(text("SELECT current_setting('lock_timeout')")) == expected
