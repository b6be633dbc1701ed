"""RabbitMQ names and the headers of the contract: the one source of every default name.

The worker's settings take their defaults from here (each name is also a setting)::

    publisher ──► fca.commands (topic exchange)
                       │ bound with #
                       ▼
                  fca.worker.commands.partitions (x-consistent-hash on header fca-ordering-key)
                       │
          ┌────────────┼─────────────┐
          ▼            ▼             ▼
         .p00         .p01    …     .pNN     fca.worker.commands.p00 …: quorum queues with a
          │                                  single active consumer (one replica per partition)
          ▼
       worker ──► fca.events (topic exchange), routing key per event type
          │  └──► reply_to queue (default exchange): the outcome or the query answer
          ├─────► fca.worker.commands.delay.<N>s (quorum delay queue) ──after N s──►
          │           back to fca.worker.commands.partitions (dead-lettered at least once)
          └─────► fca.worker.commands.dlq (quorum): commands that could not be processed

Every queue that holds a command is a quorum queue and every hop is at least once
(publisher confirms, or ``x-dead-letter-strategy: at-least-once`` with
``x-overflow: reject-publish``). A retried command keeps its ``fca-ordering-key`` header, so
it returns to its own partition. Our headers never start with ``x-``: RabbitMQ owns those.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COMMANDS_EXCHANGE",
    "COMMAND_QUEUE",
    "COMMAND_QUEUE_BINDING_KEY",
    "CONTENT_TYPE",
    "DEAD_LETTER_QUEUE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PARTITIONS",
    "DEFAULT_REPLY_TO_PATTERN",
    "DELAY_QUEUE_PREFIX",
    "ERROR_MESSAGE_MAX_CHARS",
    "EVENTS_EXCHANGE",
    "EXCHANGE_TYPE",
    "HEADER_ATTEMPTS",
    "HEADER_ERROR_MESSAGE",
    "HEADER_ERROR_TYPE",
    "HEADER_FIRST_FAILED_AT",
    "HEADER_LAST_FAILED_AT",
    "HEADER_ORDERING_KEY",
    "HEADER_ORIGINAL_ROUTING_KEY",
    "HEADER_REPLAY_COUNT",
    "HEADER_TRACEPARENT",
    "HEADER_TRACESTATE",
    "PARTITIONS_EXCHANGE",
    "PARTITIONS_EXCHANGE_TYPE",
    "RETRY_QUEUE_PREFIX",
    "delay_queue_name",
    "partition_queue_name",
    "partitions_exchange_name",
    "retry_queue_name",
]

COMMANDS_EXCHANGE: Final = "fca.commands"
"""Topic exchange where upstream publishes commands and queries (routing key = type)."""
COMMAND_QUEUE: Final = "fca.worker.commands"
"""The worker's input; since contract v2 the prefix of its partition and delay queues."""
COMMAND_QUEUE_BINDING_KEY: Final = "#"
"""The worker's input receives every command type."""
PARTITIONS_EXCHANGE: Final = f"{COMMAND_QUEUE}.partitions"
"""Internal consistent-hash exchange, bound to the commands exchange, feeding the partitions."""
PARTITIONS_EXCHANGE_TYPE: Final = "x-consistent-hash"
"""Kind of the partitions exchange (RabbitMQ's bundled consistent-hash exchange plugin)."""
DEFAULT_PARTITIONS: Final = 16
"""Number of partition queues (default of the setting ``WORKER_PARTITIONS``)."""
EVENTS_EXCHANGE: Final = "fca.events"
"""Topic exchange where the worker publishes events (routing key = dotted event name)."""
DEAD_LETTER_QUEUE: Final = "fca.worker.commands.dlq"
"""Durable quorum queue of commands that could not be processed."""
RETRY_QUEUE_PREFIX: Final = f"{COMMAND_QUEUE}.retry."
"""Prefix of contract v1's classic delay queues (a v2 worker drains them into the partitions)."""
DELAY_QUEUE_PREFIX: Final = f"{COMMAND_QUEUE}.delay."
"""Prefix of the internal quorum delay queues of the default command queue (since v2)."""
EXCHANGE_TYPE: Final = "topic"
"""Kind of the commands and events exchanges."""
DEFAULT_REPLY_TO_PATTERN: Final = r"^(amq\.rabbitmq\.reply-to|amq\.gen-|fca\.reply\.)"
"""A ``reply_to`` must match this to get an answer (default of ``WORKER_REPLY_TO_PATTERN``)."""

CONTENT_TYPE: Final = "application/json"
"""Content type of every body."""
DEFAULT_MAX_BODY_BYTES: Final = 256 * 1024
"""Bodies larger than this are dead-lettered unparsed (default of the setting)."""

HEADER_ORDERING_KEY: Final = "fca-ordering-key"
"""On a command: its ordering key (``contracts.ordering_key``); the partitions hash it."""
HEADER_TRACEPARENT: Final = "traceparent"
"""W3C trace context: the trace and parent span, continued through events and retries."""
HEADER_TRACESTATE: Final = "tracestate"
"""W3C trace context: vendor-specific trace state, passed on unchanged."""
HEADER_ERROR_TYPE: Final = "fca-error-type"
"""On a dead letter: invalid_message, transient or unexpected."""
HEADER_ERROR_MESSAGE: Final = "fca-error-message"
"""On a dead letter: what went wrong, without personal data or secrets."""
ERROR_MESSAGE_MAX_CHARS: Final = 500
"""``fca-error-message`` is cut to this many characters."""
HEADER_ATTEMPTS: Final = "fca-attempts"
"""How many times processing was attempted."""
HEADER_FIRST_FAILED_AT: Final = "fca-first-failed-at"
"""RFC 3339 time of the first failure."""
HEADER_LAST_FAILED_AT: Final = "fca-last-failed-at"
"""RFC 3339 time of the last failure."""
HEADER_ORIGINAL_ROUTING_KEY: Final = "fca-original-routing-key"
"""The routing key the command was first published with."""
HEADER_REPLAY_COUNT: Final = "fca-replay-count"
"""How many times the command was replayed from the dead-letter queue."""


def delay_queue_name(delay_seconds: int, command_queue: str = COMMAND_QUEUE) -> str:
    """The quorum delay queue for a retry after ``delay_seconds``, e.g. ``...delay.30s``."""
    if not _whole(delay_seconds) or delay_seconds < 1:
        raise ValueError("delay_seconds must be a positive integer")
    return f"{command_queue}.delay.{delay_seconds}s"


def retry_queue_name(delay_seconds: int, command_queue: str = COMMAND_QUEUE) -> str:
    """Contract v1's classic delay queue for ``delay_seconds``, e.g. ``...retry.30s``.

    A v1 worker dead-lettered these back to its single input queue; a v2 worker only drains
    them (their names cannot become quorum queues in place).
    """
    if not _whole(delay_seconds) or delay_seconds < 1:
        raise ValueError("delay_seconds must be a positive integer")
    return f"{command_queue}.retry.{delay_seconds}s"


def partitions_exchange_name(command_queue: str = COMMAND_QUEUE) -> str:
    """The consistent-hash exchange feeding the partitions of ``command_queue``."""
    return f"{command_queue}.partitions"


def partition_queue_name(index: int, command_queue: str = COMMAND_QUEUE) -> str:
    """The partition queue number ``index`` (from 0), e.g. ``fca.worker.commands.p07``."""
    if not _whole(index) or index < 0:
        raise ValueError("index must be a non-negative integer")
    return f"{command_queue}.p{index:02d}"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
