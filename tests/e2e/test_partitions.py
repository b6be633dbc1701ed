"""Scale-out with per-key order: several replicas share the partitions, keys stay in order.

Every test starts its own replicas on a fresh database and topology, with a short heartbeat
so that hand-overs happen within seconds. The workload only succeeds in publish order (see
``testkit.ordered``): an append that overtook its conversation's start, or a debit that
overtook its account's credit, would be rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from testkit.config import WorkerEnv
from testkit.factories import unique_email, wait_until
from testkit.harness import Harness, harness_for
from testkit.messages import SentMessage
from testkit.ordered import assert_in_order, build_ordered, wait_balanced
from testkit.private import free_port
from testkit.processes import WorkerPool, WorkerProcess
from testkit.workload import wait_outcomes

pytestmark = pytest.mark.e2e

FAST_MEMBERSHIP = {
    "WORKER_MEMBERSHIP_INTERVAL": "0.5",
    "WORKER_MEMBERSHIP_LIVENESS": "3",
    "WORKER_OUTBOX_GRACE_SECONDS": "0.5",
    "WORKER_OUTBOX_POLL_INTERVAL": "0.2",
}
PARTITIONS = 16


def start_replicas(workers: WorkerPool, env: WorkerEnv, count: int) -> list[WorkerProcess]:
    first = workers.start(env, name="replica-1")
    rest = [workers.start(env, name=f"replica-{i}", migrate=False) for i in range(2, count + 1)]
    return [first, *rest]


def handled_by(worker: WorkerProcess) -> int:
    return len(worker.find_logs("message.handled"))


def test_three_replicas_keep_every_keys_order_and_apply_each_command_once(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(partitions=PARTITIONS, **FAST_MEMBERSHIP)
    replicas = start_replicas(workers, env, 3)
    owners = wait_balanced(env.database_url, 3, PARTITIONS)
    with harness_for(env) as h:
        ordered = build_ordered(h, conversations=60, accounts=30, unkeyed=60)
        h.client.publish_many(ordered.specs)

        outcomes = wait_outcomes(h.events, ordered.ids, timeout=180)

        assert_in_order(h, ordered, outcomes)
    assert sorted(owners.values()) == [5, 5, 6]
    assert all(handled_by(r) > 0 for r in replicas), [handled_by(r) for r in replicas]
    print(
        f"\npartitions per replica {sorted(owners.values())}, "
        f"deliveries per replica {[handled_by(r) for r in replicas]}"
    )


def test_a_rolling_restart_loses_nothing_doubles_nothing_and_rebalances(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(partitions=PARTITIONS, **FAST_MEMBERSHIP)
    replicas = start_replicas(workers, env, 3)
    wait_balanced(env.database_url, 3, PARTITIONS)
    with harness_for(env) as h:
        ordered = build_ordered(h, conversations=100, accounts=50, unkeyed=60)
        h.client.publish_many(ordered.specs)
        wait_outcomes(h.events, ordered.ids[: len(ordered.ids) // 4], timeout=120)

        replicas[1].kill()  # SIGKILL mid-load: its deliveries go back to the queues
        replacement = workers.start(env, name="replica-4", migrate=False)

        outcomes = wait_outcomes(h.events, ordered.ids, timeout=180)
        assert_in_order(h, ordered, outcomes)
        owners = wait_balanced(env.database_url, 3, PARTITIONS)
    live = {r.name for r in (replicas[0], replicas[2], replacement)}
    assert replacement.find_logs("partitions.taken"), replacement.log_tail()
    assert sorted(owners.values()) == [5, 5, 6]
    print(f"\nafter the restart, partitions per replica {sorted(owners.values())} ({live})")


def test_a_second_replica_on_the_same_metrics_port_exits_with_one_line(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    port = free_port()
    env = isolated_worker_env(WORKER_METRICS_PORT=str(port))
    workers.start(env, name="first")
    second = workers.spawn(env, name="second")

    second.start(migrate=False, wait=False)
    code = second.wait_exit(timeout=30)

    assert code == 1
    [failure] = second.find_logs("worker.start_failed")
    assert f"port {port}" in failure["error"]
    assert "WORKER_METRICS_PORT" in failure["error"]
    assert "Traceback" not in second.logs()


def test_a_node_list_connects_to_the_first_node_that_answers(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    base = isolated_worker_env()
    dead = base.amqp_url.replace(":5672", f":{free_port()}", 1)
    env = replace(base, amqp_url=f"{dead},{base.amqp_url}")
    worker = workers.start(env)

    with harness_for(base, worker) as h:  # the test's own client needs a single URL
        h.create_customer()  # applied: the worker consumes through the second node

    connected = worker.find_logs("broker.connected")
    assert {record["node"] for record in connected} == {1}, connected


def test_contract_v1_queues_are_drained_into_the_partitions_and_removed(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env()
    with harness_for(env) as h:
        v1 = declare_v1(h, env)
        sent = [
            h.client.publish_command(
                "CreateCustomer", {"email": unique_email(), "full_name": "V1"}, keyed=False
            )
            for _ in range(20)
        ]
        waiting = h.client.publish_command(
            "CreateCustomer", {"email": unique_email(), "full_name": "Retrying"}, keyed=False
        )
        move_to(h, env.topology.command_queue, env.topology.retry_queue(1), waiting)
        assert h.client.queue_counts(env.topology.command_queue)[0] == 20

        workers.start(env)
        outcomes = wait_outcomes(h.events, [s.message_id for s in [*sent, waiting]], timeout=60)

        assert {found[0].type for found in outcomes.values()} == {"CustomerCreated"}
        wait_until(lambda: not any(h.client.queue_exists(q) for q in v1), timeout=30)
        fresh = h.send("CreateCustomer", {"email": unique_email(), "full_name": "After"})
        assert h.outcome(fresh).type == "CustomerCreated"


def declare_v1(h: Harness, env: WorkerEnv) -> list[str]:
    """The v1 topology: one quorum input bound with '#', a classic delay queue into it."""
    channel = h.client.connection.channel()
    names = env.topology
    channel.exchange_declare(names.commands_exchange, "topic", durable=True)
    channel.queue_declare(names.command_queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(names.command_queue, names.commands_exchange, "#")
    channel.queue_declare(
        names.retry_queue(1),
        durable=True,
        arguments={
            "x-message-ttl": 3_600_000,  # far away: the migration must not wait for it
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.command_queue,
        },
    )
    channel.close()
    return [names.command_queue, names.retry_queue(1)]


def move_to(h: Harness, source: str, target: str, sent: SentMessage) -> None:
    """Take ``sent`` out of ``source`` and put it into ``target`` (as a v1 retry would)."""
    channel = h.client.connection.channel()
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        assert method is not None, f"{sent.message_id} never reached {source}"
        if body == sent.body:
            channel.basic_publish("", target, body, properties)
            channel.basic_ack(method.delivery_tag)
            break
        channel.basic_nack(method.delivery_tag, requeue=True)
    channel.close()
