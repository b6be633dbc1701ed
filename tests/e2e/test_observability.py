"""What an operator sees: logs without personal data, metrics that add up, honest health.

One worker (own database and topology, DEBUG logs, metrics on a free port) serves the log,
metrics and readiness tests; the outage tests start their own worker on a private PostgreSQL
cluster or RabbitMQ node and stop that, never the shared services.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from testkit.config import WorkerEnv
from testkit.factories import new_id, pii_token, unique_code, unique_email, unique_token, wait_until
from testkit.harness import Harness, harness_for, isolated_env
from testkit.http import Scrape, http_json, scrape
from testkit.messages import SentMessage
from testkit.private import (
    free_port,
    postgres_installed,
    private_postgres,
    private_rabbitmq,
    rabbitmq_installed,
)
from testkit.processes import WorkerPool, WorkerProcess
from testkit.sandbox import create_database
from testkit.services import NO_SERVICE

pytestmark = pytest.mark.e2e

PII_MARKER = re.compile(r"pii[0-9a-f]{12}")
"""What ``pii_token()`` puts in every personal value below; no log line may contain one."""
HANDLED_FIELDS = ("message_id", "type", "correlation_id", "attempt", "outcome", "duration_ms")
OUTAGE_TIMEOUT = 30.0
"""Seconds for /readyz to notice an outage or a recovery (the broker reconnect backs off)."""


def with_password(url: str, password: str) -> str:
    """``url`` with a password added for its user (the test server trusts local clients)."""
    parts = urlsplit(url)
    if parts.password:
        return url
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@dataclass
class World:
    """The module's worker, its harness, its metrics port and its secrets."""

    env: WorkerEnv
    worker: WorkerProcess
    h: Harness
    port: int
    secrets: list[str]


@pytest.fixture(scope="module")
def world(worker_env: WorkerEnv, worker_log_dir: Path) -> Iterator[World]:
    """A DEBUG-logging worker with metrics, on a database URL that carries a password."""
    pool = WorkerPool(worker_log_dir)
    port = free_port()
    overrides = {"WORKER_LOG_LEVEL": "DEBUG", "WORKER_METRICS_PORT": str(port)}
    with isolated_env(worker_env, **overrides) as base:
        database_password = f"Db-{unique_token(8)}"
        env = replace(base, database_url=with_password(base.database_url, database_password))
        secrets = [p for p in (urlsplit(env.database_url).password,) if p]
        amqp_password = urlsplit(env.amqp_url).password
        if amqp_password and amqp_password != "guest":  # guest:guest is public knowledge
            secrets.append(amqp_password)
        try:
            worker = pool.start(env, name="observed")
            with harness_for(env, worker) as h:
                yield World(env, worker, h, port, secrets)
        finally:
            pool.stop_all()
            pool.kill_all()


def send_and_wait(h: Harness, *messages: dict[str, Any]) -> list[SentMessage]:
    """Publish commands (``publish_command`` keyword dicts) and wait until each is handled."""
    sent = h.client.publish_many(messages)
    for message in sent:
        h.wait_handled(message)
    return sent


# --- logs -------------------------------------------------------------------------------------


def personal_data() -> dict[str, str]:
    """Unique personal data, each value easy to find in a log."""
    return {
        "email": f"{pii_token()}@example.com",
        "full_name": f"Alexandra {pii_token()} Smith",
        "phone": f"+44 7700 {random.randint(100000, 999999)}",
        "subject": f"My mortgage {pii_token()}",
        "content": f"My card number is 4929 1234 5678 9012 and my name {pii_token()}",
        "reason": f"Customer {pii_token()} is in financial distress",
        "description": f"Rent to landlord {pii_token()}",
        "nickname": f"Lexi {pii_token()}",
        "not_json": f"oops {pii_token()}@example.org +44 7700 900461",
    }


def test_personal_data_never_reaches_the_logs(world: World) -> None:
    h, pii = world.h, personal_data()
    correlation = f"chat-{unique_token()}"
    sent_customer = h.send(
        "CreateCustomer",
        {"email": pii["email"], "full_name": pii["full_name"], "phone": pii["phone"]},
        correlation_id=correlation,
    )
    customer_id = h.outcome(sent_customer).payload["customer_id"]
    account = h.open_account(customer_id)
    conversation = new_id()
    sent = [
        sent_customer,
        *send_and_wait(
            h,
            {
                "type": "StartConversation",
                "payload": {
                    "customer_id": customer_id,
                    "channel": "chat",
                    "conversation_id": conversation,
                    "subject": pii["subject"],
                },
                "correlation_id": correlation,
            },
        ),
        *send_and_wait(
            h,
            {
                "type": "AppendMessage",
                "payload": {
                    "conversation_id": conversation,
                    "role": "customer",
                    "content": pii["content"],
                },
                "correlation_id": correlation,
            },
            {
                "type": "EscalateConversation",
                "payload": {"conversation_id": conversation, "reason": pii["reason"]},
                "correlation_id": correlation,
            },
            {
                "type": "RecordTransaction",
                "payload": {
                    "account_number": account,
                    "amount": "950.00",
                    "direction": "credit",
                    "description": pii["description"],
                    "reference": unique_code("RENT"),
                },
            },
            {  # a rejection that concerns personal data: email_taken
                "type": "CreateCustomer",
                "payload": {"email": pii["email"], "full_name": pii["full_name"]},
            },
            {  # invalid: an unknown field holding personal data
                "type": "CreateCustomer",
                "payload": {
                    "email": pii["email"],
                    "full_name": pii["full_name"],
                    "nickname": pii["nickname"],
                },
            },
            {"type": "CreateCustomer", "raw_body": pii["not_json"].encode()},  # invalid: not JSON
        ),
    ]
    h.query("GetCustomer", {"email": pii["email"]})

    logs = world.worker.logs()
    leaked = {field: value for field, value in pii.items() if value in logs}
    assert not leaked, f"personal data in the logs: {leaked}"
    markers = PII_MARKER.findall(logs)
    assert not markers, f"personal data (marked {markers[:3]}) in the logs"
    assert not [s for s in world.secrets if s in logs], "a password is in the logs"
    missing = [s.message_id for s in sent if s.message_id not in logs]
    assert not missing, f"the logs do not name the messages {missing}"


def test_every_message_handled_line_names_the_message(world: World) -> None:
    h = world.h
    envelope_only = new_id()  # a UUID: the worker's logs keep those readable
    sent = send_and_wait(
        h,
        {
            "type": "CreateCustomer",
            "payload": {"email": unique_email(), "full_name": "Log Fields"},
            "correlation_id": new_id(),
        },
        {  # correlation id in the envelope only, as the contract puts it
            "type": "DeleteCustomer",
            "payload": {"customer_id": "CUST-NONE"},
            "envelope": {"correlation_id": envelope_only},
        },
        {"type": "DeleteCustomer", "payload": {"customer_id": "CUST-NONE"}},
    )
    records = world.worker.find_logs("message.handled")
    assert records
    incomplete = [r for r in records if any(f not in r for f in HANDLED_FIELDS)]
    assert not incomplete, f"message.handled without {HANDLED_FIELDS}: {incomplete[:3]}"
    by_id = {r["message_id"]: r for r in records}
    for message in sent:
        record = by_id[message.message_id]
        assert record["type"] == message.type
        assert record["attempt"] == 1
        assert isinstance(record["duration_ms"], int | float)
        assert record["duration_ms"] >= 0
    assert by_id[sent[0].message_id]["correlation_id"] == sent[0].correlation_id
    assert by_id[sent[0].message_id]["outcome"] == "applied"
    assert by_id[sent[1].message_id]["correlation_id"] == envelope_only
    assert by_id[sent[2].message_id]["outcome"] == "rejected"
    assert by_id[sent[2].message_id]["correlation_id"] in (None, sent[2].message_id)


def test_a_started_worker_takes_its_startup_objects_out_of_the_collectors_reach(
    world: World,
) -> None:
    """Else every full garbage collection would traverse them again, pausing every command."""
    (record,) = world.worker.find_logs("worker.startup_objects_frozen")
    assert record["objects"] > 10_000, record  # modules, mappers, statements, connections


def test_garbage_collections_are_timed_by_generation(world: World) -> None:
    """Each collection stops the event loop: the worker exports how long, per generation."""
    send_and_wait(
        world.h,
        *(
            {"type": "CreateCustomer", "payload": {"email": unique_email(), "full_name": "G"}}
            for _ in range(3)
        ),
    )
    wait_until(  # reported from the event loop once a second, not from inside the collector
        lambda: scrape(world.port).total("fca_gc_pause_seconds_count", generation="0") > 0,
        message="no young collection was ever reported",
    )
    after = scrape(world.port)
    assert after.total("fca_gc_pause_seconds_sum", generation="0") > 0
    assert {"0", "1", "2"} == {
        labels["generation"]
        for name, labels, _ in after.samples
        if name == "fca_gc_pause_seconds_count"
    }


def test_a_correlation_id_of_another_shape_is_logged_as_a_keyed_hash(world: World) -> None:
    """A sender-chosen correlation id may name a person: only UUID-like ids are logged as is."""
    chosen = f"chat-of-{unique_token()}"
    [sent] = send_and_wait(
        world.h,
        {
            "type": "DeleteCustomer",
            "payload": {"customer_id": "CUST-NONE"},
            "correlation_id": chosen,
        },
    )
    [record] = world.worker.find_logs("message.handled", message_id=sent.message_id)
    assert str(record["correlation_id"]).startswith("hashed:")
    assert chosen not in world.worker.logs()


# --- metrics ----------------------------------------------------------------------------------


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much the samples matching ``name`` and ``labels`` grew."""
    return after.total(name, **labels) - before.total(name, **labels)


def test_metrics_count_real_traffic(world: World) -> None:
    h, port = world.h, world.port
    successes, rejections = 4, 3
    invalid = [
        {"type": "CreateCustomer", "raw_body": b"not json"},
        {"type": "LaunchRockets", "payload": {}},
        {"type": "CreateCustomer", "payload": {"email": unique_email()}},
    ]
    before = scrape(port)

    send_and_wait(
        h,
        *(
            {"type": "CreateCustomer", "payload": {"email": unique_email(), "full_name": "M"}}
            for _ in range(successes)
        ),
        *(
            {"type": "DeleteCustomer", "payload": {"customer_id": f"CUST-NO-{unique_token()}"}}
            for _ in range(rejections)
        ),
        *invalid,
    )
    wait_until(
        lambda: scrape(port).value("fca_outbox_backlog") == 0,
        message="fca_outbox_backlog never went back to 0",
    )
    after = scrape(port)

    commands = "fca_commands_total"
    assert delta(before, after, commands, type="CreateCustomer", outcome="applied") == successes
    assert delta(before, after, commands, type="DeleteCustomer", outcome="rejected") == rejections
    assert delta(before, after, commands, outcome="invalid_message") == len(invalid)
    assert delta(before, after, commands) == successes + rejections + len(invalid)
    assert delta(before, after, "fca_dead_letters_total", error_type="invalid_message") == len(
        invalid
    )
    assert delta(before, after, "fca_retries_total") == 0
    published = delta(before, after, "fca_events_published_total")
    assert published in (successes + rejections, successes + rejections + len(invalid))
    total = successes + rejections + len(invalid)
    assert delta(before, after, "fca_command_duration_seconds_count") == total
    assert delta(before, after, "fca_command_duration_seconds_bucket", le="+Inf") == total
    assert after.value("fca_in_flight") == 0
    assert after.value("fca_consumer_connected") == 1
    assert after.value("fca_outbox_backlog") == 0
    assert after.value("fca_outbox_oldest_age_seconds") == 0
    labels = {labels.get("type") for name, labels, _ in after.samples if name == commands}
    assert "LaunchRockets" not in labels, "a sender's made-up type became a label value"


# --- health -----------------------------------------------------------------------------------


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    """``/readyz``: its status and its checks (``{"broker": bool, "database": bool}``)."""
    status, body = http_json(f"http://127.0.0.1:{port}/readyz")
    assert isinstance(body, dict), body
    checks = body.get("checks", body)
    return status, checks


def wait_readiness(port: int, status: int, **checks: bool) -> None:
    """Wait until ``/readyz`` answers ``status`` with these check results."""
    last: list[Any] = []

    def matches() -> bool:
        last[:] = [readiness(port)]
        got_status, got = last[0]
        return got_status == status and all(got.get(k) is v for k, v in checks.items())

    wait_until(
        matches,
        timeout=OUTAGE_TIMEOUT,
        interval=0.25,
        message=lambda: f"/readyz never gave {status} {checks}; last {last}",
    )


def test_healthz_and_readyz_answer_200_when_the_worker_is_ready(world: World) -> None:
    status, body = http_json(f"http://127.0.0.1:{world.port}/healthz")
    assert status == 200, body
    status, checks = readiness(world.port)
    assert status == 200, checks
    assert checks.get("broker") is True
    assert checks.get("database") is True


@dataclass
class Outage:
    """A private service a worker depends on, that the test may stop and start."""

    env: WorkerEnv
    stop: Callable[[], None]
    start: Callable[[], None]


@pytest.fixture(params=["database", "broker"])
def outage(
    request: pytest.FixtureRequest, isolated_worker_env: Callable[..., WorkerEnv]
) -> Iterator[Outage]:
    """A worker environment whose database or broker is a private instance."""
    port = free_port()
    env = isolated_worker_env(WORKER_METRICS_PORT=port, WORKER_OUTBOX_POLL_INTERVAL="0.5")
    if request.param == "database":
        if not postgres_installed():
            pytest.skip(f"{NO_SERVICE} PostgreSQL binaries (initdb, pg_ctl) are not installed")
        with private_postgres() as pg:
            env = replace(env, database_url=create_database(pg.url, prefix="worker_e2e_"))
            yield Outage(env, pg.stop, pg.start)
    else:
        if not rabbitmq_installed():
            pytest.skip(f"{NO_SERVICE} RabbitMQ (rabbitmq-server, rabbitmqctl) is not installed")
        with private_rabbitmq() as rabbit:
            yield Outage(replace(env, amqp_url=rabbit.url), rabbit.stop, rabbit.start)


def test_readyz_reports_an_outage_and_recovers_while_the_worker_stays_up(
    request: pytest.FixtureRequest, outage: Outage, workers: WorkerPool
) -> None:
    service = request.node.callspec.params["outage"]
    other = "broker" if service == "database" else "database"
    port = int(outage.env.overrides["WORKER_METRICS_PORT"])
    worker = workers.start(outage.env, name=f"{service}-outage")
    wait_readiness(port, 200, broker=True, database=True)

    outage.stop()
    wait_readiness(port, 503, **{service: False, other: True})
    assert worker.is_running, worker.log_tail()
    status, body = http_json(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, body  # alive, only not ready
    if service == "broker":
        assert scrape(port).value("fca_consumer_connected") == 0

    outage.start()
    wait_readiness(port, 200, broker=True, database=True)
    assert worker.is_running, worker.log_tail()
    with harness_for(outage.env, worker) as h:  # and it does work again
        h.expect_event(
            "CreateCustomer",
            {"email": unique_email(), "full_name": "After The Outage"},
            event_type="CustomerCreated",
        )
    assert worker.terminate() == 0, worker.log_tail()
