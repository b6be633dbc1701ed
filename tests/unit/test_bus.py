"""The command bus over an in-memory unit of work: claim, handle, stage, commit, publish.

The handlers here are fakes registered in a fresh table; the units of work, the relay and
the publisher are the in-memory ones of ``tests/fakes.py``, which refuse to publish what
was not committed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from contracts import (
    CommandRejected,
    CreateCustomer,
    CustomerCreated,
    CustomerCreatedPayload,
    CustomerDeleted,
    CustomerDeletedPayload,
    GetCustomer,
    QueryResult,
    RoutedEvent,
    example_message,
)
from tests.fakes import FakePublisher, FakeRelay, FakeUnitOfWork, FakeUnitsOfWork
from worker.bus import CommandBus, Origin
from worker.errors import CustomerNotFound, EmailTaken
from worker.handlers import Answer, Handlers, emit
from worker.services import CustomerService

pytestmark = pytest.mark.unit


def command(**payload: Any) -> CreateCustomer:
    body = example_message("CreateCustomer")
    body["message_id"] = str(uuid.uuid4())
    body["payload"].update(payload)
    return CreateCustomer.model_validate_json(json.dumps(body))


def query() -> GetCustomer:
    body = example_message("GetCustomer")
    body["message_id"] = str(uuid.uuid4())
    return GetCustomer.model_validate_json(json.dumps(body))


class World:
    """A bus with one fake CreateCustomer handler and one fake GetCustomer handler."""

    def __init__(self) -> None:
        self.units = FakeUnitsOfWork()
        self.relay = FakeRelay(self.units.store)
        self.publisher = FakePublisher()
        self.handlers = Handlers()
        self.calls: list[str] = []
        self.fail_with: Exception | None = None
        self.gates: dict[str, asyncio.Event] = {}
        """Commands whose handler waits for their event."""
        self.bus = CommandBus(self.handlers, self.units, self.relay, self.publisher)
        self.handlers.command(CreateCustomer, CustomerService)(self.create)
        self.handlers.query(GetCustomer, CustomerService)(self.get)

    async def create(self, cmd: CreateCustomer, uow: FakeUnitOfWork) -> list[RoutedEvent]:
        self.calls.append(cmd.message_id)
        if cmd.message_id in self.gates:
            await self.gates[cmd.message_id].wait()
        if self.fail_with is not None:
            raise self.fail_with
        payload = CustomerCreatedPayload(
            customer_id="CUST-000001",
            email=cmd.payload.email,
            full_name=cmd.payload.full_name,
            is_vip=False,
        )
        return [emit(cmd, CustomerCreated, payload)]

    async def get(self, q: GetCustomer, uow: FakeUnitOfWork) -> Answer:
        if self.fail_with is not None:
            raise self.fail_with
        return Answer([])


@pytest.fixture
def world() -> World:
    return World()


async def test_a_command_commits_its_inbox_claim_and_events_then_publishes_them(
    world: World,
) -> None:
    cmd = command()

    outcome = await world.bus.handle(cmd, Origin(reply_to="amq.gen-1"))

    assert outcome == "applied"
    assert world.units.store.inbox == {cmd.message_id: "applied"}
    [row] = world.units.store.outbox
    assert row.event_type == "CustomerCreated"
    assert row.routing_key == "customer.created"
    assert row.reply_to == "amq.gen-1"
    assert world.relay.published == [row]


async def test_a_message_id_already_in_the_inbox_changes_nothing(world: World) -> None:
    cmd = command()
    await world.bus.handle(cmd, Origin())
    world.relay.published.clear()

    outcome = await world.bus.handle(cmd, Origin())

    assert outcome == "duplicate"
    assert world.calls == [cmd.message_id]
    assert len(world.units.store.outbox) == 1
    assert world.relay.published == []


async def test_a_rejection_rolls_the_change_back_and_commits_the_answer(world: World) -> None:
    world.fail_with = EmailTaken("a customer uses this email")
    cmd = command()

    outcome = await world.bus.handle(cmd, Origin(reply_to="amq.gen-2"))

    assert outcome == "rejected"
    first, second = world.units.opened
    assert not first.committed
    assert second.committed
    assert world.units.store.inbox == {cmd.message_id: "rejected"}
    [row] = world.units.store.outbox
    rejection = CommandRejected.model_validate_json(row.body)
    assert rejection.payload.reason == "email_taken"
    assert rejection.payload.command_message_id == cmd.message_id
    assert rejection.causation_id == cmd.message_id
    assert row.reply_to == "amq.gen-2"
    assert world.relay.published == [row]


async def test_a_failure_commits_nothing_and_publishes_nothing(world: World) -> None:
    world.fail_with = TimeoutError()

    with pytest.raises(TimeoutError):
        await world.bus.handle(command(), Origin())

    assert world.units.store.inbox == {}
    assert world.units.store.outbox == []
    assert world.relay.published == []


async def test_events_a_relay_could_not_publish_stay_committed(world: World) -> None:
    world.relay.fail = True
    cmd = command()

    assert await world.bus.handle(cmd, Origin()) == "applied"
    assert len(world.units.store.outbox) == 1


async def test_a_query_is_answered_on_reply_to_and_commits_nothing(world: World) -> None:
    q = query()

    outcome = await world.bus.handle(q, Origin(reply_to="amq.gen-3"))

    assert outcome == "answered"
    [(reply_to, reply)] = world.publisher.replies
    assert reply_to == "amq.gen-3"
    assert isinstance(reply, QueryResult)
    assert reply.causation_id == q.message_id
    assert not any(u.committed for u in world.units.opened)
    assert world.units.store.inbox == {}


async def test_a_query_the_rules_refuse_is_answered_with_a_rejection(world: World) -> None:
    world.fail_with = CustomerNotFound("no such customer")

    await world.bus.handle(query(), Origin(reply_to="amq.gen-4"))

    [(_, reply)] = world.publisher.replies
    assert isinstance(reply, CommandRejected)
    assert reply.payload.reason == "customer_not_found"


async def test_a_handler_emitting_an_event_its_command_does_not_declare_is_a_bug(
    world: World,
) -> None:
    async def wrong(cmd: CreateCustomer, uow: FakeUnitOfWork) -> list[RoutedEvent]:
        payload = CustomerDeletedPayload(customer_id="CUST-000001")
        return [emit(cmd, CustomerDeleted, payload)]

    world.handlers.commands.clear()
    world.handlers.command(CreateCustomer, CustomerService)(wrong)

    with pytest.raises(TypeError, match="does not declare CustomerDeleted"):
        await world.bus.handle(command(), Origin())
    assert world.units.store.outbox == []


async def test_events_rejections_and_answers_carry_the_requests_actor(world: World) -> None:
    cmd = command().model_copy(update={"actor": "agent:4711"})
    await world.bus.handle(cmd, Origin())
    world.fail_with = EmailTaken("taken")
    await world.bus.handle(command().model_copy(update={"actor": "agent:42"}), Origin())
    world.fail_with = None
    await world.bus.handle(query().model_copy(update={"actor": "agent:7"}), Origin("amq.gen-5"))

    created, rejection = (json.loads(row.body) for row in world.units.store.outbox)
    assert created["actor"] == "agent:4711"
    assert rejection["actor"] == "agent:42"
    assert world.publisher.replies[0][1].actor == "agent:7"


async def test_a_retry_runs_at_once_in_a_transaction_of_its_own_even_while_groups_wait(
    world: World,
) -> None:
    world.bus = CommandBus(
        world.handlers, world.units, world.relay, world.publisher, group_commit=8, commit_runners=1
    )
    first, waiting, retried = command(), command(), command()
    world.gates[first.message_id] = asyncio.Event()
    busy = asyncio.create_task(world.bus.handle(first, Origin()))
    await asyncio.sleep(0)  # "first" holds the only runner
    queued = asyncio.create_task(world.bus.handle(waiting, Origin()))
    await asyncio.sleep(0)

    # A hang guard: grouped, the retry would wait for "first", which waits for this test.
    assert await asyncio.wait_for(world.bus.handle(retried, Origin(retry=True)), 10) == "applied"

    assert not queued.done()  # a first attempt waits for the runner; the retry did not
    world.gates[first.message_id].set()
    assert await asyncio.gather(busy, queued) == ["applied", "applied"]
    assert set(world.units.store.inbox) == {
        first.message_id,
        waiting.message_id,
        retried.message_id,
    }
