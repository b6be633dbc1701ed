"""Replaying part of a large DLQ while a worker runs, with the tool killed half-way.

500 commands sit in the DLQ as the worker dead-letters them; 100 of them are selected by
message id and replayed while a worker consumes. The replay is SIGKILLed part-way and run
again: the 100 are applied exactly once, and the 400 others stay in the DLQ unchanged.
Their AMQP ``message_id`` is never the envelope's (a random one, as an older worker's copy
had, or none at all): the operator selects them by the id the sender put in the body.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

from contracts.fields import ErrorType
from testkit.amqp import AmqpClient
from testkit.config import WorkerEnv
from testkit.database import db_fetchval
from testkit.factories import new_id, unique_email, wait_until
from testkit.processes import WorkerPool
from worker.messaging.consumer import failure_headers
from worker.messaging.delivery import Delivery
from worker.messaging.fate import Failure

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOTAL, SELECTED = 500, 100

# The CLI, with every republish slowed down a little so that a kill lands mid-run.
SLOW_CLI = """
import asyncio, aio_pika.exchange
publish = aio_pika.exchange.Exchange.publish
async def slow(self, *args, **kwargs):
    await asyncio.sleep(0.05)
    return await publish(self, *args, **kwargs)
aio_pika.exchange.Exchange.publish = slow
from worker.cli import main
main(prog_name="worker")
"""


def dead_letter(message_id: str, amqp_id: str | None) -> tuple[bytes, dict[str, object]]:
    """A CreateCustomer body and the headers the worker gives it when it dead-letters it."""
    envelope = {
        "message_id": message_id,
        "type": "CreateCustomer",
        "payload": {"email": unique_email(), "full_name": "Replay Test"},
    }
    body = json.dumps(envelope).encode()
    delivery = Delivery(body, "CreateCustomer", {}, amqp_id, type="CreateCustomer")
    failure = Failure(ErrorType.TRANSIENT, "transient: OSError", 5)
    return body, dict(failure_headers(delivery, failure))


def fill_dlq(client: AmqpClient, queue: str) -> list[tuple[str, str | None, bytes]]:
    """Fill the DLQ: (envelope id, AMQP id, body) of each, in order; one in three has no AMQP id."""
    letters = []
    for i in range(TOTAL):
        message_id, amqp_id = new_id(), uuid.uuid4().hex if i % 3 else None
        body, headers = dead_letter(message_id, amqp_id)
        properties = pika.BasicProperties(
            message_id=amqp_id,
            type="CreateCustomer",
            content_type="application/json",
            delivery_mode=2,
            headers=headers,
        )
        client.publish_raw("", queue, body, properties)
        letters.append((message_id, amqp_id, body))
    return letters


def test_a_selected_replay_killed_half_way_applies_each_command_once(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool, tmp_path: Path
) -> None:
    env = isolated_worker_env()
    workers.start(env)
    with AmqpClient(env.amqp_url, env.topology) as client:
        letters = fill_dlq(client, env.topology.dead_letter_queue)
        chosen = [message_id for message_id, _, _ in letters[::5]]
        assert len(chosen) == SELECTED
        process_env = {**env.environ(), "WORKER_DLQ_AUDIT_LOG": str(tmp_path / "audit.log")}
        command = ["dlq", "replay", *(arg for m in chosen for arg in ("--message-id", m))]

        def applied() -> int:
            return int(db_fetchval(env.database_url, "SELECT count(*) FROM inbox_messages"))

        first = subprocess.Popen(
            [sys.executable, "-c", SLOW_CLI, *command], env=process_env, cwd=tmp_path
        )
        try:
            # Progress = replayed commands, applied or still queued for the worker.
            def replayed() -> int:
                return applied() + client.input_counts()[0]

            wait_until(lambda: replayed() >= 10, timeout=60, message="replay never started")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert applied() < SELECTED, "the kill came too late to test anything"

        again = subprocess.run(
            [sys.executable, "-m", "worker", *command],
            env=process_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stdout + again.stderr

        wait_until(lambda: applied() == SELECTED, timeout=60, message="not all replays applied")
        client.wait_inputs_empty(timeout=30)
        query = "SELECT array_agg(message_id) FROM inbox_messages"
        inbox = set(db_fetchval(env.database_url, query))
        assert inbox == set(chosen)
        customers = db_fetchval(env.database_url, "SELECT count(*) FROM customers")
        assert customers == SELECTED  # each applied once, however often it was republished

        # The 400 others are all still there, once each, byte for byte. Their order is kept by
        # a run that finishes (tests/integration/test_dlq_tool.py checks it); a killed run's
        # unacked messages are returned by the broker in no particular order.
        remaining = client.dead_letters(env.topology.dead_letter_queue)
        expected = [(m, a or "", b) for m, a, b in letters if m not in set(chosen)]
        assert len(remaining) == TOTAL - SELECTED
        kept = [(m.message_id, m.properties.message_id or "", m.body) for m in remaining]
        assert sorted(kept) == sorted(expected)  # AMQP ids untouched, absent ones still absent
