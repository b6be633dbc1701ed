"""Everything published to an events exchange, collected in the background.

``EventCollector(url, exchange="fca.events", binding="#")``
    Declares the exchange (as the worker does) and its own exclusive queue bound with
    ``binding`` before the constructor returns, so no event published afterwards is missed,
    then consumes from a background thread. ``.messages`` (snapshot, arrival order),
    ``.events_of_type(t)``, ``.caused_by(message_id)``,
    ``.wait_for(predicate=None, count=1, timeout=15) -> list``,
    ``.wait_caused_by(message_id, count=1, timeout)``, ``.assert_quiet(predicate, quiet=0.3)``,
    ``.clear()``, ``.close()``; a context manager. ``.connection_name`` is the name the broker
    shows for its connection; ``.failure`` why its consumer stopped, if it stopped on its own.
``EventCollectorError``
    Raised by every call after the consumer stopped on its own (its connection or channel
    died, or the broker cancelled it): from then on the collector misses events, so a check
    such as "no second event" would pass for the wrong reason. The cause is chained.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from testkit.amqp import connection_parameters
from testkit.factories import DEFAULT_TIMEOUT, unique_token
from testkit.messages import ReceivedMessage, SentMessage

__all__ = ["EventCollector", "EventCollectorError"]


class EventCollectorError(RuntimeError):
    """The collector's consumer stopped on its own: what it collected is incomplete."""


class EventCollector:
    """Everything published to an exchange, collected by a background consumer.

    The exchange is declared (as the worker declares it) and the queue bound before the
    constructor returns, so no event published afterwards can be missed. If the consumer
    stops before :meth:`close` (connection lost, queue deleted), every later call raises
    :class:`EventCollectorError` instead of answering from an incomplete list.
    """

    def __init__(self, url: str, *, exchange: str = "fca.events", binding: str = "#") -> None:
        self.exchange = exchange
        self.connection_name = f"testkit-events-{exchange}-{unique_token()}"
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._closing = False
        self._failure: BaseException | None = None
        self._failed_at = ""
        params = connection_parameters(url)
        params.client_properties = {"connection_name": self.connection_name}
        self._connection = pika.BlockingConnection(params)
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

    def __enter__(self) -> EventCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the background consumer

    def _consume(self) -> None:
        try:
            self._channel.start_consuming()
        except Exception as exc:  # recorded, and raised by the test's next call
            self._stopped(exc)
        else:  # start_consuming returns once no consumer is left: stopped or cancelled
            self._stopped(pika.exceptions.ConsumerCancelled("the broker cancelled the consumer"))

    def _stopped(self, cause: BaseException) -> None:
        with self._cond:
            if not self._closing:  # closed under us at teardown: not a failure
                self._failure = cause
                self._failed_at = time.strftime("%H:%M:%S")
            self._cond.notify_all()

    def _on_message(
        self, _ch: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        message = ReceivedMessage.from_delivery(method, properties, body)
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def failure(self) -> BaseException | None:
        """Why the consumer stopped before :meth:`close`, or ``None`` while it runs."""
        with self._cond:
            return self._failure

    def _raise_if_failed(self) -> None:
        failure = self.failure
        if failure is None:
            return
        raise EventCollectorError(
            f"the event collector on {self.exchange!r} (queue {self.queue!r}) stopped consuming "
            f"at {self._failed_at}: {type(failure).__name__}: {failure}. Events published since "
            f"then were never collected, so no check on this collector can be trusted."
        ) from failure

    def close(self) -> None:
        """Stop consuming and close the connection; raise if the consumer had failed."""
        with self._cond:
            self._closing = True
        with contextlib.suppress(Exception):
            self._connection.add_callback_threadsafe(self._channel.stop_consuming)
        self._thread.join(5)
        with contextlib.suppress(Exception):
            self._connection.close()
        self._raise_if_failed()

    # what was collected

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of everything collected so far, in arrival order."""
        self._raise_if_failed()
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        """Forget everything collected so far."""
        self._raise_if_failed()
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
        while True:
            self._raise_if_failed()
            with self._cond:
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
                if self._failure is None:
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
        self._raise_if_failed()
        time.sleep(quiet)
        found = [m for m in self.messages if predicate(m)]
        assert not found, f"unexpected messages on {self.exchange}: {found}"
