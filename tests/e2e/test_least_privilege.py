"""The worker runs with only the broker permissions the README documents.

A dedicated user gets exactly the documented regular expressions on a fresh vhost; the
worker must declare its topology, consume, retry/dead-letter through the default exchange
and publish events with nothing more, and its password must never reach the logs.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from testkit.amqp import AmqpClient
from testkit.config import Topology, WorkerEnv
from testkit.events import EventCollector
from testkit.factories import unique_email
from testkit.processes import WorkerPool
from testkit.sandbox import create_database, create_vhost, delete_vhost, drop_database, vhost_of
from testkit.services import NO_SERVICE

pytestmark = pytest.mark.e2e

# The permissions the README's "Security" section documents, verbatim.
CONFIGURE = r"^fca\..*"
WRITE = r"^(fca\..*|amq\.default)$"
READ = r"^fca\..*"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def restricted_env(amqp_url: str, postgres_url: str) -> Iterator[tuple[WorkerEnv, str, str]]:
    """A fresh vhost and database, and a worker URL for a user limited to the documented rights."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip(f"{NO_SERVICE} rabbitmqctl is needed to create a restricted user")
    vhost_url = create_vhost(amqp_url, prefix="perm-")
    database_url = create_database(postgres_url, prefix="worker_perm_")
    user, password = f"fca-worker-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    vhost = vhost_of(vhost_url)
    _rabbitmqctl("add_user", user, password)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, CONFIGURE, WRITE, READ)
        parts = urlsplit(vhost_url)
        netloc = f"{quote(user)}:{quote(password)}@{parts.hostname}:{parts.port or 5672}"
        worker_url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        env = WorkerEnv(amqp_url=worker_url, database_url=database_url, topology=Topology())
        yield env, vhost_url, password
    finally:
        _rabbitmqctl("delete_user", user)
        delete_vhost(vhost_url)
        drop_database(database_url)


def test_worker_needs_no_more_than_the_documented_permissions(
    restricted_env: tuple[WorkerEnv, str, str], tmp_path: Path
) -> None:
    env, admin_url, password = restricted_env
    pool = WorkerPool(tmp_path)
    try:
        worker = pool.start(env.with_overrides(WORKER_RETRY_DELAYS="1"))
        collector = EventCollector(admin_url)
        with AmqpClient(admin_url) as client:
            sent = client.publish_command(
                "CreateCustomer", {"email": unique_email(), "full_name": "Perm Test"}
            )
            client.publish_command("CreateCustomer", {}, raw_body=b"not json")
            [created] = collector.wait_caused_by(sent.message_id, timeout=15)
            assert created.type == "CustomerCreated"
            dead = client.wait_dead_letter(lambda m: m.body == b"not json", timeout=15)
            assert dead.headers["fca-error-type"] == "invalid_message"
        collector.close()
        assert worker.is_running
        assert password not in worker.logs()
        assert "ACCESS_REFUSED" not in worker.logs()
    finally:
        pool.stop_all(timeout=10)
        pool.kill_all()
