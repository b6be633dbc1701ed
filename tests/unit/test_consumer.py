"""The consumer carries out each delivery's fate: ack, delay-queue copy, DLQ copy, or requeue.

Deliveries are fake incoming messages; the bus runs over in-memory units of work with one
fake handler whose behaviour each test sets; the publisher records (or refuses) copies.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest

from contracts import (
    DEFAULT_REPLY_TO_PATTERN,
    CreateCustomer,
    RoutedEvent,
    body_digest_id,
    example_message,
    ordering_key,
    parse_message,
)
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_ORDERING_KEY,
    HEADER_ORIGINAL_ROUTING_KEY,
)
from tests.fakes import (
    FakeIncomingMessage,
    FakePartition,
    FakePublisher,
    FakeRelay,
    FakeUnitsOfWork,
)
from worker.bus import CommandBus, Origin
from worker.errors import EmailTaken
from worker.handlers import Handlers
from worker.messaging import consumer as consumer_module
from worker.messaging.consumer import Consumer
from worker.messaging.fate import RetryPolicy
from worker.observability.metrics import Metrics
from worker.services import CustomerService

pytestmark = pytest.mark.unit

DLQ = "fca.worker.commands.dlq"


class World:
    """A consumer whose only handler does what ``behaviour`` says."""

    def __init__(self) -> None:
        self.units = FakeUnitsOfWork()
        self.publisher = FakePublisher()
        self.behaviour: BaseException | None = None
        self.fail_rejection = False
        handlers = Handlers()
        handlers.command(CreateCustomer, CustomerService)(self.handle)
        self.relay = FakeRelay(self.units.store)
        bus = CommandBus(handlers, self.units, self.relay, self.publisher)
        self.metrics = Metrics()
        self.partition = FakePartition()
        self.consumer = Consumer(
            bus,
            self.publisher,
            RetryPolicy(5, (1, 5, 30)),
            concurrency=4,
            max_body_bytes=4096,
            command_queue="fca.worker.commands",
            dead_letter_queue=DLQ,
            metrics=self.metrics,
        )

    async def handle(self, command: CreateCustomer, uow: Any) -> list[RoutedEvent]:
        if self.behaviour is not None:
            raise self.behaviour
        if self.fail_rejection:
            raise EmailTaken("taken")
        return []

    async def deliver(self, message: FakeIncomingMessage) -> FakeIncomingMessage:
        await self.consumer.handle(message, self.partition)  # type: ignore[arg-type]
        assert self.partition.in_flight == 0
        return message


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(autouse=True)
def no_nack_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "NACK_PAUSE", 0.0)


def a_command(**headers: Any) -> FakeIncomingMessage:
    body = example_message("CreateCustomer")
    body["message_id"] = str(uuid.uuid4())
    return FakeIncomingMessage(json.dumps(body).encode(), headers=dict(headers))


async def test_an_applied_command_is_acked_and_nothing_is_copied(world: World) -> None:
    message = await world.deliver(a_command())

    assert message.settled == ["ack"]
    assert world.publisher.copies == []


async def test_a_transient_failure_is_copied_to_its_delay_queue_then_acked(world: World) -> None:
    world.behaviour = TimeoutError()

    message = await world.deliver(a_command())

    assert message.settled == ["ack"]
    [(queue, delivery, headers, expiration_ms)] = world.publisher.copies
    assert queue == "fca.worker.commands.delay.1s"
    assert delivery.body == message.body
    assert headers[HEADER_ATTEMPTS] == 1
    assert headers[HEADER_ERROR_TYPE] == "transient"
    assert expiration_ms is not None
    assert 900 <= expiration_ms <= 1100


async def test_the_last_allowed_attempt_goes_to_the_dlq_with_the_contract_headers(
    world: World,
) -> None:
    world.behaviour = TimeoutError()

    message = await world.deliver(a_command(**{HEADER_ATTEMPTS: 4, "x-death": [{"count": 4}]}))

    assert message.settled == ["ack"]
    [(queue, delivery, headers, expiration_ms)] = world.publisher.copies
    assert queue == DLQ
    assert delivery.body == message.body
    assert expiration_ms is None
    assert headers[HEADER_ATTEMPTS] == 5
    assert headers[HEADER_ERROR_TYPE] == "transient"
    assert headers[HEADER_ERROR_MESSAGE] == "transient: TimeoutError"
    assert headers[HEADER_ORIGINAL_ROUTING_KEY] == "CreateCustomer"
    assert "x-death" not in headers
    [report] = world.units.store.outbox  # committed to the outbox, then published
    assert report.event_type == "CommandDeadLettered"
    assert world.relay.published == [report]
    [(message_id, message_type, outcome, _)] = world.units.store.audit
    assert (message_type, outcome) == ("CreateCustomer", "dead_lettered")
    assert message_id == json.loads(delivery.body)["message_id"]


async def test_an_invalid_message_is_dead_lettered_at_once(world: World) -> None:
    message = await world.deliver(FakeIncomingMessage(b"not json at all"))

    assert message.settled == ["ack"]
    [(queue, _, headers, _)] = world.publisher.copies
    assert queue == DLQ
    assert headers[HEADER_ERROR_TYPE] == "invalid_message"
    assert headers[HEADER_ATTEMPTS] == 1


async def test_a_delivery_whose_copy_fails_goes_back_to_the_queue_unacked(world: World) -> None:
    world.behaviour = TimeoutError()
    world.publisher.fail_copies = ConnectionResetError(104, "reset")

    message = await world.deliver(a_command())

    assert message.settled == ["nack-requeue"]


async def test_a_delivery_whose_ack_fails_is_nacked_for_redelivery(world: World) -> None:
    message = a_command()
    message.fail_ack = ConnectionResetError(104, "reset")

    await world.deliver(message)

    assert message.settled == ["nack-requeue"]


async def test_a_dead_letter_is_reported_directly_when_the_outbox_cannot_be_written(
    world: World,
) -> None:
    """The database may be down (that is often why a command was dead-lettered)."""
    world.units.fail_commit = ConnectionRefusedError(111, "refused")

    message = await world.deliver(FakeIncomingMessage(b"{}"))

    assert message.settled == ["ack"]
    assert [queue for queue, *_ in world.publisher.copies] == [DLQ]
    [report] = world.publisher.events
    assert report.event_type == "CommandDeadLettered"


async def test_a_dead_letter_whose_report_cannot_be_made_goes_back_to_the_queue(
    world: World,
) -> None:
    """Neither the outbox nor the broker took the report: do not lose it by acking."""
    world.units.fail_commit = ConnectionRefusedError(111, "refused")
    world.publisher.fail_events = ConnectionResetError(104, "reset")

    message = await world.deliver(FakeIncomingMessage(b"{}"))

    assert message.settled == ["nack-requeue"]
    assert [queue for queue, *_ in world.publisher.copies] == [DLQ]


async def test_copies_keep_the_envelopes_id_never_a_new_one(world: World) -> None:
    world.behaviour = TimeoutError()
    body = example_message("CreateCustomer")
    body["message_id"] = "the-envelopes-id"
    without = FakeIncomingMessage(json.dumps(body).encode(), message_id=None)
    other = FakeIncomingMessage(json.dumps(body).encode(), message_id="a-property-id")
    unreadable = FakeIncomingMessage(b"not json", message_id=None)

    for message in (without, other, unreadable):
        await world.deliver(message)

    ids = [delivery.message_id for _, delivery, *_ in world.publisher.copies]
    assert ids == ["the-envelopes-id", "the-envelopes-id", body_digest_id(b"not json")]


async def test_a_refused_reply_to_gets_no_answer_but_the_command_is_applied(world: World) -> None:
    world.consumer._reply_to = re.compile(DEFAULT_REPLY_TO_PATTERN)
    message = a_command()
    message.reply_to = "fca.worker.commands.dlq"
    world.fail_rejection = True  # a rejection would answer reply_to

    await world.deliver(message)

    assert message.settled == ["ack"]
    [row] = world.units.store.outbox
    assert row.reply_to is None
    assert sample(world, "fca_replies_refused_total") == 1


async def test_a_bug_is_retried_a_few_times_and_never_acked_before_its_copy(
    world: World,
) -> None:
    world.behaviour = RuntimeError("bug")

    first = await world.deliver(a_command())
    last = await world.deliver(a_command(**{HEADER_ATTEMPTS: 2}))

    assert first.settled == last.settled == ["ack"]
    queues = [queue for queue, *_ in world.publisher.copies]
    assert queues[0] == "fca.worker.commands.delay.1s"
    assert queues[1] == DLQ


# --- in-place retries, key turns and key metrics ------------------------------------------


def sample(world: World, name: str) -> float:
    return world.metrics.registry.get_sample_value(name) or 0.0


class Flaky:
    """Fails with a transient error ``times`` times, then succeeds."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.calls = 0

    async def __call__(self, command: CreateCustomer, uow: Any) -> list[RoutedEvent]:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise TimeoutError()
        return []


def in_place(world: World, retries: int, handler: Any) -> None:
    world.consumer._in_place = retries
    world.consumer._backoff = 0.001
    handlers = Handlers()
    handlers.command(CreateCustomer, CustomerService)(handler)
    world.consumer._bus = CommandBus(
        handlers, world.units, FakeRelay(world.units.store), world.publisher
    )


async def test_a_short_transient_fault_is_retried_in_place_and_never_leaves(world: World) -> None:
    flaky = Flaky(times=2)
    in_place(world, 3, flaky)

    message = await world.deliver(a_command())

    assert message.settled == ["ack"]
    assert flaky.calls == 3
    assert world.publisher.copies == []
    assert sample(world, "fca_in_place_retries_total") == 2


async def test_in_place_retries_back_off_exponentially_up_to_the_cap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_place(world, 5, Flaky(times=10))
    world.consumer._backoff = 0.5  # 0.5, 1, 2, then capped at IN_PLACE_MAX_WAIT (2 s)
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: Any) -> Any:
        if delay > 0:
            pauses.append(round(delay, 3))
        return await real_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    await world.deliver(a_command())

    assert pauses == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert sample(world, "fca_in_place_retries_total") == 5


def record_origins(world: World, monkeypatch: pytest.MonkeyPatch) -> list[Origin]:
    """The origins the consumer hands the bus, in order."""
    bus = world.consumer._bus
    origins: list[Origin] = []
    handle = bus.handle

    async def recording(request: Any, origin: Origin) -> Any:
        origins.append(origin)
        return await handle(request, origin)

    monkeypatch.setattr(bus, "handle", recording)
    return origins


async def test_a_first_attempt_may_be_grouped_its_retries_in_place_run_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_place(world, 3, Flaky(times=2))
    origins = record_origins(world, monkeypatch)

    await world.deliver(a_command())

    assert [o.retry for o in origins] == [False, True, True]


async def test_a_delivery_back_from_a_delay_queue_runs_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    origins = record_origins(world, monkeypatch)

    await world.deliver(a_command(**{HEADER_ATTEMPTS: 1}))

    assert [o.retry for o in origins] == [True]


async def test_a_longer_fault_goes_to_the_delay_queue_after_the_in_place_retries(
    world: World,
) -> None:
    flaky = Flaky(times=10)
    in_place(world, 2, flaky)

    message = await world.deliver(a_command())

    assert message.settled == ["ack"]
    assert flaky.calls == 3
    [(queue, _, headers, _)] = world.publisher.copies
    assert queue == "fca.worker.commands.delay.1s"
    assert headers[HEADER_ATTEMPTS] == 1  # attempts count deliveries, not in-place tries


async def test_later_commands_of_a_key_wait_for_its_in_place_retries_others_do_not(
    world: World,
) -> None:
    """Same email, same key (CreateCustomer is keyed by its email)."""
    seen: list[str] = []

    async def handler(command: CreateCustomer, uow: Any) -> list[RoutedEvent]:
        seen.append(command.payload.full_name)
        if command.payload.full_name == "first" and seen.count("first") < 3:
            await asyncio.sleep(0.01)
            raise TimeoutError()
        return []

    in_place(world, 3, handler)
    first = a_command_named("first", email="same@example.com")
    second = a_command_named("second", email="same@example.com")
    other = a_command_named("other", email="other@example.com")

    await asyncio.gather(
        *(world.consumer.handle(m, world.partition) for m in (first, second, other))
    )  # type: ignore[arg-type]

    assert seen.count("first") == 3
    assert seen.index("other") < seen.index("second")
    assert seen[-1] == "second"
    assert first.settled == second.settled == other.settled == ["ack"]
    assert world.partition.in_flight == 0


def a_command_named(full_name: str, *, email: str) -> FakeIncomingMessage:
    body = example_message("CreateCustomer")
    body["message_id"] = str(uuid.uuid4())
    body["payload"].update(full_name=full_name, email=email)
    return FakeIncomingMessage(json.dumps(body).encode())


async def test_a_delivery_without_the_ordering_key_header_is_counted(world: World) -> None:
    await world.deliver(a_command())

    assert sample(world, "fca_unkeyed_commands_total") == 1
    assert sample(world, "fca_ordering_key_mismatches_total") == 0


async def test_a_header_that_disagrees_with_the_payload_is_counted_and_still_processed(
    world: World,
) -> None:
    message = await world.deliver(a_command(**{HEADER_ORDERING_KEY: "customer_id:CUST-9"}))

    assert message.settled == ["ack"]
    assert sample(world, "fca_ordering_key_mismatches_total") == 1
    assert sample(world, "fca_unkeyed_commands_total") == 0


async def test_a_header_that_agrees_is_not_counted(world: World) -> None:
    body = example_message("CreateCustomer")
    body["message_id"] = str(uuid.uuid4())
    key = ordering_key(parse_message(json.dumps(body).encode()))
    message = FakeIncomingMessage(json.dumps(body).encode(), headers={HEADER_ORDERING_KEY: key})

    await world.deliver(message)

    assert sample(world, "fca_ordering_key_mismatches_total") == 0


async def test_a_command_applied_while_its_keys_retry_waits_in_a_delay_queue_is_counted(
    world: World,
) -> None:
    world.behaviour = TimeoutError()
    await world.deliver(a_command())
    world.behaviour = None

    await world.deliver(a_command())  # the same email: the same key, fresh
    assert sample(world, "fca_retry_overtaken_total") == 1

    await world.deliver(a_command(**{HEADER_ATTEMPTS: 1}))  # the retry comes back
    await world.deliver(a_command())
    assert sample(world, "fca_retry_overtaken_total") == 1
