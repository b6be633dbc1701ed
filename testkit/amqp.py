"""A plain pika client for tests: publish commands, ask queries, inspect queues.

Independent of the worker's code (pika's ``BlockingConnection``, synchronous): what it sends
is exactly what a client of the contract would send.

``AmqpClient(url, topology=Topology())`` (publisher confirms; context manager; ``.close()``)
    ``.publish_command(type, payload, *, message_id=None, correlation_id=None,
    reply_to=None, raw_body=None, properties=None, headers=None, routing_key=None,
    envelope=None, mandatory=True) -> SentMessage`` publishes a persistent JSON envelope to
    the commands exchange (routing key = type) and waits for the broker's confirm;
    ``.publish_many(specs) -> list[SentMessage]`` (each spec a ``dict`` of the same keyword
    arguments); ``.publish_raw(exchange, routing_key, body, properties, mandatory=False)``;
    ``.reply_queue() -> ReplyQueue``; ``.request(type, payload, timeout=15, **kw) ->
    ReceivedMessage`` sends with ``reply_to`` and returns the answer, after checking that its
    AMQP ``correlation_id`` equals its envelope ``correlation_id``. Queue inspection
    (``.queue_counts``, ``.dead_letters``, ``.delete_topology``, …) comes from
    :class:`testkit.queues.QueueTools`.
``ReplyQueue`` (from ``client.reply_queue()``)
    An exclusive, server-named queue: ``.name``, ``.get(timeout) -> ReceivedMessage``,
    ``.get_many(n, timeout)``, ``.drain(quiet=0.2)``, ``.close()``.
``connection_parameters(url)``
    pika parameters for tests: long heartbeat (sync tests idle), a few connection attempts.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from contracts import HEADER_ORDERING_KEY, InvalidMessage, ordering_key, parse_message
from testkit.config import Topology
from testkit.factories import DEFAULT_TIMEOUT, new_id
from testkit.messages import CONTENT_TYPE, PERSISTENT, ReceivedMessage, SentMessage
from testkit.queues import QueueTools

__all__ = ["AmqpClient", "ReplyQueue", "connection_parameters"]


def connection_parameters(url: str) -> pika.URLParameters:
    """pika parameters for ``url``, tuned for tests (see the module docstring)."""
    params = pika.URLParameters(url)
    params.heartbeat = 600  # sync tests may leave a connection idle for a while
    params.blocked_connection_timeout = 60
    params.connection_attempts = 3
    params.retry_delay = 0.5
    return params


class ReplyQueue:
    """An exclusive, server-named queue on the client's channel, consumed with auto-ack."""

    def __init__(self, client: AmqpClient) -> None:
        self._client = client
        result = client.channel.queue_declare("", exclusive=True, auto_delete=True)
        self.name: str = result.method.queue
        self._inbox: deque[ReceivedMessage] = deque()
        self._tag = client.channel.basic_consume(self.name, self._on_message, auto_ack=True)

    def _on_message(
        self, _ch: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        self._inbox.append(ReceivedMessage.from_delivery(method, properties, body))

    def get(self, timeout: float = DEFAULT_TIMEOUT) -> ReceivedMessage:
        """The next message, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reply on {self.name} within {timeout:.1f}s")
            self._client.connection.process_data_events(time_limit=min(remaining, 0.1))
        return self._inbox.popleft()

    def get_many(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[ReceivedMessage]:
        """The next ``count`` messages, within ``timeout`` in total."""
        deadline = time.monotonic() + timeout
        return [self.get(max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def drain(self, quiet: float = 0.2) -> list[ReceivedMessage]:
        """Everything that arrives until nothing has arrived for ``quiet`` seconds."""
        messages: list[ReceivedMessage] = []
        while True:
            self._client.connection.process_data_events(time_limit=quiet)
            if not self._inbox:
                return messages
            while self._inbox:
                messages.append(self._inbox.popleft())

    def close(self) -> None:
        """Cancel the consumer (the queue goes with it)."""
        with contextlib.suppress(Exception):
            self._client.channel.basic_cancel(self._tag)


class AmqpClient(QueueTools):
    """A plain pika publisher/consumer, independent of the worker's code."""

    def __init__(self, url: str, topology: Topology | None = None) -> None:
        self.url = url
        self.topology = topology or Topology()
        self.connection = pika.BlockingConnection(connection_parameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def __enter__(self) -> AmqpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(Exception):
            if self.connection.is_open:
                self.connection.close()

    # publishing

    def publish_command(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        raw_body: bytes | None = None,
        properties: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        envelope: Mapping[str, Any] | None = None,
        mandatory: bool = True,
        keyed: bool = True,
    ) -> SentMessage:
        """Publish one command or query to the commands exchange and wait for the confirm.

        The body is ``{"message_id", "type", "correlation_id"?, "payload", **envelope}`` unless
        ``raw_body`` is given (then it is sent as is). ``properties`` overrides any AMQP
        property (``pika.BasicProperties`` keyword arguments). With ``mandatory`` an unroutable
        message raises ``pika.exceptions.UnroutableError`` instead of vanishing. Like a v2
        publisher it sets the ``fca-ordering-key`` header (``contracts.ordering_key``) when
        the body is a valid message and ``headers`` has none; ``keyed=False`` sends none,
        like a publisher that sets only what the contract requires.
        """
        message_id = message_id or new_id()
        if raw_body is None:
            body_dict: dict[str, Any] = {"message_id": message_id, "type": type}
            if correlation_id is not None:
                body_dict["correlation_id"] = correlation_id
            body_dict["payload"] = dict(payload or {})
            body_dict.update(envelope or {})
            body = json.dumps(body_dict).encode()
        else:
            body = raw_body
        props: dict[str, Any] = {
            "content_type": CONTENT_TYPE,
            "delivery_mode": PERSISTENT,
            "message_id": message_id,
            "type": type,
            "timestamp": int(time.time()),
        }
        if correlation_id is not None:
            props["correlation_id"] = correlation_id
        if reply_to is not None:
            props["reply_to"] = reply_to
        all_headers = dict(headers or {})
        if keyed and HEADER_ORDERING_KEY not in all_headers:
            with contextlib.suppress(InvalidMessage):
                all_headers[HEADER_ORDERING_KEY] = ordering_key(parse_message(body))
        if all_headers:
            props["headers"] = all_headers
        props.update(properties or {})
        basic = pika.BasicProperties(**props)
        key = routing_key if routing_key is not None else type
        self.channel.basic_publish(
            self.topology.commands_exchange, key, body, basic, mandatory=mandatory
        )
        return SentMessage(message_id, type, correlation_id, body, basic, key)

    def publish_many(self, specs: Iterable[Mapping[str, Any]]) -> list[SentMessage]:
        """Publish several commands in order; each spec holds ``publish_command``'s arguments."""
        return [self.publish_command(**spec) for spec in specs]

    def publish_raw(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties | None = None,
        *,
        mandatory: bool = False,
    ) -> None:
        """Publish arbitrary bytes anywhere (e.g. straight into a queue via ``""``)."""
        props = properties or pika.BasicProperties(delivery_mode=PERSISTENT)
        self.channel.basic_publish(exchange, routing_key, body, props, mandatory=mandatory)

    # request/reply

    def reply_queue(self) -> ReplyQueue:
        """A fresh exclusive queue to pass as ``reply_to``."""
        return ReplyQueue(self)

    def request(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **publish: Any,
    ) -> ReceivedMessage:
        """Send with ``reply_to`` and return the answer (QueryResult, event or rejection).

        Fails unless the answer's AMQP ``correlation_id`` equals its envelope's, and its
        ``causation_id`` is the request's message id.
        """
        replies = self.reply_queue()
        try:
            sent = self.publish_command(type, payload, reply_to=replies.name, **publish)
            answer = replies.get(timeout)
        finally:
            replies.close()
        assert answer.properties.correlation_id == answer.correlation_id, (
            f"AMQP correlation_id {answer.properties.correlation_id!r} != envelope "
            f"{answer.correlation_id!r}"
        )
        assert answer.causation_id == sent.message_id, answer
        return answer
