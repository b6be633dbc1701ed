"""W3C trace context, end to end: a command's trace id reaches its event by every path.

The test client publishes each command with a ``traceparent`` of a trace id of its own; the
event that comes out must carry the same trace id (a new parent span id: the worker's) on
the fast path, from the relay after a crash, after a retry through a delay queue, and after
a dead letter is replayed. With ``OTEL_TRACES_EXPORTER=console`` the worker also exports
its spans, the database's inside the handling span, in that trace.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts import CustomerCreated, make_event
from testkit.config import WorkerEnv
from testkit.database import RowLock, db_execute
from testkit.factories import new_id, unique_email, wait_until
from testkit.harness import harness_for
from testkit.http import scrape
from testkit.messages import ReceivedMessage
from testkit.private.host import free_port
from testkit.processes import WORKER_BIN, WorkerPool

pytestmark = pytest.mark.e2e

FAST = {
    "WORKER_OUTBOX_GRACE_SECONDS": "0.5",
    "WORKER_OUTBOX_POLL_INTERVAL": "0.2",
    "WORKER_RETRY_DELAYS": "1",
    "WORKER_IN_PLACE_RETRIES": "0",
}


def a_trace() -> tuple[str, dict[str, str]]:
    """A fresh trace id, and the headers of a message sent inside it."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def trace_id_of(message: ReceivedMessage) -> str:
    traceparent = str((message.headers or {}).get("traceparent", ""))
    assert traceparent, f"{message.type} carries no traceparent"
    return traceparent.split("-")[1]


def test_a_commands_trace_reaches_its_event_on_the_fast_path(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(**FAST)
    worker = workers.start(env)
    with harness_for(env, worker) as h:
        trace_id, headers = a_trace()
        sent = h.client.publish_command(
            "CreateCustomer", {"email": unique_email(), "full_name": "Traced"}, headers=headers
        )
        event = h.outcome(sent)
        handled = h.wait_handled(sent)

    assert event.type == "CustomerCreated"
    assert trace_id_of(event) == trace_id
    assert handled["trace_id"] == trace_id  # the log line joins the trace


def test_commands_applied_in_one_group_each_keep_their_own_trace(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    """Group commit runs several commands' handlers in one task, and each command's own task
    then publishes its events in its own context: no event may take a neighbour's trace."""
    port = free_port()
    env = isolated_worker_env(**FAST, WORKER_METRICS_PORT=port)
    worker = workers.start(env)
    with harness_for(env, worker) as h:
        traces: dict[str, str] = {}
        sent = []
        for i in range(150):  # back to back: they queue up for the two commit slots
            trace_id, headers = a_trace()
            message = h.send(
                "CreateCustomer",
                {"email": unique_email(), "full_name": f"Grouped {i}"},
                headers=headers,
            )
            traces[message.message_id] = trace_id
            sent.append(message)
        events = h.outcomes(sent)
        grouped = scrape(port).total("fca_group_commit_size_count")

    assert grouped > 0, "no group formed: the test proves nothing about groups"
    assert {e.type for e in events.values()} == {"CustomerCreated"}
    assert {m: trace_id_of(e) for m, e in events.items()} == traces


def test_an_event_the_relay_publishes_after_a_crash_continues_its_commands_trace(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(**FAST)
    worker = workers.spawn(env)
    worker.migrate()
    # What a worker leaves when it dies after commit, before publishing: the outbox row,
    # with the trace context it was staged in.
    trace_id, headers = a_trace()
    command_id = new_id()
    event = make_event(
        CustomerCreated,
        command_message_id=command_id,
        correlation_id=None,
        payload={
            "customer_id": "CUST-990002",
            "email": unique_email(),
            "full_name": "T",
            "is_vip": False,
        },
    )
    db_execute(
        env.database_url,
        "INSERT INTO outbox_events (message_id, event_type, routing_key, body, partition,"
        " trace_context) VALUES ($1, 'CustomerCreated', 'customer.created', $2, 0, $3)",
        event.message_id,
        event.model_dump_json(),
        json.dumps(headers),
    )
    with harness_for(env, worker) as h:
        worker.start(migrate=False)
        [relayed] = h.events.wait_caused_by(command_id)

    assert trace_id_of(relayed) == trace_id


def test_a_retried_command_keeps_its_trace_through_the_delay_queue(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(**FAST)
    database = env.database_url.rsplit("/", 1)[1]
    worker = workers.start(env)
    db_execute(env.database_url, f"ALTER DATABASE {database} SET lock_timeout = '200ms'")
    worker.terminate()
    worker = workers.start(env, migrate=False)  # its connections take the new lock timeout
    with harness_for(env, worker) as h:
        customer = h.create_customer()["customer_id"]
        account = h.open_account(customer)
        lock = RowLock(
            env.database_url, "SELECT 1 FROM accounts WHERE account_number = $1 FOR UPDATE", account
        )
        trace_id, headers = a_trace()
        try:
            sent = h.client.publish_command("RecordTransaction", credit(account), headers=headers)
            wait_until(lambda: worker.find_logs("message.handled", action="retry"), timeout=30)
        finally:
            lock.release()
        event = h.outcome(sent, timeout=30)

    assert event.type == "TransactionRecorded"
    assert trace_id_of(event) == trace_id


def test_a_replayed_dead_letter_continues_its_commands_trace(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool, tmp_path: Path
) -> None:
    env = isolated_worker_env(**FAST)
    worker = workers.start(env)
    rule = "ALTER TABLE customers ADD CONSTRAINT ck_no_replay CHECK (full_name <> 'Replay Me')"
    db_execute(env.database_url, rule)  # a bug the worker cannot know: three tries, then the DLQ
    with harness_for(env, worker) as h:
        trace_id, headers = a_trace()
        payload = {"email": unique_email(), "full_name": "Replay Me"}
        sent = h.client.publish_command("CreateCustomer", payload, headers=headers)
        [report] = h.events.wait_caused_by(sent.message_id, timeout=30)
        assert report.type == "CommandDeadLettered"
        assert trace_id_of(report) == trace_id
        db_execute(env.database_url, "ALTER TABLE customers DROP CONSTRAINT ck_no_replay")

        replay(env, tmp_path, sent.message_id)
        replayed = h.events.wait_for(
            lambda m: m.causation_id == sent.message_id and m.type == "CustomerCreated",
            timeout=30,
        )[0]

    assert trace_id_of(replayed) == trace_id


def test_with_an_exporter_the_handling_and_database_spans_join_the_commands_trace(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(OTEL_TRACES_EXPORTER="console", **FAST)
    worker = workers.start(env)
    with harness_for(env, worker) as h:
        trace_id, headers = a_trace()
        sent = h.client.publish_command(
            "CreateCustomer", {"email": unique_email(), "full_name": "Spans"}, headers=headers
        )
        event = h.outcome(sent)
        worker.terminate()  # flushes the batch of spans

    spans = [s for s in exported_spans(worker.logs()) if trace_id in s["context"]["trace_id"]]
    names = {s["name"] for s in spans}
    assert "CreateCustomer handle" in names, names
    handle = next(s for s in spans if s["name"] == "CreateCustomer handle")
    children = [s for s in spans if s.get("parent_id") == handle["context"]["span_id"]]
    assert any(any(k.startswith("db.") for k in s["attributes"]) for s in children), names
    parent = str(event.headers["traceparent"]).split("-")[2]  # the event's parent: our span
    assert parent in {str(s["context"]["span_id"]).removeprefix("0x") for s in spans}


def exported_spans(text: str) -> list[dict[str, object]]:
    """The spans the console exporter printed (pretty JSON objects, one after another)."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while (start := text.find('{\n    "name"', at)) != -1:
        span, at = decoder.raw_decode(text, start)
        spans.append(span)
    return spans


def credit(account: str) -> dict[str, str]:
    return {
        "account_number": account,
        "amount": "10.00",
        "direction": "credit",
        "description": "traced",
        "reference": new_id(),
    }


def replay(env: WorkerEnv, tmp_path: Path, message_id: str) -> None:
    environ = {**os.environ, **env.environ(), "WORKER_DLQ_AUDIT_LOG": str(tmp_path / "audit")}
    done = subprocess.run(
        [str(WORKER_BIN), "dlq", "replay", "--message-id", message_id],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
