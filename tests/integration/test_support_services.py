"""The test-support plumbing itself: per-session database and vhost, and private servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
import asyncpg
import pytest

from testkit.private import (
    accepts_tcp,
    postgres_installed,
    private_cluster,
    private_postgres,
    private_rabbitmq,
    rabbitmq_installed,
)
from testkit.sandbox import create_database, create_vhost, delete_vhost, drop_database, vhost_of
from testkit.services import NO_SERVICE, AmqpServer

pytestmark = pytest.mark.integration


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_postgres_url_is_a_database_of_its_own(
    postgres_url: str, postgres_server_url: str
) -> None:
    name = await _fetchval(postgres_url, "SELECT current_database()")

    assert postgres_url.startswith("postgresql+asyncpg://")
    assert isinstance(name, str)
    assert name.startswith("worker_test_")
    assert name != await _fetchval(postgres_server_url, "SELECT current_database()")


async def test_amqp_url_is_a_vhost_invisible_from_the_default_one(
    amqp_url: str, amqp_server: AmqpServer, unique_name: Callable[[str], str]
) -> None:
    queue_name = unique_name("support-probe")
    async with await aio_pika.connect(amqp_url, timeout=10) as connection:
        channel = await connection.channel()
        await channel.declare_queue(queue_name, auto_delete=True)

        async with await aio_pika.connect(amqp_server.url, timeout=10) as other:
            other_channel = await other.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await other_channel.declare_queue(queue_name, passive=True)

    assert vhost_of(amqp_url).startswith("test-")
    assert "/" not in urlsplit(amqp_url).path[1:]


async def test_create_database_then_drop_database(postgres_server_url: str) -> None:
    url = create_database(postgres_server_url, prefix="worker_support_")
    assert await _fetchval(url, "SELECT 1") == 1

    drop_database(url)

    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await _fetchval(url, "SELECT 1")


async def test_create_vhost_then_delete_vhost(amqp_server: AmqpServer) -> None:
    url = create_vhost(amqp_server.url, management_url=amqp_server.management_url)
    async with await aio_pika.connect(url, timeout=10) as connection:
        assert not connection.is_closed

    delete_vhost(url, management_url=amqp_server.management_url)

    with pytest.raises(aiormq.exceptions.AMQPError):
        await aio_pika.connect(url, timeout=10)


@pytest.mark.slow
async def test_private_postgres_keeps_committed_rows_across_restart_and_crash() -> None:
    if not postgres_installed():
        pytest.skip(f"{NO_SERVICE} PostgreSQL server binaries (initdb, pg_ctl) not installed")
    with private_postgres() as server:
        conn = await asyncpg.connect(_dsn(server.url), timeout=10)
        await conn.execute("CREATE TABLE probe (v int); INSERT INTO probe VALUES (42)")
        await conn.close()

        server.restart()
        assert await _fetchval(server.url, "SELECT v FROM probe") == 42

        server.kill()
        assert not accepts_tcp(server.port)
        server.start()
        assert await _fetchval(server.url, "SELECT count(*) FROM probe") == 1

    assert not accepts_tcp(server.port)
    assert not server.base.exists()


@pytest.mark.slow
async def test_private_rabbitmq_keeps_durable_messages_across_restart() -> None:
    if not rabbitmq_installed():
        pytest.skip(f"{NO_SERVICE} rabbitmq-server / rabbitmqctl not installed")
    with private_rabbitmq() as broker:
        async with await aio_pika.connect(broker.url, timeout=10) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                "probe", durable=True, arguments={"x-queue-type": "quorum"}
            )
            message = aio_pika.Message(b"kept", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue.name)

        broker.restart()

        async with await aio_pika.connect(broker.url, timeout=10) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("probe", passive=True)
            received = await queue.get(timeout=10, fail=True)
            assert received is not None
            assert received.body == b"kept"
            await received.ack()

        # It runs with the broker settings we recommend (deploy/rabbitmq/advanced.config).
        setting = "application:get_env(rabbit, dead_letter_worker_publisher_confirm_timeout)."
        assert broker.ctl("eval", setting).stdout.strip() == "{ok,10000}"

        broker.kill()
        assert not accepts_tcp(broker.port)

    assert not broker.base.exists()


async def _publish(url: str, queue_name: str, bodies: list[bytes]) -> None:
    """Publish in order with confirms, on a fresh channel after a nack.

    On 3.10.8 a channel whose first publish to a quorum queue comes right after the leader's
    node died is nacked for ~0.5 s, and then that channel is nacked for good (measured for
    75 s): a new channel is the cure.
    """
    async with await aio_pika.connect(url, timeout=30) as connection:
        deadline = asyncio.get_running_loop().time() + 30
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            while True:
                try:
                    await channel.default_exchange.publish(message, queue_name, timeout=30)
                    break
                except aio_pika.exceptions.DeliveryError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await channel.close()
                    await asyncio.sleep(0.2)
                    channel = await connection.channel(publisher_confirms=True)


async def _drain(url: str, queue_name: str, count: int) -> list[bytes]:
    received: list[bytes] = []
    async with await aio_pika.connect(url, timeout=30) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        for _ in range(count):
            message = await queue.get(timeout=30, fail=True)
            assert message is not None
            received.append(message.body)
            await message.ack()
        assert await queue.get(fail=False) is None
    return received


@pytest.mark.slow  # one cluster start (~15 s) covers every cluster fact: keep it one test
async def test_private_cluster_survives_the_loss_of_a_quorum_leader() -> None:
    if not rabbitmq_installed():
        pytest.skip(f"{NO_SERVICE} rabbitmq-server / rabbitmqctl not installed")
    with private_cluster() as cluster:
        names = set(cluster.names)
        assert len(names) == 3
        for node in cluster.nodes:
            assert cluster.running_nodes(node) == names
        first = cluster.nodes[0]
        async with await aio_pika.connect(first.amqp_url, timeout=30) as connection:
            channel = await connection.channel()
            await channel.declare_queue(
                "failover-probe", durable=True, arguments={"x-queue-type": "quorum"}
            )
        await _publish(first.amqp_url, "failover-probe", [b"before-%d" % i for i in range(5)])

        leader = cluster.node(cluster.queue_leaders()["failover-probe"])
        leader.kill()
        assert not accepts_tcp(leader.port)
        survivor = next(node for node in cluster.nodes if node is not leader)
        await _publish(survivor.amqp_url, "failover-probe", [b"after-%d" % i for i in range(5)])

        received = await _drain(survivor.amqp_url, "failover-probe", 10)
        assert received == [b"before-%d" % i for i in range(5)] + [
            b"after-%d" % i for i in range(5)
        ]
        assert cluster.queue_leaders()["failover-probe"] != leader.name

        leader.start()
        assert cluster.running_nodes(leader) == names
        assert cluster.running_nodes(survivor) == names

    for node in cluster.nodes:
        assert not accepts_tcp(node.port)
        assert not node.base.exists()
