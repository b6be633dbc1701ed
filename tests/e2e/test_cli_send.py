"""``worker send`` against a running worker: checked locally first, unless ``--raw``.

Exit codes (README "Quick start"): 0 published or answered, 2 refused locally (nothing
published), 3 rejected, 4 no answer in time, 5 dead-lettered.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from testkit.factories import new_id, pii_token, unique_email
from testkit.harness import Harness
from testkit.private import free_port
from testkit.processes import WORKER_BIN

pytestmark = pytest.mark.e2e


def worker_send(
    harness: Harness, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``worker send ARGS`` with the module worker's settings."""
    return subprocess.run(
        [str(WORKER_BIN), "send", *args],
        env={**harness.env.environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def answer(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_a_command_with_reply_prints_its_event_then_its_rejection(harness: Harness) -> None:
    payload = json.dumps({"email": unique_email(), "full_name": "Ada Lovelace"})
    options = ["--payload", payload, "--reply", "--actor", "agent:4711"]

    created = worker_send(harness, "CreateCustomer", *options, "--correlation-id", "chat-1")
    again = worker_send(harness, "CreateCustomer", *options)

    assert created.returncode == 0, created.stderr
    event = answer(created)
    assert event["type"] == "CustomerCreated"
    assert (event["actor"], event["correlation_id"]) == ("agent:4711", "chat-1")
    assert again.returncode == 3, again.stderr
    assert answer(again)["payload"]["reason"] == "email_taken"

    found = worker_send(
        harness,
        "GetCustomer",
        "--reply",
        "--payload",
        json.dumps({"email": json.loads(payload)["email"]}),
    )
    assert found.returncode == 0, found.stderr
    assert answer(found)["payload"]["items"][0]["customer_id"] == event["payload"]["customer_id"]


def test_a_message_id_already_handled_gets_no_answer(harness: Harness) -> None:
    message_id = new_id()
    options = ["--message-id", message_id, "--reply", "--timeout", "2"]
    payload = json.dumps({"email": unique_email(), "full_name": "Ada"})

    first = worker_send(harness, "CreateCustomer", "--payload", payload, *options)
    second = worker_send(harness, "CreateCustomer", "--payload", payload, *options)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 4
    assert "no answer" in second.stderr


def test_without_reply_it_prints_the_published_id(harness: Harness) -> None:
    message_id = new_id()
    payload = json.dumps({"email": unique_email(), "full_name": "Ada"})

    result = worker_send(
        harness, "CreateCustomer", "--payload", payload, "--message-id", message_id
    )

    assert result.returncode == 0, result.stderr
    assert answer(result) == {"published": message_id}
    assert harness.events.wait_caused_by(message_id)[0].type == "CustomerCreated"


@pytest.mark.parametrize(
    ("message_type", "payload", "reason"),
    [
        ("CreateCustomer", {"email": "{marker}", "full_name": "Ada"}, "payload.email"),
        ("CreateCustomer", {"email": "a@example.com", "{marker}": 1}, "<unknown-field>"),
        ("NoSuchCommand", {"note": "{marker}"}, "unknown message type"),
        ("GetCustomer", {"email": "{marker}@example.com"}, "is a query"),
    ],
    ids=["invalid-payload", "unknown-field", "unknown-type", "query-without-reply"],
)
def test_a_message_the_contract_refuses_is_not_published(
    harness: Harness, message_type: str, payload: dict[str, Any], reason: str
) -> None:
    marker = pii_token()
    body = json.dumps(payload).replace("{marker}", marker)
    dead_broker = {"WORKER_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}

    refused = worker_send(harness, message_type, "--payload", body)
    # Refused before any broker is asked: the same answer with no broker at all.
    offline = worker_send(harness, message_type, "--payload", body, env=dead_broker)

    for result in (refused, offline):
        assert result.returncode == 2, result.stderr
        assert reason in result.stderr
        assert "nothing was published" in result.stderr
        assert marker not in result.stderr + result.stdout


def test_raw_publishes_an_invalid_body_which_the_worker_dead_letters(harness: Harness) -> None:
    message_id = new_id()
    marker = pii_token()
    payload = json.dumps({"email": marker, "full_name": "Ada"})

    result = worker_send(
        harness, "CreateCustomer", "--raw", "--payload", payload, "--message-id", message_id
    )

    assert result.returncode == 0, result.stderr
    assert answer(result) == {"published": message_id}
    [report] = harness.events.wait_caused_by(message_id)
    assert report.type == "CommandDeadLettered"
    assert report.payload["error_type"] == "invalid_message"
    dead = harness.client.wait_dead_letter(lambda m: m.message_id == message_id)
    assert json.loads(dead.body)["payload"]["email"] == marker  # the body as given


def test_raw_with_reply_prints_the_dead_letter_report(harness: Harness) -> None:
    message_id = new_id()
    payload = json.dumps({"email": pii_token(), "full_name": "Ada"})

    result = worker_send(
        harness, "CreateCustomer", "--raw", "--reply", "--payload", payload,
        "--message-id", message_id,
    )  # fmt: skip

    assert result.returncode == 5, result.stderr
    report = answer(result)
    assert report["type"] == "CommandDeadLettered"
    assert report["payload"]["command_message_id"] == message_id
    harness.client.wait_dead_letter(lambda m: m.message_id == message_id)
