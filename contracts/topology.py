"""Default RabbitMQ names and the headers the worker sets (each name is also a setting).

::

    fca.commands (topic) --#--> fca.worker.commands (quorum) --> worker
                                     ^        |
           after the delay (TTL) ----+        +--> fca.worker.commands.retry.<N>s (quorum)
                                              +--> fca.worker.commands.dlq (quorum)
    worker --> fca.events (topic), routing key per event type; replies --> reply_to

Retry queues are internal: a command that failed transiently waits in
``fca.worker.commands.retry.<delay>s`` until its TTL expires, then returns to the input queue.
Our headers never start with ``x-``: RabbitMQ owns those from 3.13 on.
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
    "EVENTS_EXCHANGE",
    "EXCHANGE_TYPE",
    "HEADER_ATTEMPTS",
    "HEADER_ERROR_MESSAGE",
    "HEADER_ERROR_TYPE",
    "HEADER_FIRST_FAILED_AT",
    "HEADER_LAST_FAILED_AT",
    "HEADER_ORIGINAL_ROUTING_KEY",
    "HEADER_REPLAY_COUNT",
    "RETRY_QUEUE_PREFIX",
    "retry_queue_name",
]

COMMANDS_EXCHANGE: Final = "fca.commands"
"""Topic exchange where upstream publishes commands and queries (routing key = type)."""
COMMAND_QUEUE: Final = "fca.worker.commands"
"""The worker's input: a durable quorum queue bound to the commands exchange."""
COMMAND_QUEUE_BINDING_KEY: Final = "#"
"""The input queue receives every command type."""
EVENTS_EXCHANGE: Final = "fca.events"
"""Topic exchange where the worker publishes events (routing key = dotted event name)."""
DEAD_LETTER_QUEUE: Final = "fca.worker.commands.dlq"
"""Durable quorum queue of commands that could not be processed."""
RETRY_QUEUE_PREFIX: Final = "fca.worker.commands.retry."
"""Prefix of the internal delay queues."""
EXCHANGE_TYPE: Final = "topic"
"""Kind of both exchanges."""

CONTENT_TYPE: Final = "application/json"
"""Content type of every body."""
DEFAULT_MAX_BODY_BYTES: Final = 256 * 1024
"""Bodies larger than this are dead-lettered unparsed (default of the setting)."""

HEADER_ERROR_TYPE: Final = "fca-error-type"
"""On a dead letter: invalid_message, transient or unexpected."""
HEADER_ERROR_MESSAGE: Final = "fca-error-message"
"""On a dead letter: what went wrong, without personal data or secrets."""
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


def retry_queue_name(delay_seconds: int) -> str:
    """The delay queue for a retry after ``delay_seconds``, e.g. ``...retry.30s``."""
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int) or delay_seconds < 1:
        raise ValueError("delay_seconds must be a positive integer")
    return f"{RETRY_QUEUE_PREFIX}{delay_seconds}s"
