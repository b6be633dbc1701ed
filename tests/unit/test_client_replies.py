"""Answers find their request by causation id, and must carry a correlation id it allows."""

from __future__ import annotations

import asyncio
import logging

import pytest

from contracts import (
    CommandDeadLettered,
    EventEnvelope,
    GetCustomer,
    QueryResult,
    RequestEnvelope,
    body_digest_id,
    dump_message,
    make_event,
)
from fca_client import InvalidReply, build
from fca_client.outgoing import Outgoing, prepare, prepare_raw
from fca_client.replies import Waiting
from testkit.factories import unique_email

pytestmark = pytest.mark.unit


def query(correlation_id: str | None = None) -> Outgoing:
    return prepare(build(GetCustomer, {"email": unique_email()}, correlation_id=correlation_id))


def answer_to(request: RequestEnvelope | None) -> EventEnvelope:
    assert request is not None
    return make_event(
        QueryResult,
        command_message_id=request.message_id,
        correlation_id=request.correlation_id,
        payload={"query_type": "GetCustomer", "items": []},
    )


def amqp_correlation(answer: EventEnvelope) -> str:
    """What the worker puts in the answer's AMQP correlation_id: the envelope's."""
    return answer.correlation_id


async def test_concurrent_requests_of_one_chat_session_each_get_their_own_answer() -> None:
    waiting = Waiting()
    first, second = query("chat-42"), query("chat-42")
    futures = [waiting.expect(first), waiting.expect(second)]

    for outgoing in (second, first):  # answers may come in any order
        answer = answer_to(outgoing.message)
        assert waiting.deliver(dump_message(answer), amqp_correlation(answer))

    got = await asyncio.gather(*futures)
    assert [a.causation_id for a in got] == [first.message_id, second.message_id]


async def test_an_answer_with_a_foreign_amqp_correlation_id_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiting = Waiting()
    outgoing = query("chat-42")
    future = waiting.expect(outgoing)

    with caplog.at_level(logging.WARNING, logger="fca_client"):
        delivered = waiting.deliver(dump_message(answer_to(outgoing.message)), "chat-99")

    assert not delivered
    assert not future.done()
    assert "answer_correlation_mismatch" in caplog.text


async def test_a_late_answer_after_forget_is_dropped_quietly() -> None:
    waiting = Waiting()
    outgoing = query()
    waiting.expect(outgoing).cancel()
    waiting.forget(outgoing)
    answer = answer_to(outgoing.message)

    assert not waiting.deliver(dump_message(answer), amqp_correlation(answer))
    assert len(waiting) == 0


async def test_an_unreadable_answer_fails_the_one_request_it_names() -> None:
    waiting = Waiting()
    outgoing = query("chat-7")
    future = waiting.expect(outgoing)

    assert waiting.deliver(b'{"type": "QueryResult"}', "chat-7")

    with pytest.raises(InvalidReply, match="breaks the contract"):
        await future


async def test_an_unreadable_answer_that_names_no_single_request_is_dropped() -> None:
    waiting = Waiting()
    futures = [waiting.expect(query("shared")), waiting.expect(query("shared"))]

    assert not waiting.deliver(b"not json", "shared")
    assert not any(f.done() for f in futures)


async def test_a_message_id_can_wait_only_once() -> None:
    waiting = Waiting()
    outgoing = query()
    waiting.expect(outgoing)

    with pytest.raises(ValueError, match="already waiting"):
        waiting.expect(outgoing)


async def test_a_lost_connection_fails_every_waiting_request() -> None:
    waiting = Waiting()
    futures = [waiting.expect(query()), waiting.expect(query())]

    waiting.fail_all(ConnectionError("gone"))

    for future in futures:
        with pytest.raises(ConnectionError):
            await future


async def test_a_raw_request_takes_the_report_the_worker_names_by_the_body_digest() -> None:
    waiting = Waiting()
    body = b'{"type": "CreateCustomer"}'
    future = waiting.expect(prepare_raw(body, routing_key="CreateCustomer", message_id="raw-1"))
    report = make_event(
        CommandDeadLettered,
        command_message_id=body_digest_id(body),
        correlation_id=None,
        payload={
            "command_message_id": None,
            "command_type": "CreateCustomer",
            "error_type": "invalid_message",
            "error_message": "field 'message_id' is missing",
            "attempts": 1,
        },
    )

    assert waiting.deliver(dump_message(report), amqp_correlation(report))
    assert await future == report
