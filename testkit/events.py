"""Everything published to an events exchange, collected in the background.

``EventCollector(url, exchange="fca.events", binding="#")``
    Declares the exchange (as the worker does) and its own exclusive queue bound with
    ``binding`` before the constructor returns, so no event published afterwards is missed,
    then consumes from a background thread. ``.messages`` (snapshot, arrival order),
    ``.events_of_type(t)``, ``.caused_by(message_id)``,
    ``.wait_for(predicate=None, count=1, timeout=15) -> list``,
    ``.wait_caused_by(message_id, count=1, timeout)``, ``.assert_quiet(predicate, quiet=0.3)``,
    ``.clear()``, ``.close()``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from testkit.amqp import connection_parameters
from testkit.factories import DEFAULT_TIMEOUT
from testkit.messages import ReceivedMessage, SentMessage

__all__ = ["EventCollector"]


class EventCollector:
    """Everything published to an exchange, collected by a background consumer.

    The exchange is declared (as the worker declares it) and the queue bound before the
    constructor returns, so no event published afterwards can be missed.
    """

    def __init__(self, url: str, *, exchange: str = "fca.events", binding: str = "#") -> None:
        self.exchange = exchange
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._connection = pika.BlockingConnection(connection_parameters(url))
        channel = self._connection.channel()
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue: str = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(self.queue, exchange, routing_key=binding)
        channel.basic_consume(self.queue, self._on_message, auto_ack=True)
        self._channel = channel
        self._thread = threading.Thread(
            target=self._consume, name=f"collector-{exchange}", daemon=True
        )
        self._thread.start()

    def _consume(self) -> None:
        with contextlib.suppress(Exception):  # closed under us at teardown
            self._channel.start_consuming()

    def _on_message(
        self, _ch: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        message = ReceivedMessage.from_delivery(method, properties, body)
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop consuming and close the connection."""
        with contextlib.suppress(Exception):
            self._connection.add_callback_threadsafe(self._channel.stop_consuming)
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self._connection.close()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of everything collected so far, in arrival order."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        """Forget everything collected so far."""
        with self._cond:
            self._messages.clear()

    def events_of_type(self, event_type: str) -> list[ReceivedMessage]:
        """Collected messages whose envelope ``type`` is ``event_type``."""
        return [m for m in self.messages if m.type == event_type]

    def caused_by(self, message_id: str | SentMessage) -> list[ReceivedMessage]:
        """Collected messages whose ``causation_id`` is this command's message id."""
        wanted = message_id.message_id if isinstance(message_id, SentMessage) else message_id
        return [m for m in self.messages if m.causation_id == wanted]

    def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[ReceivedMessage]:
        """Wait until ``count`` matching messages have arrived; return (the first ``count`` of)
        them in arrival order."""
        match = predicate or (lambda _m: True)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self._messages if match(m)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = self._messages[-5:]
                    raise AssertionError(
                        f"expected {count} matching messages on {self.exchange} within "
                        f"{timeout:.1f}s, got {len(found)}; last received: {recent}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def wait_caused_by(
        self, message_id: str | SentMessage, *, count: int = 1, timeout: float = DEFAULT_TIMEOUT
    ) -> list[ReceivedMessage]:
        """Wait for ``count`` messages caused by a command."""
        wanted = message_id.message_id if isinstance(message_id, SentMessage) else message_id
        return self.wait_for(lambda m: m.causation_id == wanted, count=count, timeout=timeout)

    def assert_quiet(
        self, predicate: Callable[[ReceivedMessage], bool], *, quiet: float = 0.3
    ) -> None:
        """Wait ``quiet`` seconds and fail if any matching message has arrived by then."""
        time.sleep(quiet)
        found = [m for m in self.messages if predicate(m)]
        assert not found, f"unexpected messages on {self.exchange}: {found}"
