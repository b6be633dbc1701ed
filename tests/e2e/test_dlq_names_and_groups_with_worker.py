"""The DLQ tool on dead letters a running worker made from commands sent without an AMQP id.

Most publishers put the message id only in the body, as the contract says. The worker
dead-letters such commands (here: invalid ones) and the operator must still find each by
that id, replay it by that id, and work on the failures in groups.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testkit.amqp import AmqpClient
from testkit.config import WorkerEnv
from testkit.factories import wait_until
from testkit.processes import WorkerPool

pytestmark = pytest.mark.e2e

BAD_EMAIL = {"email": "not-an-email", "full_name": "Ada Lovelace"}
BAD_ACCOUNT = {"customer_id": "CUST-000001", "account_type": "spaceship"}


def dlq_cli(env: WorkerEnv, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``worker dlq ARGS`` as an operator would, against this worker's broker."""
    environ = {**env.environ(), "WORKER_DLQ_AUDIT_LOG": str(tmp_path / "audit.log")}
    return subprocess.run(
        [sys.executable, "-m", "worker", "dlq", *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(env: WorkerEnv, tmp_path: Path) -> list[dict[str, Any]]:
    """``worker dlq list --json``."""
    result = dlq_cli(env, tmp_path, "list", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def send_invalid(client: AmqpClient, kind: str, payload: dict[str, str], index: int) -> str:
    """Publish an invalid command: no AMQP message_id on even ``index``, another one on odd."""
    amqp_id = uuid.uuid4().hex if index % 2 else None
    sent = client.publish_command(kind, payload, properties={"message_id": amqp_id})
    assert sent.properties.message_id == amqp_id
    return sent.message_id


def test_dead_letters_are_found_replayed_and_grouped_by_the_envelope_id(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool, tmp_path: Path
) -> None:
    env = isolated_worker_env()
    workers.start(env)
    with AmqpClient(env.amqp_url, env.topology) as client:
        emails = [send_invalid(client, "CreateCustomer", BAD_EMAIL, i) for i in range(6)]
        accounts = [send_invalid(client, "OpenAccount", BAD_ACCOUNT, i) for i in range(4)]
        queue = env.topology.dead_letter_queue
        wait_until(lambda: client.queue_counts(queue)[0] == 10, timeout=60)

        rows = listed(env, tmp_path)
        assert sorted(row["message_id"] for row in rows) == sorted(emails + accounts)
        assert {row["id_source"] for row in rows} == {"envelope"}
        assert {row["replayable"] for row in rows} == {True}

        groups = json.loads(dlq_cli(env, tmp_path, "groups", "--json").stdout)
        assert [(g["type"], g["error_type"], g["count"]) for g in groups] == [
            ("CreateCustomer", "invalid_message", 6),
            ("OpenAccount", "invalid_message", 4),
        ]

        shown = dlq_cli(env, tmp_path, "show", emails[0])
        assert shown.returncode == 0, shown.stderr
        assert f'"message_id": "{emails[0]}"' in shown.stdout

        replayed = dlq_cli(env, tmp_path, "replay", "--message-id", emails[0])
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "replayed 1, skipped 9" in replayed.stdout

        def back_again() -> dict[str, Any] | None:
            again = [r for r in listed(env, tmp_path) if r["message_id"] == emails[0]]
            return again[0] if again and again[0]["replay_count"] == 1 else None

        # Still invalid: the worker dead-letters the replay, and it is still named by its body.
        wait_until(back_again, timeout=60, message="the replay never came back to the DLQ")

        purged = dlq_cli(env, tmp_path, "purge", "--group", groups[1]["group"], "--yes")
        assert purged.returncode == 0, purged.stderr
        assert "purged 4, skipped 6" in purged.stdout
        assert sorted(row["message_id"] for row in listed(env, tmp_path)) == sorted(emails)
