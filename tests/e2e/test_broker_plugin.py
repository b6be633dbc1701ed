"""A broker without the consistent-hash exchange plugin: the worker says how to fix it, once.

A private RabbitMQ node started without the plugin (never the shared broker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from testkit.config import WorkerEnv
from testkit.private import PrivateRabbitMQ, private_rabbitmq, rabbitmq_installed
from testkit.processes import WorkerPool
from testkit.services import NO_SERVICE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def plain_node() -> Iterator[PrivateRabbitMQ]:
    if not rabbitmq_installed():
        pytest.skip(f"{NO_SERVICE} RabbitMQ is not installed: no private node")
    with private_rabbitmq(plugins=()) as node:
        yield node


def test_a_broker_without_the_plugin_stops_the_worker_with_one_line_saying_how_to_enable_it(
    plain_node: PrivateRabbitMQ,
    isolated_worker_env: Callable[..., WorkerEnv],
    workers: WorkerPool,
) -> None:
    env = replace(isolated_worker_env(), amqp_url=plain_node.url)
    worker = workers.spawn(env, name="no-plugin")

    worker.start(wait=False)
    code = worker.wait_exit(timeout=60)

    assert code == 1
    [failure] = worker.find_logs("worker.start_failed")
    assert "rabbitmq-plugins enable rabbitmq_consistent_hash_exchange" in failure["error"]
    assert "Traceback" not in worker.logs()
