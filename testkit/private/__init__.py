"""Throw-away PostgreSQL and RabbitMQ instances that tests may stop, kill and restart.

The shared services are never touched: each private instance has its own data directory,
ports and (for RabbitMQ) node name and Erlang cookie, and is killed and deleted on exit even
when the test fails. ``stop()`` keeps the data, so ``start()`` brings back durable state.

    with private_rabbitmq() as broker, private_postgres() as db:
        ...  # broker.url, db.url
        broker.restart()

``private_postgres()`` / ``PrivatePostgres`` (:mod:`testkit.private.postgres`)
    A cluster in a temp dir on a free port with trust auth: ``.url`` (the ``postgres``
    database as superuser), ``.port``, ``.init()``, ``.start()``, ``.stop(mode="fast")``,
    ``.kill()`` (SIGKILL, as a crash), ``.restart()``, ``.destroy()``.
    ``postgres_installed()``: whether ``initdb`` and ``pg_ctl`` can be found.
``private_rabbitmq(plugins=…)`` / ``PrivateRabbitMQ`` (:mod:`testkit.private.rabbitmq`)
    A node with its own name, ports, cookie and the consistent-hash exchange plugin
    (``plugins=()``: none): ``.url`` (``guest`` on ``/``), ``.port``, ``.nodename``,
    ``.start()``, ``.stop()`` (``rabbitmqctl stop``), ``.kill()`` (SIGKILL of its process
    group), ``.restart()``, ``.destroy()``, ``.ctl(*args)``. ``rabbitmq_installed()``: whether
    ``rabbitmq-server`` and ``rabbitmqctl`` can be found. ``CONSISTENT_HASH_PLUGIN``,
    ``DEFAULT_PLUGINS``.
``private_cluster(size=3)`` / ``PrivateCluster`` / ``ClusterNode`` (:mod:`testkit.private.cluster`)
    ``size`` such nodes sharing a cookie, clustered with ``join_cluster``: ``.nodes`` (each
    with ``.name``, ``.amqp_url``, ``.port``, ``.kill()``, ``.stop()``, ``.start()`` that waits
    for the rejoin), ``.amqp_urls``, ``.failover_url`` (comma-joined), ``.rabbitmqctl(*args,
    node=None)``, ``.running_nodes()``, ``.queue_leaders(vhost="/")``, ``.wait_healthy()``.
``free_port()``, ``accepts_tcp(port, host="127.0.0.1")`` (:mod:`testkit.private.host`)
    A TCP port free right now; whether something accepts connections on one.
"""

from testkit.private.cluster import ClusterNode, PrivateCluster, private_cluster
from testkit.private.host import accepts_tcp, free_port
from testkit.private.postgres import PrivatePostgres, postgres_installed, private_postgres
from testkit.private.rabbitmq import (
    CONSISTENT_HASH_PLUGIN,
    DEFAULT_PLUGINS,
    PrivateRabbitMQ,
    private_rabbitmq,
    rabbitmq_installed,
)

__all__ = [
    "CONSISTENT_HASH_PLUGIN",
    "DEFAULT_PLUGINS",
    "ClusterNode",
    "PrivateCluster",
    "PrivatePostgres",
    "PrivateRabbitMQ",
    "accepts_tcp",
    "free_port",
    "postgres_installed",
    "private_cluster",
    "private_postgres",
    "private_rabbitmq",
    "rabbitmq_installed",
]
