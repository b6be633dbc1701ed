"""Messages as they travel: what a test sent, what it received, and the contract's checks.

``SentMessage``
    A command or query as published: ``message_id``, ``type``, ``correlation_id`` (as sent,
    may be None), ``expected_correlation_id`` (what its outcomes must carry), ``body``,
    ``properties``, ``routing_key``.
``ReceivedMessage``
    An event, reply or dead letter taken from a queue: ``routing_key``, ``exchange``,
    ``body``, ``properties``, ``redelivered``, ``headers`` (bytes decoded), ``persistent``,
    ``json``, the envelope's ``message_id``, ``type``, ``correlation_id``, ``causation_id``
    and ``payload``, and ``.parsed()`` (validated with ``contracts.parse_event``).
    ``ReceivedMessage.from_delivery(method, properties, body)`` builds one from pika's.
``assert_outcome_message(msg, sent, *, event_type, routing_key=None)``
    What the contract says about an outcome of ``sent`` (event, rejection or reply):
    envelope, AMQP properties, persistence, a body that parses.
``CONTENT_TYPE``, ``PERSISTENT``, ``BROKER_HEADER_PREFIX``
    ``application/json``; delivery mode 2; the prefix of headers the broker sets on its own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pika

__all__ = [
    "BROKER_HEADER_PREFIX",
    "CONTENT_TYPE",
    "PERSISTENT",
    "ReceivedMessage",
    "SentMessage",
    "assert_outcome_message",
]

CONTENT_TYPE = "application/json"
PERSISTENT = 2
"""AMQP delivery mode of a persistent message."""

BROKER_HEADER_PREFIX = "x-"
"""Headers the broker sets itself (e.g. a quorum queue's ``x-delivery-count``)."""


@dataclass(frozen=True)
class SentMessage:
    """A command or query as published."""

    message_id: str
    type: str
    correlation_id: str | None
    body: bytes
    properties: pika.BasicProperties
    routing_key: str

    @property
    def expected_correlation_id(self) -> str:
        """What the outcome must carry: the given correlation id, else the message id."""
        return self.correlation_id if self.correlation_id is not None else self.message_id


@dataclass(frozen=True)
class ReceivedMessage:
    """A message taken from a queue (an event, a reply or a dead letter)."""

    routing_key: str
    exchange: str
    body: bytes
    properties: pika.BasicProperties
    redelivered: bool = False
    received_at: float = field(default_factory=time.time)

    @classmethod
    def from_delivery(
        cls, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> ReceivedMessage:
        """Build one from what pika hands over (``method``: ``Basic.Deliver`` or ``GetOk``)."""
        return cls(
            routing_key=method.routing_key,
            exchange=method.exchange,
            body=body,
            properties=properties,
            redelivered=bool(method.redelivered),
        )

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def _field(self, name: str) -> Any:
        data = self.json
        return data.get(name) if isinstance(data, dict) else None

    @property
    def message_id(self) -> str | None:
        """The envelope's ``message_id``."""
        return self._field("message_id")  # type: ignore[no-any-return]

    @property
    def type(self) -> str | None:
        """The envelope's ``type``."""
        return self._field("type")  # type: ignore[no-any-return]

    @property
    def correlation_id(self) -> str | None:
        """The envelope's ``correlation_id``."""
        return self._field("correlation_id")  # type: ignore[no-any-return]

    @property
    def causation_id(self) -> str | None:
        """The envelope's ``causation_id`` (the causing command's message id)."""
        return self._field("causation_id")  # type: ignore[no-any-return]

    @property
    def payload(self) -> dict[str, Any]:
        """The envelope's ``payload`` (empty if absent)."""
        value = self._field("payload")
        return value if isinstance(value, dict) else {}

    @property
    def headers(self) -> dict[str, Any]:
        """The AMQP headers, with byte values decoded."""
        raw = self.properties.headers or {}
        return {
            k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in raw.items()
        }

    @property
    def persistent(self) -> bool:
        """Whether it was published with delivery mode 2."""
        return bool(self.properties.delivery_mode == PERSISTENT)

    def parsed(self) -> Any:
        """The body validated against the contract (``contracts.parse_event``)."""
        from contracts import parse_event

        return parse_event(self.body)

    def __repr__(self) -> str:
        return (
            f"<{self.type or '?'} rk={self.routing_key!r} id={self.message_id} "
            f"cause={self.causation_id} payload={self.payload}>"
        )


def assert_outcome_message(
    message: ReceivedMessage,
    sent: SentMessage,
    *,
    event_type: str,
    routing_key: str | None = None,
) -> None:
    """Check what the contract says about an outcome of ``sent`` (event, rejection, reply)."""
    assert message.type == event_type, f"expected {event_type}, got {message!r}"
    if routing_key is not None:
        assert message.routing_key == routing_key, message
    assert message.causation_id == sent.message_id, message
    assert message.correlation_id == sent.expected_correlation_id, message
    assert message.message_id, message
    assert message.message_id != sent.message_id, message
    props = message.properties
    assert props.message_id == message.message_id, (props.message_id, message)
    assert props.type == event_type, (props.type, message)
    assert props.correlation_id == message.correlation_id, (props.correlation_id, message)
    assert props.content_type == CONTENT_TYPE, props.content_type
    assert isinstance(props.timestamp, int), props.timestamp
    assert abs(props.timestamp - time.time()) < 300, props.timestamp
    assert message.persistent, f"delivery mode {props.delivery_mode}"
    message.parsed()  # the body is a valid contract message
