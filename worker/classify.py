"""One classification of every error into the contract's outcomes.

This is the only place that knows driver exception types (SQLAlchemy, asyncpg,
aio-pika/aiormq); everything else asks :func:`classify`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from enum import StrEnum

import aiormq.exceptions
import asyncpg.exceptions
from sqlalchemy import exc as sa_exc

from worker.errors import DomainError, InvalidCursor, TransientError


class Outcome(StrEnum):
    """What a failure means for the delivery that hit it."""

    REJECTED = "rejected"  # a business answer: CommandRejected, ack
    INVALID = "invalid_message"  # dead-letter at once, never retry
    TRANSIENT = "transient"  # retry with back-off, then dead-letter
    UNEXPECTED = "unexpected"  # retry a few times, then dead-letter


# asyncpg errors that mean "the database is briefly unavailable or contended".
_TRANSIENT_ASYNCPG: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.InterfaceError,
)

# Broker-side failures while publishing (channel closed, connection lost, nack).
_TRANSIENT_AMQP: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.DeliveryError,
)

# Plain OS-level failures: refused, reset, timed out.
_TRANSIENT_OS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
)


def classify(exc: BaseException) -> Outcome:
    """Map an exception raised while handling a message to its :class:`Outcome`."""
    if isinstance(exc, DomainError | InvalidCursor):
        return Outcome.REJECTED
    if isinstance(exc, TransientError):
        return Outcome.TRANSIENT
    if isinstance(exc, sa_exc.TimeoutError):  # connection pool exhausted
        return Outcome.TRANSIENT
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return Outcome.TRANSIENT
        return classify_driver(exc.orig) if exc.orig is not None else Outcome.UNEXPECTED
    return classify_driver(exc)


# SQLSTATEs worth a retry: serialization failure, deadlock, statement timeout, lock
# timeout, too many connections, and classes 08 (connection) and 57P (shutdown).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57014", "55P03", "53300"})
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P")


def classify_driver(exc: BaseException) -> Outcome:
    """Classify a raw driver or OS exception, following its ``__cause__`` chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient(current):
            return Outcome.TRANSIENT
        current = current.__cause__
    return Outcome.UNEXPECTED


def _is_transient(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    ):
        return True
    if isinstance(exc, _TRANSIENT_ASYNCPG + _TRANSIENT_AMQP + _TRANSIENT_OS):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
