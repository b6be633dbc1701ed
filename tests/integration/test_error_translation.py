"""Errors raised by the real drivers get the right name in the error tree (issue 11, defect 5).

The unit table (tests/unit/test_errors.py) builds exception objects by hand; here the drivers
raise them: a misused asyncpg connection is a bug (not an outage), a refused connection is
an outage, a missing file is a bug, and a query cursor naming a row id beyond a BIGINT is an
invalid cursor (a rejection), not a database error retried three times.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts import CommandRejected, example_message, parse_message
from testkit.private import free_port
from testkit.services import asyncpg_dsn
from tests.fakes import FakePublisher
from worker.bus import CommandBus, Origin
from worker.db.session import SessionFactory
from worker.errors import TransientError, translate
from worker.handlers import HANDLERS
from worker.messaging.fate import RetryPolicy, classify
from worker.repositories import PendingEvent

pytestmark = pytest.mark.integration


async def test_a_second_query_on_a_busy_asyncpg_connection_is_a_bug_not_an_outage(
    postgres_url: str,
) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        slow = asyncio.ensure_future(connection.execute("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        with pytest.raises(asyncpg.exceptions.InterfaceError) as raised:
            await connection.execute("SELECT 1")
        await slow
    finally:
        await connection.close()

    assert "another operation is in progress" in str(raised.value)
    assert translate(raised.value) is None
    assert classify(raised.value).value == "unexpected"


async def test_a_refused_database_connection_is_an_outage() -> None:
    with pytest.raises(ConnectionRefusedError) as raised:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=5)

    assert isinstance(translate(raised.value), TransientError)


def test_a_missing_file_is_a_bug() -> None:
    with pytest.raises(FileNotFoundError) as missing:
        open("/nonexistent/fca-worker/file")  # noqa: SIM115
    assert translate(missing.value) is None
    decision = RetryPolicy(5, (1,)).after_failure(missing.value, 3)
    assert decision.failure.error_type.value == "unexpected"


@dataclass
class RecordingRelay:
    """Stands in for the relay: remembers what it was asked to publish."""

    published: list[PendingEvent] = field(default_factory=list)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        self.published.extend(events)
        return True


async def test_a_cursor_beyond_a_bigint_is_an_invalid_cursor_not_a_database_error(
    session_factory: SessionFactory,
) -> None:
    publisher = FakePublisher()
    bus = CommandBus(HANDLERS, lambda kind: kind(session_factory), RecordingRelay(), publisher)
    moment = datetime.now(UTC).isoformat()
    cursor = base64.urlsafe_b64encode(json.dumps([moment, 2**63]).encode()).decode().rstrip("=")
    body = example_message("ListEscalatedConversations", {"limit": 10, "cursor": cursor})

    outcome = await bus.handle(parse_message(json.dumps(body).encode()), Origin("amq.gen-1"))

    assert outcome == "answered"
    [(_, answer)] = publisher.replies
    assert isinstance(answer, CommandRejected)
    assert answer.payload.reason == "invalid_cursor"
