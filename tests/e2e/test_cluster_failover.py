"""A private 3-node RabbitMQ cluster loses the node holding the partitions' leaders mid-load.

Two replicas connect through ``WORKER_AMQP_URL`` listing the three nodes (so they start on
the first, where the queues are declared and their leaders live). The test client uses the
second node. While an ordered workload runs, and while commands wait in the quorum delay
queues (their account rows are locked in the database, so they fail with a lock timeout,
a transient fault, until released), the first node is SIGKILLed: the queues elect leaders
on the other nodes, the replicas fail over to the next node in their list and carry on.
Then the node is restarted (as a crashed node is), and nothing is lost, nothing doubled,
and every key kept its order. A few retries complete only after the restart: RabbitMQ's
at-least-once dead-lettering keeps publishing them to the partition's old leader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from testkit.config import WorkerEnv
from testkit.database import RowLock, db_execute, db_fetchval
from testkit.factories import new_id, wait_until
from testkit.harness import Harness, harness_for
from testkit.ordered import assert_in_order, build_ordered, wait_balanced
from testkit.private import PrivateCluster, private_cluster, rabbitmq_installed
from testkit.processes import WorkerPool
from testkit.services import NO_SERVICE
from testkit.workload import wait_outcomes, wait_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCKED_ACCOUNTS = 8
SETTINGS = {
    "WORKER_MEMBERSHIP_INTERVAL": "0.5",
    "WORKER_MEMBERSHIP_LIVENESS": "3",
    "WORKER_RETRY_DELAYS": "1",
    "WORKER_MAX_ATTEMPTS": "100",
    "WORKER_IN_PLACE_RETRIES": "1",
    "WORKER_OUTBOX_GRACE_SECONDS": "0.5",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    if not rabbitmq_installed():
        pytest.skip(f"{NO_SERVICE} RabbitMQ is not installed: no private cluster")
    with private_cluster() as started:
        yield started


def test_killing_the_leaders_node_mid_load_loses_nothing_and_keeps_order(
    cluster: PrivateCluster,
    isolated_worker_env: Callable[..., WorkerEnv],
    workers: WorkerPool,
) -> None:
    base = isolated_worker_env(**SETTINGS)
    # Row locks time out quickly for the worker: a held lock is a transient fault.
    database = base.database_url.rsplit("/", 1)[1]
    db_execute(base.database_url, f"ALTER DATABASE {database} SET lock_timeout = '300ms'")
    first, second, third = cluster.nodes
    workers_env = replace(base, amqp_url=cluster.failover_url)
    client_env = replace(base, amqp_url=second.amqp_url)
    replicas = [workers.start(workers_env, name="replica-a")]
    replicas.append(workers.start(workers_env, name="replica-b", migrate=False))
    wait_balanced(base.database_url, 2, base.topology.partitions)

    with harness_for(client_env) as h:
        ordered = build_ordered(h, conversations=40, accounts=20, unkeyed=0)
        lone = [h.open_account(h.create_customer()["customer_id"]) for _ in range(LOCKED_ACCOUNTS)]
        lock = RowLock(
            base.database_url,
            "SELECT 1 FROM accounts WHERE account_number = ANY($1) FOR UPDATE",
            lone,
        )
        try:
            credits = [credit(h, number) for number in lone]
            wait_until(
                lambda: delayed(h) > 0, timeout=30, message="no command reached a delay queue"
            )
            h.client.publish_many(ordered.specs)
            wait_outcomes(h.events, ordered.ids[: len(ordered.ids) // 5], timeout=60)

            leaders = cluster.queue_leaders(vhost="/")
            partition_leaders = {leaders[q] for q in base.topology.partition_queues()}
            assert partition_leaders == {first.name}, partition_leaders
            # Kill while some commands sit in a delay queue (they cycle between the queue and
            # failed attempts): wait for such a moment rather than hope for it.
            waiting = wait_until(
                lambda: delayed(h), timeout=30, message="no command in a delay queue"
            )
            first.kill()
        finally:
            lock.release()

        everything = [*ordered.ids, *credits]
        # With the node down the other two carry on: every command completes except retries
        # that RabbitMQ's dead-lettering was handing to the dead node (3.10 keeps sending
        # those to the old leader until its node is back: README, "Retries and delay queues").
        done_while_down = wait_quiet(h.events, everything, quiet=10, timeout=120)
        assert len(done_while_down) >= len(ordered.ids) // 2, len(done_while_down)
        held = len(everything) - len(done_while_down)
        first.start()  # the crashed node comes back and rejoins, as it would in production
        outcomes = wait_outcomes(h.events, everything, timeout=180)

        assert_in_order(h, ordered, {i: outcomes[i] for i in ordered.ids})
        for number in lone:
            balance = db_fetchval(
                base.database_url, "SELECT balance FROM accounts WHERE account_number = $1", number
            )
            assert balance == 100, number
    assert waiting > 0
    print(f"{held} of {len(everything)} commands completed only once the node was back")
    moved = cluster.queue_leaders(vhost="/")
    assert {moved[q] for q in base.topology.partition_queues()} <= {second.name, third.name}
    for replica in replicas:
        assert replica.is_running, replica.log_tail()
        assert replica.find_logs("broker.connection_lost"), replica.log_tail()


def credit(h: Harness, number: str) -> str:
    sent = h.send(
        "RecordTransaction",
        {
            "account_number": number,
            "amount": "100.00",
            "direction": "credit",
            "description": "lone",
            "reference": new_id(),
        },
    )
    return sent.message_id


def delayed(h: Harness) -> int:
    return h.client.queue_counts(h.topology.delay_queue(1))[0]
