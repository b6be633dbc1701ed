"""The DLQ tool against a real broker: list, show, replay, purge, and runs killed half-way.

Each test declares its own exchanges and queues (with the worker's own topology code, under
names unique to the test) in the session's vhost, and fills the DLQ with valid commands
carrying the headers the worker's consumer writes when it dead-letters (``failure_headers``).
Their AMQP ``message_id`` is never the envelope's: a random one (as older workers set on
their copies) on two in three, none at all on the rest; the tool must name each by its
envelope's id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pika
import pytest
from aio_pika import ExchangeType, Message
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from click.testing import CliRunner, Result

from contracts.examples import example_message
from contracts.fields import ErrorType
from testkit.amqp import AmqpClient
from testkit.factories import eventually
from testkit.services import run_sync
from worker.cli.dlq import dlq
from worker.dlq import AuditLog, DlqError, ReplayWindow, Selector, browse, find, purge, replay
from worker.dlq.render import page
from worker.messaging.consumer import failure_headers
from worker.messaging.delivery import Delivery
from worker.messaging.fate import Failure
from worker.messaging.topology import declare
from worker.settings import Settings

pytestmark = pytest.mark.integration

TYPES = ("CreateCustomer", "OpenAccount", "AppendMessage", "FreezeAccounts", "UpsertFaq")
ERROR_TYPES = ("invalid_message", "transient", "unexpected")
WAIT = 20.0


@dataclass(frozen=True)
class Letter:
    """A dead letter as the test put it into the DLQ."""

    message_id: str
    type: str
    error_type: str
    body: bytes
    headers: dict[str, object]
    amqp_id: str | None


def make_letter(
    kind: str,
    error_type: str,
    error_message: str,
    *,
    index: int = 0,
    first: datetime | None = None,
    last: datetime | None = None,
) -> Letter:
    """A dead-lettered command of type ``kind``; no AMQP id if ``index`` is a multiple of 3.

    ``first`` and ``last`` replace the failure times the worker's headers carry (now).
    """
    message_id = str(uuid.uuid4())
    amqp_id = uuid.uuid4().hex if index % 3 else None
    envelope = {**example_message(kind), "message_id": message_id, "note": f"naïve {index}"}
    body = json.dumps(envelope, indent=1, ensure_ascii=False).encode()
    delivery = Delivery(body, kind, {"trace-id": f"t-{index}"}, amqp_id, type=kind)
    failure = Failure(ErrorType(error_type), error_message, index % 5 + 1)
    headers: dict[str, object] = dict(failure_headers(delivery, failure))
    if first is not None:
        headers["fca-first-failed-at"] = first.isoformat()
    if last is not None or first is not None:
        headers["fca-last-failed-at"] = (last or first or datetime.now(UTC)).isoformat()
    return Letter(message_id, kind, error_type, body, headers, amqp_id)


def make_letters(count: int, types: Sequence[str] = TYPES) -> list[Letter]:
    """``count`` dead-lettered commands, cycling through types and error types."""
    return [
        make_letter(types[i % len(types)], ERROR_TYPES[i % 3], f"failure {i}", index=i)
        for i in range(count)
    ]


def envelope_id(message: AbstractIncomingMessage) -> str:
    """The ``message_id`` in a message's body."""
    return str(json.loads(message.body)["message_id"])


async def put(settings: Settings, letters: Sequence[Letter]) -> None:
    """Publish the letters to the DLQ, in order, each confirmed.

    Through pika, because aio-pika (aiormq) gives every message without a ``message_id``
    a random one, and some letters must arrive without any.
    """
    url = settings.amqp_url.get_secret_value()
    await asyncio.to_thread(_put_with_pika, url, settings.dead_letter_queue, letters)


def _put_with_pika(url: str, queue: str, letters: Sequence[Letter]) -> None:
    with AmqpClient(url) as client:
        for letter in letters:
            properties = pika.BasicProperties(
                headers=letter.headers,
                message_id=letter.amqp_id,
                type=letter.type,
                correlation_id=f"corr-{letter.message_id}",
                content_type="application/json",
                delivery_mode=2,
            )
            client.publish_raw("", queue, letter.body, properties)


async def count(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in ``queue``."""
    declared = await channel.declare_queue(queue, passive=True)
    assert declared.declaration_result is not None
    return int(declared.declaration_result.message_count or 0)


async def drain(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Take every message out of ``queue`` (destructive; for the end of a test)."""
    taken = []
    declared = await channel.declare_queue(queue, passive=True)
    while (message := await declared.get(no_ack=True, fail=False)) is not None:
        taken.append(message)
    return taken


def own_headers(headers: object) -> dict[str, object]:
    """Headers without the broker's ``x-`` ones (a quorum queue adds x-delivery-count)."""
    assert isinstance(headers, dict)
    return {k: v for k, v in headers.items() if not k.startswith("x-")}


def views(messages: Sequence[AbstractIncomingMessage]) -> list[tuple[object, ...]]:
    """What must survive untouched in the DLQ: id, type, body and our headers."""
    return [(m.message_id, m.type, m.body, own_headers(m.headers)) for m in messages]


def letter_views(letters: Sequence[Letter]) -> list[tuple[object, ...]]:
    """The views the DLQ should hold for these letters (their AMQP ids untouched)."""
    return [(x.amqp_id, x.type, x.body, x.headers) for x in letters]


def audit_records(path: Path) -> list[dict[str, object]]:
    """The audit log's records."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def dlq_settings(amqp_url: str, prefix: str) -> Settings:
    """Settings naming exchanges and queues that start with ``prefix``."""
    return Settings(
        amqp_url=amqp_url,
        commands_exchange=f"{prefix}.commands",
        events_exchange=f"{prefix}.events",
        command_queue=f"{prefix}.commands.q",
        dead_letter_queue=f"{prefix}.commands.dlq",
        partitions=2,  # the tool never reads them; each is a quorum queue on the broker
    )


@pytest.fixture
def settings(amqp_url: str, unique_name: Callable[[str], str]) -> Settings:
    """Settings naming exchanges and queues private to this test."""
    return dlq_settings(amqp_url, unique_name("dlq"))


def sink(settings: Settings) -> str:
    """A queue bound to the commands exchange with ``#``: it sees every replayed message.

    (The worker's own input, the partitions, is fed through a consistent-hash exchange and
    is not the subject here: the tool's promise is what reaches the commands exchange.)
    """
    return f"{settings.command_queue}.sink"


async def bind_sink(channel: AbstractChannel, settings: Settings) -> None:
    """Declare the sink queue and bind it to the commands exchange."""
    queue = await channel.declare_queue(sink(settings), durable=True)
    await queue.bind(settings.commands_exchange, routing_key="#")


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[AbstractChannel]:
    """A channel on which the worker's topology has been declared."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    channel = await connection.channel()
    await declare(channel, settings)
    await bind_sink(channel, settings)
    yield channel
    await connection.close()


@pytest.fixture
async def letters(channel: AbstractChannel, settings: Settings) -> list[Letter]:
    """500 dead letters in the DLQ."""
    letters = make_letters(500)
    await put(settings, letters)
    return letters


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    """An audit log in the test's directory."""
    return AuditLog(tmp_path / "audit.log")


async def test_lists_dead_letters_without_consuming_them(
    settings: Settings, channel: AbstractChannel, letters: list[Letter]
) -> None:
    found = await browse(settings, selector=Selector())

    assert [x.message_id for x in found.letters] == [x.message_id for x in letters]
    first = found.letters[1]
    assert (first.type, first.error_type, first.error_message) == (
        "OpenAccount",
        "transient",
        "failure 1",
    )
    assert (first.attempts, first.original_routing_key, first.replay_count) == (2, "OpenAccount", 0)
    assert first.first_failed_at == letters[1].headers["fca-first-failed-at"]
    assert await count(channel, settings.dead_letter_queue) == 500

    some = Selector.of(type="OpenAccount", error_type="transient")
    expected = [
        x.message_id for x in letters if x.type == "OpenAccount" and x.error_type == "transient"
    ]
    filtered = await browse(settings, selector=some, limit=10)
    assert (filtered.matched, filtered.scanned) == (len(expected), 500)
    assert [x.message_id for x in filtered.letters] == expected[:10]

    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(letters)


async def test_shows_one_dead_letter_in_full(
    settings: Settings, channel: AbstractChannel, letters: list[Letter]
) -> None:
    target = letters[123]

    found = await find(settings, target.message_id)

    assert len(found) == 1
    assert found[0].body == target.body
    assert own_headers(found[0].headers) == target.headers
    shown = page(found[0], ReplayWindow.of(settings))
    assert json.dumps(json.loads(target.body), indent=2, ensure_ascii=False) in shown
    assert f'"correlation_id": "corr-{target.message_id}"' in shown
    assert await find(settings, "no-such-id") == []
    assert await find(settings, str(letters[124].amqp_id)) == []  # a random copy id names nothing
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(letters)


async def test_replays_exactly_the_selected_messages(
    settings: Settings, channel: AbstractChannel, letters: list[Letter], audit: AuditLog
) -> None:
    chosen = letters[::5]
    ids = [x.message_id for x in chosen]

    summary = await replay(settings, Selector.of(message_ids=ids), audit=audit)

    assert (summary.replayed, summary.failed, summary.skipped) == (ids, [], 400)
    arrived = await drain(channel, sink(settings))
    assert Counter(m.message_id for m in arrived) == Counter(ids)
    by_id = {x.message_id: x for x in chosen}
    for message in arrived:
        original = by_id[str(message.message_id)]
        assert message.body == original.body
        assert (message.type, message.routing_key) == (original.type, original.type)
        assert message.correlation_id == f"corr-{original.message_id}"
        assert message.content_type == "application/json"
        headers = message.headers or {}
        assert headers["fca-replay-count"] == 1
        assert "fca-attempts" not in headers
        assert {k for k in headers if k.startswith("x-")} <= {"x-delivery-count"}  # the broker's
        assert headers["fca-error-message"] == original.headers["fca-error-message"]
    rest = [x for x in letters if x.message_id not in by_id]
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(rest)
    records = audit_records(audit.path)
    started, finished = records[0], records[-1]
    assert [r["phase"] for r in records] == ["started", *["removing"] * 7, "finished"]
    assert {r["run_id"] for r in records} == {started["run_id"]}
    assert named_for_removal(audit.path) == set(ids)
    assert (finished["action"], finished["dry_run"], finished["message_ids"]) == (
        "replay",
        False,
        ids,
    )
    assert {"user", "host", "at"} <= finished.keys()
    assert all(finished[key] for key in ("user", "host", "at"))


async def test_replays_by_type_up_to_the_limit(
    settings: Settings, channel: AbstractChannel, letters: list[Letter], audit: AuditLog
) -> None:
    of_type = [x for x in letters if x.type == "UpsertFaq"]

    summary = await replay(settings, Selector.of(type="UpsertFaq"), audit=audit, limit=10)

    assert summary.replayed == [x.message_id for x in of_type[:10]]
    assert [m.message_id for m in await drain(channel, sink(settings))] == summary.replayed
    rest = [x for x in letters if x not in of_type[:10]]
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(rest)


async def test_a_dry_run_changes_nothing(
    settings: Settings, channel: AbstractChannel, letters: list[Letter], audit: AuditLog
) -> None:
    summary = await replay(settings, Selector.of(type="CreateCustomer"), audit=audit, dry_run=True)

    assert summary.selected == [x.message_id for x in letters if x.type == "CreateCustomer"]
    assert summary.replayed == []
    assert await count(channel, sink(settings)) == 0
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(letters)
    assert [r["dry_run"] for r in audit_records(audit.path)] == [True, True]


async def test_a_replay_that_comes_straight_back_is_not_replayed_twice_in_one_run(
    settings: Settings, channel: AbstractChannel, audit: AuditLog
) -> None:
    loop = await channel.declare_exchange(f"{settings.commands_exchange}.loop", ExchangeType.TOPIC)
    dead_letters = await channel.declare_queue(settings.dead_letter_queue, passive=True)
    await dead_letters.bind(loop, routing_key="#")
    letters = make_letters(20)
    await put(settings, letters)
    looping = settings.model_copy(update={"commands_exchange": loop.name})

    summary = await replay(looping, Selector(), audit=audit)

    assert summary.replayed == [x.message_id for x in letters]
    back = await drain(channel, settings.dead_letter_queue)
    assert [m.message_id for m in back] == summary.replayed
    assert {(m.headers or {})["fca-replay-count"] for m in back} == {1}


async def test_an_unroutable_replay_fails_loudly_and_stays_in_the_dlq(
    settings: Settings, channel: AbstractChannel, audit: AuditLog
) -> None:
    narrow = await channel.declare_exchange(
        f"{settings.commands_exchange}.narrow", ExchangeType.TOPIC
    )
    commands = await channel.declare_queue(sink(settings), passive=True)
    await commands.bind(narrow, routing_key="CreateCustomer")
    letters = make_letters(6, types=("CreateCustomer", "OpenAccount"))
    await put(settings, letters)
    routed = settings.model_copy(update={"commands_exchange": narrow.name})

    summary = await replay(routed, Selector(), audit=audit)

    stuck = [x for x in letters if x.type == "OpenAccount"]
    assert [f.message_id for f in summary.failed] == [x.message_id for x in stuck]
    assert all("unroutable" in f.reason for f in summary.failed)
    assert len(summary.replayed) == 3
    assert await count(channel, sink(settings)) == 3
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(stuck)
    assert len(audit_records(audit.path)[-1]["failures"]) == 3  # type: ignore[arg-type]


async def test_lists_and_replays_what_the_broker_dead_lettered(
    settings: Settings, channel: AbstractChannel, audit: AuditLog
) -> None:
    source_exchange = await channel.declare_exchange(f"{settings.commands_exchange}.src", "topic")
    source = await channel.declare_queue(
        f"{settings.command_queue}.src",
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 0,  # the first return dead-letters it
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": settings.dead_letter_queue,
        },
    )
    await source.bind(source_exchange, routing_key="#")
    message_id = str(uuid.uuid4())
    body = json.dumps({**example_message("OpenAccount"), "message_id": message_id}).encode()
    await source_exchange.publish(Message(body, message_id="crashy"), routing_key="OpenAccount")
    delivered = await source.get(no_ack=False)
    await delivered.nack(requeue=True)
    await wait_for_count(lambda: count(channel, settings.dead_letter_queue), 1)

    [letter] = (await browse(settings, selector=Selector())).letters
    assert (letter.message_id, letter.type, letter.error_type) == (
        message_id,
        "OpenAccount",
        "delivery_limit",
    )
    assert letter.original_routing_key == "OpenAccount"
    assert letter.first_failed_at is not None
    assert letter.dead_since is not None
    summary = await replay(settings, Selector.of(error_type="delivery_limit"), audit=audit)

    assert summary.replayed == [message_id]
    [arrived] = await drain(channel, sink(settings))
    assert (arrived.body, arrived.routing_key) == (body, "OpenAccount")
    assert arrived.message_id == message_id
    assert not {k for k in arrived.headers or {} if k.startswith("x-")} - {"x-delivery-count"}


async def test_purges_only_the_selected_messages(
    settings: Settings, channel: AbstractChannel, audit: AuditLog
) -> None:
    letters = make_letters(10)
    await put(settings, letters)
    gone = [letters[2].message_id, letters[7].message_id]

    summary = await purge(settings, Selector.of(message_ids=gone), audit=audit)

    assert (summary.purged, summary.skipped) == (gone, 8)
    rest = [x for x in letters if x.message_id not in gone]
    assert views(await drain(channel, settings.dead_letter_queue)) == letter_views(rest)
    records = audit_records(audit.path)
    assert [r["phase"] for r in records] == ["started", "removing", "finished"]
    assert records[1]["message_ids"] == records[2]["message_ids"] == gone


async def test_a_missing_queue_is_a_clear_error(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"dead_letter_queue": "no-such-queue"})

    with pytest.raises(DlqError, match="'no-such-queue' does not exist"):
        await browse(nowhere, selector=Selector())


async def wait_for_count(measure: Callable[[], Awaitable[int]], at_least: int) -> None:
    """Poll an async count until it reaches ``at_least`` (or fail after ``WAIT`` seconds)."""
    last = [0]

    async def reached() -> bool:
        last[0] = await measure()
        return last[0] >= at_least

    await eventually(
        reached, timeout=WAIT, interval=0.02, message=lambda: f"{last[0]}, wanted {at_least}"
    )


# --- the command line, run as operators run it ------------------------------------------------


def cli_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """``WORKER_`` variables that point the CLI at this test's broker names."""
    return {
        "WORKER_AMQP_URL": settings.amqp_url.get_secret_value(),
        "WORKER_COMMANDS_EXCHANGE": settings.commands_exchange,
        "WORKER_EVENTS_EXCHANGE": settings.events_exchange,
        "WORKER_COMMAND_QUEUE": settings.command_queue,
        "WORKER_DEAD_LETTER_QUEUE": settings.dead_letter_queue,
        "WORKER_DLQ_AUDIT_LOG": str(tmp_path / "audit.log"),
    }


def invoke(settings: Settings, tmp_path: Path, *args: str) -> Result:
    """Run ``worker dlq ARGS`` in this process."""
    return CliRunner().invoke(dlq, list(args), env=cli_env(settings, tmp_path))


async def setup_dlq(settings: Settings, letters: Sequence[Letter]) -> None:
    """Declare the topology and the sink, and put ``letters`` into the DLQ."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        await declare(channel, settings)
        await bind_sink(channel, settings)
        await put(settings, letters)


async def take(settings: Settings, queue: str) -> list[AbstractIncomingMessage]:
    """Drain ``queue`` on a connection of its own."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        return await drain(await connection.channel(), queue)


async def counts(settings: Settings) -> tuple[int, int]:
    """Messages in the DLQ and in the sink."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        dead = await count(channel, settings.dead_letter_queue)
        return dead, await count(channel, sink(settings))


def test_cli_lists_shows_and_replays(settings: Settings, tmp_path: Path) -> None:
    letters = make_letters(10)
    run_sync(setup_dlq(settings, letters))

    listed = invoke(settings, tmp_path, "list", "--json")
    table = invoke(settings, tmp_path, "list", "--error-type", "transient")
    shown = invoke(settings, tmp_path, "show", letters[4].message_id)
    missing = invoke(settings, tmp_path, "show", "no-such-id")
    replayed = invoke(settings, tmp_path, "replay", "--type", "CreateCustomer")

    assert listed.exit_code == 0, listed.output
    assert [x["message_id"] for x in json.loads(listed.stdout)] == [x.message_id for x in letters]
    assert table.exit_code == 0
    assert table.stdout.count("transient") == 3
    assert shown.exit_code == 0
    assert '"fca-error-message": "failure 4"' in shown.stdout
    assert missing.exit_code == 1
    assert "no dead letter has message id" in missing.output
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 2, skipped 8, failed 0" in replayed.stdout
    assert len(run_sync(take(settings, sink(settings)))) == 2


def test_cli_replay_exits_non_zero_when_a_replay_fails(settings: Settings, tmp_path: Path) -> None:
    run_sync(setup_dlq(settings, make_letters(3)))
    unbound = settings.model_copy(update={"commands_exchange": "amq.topic"})

    result = invoke(unbound, tmp_path, "replay", "--all")

    assert result.exit_code == 1
    assert "unroutable" in result.output
    assert "replayed 0, skipped 0, failed 3" in result.stdout
    assert run_sync(counts(settings)) == (3, 0)


def test_cli_purges_only_with_yes(settings: Settings, tmp_path: Path) -> None:
    letters = make_letters(10)
    run_sync(setup_dlq(settings, letters))

    refused = invoke(settings, tmp_path, "purge", "--all")
    assert refused.exit_code == 2
    assert "--yes" in refused.output
    assert run_sync(counts(settings)) == (10, 0)

    some = invoke(settings, tmp_path, "purge", "--message-id", letters[0].message_id, "--yes")
    assert some.exit_code == 0, some.output
    assert "purged 1, skipped 9" in some.stdout

    everything = invoke(settings, tmp_path, "purge", "--all", "--yes")
    assert everything.exit_code == 0, everything.output
    assert run_sync(counts(settings)) == (0, 0)
    actions = [(r["action"], r["phase"]) for r in audit_records(tmp_path / "audit.log")]
    assert actions == [("purge", "started"), ("purge", "removing"), ("purge", "finished")] * 2


SLOW_REPLAY = """
import asyncio, aio_pika.exchange
publish = aio_pika.exchange.Exchange.publish
async def slow(self, *args, **kwargs):
    await asyncio.sleep(0.02)
    return await publish(self, *args, **kwargs)
aio_pika.exchange.Exchange.publish = slow
from worker.cli.dlq import dlq
dlq(prog_name="worker dlq")
"""


async def _wait_for_commands(settings: Settings, at_least: int) -> None:
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        await wait_for_count(lambda: count(channel, sink(settings)), at_least)


def test_a_replay_killed_half_way_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    """SIGKILL a replay mid-run, run it again: every selected message reaches the command queue.

    A message whose republish was confirmed but whose ack died with the process is still in
    the DLQ, so the second run replays it again: the command queue may hold the same
    ``message_id`` twice. That is accepted, because the worker's inbox applies a message id
    at most once (contract, guarantee 2).
    """
    letters = make_letters(300)
    run_sync(setup_dlq(settings, letters))
    env = {**os.environ, **cli_env(settings, tmp_path)}
    args = [sys.executable, "-c", SLOW_REPLAY, "replay", "--error-type", "transient"]
    process = subprocess.Popen(args, env=env, cwd=tmp_path)
    try:
        run_sync(_wait_for_commands(settings, 10))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    run_sync(_wait_for_returns(settings, len(letters)))

    again = invoke(settings, tmp_path, "replay", "--error-type", "transient")

    assert again.exit_code == 0, again.output
    selected = {x.message_id for x in letters if x.error_type == "transient"}
    on_commands = Counter(envelope_id(m) for m in run_sync(take(settings, sink(settings))))
    in_dlq = {envelope_id(m) for m in run_sync(take(settings, settings.dead_letter_queue))}
    assert set(on_commands) == selected
    assert in_dlq == {x.message_id for x in letters} - selected
    records = audit_records(tmp_path / "audit.log")
    phases = [r["phase"] for r in records if r["phase"] != "removing"]
    assert phases == ["started", "started", "finished"]
    # every replayed message was named before it left
    assert named_for_removal(tmp_path / "audit.log") == selected


async def _wait_for_returns(settings: Settings, total: int) -> None:
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()

        async def both() -> int:
            return await count(channel, settings.dead_letter_queue) + await count(
                channel, sink(settings)
            )

        await wait_for_count(both, total)


# The CLI with every ack (a removal: purged, or replayed and confirmed) slowed down and
# counted in ./acks.
SLOW_ACKS = """
import asyncio, aio_pika.message
ack = aio_pika.message.IncomingMessage.ack
async def slow(self, *args, **kwargs):
    await asyncio.sleep(0.02)
    await ack(self, *args, **kwargs)
    with open("acks", "a") as acks:
        acks.write("1\\n")
aio_pika.message.IncomingMessage.ack = slow
from worker.cli.dlq import dlq
dlq(prog_name="worker dlq")
"""


def removing_records(path: Path) -> list[dict[str, object]]:
    """The audit log's ``removing`` records (none while the file does not exist)."""
    if not path.exists():
        return []
    return [r for r in audit_records(path) if r["phase"] == "removing"]


def named_for_removal(path: Path) -> set[str]:
    """Every message id the audit log named before removing it."""
    named: set[str] = set()
    for record in removing_records(path):
        message_ids = record["message_ids"]
        assert isinstance(message_ids, list)
        named.update(str(m) for m in message_ids)
    return named


async def wait_until_settled(settings: Settings) -> None:
    """Wait until the DLQ's count has not changed for a second (a dead run's returns landed)."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        loop = asyncio.get_running_loop()
        deadline, last, since = loop.time() + WAIT, -1, loop.time()
        while loop.time() < deadline:
            now = await count(channel, settings.dead_letter_queue)
            if now != last:
                last, since = now, loop.time()
            elif loop.time() - since >= 1.0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the DLQ count kept changing for {WAIT}s")


def acked(tmp_path: Path) -> int:
    """Messages a ``SLOW_ACKS`` run in ``tmp_path`` has acked (deleted) so far."""
    acks = tmp_path / "acks"
    return len(acks.read_text().splitlines()) if acks.exists() else 0


def kill_half_way(settings: Settings, tmp_path: Path, script: str, *args: str) -> None:
    """Run ``worker dlq ARGS`` with ``script``; SIGKILL it once it deleted 40 messages."""
    env = {**os.environ, **cli_env(settings, tmp_path)}
    process = subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + WAIT
        while acked(tmp_path) < 40:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    run_sync(wait_until_settled(settings))


def test_a_purge_killed_half_way_named_every_message_it_deleted(
    settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL a purge mid-run: the audit log names every message that left the DLQ.

    Before each batch is deleted a ``removing`` record names it; a record may name messages
    the kill then spared (they are still in the DLQ), never the other way round.
    """
    letters = make_letters(300)
    chosen = [x.message_id for i, x in enumerate(letters) if i % 3 != 1]
    args = ["purge", "--yes", *(a for m in chosen for a in ("--message-id", m))]
    run_sync(setup_dlq(settings, letters))
    log = tmp_path / "audit.log"

    kill_half_way(settings, tmp_path, SLOW_ACKS, *args)

    left = Counter(envelope_id(m) for m in run_sync(take(settings, settings.dead_letter_queue)))
    gone = {x.message_id for x in letters} - set(left)
    assert gone, "the kill came before anything was deleted"
    assert len(gone) < len(chosen), "the kill came too late to test anything"
    assert gone <= named_for_removal(log)
    assert [r["phase"] for r in audit_records(log) if r["phase"] != "removing"] == ["started"]
    assert set(left.values()) == {1}
    assert {x.message_id for x in letters if x.message_id not in chosen} <= set(left)
    run_sync(setup_dlq(settings, [x for x in letters if x.message_id in left]))

    again = invoke(settings, tmp_path, *args)

    assert again.exit_code == 0, again.output
    remaining = run_sync(take(settings, settings.dead_letter_queue))
    assert {envelope_id(m) for m in remaining} == {x.message_id for x in letters} - set(chosen)
    assert set(chosen) <= named_for_removal(log)
    assert audit_records(log)[-1]["phase"] == "finished"
