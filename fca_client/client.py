"""``FcaClient``: commands and queries to ``fca.commands`` over RabbitMQ, with aio-pika.

Every publish is persistent, confirmed by the broker and mandatory (a message no queue
would receive fails with :class:`~fca_client.errors.Unroutable` instead of vanishing).
Answers come over RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``) on the publishing
channel, matched to their request by causation id and AMQP correlation id.

Several broker URLs (comma-separated, or a list: the nodes of one cluster) are tried in
turn; after a lost connection the next call reconnects, starting with the next node. A
command whose publish failed on a lost connection is published once more after reconnecting
(harmless: the worker applies a message id at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, cast, overload

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.abc import AbstractIncomingMessage as Incoming

from contracts import (
    COMMANDS_EXCHANGE,
    CONTENT_TYPE,
    CommandEnvelope,
    EventEnvelope,
    QueryEnvelope,
    RequestEnvelope,
)
from fca_client.answers import command_outcome, query_outcome
from fca_client.base import (
    DEFAULT_TIMEOUT,
    CommandOutcome,
    CommandT,
    QueryOutcome,
)
from fca_client.errors import (
    BrokerUnavailable,
    ConnectionLost,
    NotConfirmed,
    RequestTimeout,
    Unroutable,
)
from fca_client.outgoing import Outgoing, prepare, prepare_raw
from fca_client.replies import Waiting

__all__ = ["DIRECT_REPLY_TO", "FcaClient", "split_urls"]

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's pseudo-queue for answers to this channel (no queue to declare or delete)."""

_LOST = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError)


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """Broker URLs from ``"amqp://a,amqp://b"`` or a list, blanks dropped, order kept."""
    parts = urls.split(",") if isinstance(urls, str) else list(urls)
    cleaned = [u.strip() for u in parts if u.strip()]
    if not cleaned:
        raise ValueError("at least one broker URL is needed")
    return cleaned


class FcaClient:
    """Publishes commands and queries to the worker and waits for answers.

    Use it as ``async with FcaClient(url) as client:``, or call :meth:`connect` and
    :meth:`close`. One client can serve many concurrent calls.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        exchange: str = COMMANDS_EXCHANGE,
        actor: str | None = None,
        publish_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        name: str = "fca-client",
    ) -> None:
        self._urls = split_urls(urls)
        self._exchange_name = exchange
        self._actor = actor
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._name = name
        self._next = 0
        self._lock = asyncio.Lock()
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._waiting = Waiting()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect to the first broker URL that answers (calls do this on their own too)."""
        await self._ready()

    async def close(self) -> None:
        """Fail the requests still waiting, and close the connection."""
        async with self._lock:
            self._waiting.fail_all(ConnectionLost("the client was closed"))
            connection, self._connection, self._channel = self._connection, None, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def send(self, command: CommandT, *, trace: Mapping[str, str] | None = None) -> CommandT:
        """Publish a command and wait for the broker's confirm; returns it as sent.

        ``trace`` holds ``traceparent`` (and ``tracestate``); without it the active
        OpenTelemetry context is sent, if opentelemetry-api is installed.

        Raises:
            contracts.InvalidMessage: the command breaks the contract (nothing is sent).
            TypeError: ``command`` is a query (a query needs :meth:`request`).
            PublishFailed, BrokerUnavailable, ConnectionLost: the broker did not take it.
        """
        if not isinstance(command, CommandEnvelope):
            raise TypeError(f"{type(command).__name__} is not a command: a query needs request()")
        outgoing = prepare(command, actor=self._actor, trace=trace)
        try:
            await self._publish(outgoing, reply=False)
        except ConnectionLost:
            await self._publish(outgoing, reply=False)  # the worker drops a duplicate id
        return cast(CommandT, outgoing.message)

    @overload
    async def request(
        self,
        message: QueryEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> QueryOutcome: ...

    @overload
    async def request(
        self,
        message: CommandEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> CommandOutcome: ...

    async def request(
        self,
        message: RequestEnvelope,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        trace: Mapping[str, str] | None = None,
    ) -> QueryOutcome | CommandOutcome:
        """Publish a query or command and return its answer.

        The answer is a ``QueryResult``, the command's first domain event, a
        ``CommandRejected`` or a ``CommandDeadLettered``; ``timeout`` counts from the
        broker's confirm.

        Raises:
            RequestTimeout: no answer in time (always so for a message id already handled).
            InvalidReply: the answer is not one the contract allows for this request.
            ValueError: a request with the same message id is still waiting.
            contracts.InvalidMessage, PublishFailed, BrokerUnavailable, ConnectionLost.
        """
        outgoing = prepare(message, actor=self._actor, trace=trace)
        answer = await self._request(outgoing, timeout)
        if isinstance(message, QueryEnvelope):
            return query_outcome(message, answer)
        assert isinstance(message, CommandEnvelope)
        return command_outcome(message, answer)

    async def send_raw(
        self, body: bytes, *, routing_key: str, message_id: str, correlation_id: str | None = None
    ) -> None:
        """Publish ``body`` exactly as given, unvalidated (for tools testing bad input)."""
        outgoing = prepare_raw(
            body, routing_key=routing_key, message_id=message_id, correlation_id=correlation_id
        )
        await self._publish(outgoing, reply=False)

    async def request_raw(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        correlation_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> EventEnvelope:
        """Publish ``body`` exactly as given and return whatever answer the worker sends."""
        outgoing = prepare_raw(
            body, routing_key=routing_key, message_id=message_id, correlation_id=correlation_id
        )
        return await self._request(outgoing, timeout)

    async def _request(self, outgoing: Outgoing, timeout: float) -> EventEnvelope:
        answer = self._waiting.expect(outgoing)
        try:
            await self._publish(outgoing, reply=True)
            try:
                async with asyncio.timeout(timeout):
                    return await answer
            except TimeoutError:
                raise RequestTimeout(message_id=outgoing.message_id, timeout=timeout) from None
        finally:
            self._waiting.forget(outgoing)
            if not answer.done():
                answer.cancel()

    async def _publish(self, outgoing: Outgoing, *, reply: bool) -> None:
        exchange = await self._ready()
        message = aio_pika.Message(
            outgoing.body,
            headers=dict(outgoing.headers),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            # aiormq matches a returned (unroutable) message to its publish by this property.
            message_id=outgoing.message_id,
            type=outgoing.routing_key,
            correlation_id=outgoing.correlation_id,
            timestamp=datetime.now(UTC),
            reply_to=DIRECT_REPLY_TO if reply else None,
        )
        mid = outgoing.message_id
        try:
            await exchange.publish(
                message, outgoing.routing_key, mandatory=True, timeout=self._publish_timeout
            )
        except aiormq.exceptions.PublishError:
            raise Unroutable(
                f"{outgoing.routing_key} {mid}: no queue is bound for it on {self._exchange_name}"
                " (is the worker's topology declared?)",
                message_id=mid,
            ) from None
        except aiormq.exceptions.DeliveryError:
            raise NotConfirmed(f"the broker refused {mid} (nack)", message_id=mid) from None
        except TimeoutError:
            raise NotConfirmed(
                f"no confirm for {mid} within {self._publish_timeout:g}s", message_id=mid
            ) from None
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise BrokerUnavailable(f"the exchange {self._exchange_name} is gone") from None
        except _LOST as exc:
            raise ConnectionLost(
                f"the connection dropped while publishing {mid} ({type(exc).__name__})"
            ) from exc

    async def _ready(self) -> AbstractExchange:
        """The commands exchange on an open channel, (re)connecting if need be."""
        async with self._lock:
            if self._channel is None or self._channel.is_closed or self._exchange is None:
                await self._open()
            assert self._exchange is not None
            return self._exchange

    async def _open(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = connection = await self._connect()
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            self._exchange = await channel.get_exchange(self._exchange_name, ensure=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            await connection.close()
            raise BrokerUnavailable(
                f"the exchange {self._exchange_name} does not exist (has a worker started?)"
            ) from None
        replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(self._on_answer, no_ack=True)
        channel.close_callbacks.add(lambda _sender, _exc: self._lost(channel))
        self._channel = channel

    async def _connect(self) -> AbstractConnection:
        """Connect to the first URL that answers, starting after the last one used."""
        last: BaseException | None = None
        for step in range(len(self._urls)):
            index = (self._next + step) % len(self._urls)
            try:
                connection = await aio_pika.connect(
                    self._urls[index],
                    timeout=self._connect_timeout,
                    client_properties={"connection_name": self._name},
                )
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
                last = exc
                continue
            self._next = index + 1
            return connection
        # The URLs hold passwords: name the error's type only, never the URL or its text.
        raise BrokerUnavailable(
            f"no broker answered ({len(self._urls)} URL(s) tried; last: {type(last).__name__})"
        ) from None

    async def _on_answer(self, message: Incoming) -> None:
        self._waiting.deliver(message.body, message.correlation_id)

    def _lost(self, channel: AbstractChannel) -> None:
        """The channel closed: its direct reply-to address is gone, and with it any answer."""
        if channel is self._channel:
            self._waiting.fail_all(ConnectionLost("the connection dropped before the answer came"))
