"""Bad input: each kind goes to the DLQ at once, byte for byte, and the worker carries on.

Bodies are published without the AMQP ``message_id``/``type`` properties, so the worker can
only learn them from the body. Each one carries a personal-data marker that must show up in
no header, no event and no log line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contracts import body_digest_id
from contracts.topology import (
    HEADER_ATTEMPTS,
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
)
from testkit.config import WorkerEnv
from testkit.factories import new_id, pii_token, unique_email, unique_token
from testkit.harness import Harness, harness_for, isolated_env
from testkit.messages import BROKER_HEADER_PREFIX, ReceivedMessage
from testkit.processes import WorkerPool
from testkit.queues import take_dead_letter

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
FAILURE_HEADERS = (
    HEADER_ERROR_TYPE,
    HEADER_ERROR_MESSAGE,
    HEADER_ATTEMPTS,
    HEADER_FIRST_FAILED_AT,
    HEADER_LAST_FAILED_AT,
    HEADER_ORIGINAL_ROUTING_KEY,
)
UNREAD = (False,)
READ = (True,)
EITHER = (True, False)
CONVERSATION = "5b1f2a6e-0f35-4c8e-9a1e-1c8e6a1f4b11"


@pytest.fixture(scope="module")
def h(worker_env: WorkerEnv, worker_log_dir: Path) -> Iterator[Harness]:
    """One worker on its own database and topology, so its DLQ holds only these messages."""
    pool = WorkerPool(worker_log_dir)
    with isolated_env(worker_env) as env:
        try:
            worker = pool.start(env, name="bad-input")
            with harness_for(env, worker) as harness:
                yield harness
        finally:
            pool.stop_all()
            pool.kill_all()


# --- the cases --------------------------------------------------------------------------------


def envelope(message_id: str | None, type: str, payload: Any, **extra: Any) -> bytes:
    """A command body; ``message_id=None`` leaves the field out."""
    body: dict[str, Any] = {"type": type, "payload": payload, **extra}
    if message_id is not None:
        body = {"message_id": message_id, **body}
    return json.dumps(body).encode()


def customer(pii: str, **fields: Any) -> dict[str, Any]:
    """A valid ``CreateCustomer`` payload full of personal data, changed by ``fields``."""
    return {
        "email": f"{pii}@example.com",
        "full_name": f"Jane {pii}",
        "phone": "+44 20 7946 0958",
        **fields,
    }


def credit(pii: str, amount: Any) -> dict[str, Any]:
    """A ``RecordTransaction`` payload with this ``amount``."""
    return {
        "account_number": "ACC-NONE",
        "amount": amount,
        "direction": "credit",
        "description": f"rent for {pii}",
        "reference": f"REF-{unique_token()}",
    }


def nested_arrays(depth: int) -> str:
    """``[[[…]]]`` nested ``depth`` deep."""
    return "[" * depth + "]" * depth


@dataclass(frozen=True)
class BadInput:
    """One kind of bad body and what the worker can be expected to read from it."""

    name: str
    body: Callable[[str, str], bytes]  # (message id, personal-data marker) -> body
    routing_key: str = "CreateCustomer"
    reads_id: tuple[bool, ...] = READ  # acceptable: can the worker tell the message id?
    command_type: tuple[str | None, ...] = ("CreateCustomer",)  # acceptable reported types


def amount_case(name: str, amount: Any) -> BadInput:
    return BadInput(
        f"amount {name}",
        lambda m, p: envelope(m, "RecordTransaction", credit(p, amount)),
        routing_key="RecordTransaction",
        command_type=("RecordTransaction",),
    )


CASES = [
    BadInput("not JSON", lambda m, p: f"hello {p}@example.com".encode(), reads_id=UNREAD,
             command_type=(None,)),
    BadInput("not UTF-8",
             lambda m, p: envelope(m, "CreateCustomer", customer(p)).replace(b"Jane", b"J\xff\xfe"),
             reads_id=EITHER, command_type=("CreateCustomer", None)),
    BadInput("JSON array", lambda m, p: json.dumps([{"message_id": m, "note": p}]).encode(),
             reads_id=UNREAD, command_type=(None,)),
    BadInput("JSON string", lambda m, p: json.dumps(f"{p}@example.com").encode(),
             reads_id=UNREAD, command_type=(None,)),
    BadInput("JSON null", lambda m, p: b"null", reads_id=UNREAD, command_type=(None,)),
    BadInput("missing message_id", lambda m, p: envelope(None, "CreateCustomer", customer(p)),
             reads_id=UNREAD),
    BadInput("empty message_id", lambda m, p: envelope("", "CreateCustomer", customer(p)),
             reads_id=UNREAD),
    BadInput("unknown type", lambda m, p: envelope(m, "LaunchRockets", {"pilot": p}),
             routing_key="LaunchRockets", command_type=("LaunchRockets",)),
    BadInput("missing type", lambda m, p: json.dumps({"message_id": m, "payload": {}}).encode(),
             command_type=(None,)),
    BadInput("payload missing a field",
             lambda m, p: envelope(m, "CreateCustomer", {"email": f"{p}@example.com"})),
    BadInput("payload with an unknown field",
             lambda m, p: envelope(m, "CreateCustomer", customer(p, nickname=f"Janie {p}"))),
    BadInput("unknown field named with personal data",
             lambda m, p: envelope(m, "CreateCustomer", customer(p, **{f"{p}@example.com": 1}))),
    BadInput("envelope with an unknown field",
             lambda m, p: envelope(m, "CreateCustomer", customer(p), note=f"from {p}")),
    BadInput("payload not an object", lambda m, p: envelope(m, "CreateCustomer", f"{p} payload")),
    BadInput("string for a boolean",
             lambda m, p: envelope(m, "CreateCustomer", customer(p, is_vip="yes"))),
    BadInput("number for a string",
             lambda m, p: envelope(m, "CreateCustomer", customer(p, full_name=4242424242))),
    BadInput("malformed email",
             lambda m, p: envelope(m, "CreateCustomer", customer(p, email=f"{p}-at-example"))),
    amount_case("negative", "-5"),
    amount_case("with three decimals", "1.234"),
    amount_case("as a JSON number", 12.5),
    amount_case("not a number", "twelve"),
    BadInput("10 MB body",
             lambda m, p: envelope(m, "AppendMessage",
                                   {"conversation_id": CONVERSATION, "role": "customer",
                                    "content": p + "x" * (10 * MiB)}),
             routing_key="AppendMessage", reads_id=UNREAD, command_type=(None,)),
    BadInput("100k nested arrays",
             lambda m, p: envelope(m, "CreateCustomer", customer(p)).replace(
                 b'"payload": {', b'"payload": {"deep": ' + nested_arrays(100_000).encode() + b", "
             ),
             reads_id=EITHER, command_type=("CreateCustomer", None)),
    BadInput("200 KB string field",
             lambda m, p: envelope(m, "AppendMessage",
                                   {"conversation_id": CONVERSATION, "role": "customer",
                                    "content": p + "y" * 200_000}),
             routing_key="AppendMessage", command_type=("AppendMessage",)),
]  # fmt: skip


# --- the test ---------------------------------------------------------------------------------


def assert_failure_headers(dead: ReceivedMessage, case: BadInput, pii: str) -> None:
    """The contract's dead-letter headers, with an error message that quotes no input."""
    headers = dead.headers
    missing = [name for name in FAILURE_HEADERS if name not in headers]
    assert not missing, f"missing {missing} in {headers}"
    assert headers[HEADER_ERROR_TYPE] == "invalid_message"
    message = headers[HEADER_ERROR_MESSAGE]
    assert isinstance(message, str), headers
    assert message.strip(), headers
    assert pii not in message, f"{HEADER_ERROR_MESSAGE} quotes personal data: {message!r}"
    assert int(headers[HEADER_ATTEMPTS]) == 1
    first = datetime.fromisoformat(headers[HEADER_FIRST_FAILED_AT])
    last = datetime.fromisoformat(headers[HEADER_LAST_FAILED_AT])
    assert first.tzinfo is not None
    assert first <= last
    assert headers[HEADER_ORIGINAL_ROUTING_KEY] == case.routing_key
    ours = [k for k in headers if not k.startswith(BROKER_HEADER_PREFIX)]
    assert all(k.startswith("fca-") for k in ours), headers
    assert dead.persistent


def assert_dead_letter_event(
    h: Harness, case: BadInput, message_id: str, body: bytes, pii: str
) -> None:
    """A ``CommandDeadLettered`` event naming the command when it could be read."""
    causes = {message_id if read else body_digest_id(body) for read in case.reads_id}
    event = h.events.wait_for(
        lambda m: m.type == "CommandDeadLettered" and m.causation_id in causes
    )[0]
    assert event.routing_key == "command.dead_lettered"
    assert event.persistent
    event.parsed()
    payload = event.payload
    read_id = payload["command_message_id"]
    assert read_id in {message_id if read else None for read in case.reads_id}, payload
    assert event.causation_id == (message_id if read_id else body_digest_id(body)), event
    assert payload["command_type"] in case.command_type, payload
    assert payload["error_type"] == "invalid_message"
    assert payload["attempts"] == 1
    assert pii not in event.body.decode(errors="replace"), f"the event quotes input: {payload}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_dead_lettered_at_once_and_the_worker_carries_on(
    h: Harness, case: BadInput
) -> None:
    assert h.worker is not None
    message_id, pii = new_id(), pii_token()
    body = case.body(message_id, pii)

    h.send(
        case.routing_key,
        raw_body=body,
        routing_key=case.routing_key,
        properties={"message_id": None, "type": None},
    )

    dead = take_dead_letter(h.client, body)
    assert dead.body == body  # byte for byte
    assert_failure_headers(dead, case, pii)
    assert_dead_letter_event(h, case, message_id, body, pii)
    assert not h.fetchval("SELECT count(*) FROM inbox_messages WHERE message_id = $1", message_id)
    h.client.wait_inputs_empty()
    assert h.worker.is_running, h.worker.log_tail()
    h.expect_event(
        "CreateCustomer",
        {"email": unique_email(), "full_name": "Next In Line"},
        event_type="CustomerCreated",
    )
    assert pii not in h.worker.logs(), "personal data reached the worker's log"
