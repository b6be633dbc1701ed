"""FcaClient against a real RabbitMQ: confirms, mandatory publish, direct reply-to, failover.

No worker here: a responder on the test's own exchange plays it, answering from the
request's envelope as the worker does (the AMQP ``correlation_id`` of an answer is the
envelope's correlation id). ``tests/e2e/test_client_e2e.py`` drives the real worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from contracts import (
    HEADER_ORDERING_KEY,
    CommandRejected,
    CreateCustomer,
    GetCustomer,
    QueryResult,
    RequestEnvelope,
    make_event,
    parse_message,
)
from fca_client import (
    BrokerUnavailable,
    FcaClient,
    RequestTimeout,
    Unroutable,
    build,
)
from testkit.factories import unique_email
from testkit.private import free_port

pytestmark = pytest.mark.integration

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
Answer = Callable[[RequestEnvelope], Any]


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


@pytest.fixture
async def exchange(
    channel: AbstractChannel, unique_name: Callable[[str], str]
) -> AsyncIterator[str]:
    """A commands exchange of this test's own (topic, like fca.commands)."""
    name = unique_name("client.commands")
    declared = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    yield name
    with contextlib.suppress(Exception):
        await declared.delete()


async def bound_queue(channel: AbstractChannel, exchange: str) -> AbstractQueue:
    """An exclusive queue receiving every command published to ``exchange``."""
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "#")
    return queue


async def arrived(queue: AbstractQueue, timeout: float = 5) -> AbstractIncomingMessage:
    """The next message on ``queue``, waiting for it (``get`` answers at once, empty or not:
    requests still being published have not arrived yet)."""
    async with asyncio.timeout(timeout):
        while (message := await queue.get(fail=False)) is None:  # noqa: ASYNC110 (basic.get)
            await asyncio.sleep(0.02)
    return message


@contextlib.asynccontextmanager
async def responder(
    channel: AbstractChannel, exchange: str, answer: Answer
) -> AsyncIterator[list[AbstractIncomingMessage]]:
    """Answer each request on its reply_to with ``answer(request)``, as the worker would."""
    seen: list[AbstractIncomingMessage] = []
    queue = await bound_queue(channel, exchange)

    async def on_request(message: AbstractIncomingMessage) -> None:
        async with message.process():
            seen.append(message)
            event = answer(parse_message(message.body))
            if event is None or message.reply_to is None:
                return
            await channel.default_exchange.publish(
                aio_pika.Message(
                    event.model_dump_json().encode(), correlation_id=event.correlation_id
                ),
                routing_key=message.reply_to,
            )

    tag = await queue.consume(on_request)
    yield seen
    await queue.cancel(tag)


def result(request: RequestEnvelope) -> QueryResult:
    return make_event(
        QueryResult,
        command_message_id=request.message_id,
        correlation_id=request.correlation_id,
        actor=request.actor,
        payload={"query_type": request.type, "items": []},
    )


def get_customer(**envelope: Any) -> GetCustomer:
    return build(GetCustomer, {"email": unique_email()}, **envelope)


def create_customer(**envelope: Any) -> CreateCustomer:
    return build(CreateCustomer, {"email": unique_email(), "full_name": "Ada"}, **envelope)


async def test_send_publishes_a_persistent_confirmed_message_with_the_contract_headers(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    queue = await bound_queue(channel, exchange)
    command = create_customer(correlation_id="chat-42")

    async with FcaClient(amqp_url, exchange=exchange, actor="chat-agent") as client:
        sent = await client.send(command, trace={"traceparent": TRACEPARENT})

    message = await queue.get(timeout=5)
    await message.ack()
    assert parse_message(message.body) == sent
    assert sent.actor == "chat-agent"
    assert message.headers == {
        HEADER_ORDERING_KEY: f"email:{command.payload.email}",
        "traceparent": TRACEPARENT,
    }
    assert message.routing_key == "CreateCustomer"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.message_id, message.type, message.correlation_id) == (
        command.message_id,
        "CreateCustomer",
        "chat-42",
    )
    assert message.content_type == "application/json"
    assert message.reply_to is None


async def test_a_request_gets_its_typed_answer_over_direct_reply_to(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    async with (
        responder(channel, exchange, result) as seen,
        FcaClient(amqp_url, exchange=exchange) as client,
    ):
        query = get_customer()
        answer = await client.request(query, timeout=5)

    assert isinstance(answer, QueryResult)
    assert answer.causation_id == query.message_id
    assert seen[0].reply_to is not None
    assert seen[0].reply_to.startswith("amq.rabbitmq.reply-to")


async def test_concurrent_requests_of_one_chat_session_get_their_own_answers(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    queue = await bound_queue(channel, exchange)
    async with FcaClient(amqp_url, exchange=exchange) as client:
        queries = [get_customer(correlation_id="chat-42") for _ in range(20)]
        asking = asyncio.gather(*(client.request(q, timeout=10) for q in queries))
        requests = [await arrived(queue) for _ in queries]
        for request in reversed(requests):  # all share one AMQP correlation id
            event = result(parse_message(request.body))
            assert request.reply_to is not None
            await channel.default_exchange.publish(
                aio_pika.Message(event.model_dump_json().encode(), correlation_id="chat-42"),
                routing_key=request.reply_to,
            )
        answers = await asking

    assert [a.causation_id for a in answers] == [q.message_id for q in queries]


async def test_a_rejection_comes_back_typed(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    def reject(request: RequestEnvelope) -> CommandRejected:
        return make_event(
            CommandRejected,
            command_message_id=request.message_id,
            correlation_id=request.correlation_id,
            payload={
                "command_type": request.type,
                "command_message_id": request.message_id,
                "reason": "email_taken",
                "detail": "another customer uses this email",
            },
        )

    async with (
        responder(channel, exchange, reject),
        FcaClient(amqp_url, exchange=exchange) as client,
    ):
        outcome = await client.request(create_customer(), timeout=5)

    assert isinstance(outcome, CommandRejected)
    assert outcome.payload.reason == "email_taken"


async def test_no_answer_is_a_typed_timeout(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    async with (
        responder(channel, exchange, lambda _request: None),
        FcaClient(amqp_url, exchange=exchange) as client,
    ):
        with pytest.raises(RequestTimeout, match="already handled") as caught:
            await client.request(get_customer(), timeout=0.5)
        # The client stays usable after a timeout.
        assert isinstance(caught.value, TimeoutError)
        await client.send(create_customer())


async def test_an_unroutable_command_fails_loudly(amqp_url: str, exchange: str) -> None:
    async with FcaClient(amqp_url, exchange=exchange) as client:
        with pytest.raises(Unroutable, match="no queue is bound"):
            await client.send(create_customer())
        with pytest.raises(Unroutable):
            await client.request(get_customer(), timeout=5)


async def test_a_missing_exchange_is_named(
    amqp_url: str, unique_name: Callable[[str], str]
) -> None:
    missing = unique_name("no.such.exchange")
    with pytest.raises(BrokerUnavailable, match=missing):
        await FcaClient(amqp_url, exchange=missing).connect()


async def test_the_next_broker_url_is_tried_when_one_does_not_answer(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    queue = await bound_queue(channel, exchange)
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"

    async with FcaClient(f"{dead}, {amqp_url}", exchange=exchange) as client:
        await client.send(create_customer())

    assert (await queue.get(timeout=5)).routing_key == "CreateCustomer"


async def test_no_broker_answering_is_reported_without_the_password() -> None:
    urls = [f"amqp://guest:s3cret@127.0.0.1:{free_port()}/" for _ in range(2)]

    with pytest.raises(BrokerUnavailable, match="2 URL") as caught:
        await FcaClient(urls, connect_timeout=2).connect()

    assert "s3cret" not in str(caught.value)


async def test_a_dropped_connection_is_made_again_on_the_next_call(
    amqp_url: str, channel: AbstractChannel, exchange: str
) -> None:
    queue = await bound_queue(channel, exchange)
    async with FcaClient(amqp_url, exchange=exchange) as client:
        await client.send(create_customer())
        assert client._connection is not None
        await client._connection.close()  # as if the broker went away

        await client.send(create_customer())

    assert await queue.get(timeout=5)
    assert await queue.get(timeout=5)
