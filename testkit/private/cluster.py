"""A RabbitMQ cluster of our own on this machine: ``private_cluster()``, ``PrivateCluster``.

Three (``size``) ``rabbitmq-server`` processes, each a ``PrivateRabbitMQ`` with its own node
name, AMQP and distribution ports, data and log dirs and plugin file (the consistent-hash
exchange by default), sharing one Erlang cookie. They boot in parallel; then every node but
the first runs ``stop_app``, ``join_cluster <first>``, ``start_app``. Everything is killed and
deleted on exit, even when the test fails.

``private_cluster(size=3, plugins=DEFAULT_PLUGINS)``
    A context manager yielding a started, clustered ``PrivateCluster``. Raises
    ``RuntimeError`` when RabbitMQ is not installed: check ``rabbitmq_installed()`` first and
    skip with ``NO_SERVICE`` in the reason.
``PrivateCluster``
    ``.nodes`` (``ClusterNode``), ``.names``, ``.amqp_urls`` (one per node),
    ``.failover_url`` (those joined by commas, as ``WORKER_AMQP_URL`` takes them),
    ``.node(name)``, ``.rabbitmqctl(*args, node=None)`` (stdout; raises on failure),
    ``.running_nodes(node=None)``, ``.queue_leaders(vhost="/")`` (quorum queue → leader node
    name), ``.wait_healthy(timeout=60)``, ``.start()``, ``.destroy()``.
``ClusterNode`` (a ``PrivateRabbitMQ``)
    ``.name``, ``.amqp_url``, ``.port``, ``.kill()`` (SIGKILL of its processes), ``.stop()``
    (``rabbitmqctl stop``), ``.start()`` (boot it again and wait until it has rejoined: it
    answers AMQP and the running members include it and every other live node).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from testkit.private.host import speaks_amqp
from testkit.private.rabbitmq import DEFAULT_PLUGINS, PrivateRabbitMQ, rabbitmq_installed
from testkit.services import random_suffix

__all__ = ["ClusterNode", "PrivateCluster", "private_cluster"]


class ClusterNode(PrivateRabbitMQ):
    """One node of a ``PrivateCluster``; ``start()`` after a kill or stop waits for the rejoin."""

    def __init__(self, cluster: PrivateCluster, prefix: str, plugins: Sequence[str]) -> None:
        super().__init__(plugins=plugins, cookie=cluster.cookie, prefix=prefix)
        self.cluster = cluster

    @property
    def name(self) -> str:
        """The Erlang node name, e.g. ``cluster2-ab12cd34@localhost``."""
        return self.nodename

    @property
    def amqp_url(self) -> str:
        """AMQP URL of this node's default vhost as ``guest``."""
        return self.url

    def start(self, timeout: float = 90) -> None:
        """Boot the node; once the cluster is formed, wait until it has rejoined it."""
        super().start(timeout)
        if self.cluster.formed:
            self.cluster.wait_healthy(timeout)

    def __repr__(self) -> str:
        return f"<ClusterNode {self.name} amqp={self.port} running={self.running}>"


class PrivateCluster:
    """``size`` RabbitMQ nodes on this machine sharing a cookie, clustered with ``join_cluster``."""

    def __init__(self, size: int = 3, plugins: Sequence[str] = DEFAULT_PLUGINS) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.cookie = random_suffix(16).upper()
        self.formed = False
        self.nodes: list[ClusterNode] = []
        try:
            for index in range(1, size + 1):
                node = ClusterNode(self, f"cluster{index}", plugins)
                while _clashes(node, self.nodes):  # free_port() may hand out a port twice
                    node.destroy()
                    node = ClusterNode(self, f"cluster{index}", plugins)
                self.nodes.append(node)
        except BaseException:
            self.destroy()
            raise

    @property
    def names(self) -> list[str]:
        """Node names in order; the first is the one the others joined."""
        return [node.name for node in self.nodes]

    @property
    def amqp_urls(self) -> list[str]:
        """AMQP URLs of every node's default vhost, in node order."""
        return [node.amqp_url for node in self.nodes]

    @property
    def failover_url(self) -> str:
        """Every node's URL joined by commas (a multi-node ``WORKER_AMQP_URL``)."""
        return ",".join(self.amqp_urls)

    def node(self, name: str) -> ClusterNode:
        """The node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def start(self, timeout: float = 120) -> None:
        """Boot every node in parallel, join the others to the first, wait until healthy."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_started(timeout)
        first = self.nodes[0].name
        for node in self.nodes[1:]:
            for args in (("stop_app",), ("join_cluster", first), ("start_app",)):
                self.rabbitmqctl(*args, node=node, timeout=timeout)
        self.formed = True
        self.wait_healthy(timeout)

    def _pick(self, node: ClusterNode | str | int | None) -> ClusterNode:
        if isinstance(node, ClusterNode):
            return node
        if isinstance(node, str):
            return self.node(node)
        if isinstance(node, int):
            return self.nodes[node]
        for candidate in self.nodes:
            if candidate.running:
                return candidate
        raise RuntimeError("no node of the private cluster is running")

    def rabbitmqctl(
        self, *args: str, node: ClusterNode | str | int | None = None, timeout: float = 60
    ) -> str:
        """Run ``rabbitmqctl <args>`` on ``node`` (object, name, 0-based index, or a live one).

        Returns stdout; raises ``RuntimeError`` with stderr on a non-zero exit.
        """
        target = self._pick(node)
        result = target.ctl(*args, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {target.name} exited {result.returncode}:\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def running_nodes(self, node: ClusterNode | str | int | None = None) -> set[str]:
        """The cluster's running members, as ``node`` (default: any live node) sees them."""
        status = json.loads(self.rabbitmqctl("cluster_status", "--formatter", "json", node=node))
        return set(status.get("running_nodes", []))

    def queue_leaders(self, vhost: str = "/") -> dict[str, str]:
        """Each quorum queue of ``vhost`` → the name of the node holding its leader."""
        out = self.rabbitmqctl(
            "list_queues", "-p", vhost, "name", "type", "leader", "--formatter", "json"
        )
        return {
            row["name"]: row["leader"]
            for row in json.loads(out or "[]")
            if row.get("type") == "quorum" and row.get("leader")
        }

    def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until every live node answers and sees every live node as a running member."""
        deadline = time.monotonic() + timeout
        while True:
            live = [node for node in self.nodes if node.running]
            expected = {node.name for node in live}
            problem = _health_problem(self, live, expected)
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"private cluster not healthy after {timeout}s: {problem}")
            time.sleep(0.25)

    def destroy(self) -> None:
        """Kill every node and delete its files (in parallel: each kill waits for its port)."""
        with ThreadPoolExecutor(max_workers=max(len(self.nodes), 1)) as pool:
            list(pool.map(lambda node: node.destroy(), self.nodes))


def _clashes(node: PrivateRabbitMQ, others: Sequence[PrivateRabbitMQ]) -> bool:
    taken = {port for other in others for port in (other.port, other.dist_port)}
    return node.port in taken or node.dist_port in taken


def _health_problem(
    cluster: PrivateCluster, live: Sequence[ClusterNode], expected: set[str]
) -> str | None:
    for node in live:
        if not speaks_amqp(node.port):
            return f"{node.name} does not answer AMQP on {node.port}"
        try:
            seen = cluster.running_nodes(node)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            return f"cluster_status on {node.name} failed: {exc}"
        if not expected <= seen:
            return f"{node.name} sees running {sorted(seen)}, expected {sorted(expected)}"
    return None


@contextlib.contextmanager
def private_cluster(
    size: int = 3, plugins: Sequence[str] = DEFAULT_PLUGINS
) -> Iterator[PrivateCluster]:
    """Yield a started ``PrivateCluster``; every node is killed and deleted on exit."""
    if not rabbitmq_installed():
        raise RuntimeError("rabbitmq-server / rabbitmqctl not installed")
    cluster = PrivateCluster(size, plugins)
    atexit.register(cluster.destroy)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
        atexit.unregister(cluster.destroy)
