"""Surviving outages: the broker restarts, the database restarts, the database stays down.

Only private instances are stopped here (``testkit.private``): a RabbitMQ node and a
PostgreSQL cluster of this module's own, never the shared services. Each test has its own
database in the private cluster and its own exchange and queue names on the private node.

Events are collected in a durable quorum queue bound to the events exchange and read after
the fact, so that events published around a broker restart are not lost by the collector
itself (an exclusive queue would vanish with the connection).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contracts.topology import HEADER_ATTEMPTS, HEADER_ERROR_TYPE
from testkit.amqp import AmqpClient
from testkit.config import Topology, WorkerEnv
from testkit.database import db_fetchval
from testkit.factories import unique_email, unique_token, wait_until
from testkit.messages import ReceivedMessage, SentMessage
from testkit.private import (
    PrivatePostgres,
    PrivateRabbitMQ,
    accepts_tcp,
    free_port,
    postgres_installed,
    private_postgres,
    private_rabbitmq,
    rabbitmq_installed,
)
from testkit.processes import WORKER_BIN, WorkerPool, WorkerProcess
from testkit.sandbox import create_database
from testkit.services import NO_SERVICE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAIT = 60.0
INBOX = "SELECT count(*) FROM inbox_messages"
UNSENT = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"


# --- private services -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of this module's own (tests may restart it)."""
    if not rabbitmq_installed():
        pytest.skip(f"{NO_SERVICE} rabbitmq-server / rabbitmqctl not installed")
    with private_rabbitmq() as node:
        yield node


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own (tests may stop and restart it)."""
    if not postgres_installed():
        pytest.skip(f"{NO_SERVICE} PostgreSQL server binaries (initdb, pg_ctl) not installed")
    with private_postgres() as server:
        yield server


def ensure_running(server: PrivatePostgres) -> None:
    """Start the private cluster unless it already accepts connections."""
    if not accepts_tcp(server.port):
        server.start()


@pytest.fixture
def private_env(broker: PrivateRabbitMQ, cluster: PrivatePostgres) -> Iterator[WorkerEnv]:
    """A worker environment on the private node and a fresh database of the private cluster."""
    ensure_running(cluster)
    database = create_database(cluster.url, prefix="outage_")
    yield WorkerEnv(broker.url, database, Topology.unique())
    ensure_running(cluster)  # a failed test may have left it stopped; the next needs it


# --- helpers ----------------------------------------------------------------------------------


class DurableCollector:
    """A durable quorum queue bound to the events exchange, read when the test is done."""

    def __init__(self, client: AmqpClient, exchange: str) -> None:
        self.queue = f"outage.collector.{unique_token()}"
        channel = client.channel
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        channel.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.queue, exchange, routing_key="#")
        self.messages: list[ReceivedMessage] = []

    def drain(self, client: AmqpClient) -> list[ReceivedMessage]:
        """Take everything the queue holds now; all collected so far."""
        self.messages += client.dead_letters(self.queue)  # a plain basic_get loop with acks
        return self.messages

    def of_type(self, event_type: str) -> list[ReceivedMessage]:
        """Collected events of one type."""
        return [m for m in self.messages if m.type == event_type]


def create_customers(client: AmqpClient, count: int) -> list[SentMessage]:
    """Publish ``count`` CreateCustomer commands, each confirmed by the broker."""
    return client.publish_many(
        {"type": "CreateCustomer", "payload": {"email": unique_email(), "full_name": "Outage"}}
        for _ in range(count)
    )


def count(env: WorkerEnv, sql: str, *args: Any) -> int:
    """A count from the worker's database."""
    return int(db_fetchval(env.database_url, sql, *args))


def wait_count(env: WorkerEnv, sql: str, expected: int, worker: WorkerProcess) -> None:
    """Wait until the count reaches ``expected`` (and fail if the worker died)."""

    def reached() -> bool:
        assert worker.is_running, f"the worker exited:\n{worker.log_tail(30)}"
        return count(env, sql) >= expected

    wait_until(
        reached,
        timeout=WAIT,
        interval=0.25,
        message=lambda: f"{sql}: {count(env, sql)} of {expected}\n{worker.log_tail(15)}",
    )


def wait_all_events_confirmed(env: WorkerEnv, worker: WorkerProcess) -> None:
    """Wait until the broker has confirmed every event in the outbox."""
    wait_until(
        lambda: count(env, UNSENT) == 0,
        timeout=WAIT,
        interval=0.25,
        message=lambda: f"{count(env, UNSENT)} events unsent\n{worker.log_tail(15)}",
    )


def assert_applied_exactly_once(env: WorkerEnv, sent: list[SentMessage]) -> None:
    """One inbox row per command and one customer per email, nothing else."""
    ids = [s.message_id for s in sent]
    emails = [json.loads(s.body)["payload"]["email"] for s in sent]
    assert count(env, INBOX) == len(sent)
    assert count(env, f"{INBOX} WHERE message_id = ANY($1::text[])", ids) == len(sent)
    assert count(env, "SELECT count(*) FROM customers") == len(sent)
    distinct = "SELECT count(DISTINCT email) FROM customers WHERE email = ANY($1::text[])"
    assert count(env, distinct, emails) == len(sent)


def assert_every_command_has_its_event(
    events: list[ReceivedMessage], sent: list[SentMessage]
) -> None:
    """At least one event per command, and one event id per command (a redelivery or the
    relay may publish the same event twice, never two different ones), and nothing else."""
    by_cause: dict[str, set[str | None]] = defaultdict(set)
    for event in events:
        by_cause[event.causation_id or ""].add(event.message_id)
    missing = [s.message_id for s in sent if not by_cause.get(s.message_id)]
    assert not missing, f"{len(missing)} of {len(sent)} commands have no event: {missing[:3]}"
    assert all(len(by_cause[s.message_id]) == 1 for s in sent), "two events for one command"
    assert set(by_cause) == {s.message_id for s in sent}, "events caused by something else"


# --- the broker restarts ----------------------------------------------------------------------


def test_a_broker_restart_with_a_thousand_commands_in_flight_loses_nothing(
    broker: PrivateRabbitMQ, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    env = private_env.with_overrides(WORKER_CONCURRENCY="4", WORKER_PREFETCH="20")
    worker = workers.start(env)
    with AmqpClient(env.amqp_url, env.topology) as client:
        collector = DurableCollector(client, env.topology.events_exchange)
        sent = create_customers(client, 1000)
    wait_count(env, INBOX, 100, worker)
    assert count(env, INBOX) < 900, "too late to restart mid-way: slow the worker down"

    broker.restart()
    assert count(env, INBOX) < 1000, "the restart came too late to leave work for afterwards"

    wait_count(env, INBOX, 1000, worker)
    wait_all_events_confirmed(env, worker)
    with AmqpClient(env.amqp_url, env.topology) as client:
        client.wait_inputs_empty(timeout=WAIT)
        assert client.input_counts()[1] == env.topology.partitions, "consumers are back"
        collector.drain(client)
        assert client.queue_counts(env.topology.dead_letter_queue)[0] == 0

    assert worker.is_running
    assert worker.count_log("worker.started") == 1, "the worker reconnected, not restarted"
    assert_applied_exactly_once(env, sent)
    assert {m.type for m in collector.messages} == {"CustomerCreated"}
    assert_every_command_has_its_event(collector.messages, sent)


# --- the database restarts --------------------------------------------------------------------


def test_a_database_restart_shorter_than_the_retry_schedule_dead_letters_nothing(
    cluster: PrivatePostgres, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    env = private_env.with_overrides(
        WORKER_RETRY_DELAYS="1,2,4", WORKER_MAX_ATTEMPTS="10", WORKER_CONCURRENCY="4"
    )
    worker = workers.start(env)
    with AmqpClient(env.amqp_url, env.topology) as client:
        collector = DurableCollector(client, env.topology.events_exchange)
        sent = create_customers(client, 300)
        wait_count(env, INBOX, 30, worker)

        cluster.stop()
        time.sleep(2)  # an outage of a few seconds, well inside 1+2+4+4+… seconds
        cluster.start()

        wait_count(env, INBOX, 300, worker)
        wait_all_events_confirmed(env, worker)
        client.wait_inputs_empty(timeout=WAIT)
        collector.drain(client)
        assert client.queue_counts(env.topology.dead_letter_queue)[0] == 0

    retried = worker.find_logs("message.handled", action="retry", outcome="transient")
    assert retried, "the outage should have made some commands retry"
    assert not worker.find_logs("message.handled", action="dead_letter")
    assert worker.is_running
    assert_applied_exactly_once(env, sent)
    assert {m.type for m in collector.messages} == {"CustomerCreated"}, "no dead letter"
    assert_every_command_has_its_event(collector.messages, sent)


def test_commands_dead_lettered_in_a_long_outage_are_applied_once_by_a_replay(
    cluster: PrivatePostgres, private_env: WorkerEnv, workers: WorkerPool, tmp_path: Path
) -> None:
    env = private_env.with_overrides(
        WORKER_RETRY_DELAYS="1,1",
        WORKER_MAX_ATTEMPTS="3",
        WORKER_DLQ_AUDIT_LOG=str(tmp_path / "audit.log"),
    )
    worker = workers.start(env)
    dlq = env.topology.dead_letter_queue
    with AmqpClient(env.amqp_url, env.topology) as client:
        collector = DurableCollector(client, env.topology.events_exchange)
        cluster.stop()
        try:
            sent = create_customers(client, 50)
            wait_until(
                lambda: client.queue_counts(dlq)[0] >= 50,
                timeout=WAIT,
                message=lambda: f"{client.queue_counts(dlq)[0]} of 50 dead-lettered",
            )
            letters = client.dead_letters(ack=False)
        finally:
            cluster.start()

        assert sorted(m.properties.message_id for m in letters) == sorted(
            s.message_id for s in sent
        )
        assert {m.headers[HEADER_ERROR_TYPE] for m in letters} == {"transient"}
        assert {int(m.headers[HEADER_ATTEMPTS]) for m in letters} == {3}

        replay = subprocess.run(
            [str(WORKER_BIN), "dlq", "replay", "--all"],
            env=env.environ(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert replay.returncode == 0, replay.stderr
        assert "replayed 50" in replay.stdout, replay.stdout

        wait_count(env, INBOX, 50, worker)
        wait_all_events_confirmed(env, worker)
        client.wait_inputs_empty(timeout=WAIT)
        # A marker, not a sleep: a query writes nothing, and its answer leaves on the channel
        # the worker publishes every event on, after whatever a replayed duplicate published.
        client.request("GetCustomer", {"customer_id": "CUST-000001"}, timeout=WAIT)
        collector.drain(client)
        assert client.queue_counts(dlq)[0] == 0

    assert worker.is_running
    assert_applied_exactly_once(env, sent)
    reports = collector.of_type("CommandDeadLettered")
    assert sorted(m.causation_id or "" for m in reports) == sorted(s.message_id for s in sent)
    assert {m.payload["error_type"] for m in reports} == {"transient"}
    assert {m.type for m in collector.messages} == {"CustomerCreated", "CommandDeadLettered"}
    assert_every_command_has_its_event(collector.of_type("CustomerCreated"), sent)
    assert (tmp_path / "audit.log").read_text().count('"finished"') == 1


# --- hardening: alarms, stops and start-ups in bad weather (issue 11) ------------------------


def test_under_a_memory_alarm_commands_are_still_acked_and_nothing_hangs(
    broker: PrivateRabbitMQ, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    """An alarm blocks publishing connections: the events wait (bounded), the acks do not.

    Publishing and consuming share no connection, so deliveries are still acked once their
    transaction committed; publishes time out instead of hanging (the relay's locks with
    them); a SIGTERM still stops the worker; after the alarm every event goes out.
    """
    env = private_env.with_overrides(
        WORKER_PUBLISH_TIMEOUT="2", WORKER_SHUTDOWN_TIMEOUT="5", WORKER_OUTBOX_GRACE_SECONDS="0.5"
    )
    workers.start(env).terminate()  # the topology, declared
    with AmqpClient(env.amqp_url, env.topology) as client:
        collector = DurableCollector(client, env.topology.events_exchange)
        sent = create_customers(client, 20)  # before the alarm, which would block us too
        broker.ctl("set_vm_memory_high_watermark", "0.00001")
        wait_until(lambda: "memory" in broker.ctl("eval", "rabbit_alarm:get_alarms().").stdout)
        try:
            worker = workers.start(env, migrate=False)
            wait_count(env, INBOX, len(sent), worker)
            client.wait_inputs_empty(timeout=WAIT)  # acked: the consume connection is free
            assert count(env, UNSENT) > 0
            assert worker.find_logs("outbox.fast_path_failed"), worker.log_tail()
            started = time.monotonic()
            assert worker.terminate(timeout=60) == 0
            assert time.monotonic() - started < 45, "the stop waited on a blocked publish"
        finally:
            broker.ctl("set_vm_memory_high_watermark", "0.4")
        worker = workers.start(env, migrate=False)
        wait_all_events_confirmed(env, worker)
        collector.drain(client)
    assert_applied_exactly_once(env, sent)
    assert_every_command_has_its_event(collector.messages, sent)


def test_sigterm_while_the_database_is_down_still_drains_closes_and_exits(
    cluster: PrivatePostgres, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    env = private_env.with_overrides(WORKER_SHUTDOWN_TIMEOUT="5")
    worker = workers.start(env)
    with AmqpClient(env.amqp_url, env.topology) as client:
        create_customers(client, 10)
        wait_count(env, INBOX, 10, worker)
    cluster.stop()

    started = time.monotonic()
    code = worker.terminate(timeout=90)

    assert code == 0, worker.log_tail(20)
    assert time.monotonic() - started < 60
    assert worker.find_logs("worker.stopped"), worker.log_tail(20)


def test_start_up_failures_are_one_line_that_names_the_service_and_hides_the_password(
    broker: PrivateRabbitMQ, cluster: PrivatePostgres, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    secret = f"S3cret-{unique_token()}"
    port = broker.url.rsplit(":", 1)[1].split("/", 1)[0]
    wrong_password = broker.url.replace("guest:guest@", f"guest:{secret}@", 1)
    broker_cases = [
        ("the broker", replace(private_env, amqp_url=wrong_password), "rejected the credentials"),
        (
            "the broker",
            replace(private_env, amqp_url=broker.url.replace(f":{port}", f":{free_port()}")),
            "is unreachable",
        ),
    ]
    db_url = private_env.database_url.replace("://postgres@", f"://postgres:{secret}@", 1)
    database_case = ("the database", replace(private_env, database_url=db_url), "is unreachable")
    try:
        for index, (service, env, what) in enumerate([*broker_cases, database_case]):
            if index == len(broker_cases):
                cluster.stop()  # the database down, with a password in its URL
            worker = workers.spawn(env)
            worker.start(migrate=False, wait=False)
            assert worker.wait_exit(timeout=60) == 1, worker.log_tail()
            [failure] = worker.find_logs("worker.start_failed")
            assert failure["error"].startswith(service), failure
            assert what in failure["error"], failure
            assert "127.0.0.1" in failure["error"], failure  # says where
            assert secret not in worker.logs()
            assert "Traceback" not in worker.logs()
    finally:
        ensure_running(cluster)


def arguments(listed: list[list[Any]] | dict[str, Any]) -> dict[str, Any]:
    """Queue arguments as rabbitmqctl lists them ([name, type, value] triples) as a dict."""
    if isinstance(listed, dict):
        return listed
    return {entry[0]: entry[-1] for entry in listed}


def test_every_queue_is_declared_as_the_contract_says(
    broker: PrivateRabbitMQ, private_env: WorkerEnv, workers: WorkerPool
) -> None:
    """Read the queues' arguments back from the broker, not from our own code."""
    workers.start(private_env)
    listed = broker.ctl(
        "list_queues", "-p", "/", "name", "type", "arguments", "--formatter", "json"
    ).stdout
    queues = {q["name"]: {**q, "arguments": arguments(q["arguments"])} for q in json.loads(listed)}
    topology = private_env.topology

    for name in topology.partition_queues():
        args = queues[name]["arguments"]
        assert queues[name]["type"] == "quorum"
        assert args["x-single-active-consumer"] is True
        assert args["x-delivery-limit"] == 20
        assert args["x-dead-letter-routing-key"] == topology.dead_letter_queue
        assert args["x-dead-letter-strategy"] == "at-least-once"
        assert args["x-overflow"] == "reject-publish"
    for delay in (1, 5, 30):
        args = queues[topology.delay_queue(delay)]["arguments"]
        assert queues[topology.delay_queue(delay)]["type"] == "quorum"
        assert args["x-dead-letter-exchange"] == topology.partitions_exchange
        assert args["x-dead-letter-strategy"] == "at-least-once"
        assert args["x-overflow"] == "reject-publish"
        assert 1000 * delay < args["x-message-ttl"] <= 1100 * delay + 1
    assert queues[topology.dead_letter_queue]["type"] == "quorum"
