"""Thousands of commands, two workers, SIGKILL and SIGTERM: every command takes effect once.

Each scenario has its own database and topology. The workloads (``e2e_extra.build_workload``)
hold commands that never depend on one another, so any interleaving on any worker must apply
every one of them: rejections or missing rows can only mean lost or doubled work.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from contracts import CustomerCreated, event_id, make_event
from testkit.config import WorkerEnv
from testkit.database import (
    db_execute,
    db_fetch,
    inbox_outcomes,
    table_fingerprints,
    unsent_outbox,
    wait_outbox_flushed,
)
from testkit.factories import new_id, unique_email, wait_until
from testkit.harness import Harness, harness_for, isolated_env
from testkit.messages import ReceivedMessage
from testkit.processes import WorkerPool, WorkerProcess
from testkit.workload import (
    Workload,
    assert_applied_once,
    assert_one_event_id_each,
    build_workload,
    seed,
    wait_outcomes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOTAL = 2000
KILL_AFTER = 500
GRACEFUL_TOTAL = 600
TERM_AFTER = 150
SEED_CUSTOMERS = 20
ALL_DONE = 240.0
"""Seconds for a whole workload to drain (generous: CI machines are small and shared)."""

FAST_RELAY = {"WORKER_OUTBOX_GRACE_SECONDS": "1", "WORKER_OUTBOX_POLL_INTERVAL": "0.5"}
"""The relay sweeps events left unsent for a second (default five), to keep tests short."""
BUSY = {"WORKER_PREFETCH": "256", "WORKER_CONCURRENCY": "32", "WORKER_DB_POOL_SIZE": "20"}
"""Many deliveries in flight, so a kill lands between some commit and its ack."""


def causes_seen(h: Harness, workload: Workload) -> set[str]:
    """Commands of the workload that have caused at least one event so far."""
    wanted = set(workload.ids)
    return {m.causation_id for m in h.events.messages if m.causation_id in wanted}


def wait_progress(h: Harness, workload: Workload, done: int) -> None:
    """Wait until at least ``done`` commands of the workload have an event."""
    wait_until(
        lambda: len(causes_seen(h, workload)) >= done,
        timeout=ALL_DONE,
        interval=0.1,
        message=lambda: f"only {len(causes_seen(h, workload))} of {done} events seen",
    )


def handled(worker: WorkerProcess, workload: Workload, **fields: str) -> list[dict[str, object]]:
    """The worker's ``message.handled`` records for commands of the workload."""
    wanted = set(workload.ids)
    return [r for r in worker.find_logs("message.handled", **fields) if r["message_id"] in wanted]


# --- two workers ------------------------------------------------------------------------------


def test_two_workers_on_one_queue_apply_each_of_2000_commands_once(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(**FAST_RELAY)
    pair = [workers.start(env, name="pair-a"), workers.start(env, name="pair-b", migrate=False)]
    with harness_for(env) as h:
        workload = build_workload(seed(h, SEED_CUSTOMERS), TOTAL)
        h.client.publish_many(workload.specs)

        outcomes = wait_outcomes(h.events, workload.ids, timeout=ALL_DONE)

        assert_one_event_id_each(outcomes, workload)
        assert_applied_once(h, workload)
        wait_outbox_flushed(env.database_url)
    for worker in pair:
        assert worker.is_running, worker.log_tail()
        assert handled(worker, workload), f"{worker.name} took no share of the work"
    applied = sum(len(handled(w, workload, outcome="applied")) for w in pair)
    assert applied == TOTAL


# --- SIGKILL in the middle of 2,000 commands --------------------------------------------------


@dataclass
class KillRun:
    """A worker killed with SIGKILL mid-workload and a second one started after it."""

    env: WorkerEnv
    h: Harness
    workload: Workload
    killed: WorkerProcess
    restarted: WorkerProcess
    kill_status: int
    done_at_kill: int
    outcomes: dict[str, list[ReceivedMessage]]


@pytest.fixture(scope="module")
def kill_run(worker_env: WorkerEnv, worker_log_dir: Path) -> Iterator[KillRun]:
    """Run the scenario once; the tests below check different promises about it."""
    pool = WorkerPool(worker_log_dir)
    with isolated_env(worker_env, **FAST_RELAY, **BUSY) as env, harness_for(env) as h:
        try:
            killed = pool.start(env, name="killed")
            workload = build_workload(seed(h, SEED_CUSTOMERS), TOTAL)
            h.client.publish_many(workload.specs)
            wait_progress(h, workload, KILL_AFTER)
            kill_status = killed.kill()
            done_at_kill = len(causes_seen(h, workload))
            restarted = pool.start(env, name="restarted", migrate=False)
            outcomes = wait_outcomes(h.events, workload.ids, timeout=ALL_DONE)
            yield KillRun(env, h, workload, killed, restarted, kill_status, done_at_kill, outcomes)
        finally:
            pool.stop_all(timeout=5)
            pool.kill_all()


def test_a_worker_killed_mid_stream_then_restarted_applies_each_of_2000_commands_once(
    kill_run: KillRun,
) -> None:
    run = kill_run
    assert run.kill_status == -9
    assert KILL_AFTER <= run.done_at_kill < TOTAL, "the kill did not land mid-stream"

    assert_one_event_id_each(run.outcomes, run.workload)
    assert_applied_once(run.h, run.workload)
    wait_outbox_flushed(run.env.database_url)
    # A command may be logged (after its ack) at most once as applied, by either worker; the
    # log may also miss some: killed after the ack, before the log line, or after the commit.
    applied = [
        *handled(run.killed, run.workload, outcome="applied"),
        *handled(run.restarted, run.workload, outcome="applied"),
    ]
    assert len(applied) == len({r["message_id"] for r in applied}), "logged as applied twice"
    assert run.restarted.is_running


def test_commands_committed_but_unacked_at_a_kill_are_redelivered_as_duplicates_with_events(
    kill_run: KillRun,
) -> None:
    run = kill_run
    duplicates = handled(run.restarted, run.workload, outcome="duplicate")
    assert duplicates, (
        f"no redelivered command was already committed (of {len(run.workload.ids)}, "
        f"{run.done_at_kill} done at the kill): the kill missed every commit-to-ack window"
    )
    ids = [str(r["message_id"]) for r in duplicates]
    assert {r["action"] for r in duplicates} == {"ack"}
    # Committed once, by the killed worker: the redelivery added no inbox row, no effect ...
    assert set(inbox_outcomes(run.env.database_url, ids).values()) == {"applied"}
    assert_applied_once(run.h, run.workload)
    # ... and its events are out (by the fast path before the kill, or by the relay after it).
    for message_id in ids:
        events = run.outcomes[message_id]
        expected = event_id(message_id, run.workload.expected_event[message_id], 0)
        assert {e.message_id for e in events} == {expected}, events
    wait_outbox_flushed(run.env.database_url)


def test_a_command_committed_before_a_crash_is_a_duplicate_and_the_relay_publishes_its_event(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(**FAST_RELAY)
    worker = workers.spawn(env, name="after-crash")
    worker.migrate()
    # What a worker leaves when it dies after commit, before publishing and acking.
    message_id, email = new_id(), unique_email()
    event = make_event(
        CustomerCreated,
        command_message_id=message_id,
        correlation_id=None,
        payload={
            "customer_id": "CUST-990001",
            "email": email,
            "full_name": "Committed Before Crash",
            "is_vip": False,
        },
    )
    db_execute(
        env.database_url,
        "INSERT INTO customers (customer_id, email, full_name) VALUES ($1, $2, $3)",
        "CUST-990001",
        email,
        "Committed Before Crash",
    )
    db_execute(
        env.database_url,
        "INSERT INTO inbox_messages (message_id, message_type, outcome)"
        " VALUES ($1, 'CreateCustomer', 'applied')",
        message_id,
    )
    db_execute(
        env.database_url,
        "INSERT INTO outbox_events (message_id, event_type, routing_key, correlation_id, body)"
        " VALUES ($1, 'CustomerCreated', 'customer.created', $2, $3)",
        event.message_id,
        event.correlation_id,
        event.model_dump_json(),
    )
    before = table_fingerprints(env.database_url)

    with harness_for(env, worker) as h:  # the collector is bound before the worker starts
        worker.start(migrate=False)
        sent = h.send(
            "CreateCustomer",
            {"email": email, "full_name": "Committed Before Crash"},
            message_id=message_id,
        )
        record = h.wait_handled(sent)
        assert (record["outcome"], record["action"]) == ("duplicate", "ack"), record

        relayed = h.events.wait_caused_by(message_id)[0]
        assert relayed.message_id == event.message_id == event_id(message_id, "CustomerCreated")
        assert relayed.routing_key == "customer.created"
        assert relayed.payload["customer_id"] == "CUST-990001"
        wait_outbox_flushed(env.database_url)
        # Checked before the marker below, which adds rows of its own.
        assert table_fingerprints(env.database_url) == before
        assert h.fetchval("SELECT count(*) FROM inbox_messages") == 1
        assert h.fetchval("SELECT count(*) FROM outbox_events") == 1
        h.assert_no_more(
            lambda m: m.causation_id == message_id and m.message_id != event.message_id
        )
        h.client.wait_inputs_empty()


# --- SIGTERM ----------------------------------------------------------------------------------


def test_sigterm_with_commands_in_flight_exits_0_and_loses_no_command(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    # Per partition: 16 partitions x 4 deliveries in flight, far fewer than the workload.
    env = isolated_worker_env(**FAST_RELAY, WORKER_PREFETCH="4")
    first = workers.start(env, name="graceful")
    with harness_for(env) as h:
        workload = build_workload(seed(h, SEED_CUSTOMERS), GRACEFUL_TOTAL)
        h.client.publish_many(workload.specs)
        wait_progress(h, workload, TERM_AFTER)

        assert first.terminate(timeout=60) == 0, first.log_tail()

        records = first.log_records()
        events = [r.get("event") for r in records]
        stopping = events.index("worker.stopping")
        assert "worker.stopped" in events[stopping:]
        finished_after_signal = [
            r for r in records[stopping:] if r.get("event") == "message.handled"
        ]
        assert finished_after_signal, "nothing was in flight when SIGTERM arrived"
        acked = {str(r["message_id"]) for r in handled(first, workload, action="ack")}
        committed = set(inbox_outcomes(env.database_url, workload.ids))
        assert acked <= committed, f"acked without commit: {sorted(acked - committed)[:5]}"
        assert committed <= acked, f"committed, never acked: {sorted(committed - acked)[:5]}"
        assert len(committed) < GRACEFUL_TOTAL, "the signal came after all the work was done"
        assert unsent_outbox(env.database_url) == 0, "the outbox was not flushed on shutdown"
        wait_outcomes(h.events, committed, timeout=5)  # ... and those events reached the broker

        second = workers.start(env, name="after-graceful", migrate=False)
        outcomes = wait_outcomes(h.events, workload.ids, timeout=ALL_DONE)

        assert_one_event_id_each(outcomes, workload)
        assert_applied_once(h, workload)
        assert not handled(second, workload, outcome="duplicate")
        assert len(handled(second, workload, outcome="applied")) == GRACEFUL_TOTAL - len(committed)
        wait_outbox_flushed(env.database_url)


def test_one_message_id_delivered_to_two_replicas_at_once_takes_effect_once(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    """Each copy straight into a partition owned by a different replica: both race."""
    env = isolated_worker_env(WORKER_MEMBERSHIP_INTERVAL="0.5", WORKER_MEMBERSHIP_LIVENESS="3")
    first = workers.start(env, name="racer-a")
    second = workers.start(env, name="racer-b", migrate=False)
    owners = wait_until(lambda: two_owners(env), timeout=30)
    with harness_for(env) as h:
        ids, emails = [], []
        for _ in range(40):
            message_id, email = new_id(), unique_email()
            body = json.dumps(
                {
                    "message_id": message_id,
                    "type": "CreateCustomer",
                    "payload": {"email": email, "full_name": "Race"},
                }
            ).encode()
            properties = pika.BasicProperties(
                message_id=message_id, content_type="application/json", delivery_mode=2
            )
            for queue in owners:  # the same message, to two replicas at once
                h.client.publish_raw("", queue, body, properties)
            ids.append(message_id)
            emails.append(email)
        outcomes = wait_outcomes(h.events, ids, timeout=60)

        assert all(len({e.message_id for e in found}) == 1 for found in outcomes.values())
        created = h.fetchval("SELECT count(*) FROM customers WHERE email = ANY($1::text[])", emails)
        assert created == len(ids)
        assert Counter(inbox_outcomes(env.database_url, ids).values()) == {"applied": len(ids)}
    for worker in (first, second):
        handled = {r["message_id"] for r in worker.find_logs("message.handled")}
        assert set(ids) <= handled, f"{worker.name} did not get every copy"
    duplicates = [
        r for w in (first, second) for r in w.find_logs("message.handled", outcome="duplicate")
    ]
    assert len(duplicates) == len(ids)


def two_owners(env: WorkerEnv) -> list[str] | None:
    """Two partition queues owned by two different replicas, once the shares are settled."""
    rows = db_fetch(env.database_url, "SELECT partition, owner FROM partition_owners")
    by_owner: dict[str, int] = {}
    for row in rows:
        if row["owner"] is not None:
            by_owner.setdefault(row["owner"], row["partition"])
    if len(by_owner) < 2 or any(r["owner"] is None for r in rows):
        return None
    queues = env.topology.partition_queues()
    return [queues[p] for p in list(by_owner.values())[:2]]
