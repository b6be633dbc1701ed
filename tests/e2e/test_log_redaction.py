"""The unexpected-error path keeps personal data out of the logs.

A bug path is where personal data leaks: a driver error whose text echoes the row, logged
with its traceback. We make one on purpose. After ``db upgrade`` the worker's fresh database
gets constraints the worker knows nothing about, so commands that break them fail as bugs
(``unexpected``: retried, then dead-lettered, a traceback each time), and PostgreSQL's
``DETAIL`` carries the values: ``Key (full_name)=(…) already exists`` and ``Failing row
contains (…)``. The commands share a ``correlation_id`` made of personal data too.

The worker logs at DEBUG. None of the planted values may appear in its log file; the message
ids must, and the tracebacks must still name the exception and the constraint.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from testkit.config import WorkerEnv
from testkit.database import db_execute
from testkit.factories import pii_token
from testkit.harness import Harness, harness_for
from testkit.messages import SentMessage
from testkit.processes import WorkerPool, WorkerProcess

pytestmark = pytest.mark.e2e

PII_MARKER = re.compile(r"pii[0-9a-f]{12}")
"""What ``pii_token()`` puts in every personal value below; no log line may contain one."""
FORBIDDEN = "forbidden"
"""A word the extra CHECK constraints reject, so a row carrying it fails as a bug."""
UNKNOWN_CONSTRAINTS = (
    "CREATE UNIQUE INDEX e2e_one_customer_per_name ON customers (full_name)",
    "ALTER TABLE customers ADD CONSTRAINT e2e_name_check"
    f" CHECK (position('{FORBIDDEN}' in full_name) = 0)",
    "ALTER TABLE messages ADD CONSTRAINT e2e_content_check"
    f" CHECK (position('{FORBIDDEN}' in content) = 0)",
)
DEAD_LETTER_TIMEOUT = 45.0
"""Three attempts with 1 s delays, generously."""


def phone() -> str:
    """A UK mobile number in the format people type."""
    return f"+44 7700 {random.randint(100000, 999999)}"


def personal_data() -> dict[str, str]:
    """Unique personal values, each easy to find in a log."""
    name = f"Alexandra {pii_token()} Smith"
    email, second_email = f"{pii_token()}@example.com", f"{pii_token()}@example.org"
    first_phone = phone()
    return {
        "full_name": name,
        "email": email,
        "phone": first_phone,
        "second_email": second_email,
        "second_phone": phone(),
        "checked_name": f"Bartholomew {pii_token()} {FORBIDDEN} Jones",
        "checked_email": f"{pii_token()}@example.net",
        "checked_phone": phone(),
        "subject": f"My mortgage {pii_token()}",
        "content": f"My name is {name}, I am {FORBIDDEN} to say {pii_token()}",
        "correlation_id": f"{name} <{email}> {first_phone}",
    }


def start_with_unknown_constraints(workers: WorkerPool, env: WorkerEnv) -> WorkerProcess:
    """Migrate, add the constraints the worker does not know, then start the worker."""
    worker = workers.spawn(env, name="log-redaction")
    worker.migrate()
    for statement in UNKNOWN_CONSTRAINTS:
        db_execute(env.database_url, statement)
    return worker.start(migrate=False)


def dead_lettered(worker: WorkerProcess, sent: SentMessage) -> dict[str, Any]:
    """Wait for the final ``message.handled`` line of a command that kept failing."""
    return worker.wait_for_log(
        "message.handled",
        message_id=sent.message_id,
        action="dead_letter",
        timeout=DEAD_LETTER_TIMEOUT,
    )


def provoke_unexpected_errors(h: Harness, pii: dict[str, str]) -> list[SentMessage]:
    """Commands that succeed, then three that fail on the unknown constraints."""
    customer = h.create_customer(email=pii["email"], full_name=pii["full_name"], phone=pii["phone"])
    conversation = h.start_conversation(customer["customer_id"], subject=pii["subject"])
    correlation = {"correlation_id": pii["correlation_id"]}
    return [
        h.send(  # the same full name again: a unique violation the worker cannot name
            "CreateCustomer",
            {
                "email": pii["second_email"],
                "full_name": pii["full_name"],
                "phone": pii["second_phone"],
            },
            **correlation,
        ),
        h.send(  # the CHECK on customers: DETAIL: Failing row contains (… email, name, phone …)
            "CreateCustomer",
            {
                "email": pii["checked_email"],
                "full_name": pii["checked_name"],
                "phone": pii["checked_phone"],
            },
            **correlation,
        ),
        h.send(  # the CHECK on messages: the failing row holds the content
            "AppendMessage",
            {"conversation_id": conversation, "role": "customer", "content": pii["content"]},
            **correlation,
        ),
    ]


def test_no_personal_data_reaches_the_logs_on_the_unexpected_error_path(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(WORKER_LOG_LEVEL="DEBUG", WORKER_RETRY_DELAYS="1")
    worker = start_with_unknown_constraints(workers, env)
    pii = personal_data()
    with harness_for(env, worker) as h:
        failing = provoke_unexpected_errors(h, pii)
        handled = [dead_lettered(worker, sent) for sent in failing]

    # The path under test was taken: each command failed as a bug, with a traceback.
    assert [r["outcome"] for r in handled] == ["unexpected"] * len(failing), handled
    tracebacks = [r.get("exception", "") for r in worker.find_logs("message.unexpected_error")]
    assert len(tracebacks) >= len(failing), tracebacks
    text = "\n".join(tracebacks)
    for needed in ("UniqueViolationError", "CheckViolationError", "e2e_one_customer_per_name"):
        assert needed in text, f"the tracebacks no longer say {needed!r}:\n{text[:3000]}"

    logs = worker.logs()
    leaked = {field: value for field, value in pii.items() if value in logs}
    assert not leaked, f"personal data in the logs: {leaked}"
    markers = PII_MARKER.findall(logs)
    assert not markers, f"personal data (marked {markers[:3]}) in the logs"
    missing = [s.message_id for s in failing if s.message_id not in logs]
    assert not missing, f"the logs do not name the messages {missing}"

    # The sender's correlation id is replaced, by one stand-in: lines still correlate.
    stand_ins = {r["correlation_id"] for r in handled}
    assert len(stand_ins) == 1, stand_ins
    assert None not in stand_ins
