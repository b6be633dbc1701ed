"""Retries against the real broker: back-off through delay queues, then the DLQ.

The worker runs as a process (``worker run``) on the session's vhost, with topology names of
its own. Transient faults are made by stopping a private PostgreSQL cluster (never the shared
one) under the worker; an unexpected one by a CHECK constraint the worker does not know about,
added to the worker's own fresh database after migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contracts import body_digest_id
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
)
from testkit.amqp import AmqpClient
from testkit.config import Topology, WorkerEnv
from testkit.database import db_execute, db_fetchval
from testkit.factories import new_id, unique_email, wait_until
from testkit.harness import Harness, harness_for
from testkit.messages import ReceivedMessage, SentMessage
from testkit.private import PrivatePostgres, accepts_tcp, postgres_installed, private_postgres
from testkit.processes import WorkerPool, WorkerProcess
from testkit.sandbox import create_database, drop_database
from testkit.services import NO_SERVICE

pytestmark = pytest.mark.integration

WAIT = 30.0
ALL_DELAYS = (1, 2, 3, 4, 8)
"""Every retry delay used here (for deleting the delay queues afterwards)."""
BROKER_HEADERS = {
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
}
"""``x-`` headers the broker itself may add; ours must never start with ``x-``."""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's worker logs go."""
    return tmp_path_factory.mktemp("retries-logs")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of our own, which tests may stop (and must start again)."""
    if not postgres_installed():
        pytest.skip(f"{NO_SERVICE} PostgreSQL server binaries (initdb, pg_ctl) not installed")
    with private_postgres() as server:
        yield server


def ensure_running(server: PrivatePostgres) -> None:
    """Start the private cluster unless it already accepts connections."""
    if not accepts_tcp(server.port):
        server.start()


@pytest.fixture
def pg_database(private_pg: PrivatePostgres) -> Iterator[str]:
    """A fresh database in the private cluster."""
    url = create_database(private_pg.url, prefix="retries_")
    yield url
    ensure_running(private_pg)
    drop_database(url)


@pytest.fixture
def pool(log_dir: Path) -> Iterator[WorkerPool]:
    """Workers started by one test; all killed at its end."""
    workers = WorkerPool(log_dir)
    yield workers
    workers.stop_all(timeout=5)
    workers.kill_all()


def delete_topologies(amqp_url: str, *topologies: Topology) -> None:
    """Delete the exchanges and queues of workers that used these names."""
    with AmqpClient(amqp_url) as client:
        for topology in topologies:
            client.delete_topology(topology, ALL_DELAYS)


@pytest.fixture
def topology(amqp_url: str) -> Iterator[Topology]:
    """Exchange and queue names of this test's own."""
    names = Topology.unique()
    yield names
    delete_topologies(amqp_url, names)


@pytest.fixture(scope="module")
def steady(
    amqp_url: str, postgres_url: str, log_dir: Path
) -> Iterator[tuple[WorkerEnv, WorkerProcess]]:
    """One worker on a fresh shared-server database, for the tests that keep the database up.

    Unexpected errors get three attempts 2 s apart (``WORKER_RETRY_DELAYS=2``).
    """
    database = create_database(postgres_url, prefix="retries_steady_")
    topology = Topology.unique()
    env = WorkerEnv(amqp_url, database, topology).with_overrides(
        WORKER_RETRY_DELAYS="2", WORKER_MAX_ATTEMPTS="5"
    )
    workers = WorkerPool(log_dir)
    try:
        yield env, workers.start(env, name="steady")
    finally:
        workers.stop_all(timeout=5)
        workers.kill_all()
        delete_topologies(amqp_url, topology)
        drop_database(database)


# --- helpers ----------------------------------------------------------------------------------


def handled(worker: WorkerProcess, sent: SentMessage) -> list[dict[str, Any]]:
    """The worker's ``message.handled`` records for ``sent``, in order."""
    return worker.find_logs("message.handled", message_id=sent.message_id)


def trail(worker: WorkerProcess, sent: SentMessage) -> list[tuple[str, Any, Any]]:
    """What the worker logged about ``sent``, briefly (event, action, error)."""
    return [
        (r["event"], r.get("action"), r.get("error"))
        for r in worker.log_records()
        if r.get("message_id") == sent.properties.message_id
    ]


def customer(email: str | None = None, **fields: Any) -> dict[str, Any]:
    """A CreateCustomer payload with a fresh email."""
    return {"email": email or unique_email(), "full_name": "Retry Test", **fields}


def copies_in_dlq(client: AmqpClient, predicate: Callable[[ReceivedMessage], bool]) -> int:
    """How many messages in the DLQ match, without removing any."""
    return sum(1 for m in client.dead_letters(ack=False) if predicate(m))


def is_copy_of(sent: SentMessage) -> Callable[[ReceivedMessage], bool]:
    """Whether a dead letter is ``sent``: same body, byte for byte."""
    return lambda m: m.body == sent.body


def dead_lettered_event(h: Harness, sent: SentMessage) -> ReceivedMessage:
    """The ``CommandDeadLettered`` event reporting ``sent``."""
    return h.events.wait_for(
        lambda m: m.type == "CommandDeadLettered" and m.causation_id == sent.message_id,
        timeout=WAIT,
    )[0]


def assert_dead_letter(
    letter: ReceivedMessage, sent: SentMessage, *, error_type: str, attempts: int
) -> None:
    """The contract's record on a dead letter (guarantee 5)."""
    headers = letter.headers
    assert letter.body == sent.body, "the body must be kept byte for byte"
    assert letter.properties.message_id == sent.message_id
    assert letter.persistent
    assert headers[HEADER_ERROR_TYPE] == error_type, headers
    assert int(headers[HEADER_ATTEMPTS]) == attempts, headers
    assert headers[HEADER_ORIGINAL_ROUTING_KEY] == sent.routing_key, headers
    assert headers[HEADER_ERROR_MESSAGE], headers
    first = datetime.fromisoformat(headers[HEADER_FIRST_FAILED_AT])
    last = datetime.fromisoformat(headers[HEADER_LAST_FAILED_AT])
    assert first.tzinfo is not None, first
    assert first <= last, (first, last)
    if attempts > 1:
        assert first < last, (first, last)
    ours = {k for k in headers if k not in BROKER_HEADERS}
    assert not [k for k in ours if k.lower().startswith("x-")], headers


def assert_dead_letter_event(
    event: ReceivedMessage, sent: SentMessage, *, error_type: str, attempts: int
) -> None:
    """The ``CommandDeadLettered`` event (contract, guarantee 5)."""
    assert event.routing_key == "command.dead_lettered", event
    assert event.persistent
    event.parsed()
    payload = event.payload
    assert payload["command_message_id"] == sent.message_id, payload
    assert payload["command_type"] == sent.type, payload
    assert payload["error_type"] == error_type, payload
    assert payload["attempts"] == attempts, payload


# --- transient faults -------------------------------------------------------------------------


def test_a_transient_failure_is_retried_through_the_delay_queue_then_dead_lettered(
    amqp_url: str,
    private_pg: PrivatePostgres,
    pg_database: str,
    topology: Topology,
    pool: WorkerPool,
) -> None:
    env = WorkerEnv(amqp_url, pg_database, topology).with_overrides(
        WORKER_RETRY_DELAYS="1,1", WORKER_MAX_ATTEMPTS="3"
    )
    worker = pool.start(env)
    email = unique_email()
    with harness_for(env, worker) as h:
        private_pg.stop()
        try:
            sent = h.send(
                "CreateCustomer",
                customer(email),
                headers={"trace-id": "t-42", "x-client-hint": "set by the publisher"},
            )
            most_in_retry = 0
            deadline = time.monotonic() + WAIT
            while h.client.queue_counts(topology.dead_letter_queue)[0] == 0:
                assert time.monotonic() < deadline, f"nothing dead-lettered:\n{worker.log_tail()}"
                ready, _ = h.client.queue_counts(topology.delay_queue(1))
                most_in_retry = max(most_in_retry, ready)
                time.sleep(0.05)
            letter = h.client.wait_dead_letter(is_copy_of(sent), timeout=WAIT)
            event = dead_lettered_event(h, sent)
        finally:
            ensure_running(private_pg)

        assert most_in_retry == 1, "the command should have waited in the 1 s delay queue"
        records = handled(worker, sent)
        assert [(r["attempt"], r["action"], r["outcome"]) for r in records] == [
            (1, "retry", "transient"),
            (2, "retry", "transient"),
            (3, "dead_letter", "transient"),
        ], records
        assert_dead_letter(letter, sent, error_type="transient", attempts=3)
        assert letter.headers["trace-id"] == "t-42", "the publisher's own headers stay"
        assert "x-client-hint" not in letter.headers, "x- headers are the broker's: dropped"
        assert "postgres" not in letter.headers[HEADER_ERROR_MESSAGE].lower()  # no URLs
        assert_dead_letter_event(event, sent, error_type="transient", attempts=3)

        assert not [e for e in h.events.caused_by(sent) if e.type == "CustomerCreated"]
        assert h.fetchval("SELECT count(*) FROM customers WHERE email = $1", email) == 0
        inbox = "SELECT count(*) FROM inbox_messages WHERE message_id = $1"
        assert h.fetchval(inbox, sent.message_id) == 0
        assert h.client.input_counts()[0] == 0
        assert h.client.queue_counts(topology.delay_queue(1))[0] == 0
        assert worker.is_running


def test_a_database_back_within_the_schedule_applies_the_command_once(
    amqp_url: str,
    private_pg: PrivatePostgres,
    pg_database: str,
    topology: Topology,
    pool: WorkerPool,
) -> None:
    env = WorkerEnv(amqp_url, pg_database, topology).with_overrides(
        WORKER_RETRY_DELAYS="2,4,8", WORKER_MAX_ATTEMPTS="6"
    )
    worker = pool.start(env)
    email = unique_email()
    with harness_for(env, worker) as h:
        private_pg.stop()
        try:
            sent = h.send("CreateCustomer", customer(email))
            wait_until(
                lambda: any(r["action"] == "retry" for r in handled(worker, sent)),
                timeout=WAIT,
                message=lambda: f"no retry logged:\n{worker.log_tail()}",
            )
        finally:
            ensure_running(private_pg)
        created = h.events.wait_caused_by(sent, timeout=WAIT)[0]
        time.sleep(1.0)  # time for a second outcome to show, if there were one

        assert created.type == "CustomerCreated", created
        assert len(h.events.caused_by(sent)) == 1
        records = handled(worker, sent)
        assert (records[-1]["action"], records[-1]["outcome"]) == ("ack", "applied"), records
        assert records[-1]["attempt"] >= 2, records
        assert {(r["action"], r["outcome"]) for r in records[:-1]} == {("retry", "transient")}
        assert h.fetchval("SELECT count(*) FROM customers WHERE email = $1", email) == 1
        inbox = "SELECT count(*) FROM inbox_messages WHERE message_id = $1"
        assert h.fetchval(inbox, sent.message_id) == 1
        assert h.client.queue_counts(topology.dead_letter_queue)[0] == 0
        assert not h.events.events_of_type("CommandDeadLettered")
        assert worker.is_running


# --- unexpected errors and bad input -----------------------------------------------------------


def test_a_poison_message_never_blocks_the_queue(
    steady: tuple[WorkerEnv, WorkerProcess],
) -> None:
    env, worker = steady
    db_execute(
        env.database_url,
        "ALTER TABLE customers ADD CONSTRAINT test_poison_pill CHECK (full_name <> 'Poison Pill')",
    )
    with harness_for(env, worker) as h:
        poison = h.send("CreateCustomer", customer(full_name="Poison Pill"))
        valid = [h.send("CreateCustomer", customer()) for _ in range(20)]
        for sent in valid:
            assert h.events.wait_caused_by(sent, timeout=WAIT)[0].type == "CustomerCreated"
        # Everything valid was applied while the poison still waits for its next attempt.
        assert copies_in_dlq(h.client, is_copy_of(poison)) == 0
        first = wait_until(lambda: handled(worker, poison), timeout=WAIT)[0]
        assert first["action"] == "retry", first

        letter = h.client.wait_dead_letter(is_copy_of(poison), timeout=WAIT)
        event = dead_lettered_event(h, poison)
        after = h.send("CreateCustomer", customer())
        assert h.events.wait_caused_by(after, timeout=WAIT)[0].type == "CustomerCreated"

    records = handled(worker, poison)
    assert [(r["attempt"], r["action"], r["outcome"]) for r in records] == [
        (1, "retry", "unexpected"),
        (2, "retry", "unexpected"),
        (3, "dead_letter", "unexpected"),
    ], records
    assert_dead_letter(letter, poison, error_type="unexpected", attempts=3)
    assert "Poison Pill" not in letter.headers[HEADER_ERROR_MESSAGE]  # no input values
    assert_dead_letter_event(event, poison, error_type="unexpected", attempts=3)
    assert db_fetchval(env.database_url, "SELECT count(*) FROM customers") == 21
    assert worker.is_running


INVALID_PROPERTIES = {
    "plain": {},
    "no-amqp-type": {"type": None},
    "empty-amqp-type": {"type": ""},
    "amqp-type-with-a-space": {"type": "Create Customer"},
    "amqp-message-id-with-a-newline": {"message_id": "line\nbreak"},
    "absurd-attempt-header": {"headers": {HEADER_ATTEMPTS: "1" + "0" * 20}},
}


@pytest.mark.parametrize("properties", INVALID_PROPERTIES.values(), ids=INVALID_PROPERTIES)
def test_an_unreadable_message_is_dead_lettered_once_at_once(
    steady: tuple[WorkerEnv, WorkerProcess], properties: dict[str, Any]
) -> None:
    """Not JSON: the DLQ at once (one attempt, no delay queue), exactly one copy with our
    record, one report, whatever the AMQP properties and headers say."""
    env, worker = steady
    marker = new_id()
    with harness_for(env, worker) as h:
        started = time.monotonic()
        sent = h.send(
            "CreateCustomer", raw_body=f"not json {marker}".encode(), properties=properties
        )
        letter = h.client.wait_dead_letter(is_copy_of(sent), timeout=WAIT, ack=False)
        took = time.monotonic() - started
        time.sleep(2.5)  # a settle that failed would put the message back within ~1 s
        copies = copies_in_dlq(h.client, is_copy_of(sent))
        h.client.wait_dead_letter(is_copy_of(sent), timeout=5)  # tidy up: take one out
        why = f"the worker's records: {trail(worker, sent)}"
        assert letter.headers.get(HEADER_ERROR_TYPE) == "invalid_message", (letter.headers, why)
        assert copies == 1, f"{copies} copies in the DLQ; {why}"
        assert took < 5, f"dead-lettered after {took:.1f} s; {why}"
        reported_as = {sent.properties.message_id, body_digest_id(sent.body)}
        event = h.events.wait_for(
            lambda m: m.type == "CommandDeadLettered" and m.causation_id in reported_as,
            timeout=5,
        )[0]

    if HEADER_ATTEMPTS not in properties.get("headers", {}):
        assert int(letter.headers[HEADER_ATTEMPTS]) == 1
        assert event.payload["attempts"] == 1
    assert letter.headers[HEADER_FIRST_FAILED_AT] == letter.headers[HEADER_LAST_FAILED_AT]
    assert event.payload["error_type"] == "invalid_message"
    assert worker.is_running
