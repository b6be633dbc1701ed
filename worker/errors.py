"""The worker's one error tree, and the one place lower-layer errors are translated into it.

::

    WorkerError
    ├── DomainError                 business rejection: answered with CommandRejected, acked
    │   ├── EmailTaken                  email_taken
    │   ├── CustomerNotFound            customer_not_found
    │   ├── AccountNotFound             account_not_found
    │   ├── AccountsNotFound            accounts_not_found
    │   ├── AccountFrozen               account_frozen
    │   ├── InsufficientFunds           insufficient_funds
    │   ├── BalanceLimitExceeded        balance_limit_exceeded
    │   ├── DuplicateReference          duplicate_reference
    │   ├── ConversationNotFound        conversation_not_found
    │   ├── ConversationClosed          conversation_closed
    │   ├── ConversationExists          conversation_exists
    │   ├── AlreadyEscalated            already_escalated
    │   ├── FaqNotFound                 faq_not_found
    │   └── InvalidCursor               invalid_cursor (a query's cursor we did not issue)
    ├── RepositoryError             a caller misused a repository (a bug, not bad input)
    │   └── UnknownFilterField
    ├── TransientError              worth retrying: a service was briefly unavailable or contended
    ├── StartupError                a service is unreachable at start-up (one line, no traceback)
    └── DlqError                    the DLQ tool cannot carry out an operation (worker dlq)

Everything the drivers raise (SQLAlchemy, asyncpg, SQLite, aio-pika/aiormq, the OS) is
translated by :func:`translate`: a unique violation we know becomes its :class:`DomainError`,
an unavailable or contended service becomes a :class:`TransientError`, and anything else is
not ours to name (``None``: a bug, "unexpected"). :mod:`worker.messaging.fate` turns that
into a delivery's fate; nothing else inspects driver exception types.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import aiormq.exceptions
import asyncpg.exceptions
from sqlalchemy import exc as sa_exc


class WorkerError(Exception):
    """Root of every error the worker raises on purpose."""


class DomainError(WorkerError):
    """A business rule said no; ``reason`` is the contract's rejection code."""

    reason: str = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EmailTaken(DomainError):
    """Another customer already uses this email."""

    reason = "email_taken"


class CustomerNotFound(DomainError):
    """No (non-deleted) customer has this business id or email."""

    reason = "customer_not_found"


class AccountNotFound(DomainError):
    """No account has this account number."""

    reason = "account_not_found"


class AccountsNotFound(DomainError):
    """None of the given account numbers exist."""

    reason = "accounts_not_found"


class AccountFrozen(DomainError):
    """The account is frozen (or closed) and cannot move money."""

    reason = "account_frozen"


class InsufficientFunds(DomainError):
    """A debit would take the balance below zero."""

    reason = "insufficient_funds"


class BalanceLimitExceeded(DomainError):
    """A credit would take the balance beyond what an account can hold."""

    reason = "balance_limit_exceeded"


class DuplicateReference(DomainError):
    """The account already has a transaction with this reference."""

    reason = "duplicate_reference"


class ConversationNotFound(DomainError):
    """No conversation has this id (or escalation id)."""

    reason = "conversation_not_found"


class ConversationClosed(DomainError):
    """The conversation is resolved or closed."""

    reason = "conversation_closed"


class ConversationExists(DomainError):
    """A conversation with the caller-chosen id already exists."""

    reason = "conversation_exists"


class AlreadyEscalated(DomainError):
    """The conversation is already escalated."""

    reason = "already_escalated"


class FaqNotFound(DomainError):
    """``faq_id`` names no FAQ."""

    reason = "faq_not_found"


class InvalidCursor(DomainError):
    """A pagination cursor that this worker did not issue (or that was altered)."""

    reason = "invalid_cursor"

    def __init__(self, detail: str = "invalid pagination cursor") -> None:
        super().__init__(detail)


class RepositoryError(WorkerError):
    """A repository was called with arguments it cannot honour."""


class UnknownFilterField(RepositoryError, ValueError):
    """A filter or update named a field that is not a mapped column."""

    def __init__(self, model: str, fields: Sequence[str]) -> None:
        super().__init__(f"{model} has no column(s) {', '.join(fields)}")
        self.fields = list(fields)


class TransientError(WorkerError):
    """A temporary fault; the delivery is retried with back-off."""


class StartupError(WorkerError):
    """The worker could not reach or log in to a service it needs."""


class DlqError(WorkerError):
    """The dead-letter-queue tool cannot carry out an operation; the message says why."""


# --- unique violations --------------------------------------------------------------------------

# Constraint name (PostgreSQL names it in the error) and the "table.column" SQLite names
# instead, for each unique constraint a concurrent command can run into.
UNIQUE_VIOLATIONS: dict[str, tuple[type[DomainError], str, str]] = {
    "uq_customers_email": (EmailTaken, "customers.email", "a customer uses this email"),
    "uq_transactions_account_reference": (
        DuplicateReference,
        "transactions.reference",
        "this reference was already used on the account",
    ),
    "uq_conversations_conversation_id": (
        ConversationExists,
        "conversations.conversation_id",
        "a conversation with this id already exists",
    ),
}


def _unique_violation(exc: sa_exc.IntegrityError) -> DomainError | None:
    text = str(exc.orig)
    prefix, _, listed = text.partition("UNIQUE constraint failed:")  # SQLite lists columns
    columns = {c.strip() for c in listed.split(",")} if not prefix and listed else set()
    for constraint, (error, column, detail) in UNIQUE_VIOLATIONS.items():
        if constraint in text or column in columns:
            return error(detail)
    return None


@contextmanager
def unique_violations() -> Iterator[None]:
    """Raise a known unique violation as its :class:`DomainError` (``from`` the driver's)."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        error = _unique_violation(exc)
        if error is None:
            raise
        raise error from exc


# --- transient faults ---------------------------------------------------------------------------

# asyncpg errors that mean "the database is briefly unavailable or contended". A plain
# InterfaceError is not among them: "another operation is in progress" is a bug of ours.
_TRANSIENT_ASYNCPG: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout
    asyncpg.exceptions.LockNotAvailableError,
)

# Broker failures while publishing or settling: channel closed, connection lost, nack.
_TRANSIENT_AMQP: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.DeliveryError,
)

# Network-level OS errors. A missing file or a permission refused is not among them.
_TRANSIENT_OS = (ConnectionError, TimeoutError, asyncio.TimeoutError)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)

# SQLSTATEs worth a retry: serialization failure, deadlock, statement timeout, lock
# timeout, too many connections, and classes 08 (connection) and 57P (shutdown).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57014", "55P03", "53300"})
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P")


def _is_transient(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    ):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # connection pool exhausted
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, _TRANSIENT_ASYNCPG + _TRANSIENT_AMQP + _TRANSIENT_OS):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def translate(exc: BaseException) -> WorkerError | None:
    """The error tree's name for ``exc``, or ``None`` when it is a bug ("unexpected").

    Our own errors stay as they are; a known unique violation becomes its
    :class:`DomainError`; a driver or OS error that means "unavailable or contended",
    found anywhere along the ``__cause__`` chain (SQLAlchemy wraps the driver's error),
    becomes a :class:`TransientError`.
    """
    if isinstance(exc, WorkerError):
        return exc
    if isinstance(exc, sa_exc.IntegrityError):
        return _unique_violation(exc)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient(current):
            return TransientError(type(current).__name__)
        current = current.__cause__ or _orig(current)
    return None


def _orig(exc: BaseException) -> BaseException | None:
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else None
