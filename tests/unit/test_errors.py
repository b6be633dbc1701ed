"""Every lower-layer error we know of has one name in the error tree (``translate``).

The exceptions are real objects of the drivers' own classes, wrapped the way SQLAlchemy's
asyncpg dialect wraps them (``AsyncAdapt_asyncpg_dbapi.Error`` carrying ``sqlstate``, inside
a ``DBAPIError``), so a change in how a layer reports a failure shows up here.
"""

from __future__ import annotations

import errno
import sqlite3

import aiormq.exceptions
import asyncpg.exceptions
import pytest
from pamqp.commands import Basic
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

import worker.errors
from contracts import REJECTION_REASONS
from worker.errors import (
    ConversationExists,
    DomainError,
    DuplicateReference,
    EmailTaken,
    InvalidCursor,
    TransientError,
    WorkerError,
    translate,
    unique_violations,
)

pytestmark = pytest.mark.unit

STATEMENT = "UPDATE accounts SET balance = $1 WHERE id = $2"
DBAPI = AsyncAdapt_asyncpg_dbapi


def subclasses(base: type[BaseException]) -> list[type[BaseException]]:
    """Every subclass of ``base``, however deep, in a stable order."""
    found: list[type[BaseException]] = []
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


def domain_errors() -> list[type[DomainError]]:
    """The DomainError subclasses defined in worker/errors.py."""
    return [c for c in subclasses(DomainError) if c.__module__ == worker.errors.__name__]  # type: ignore[misc]


def as_sqlalchemy(
    driver_error: Exception,
    *,
    adapted: type[Exception] = DBAPI.Error,
    connection_invalidated: bool = False,
) -> BaseException:
    """``driver_error`` as SQLAlchemy raises it from the asyncpg dialect."""
    wrapper = adapted(str(driver_error), driver_error)  # type: ignore[call-arg]
    wrapper.__cause__ = driver_error
    return sa_exc.DBAPIError.instance(
        STATEMENT,
        (1, 2),
        wrapper,
        DBAPI.Error,
        hide_parameters=True,
        connection_invalidated=connection_invalidated,
    )


class FakeOrig(Exception):
    """A DBAPI error of some other driver that only carries a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def operational(sqlstate: str) -> sa_exc.OperationalError:
    """``OperationalError(stmt, params, orig)`` whose orig carries ``sqlstate``."""
    return sa_exc.OperationalError(STATEMENT, (1, 2), FakeOrig(f"sqlstate {sqlstate}", sqlstate))


# --- the table --------------------------------------------------------------------------------

OURS = [
    *(pytest.param(cls("detail"), id=f"domain-{cls.__name__}") for cls in domain_errors()),
    pytest.param(InvalidCursor(), id="InvalidCursor"),
    pytest.param(TransientError("broker unavailable"), id="TransientError"),
]


def unique_violation(constraint: str) -> sa_exc.IntegrityError:
    """A unique violation as SQLAlchemy raises it from asyncpg (PostgreSQL names it)."""
    error = asyncpg.exceptions.UniqueViolationError(
        f'duplicate key value violates unique constraint "{constraint}"'
    )
    raised = as_sqlalchemy(error, adapted=DBAPI.IntegrityError)
    assert isinstance(raised, sa_exc.IntegrityError)
    return raised


def sqlite_unique_violation(column: str) -> sa_exc.IntegrityError:
    """A unique violation as SQLAlchemy raises it from SQLite (it names the column)."""
    orig = sqlite3.IntegrityError(f"UNIQUE constraint failed: {column}")
    return sa_exc.IntegrityError(STATEMENT, (), orig)


KNOWN_UNIQUE = [
    pytest.param(unique_violation("uq_customers_email"), EmailTaken, id="pg-email"),
    pytest.param(sqlite_unique_violation("customers.email"), EmailTaken, id="sqlite-email"),
    pytest.param(
        unique_violation("uq_transactions_account_reference"), DuplicateReference, id="pg-ref"
    ),
    pytest.param(
        sqlite_unique_violation("transactions.account_id, transactions.reference"),
        DuplicateReference,
        id="sqlite-ref",
    ),
    pytest.param(
        unique_violation("uq_conversations_conversation_id"), ConversationExists, id="pg-conv"
    ),
    pytest.param(
        sqlite_unique_violation("conversations.conversation_id"),
        ConversationExists,
        id="sqlite-conv",
    ),
]

TRANSIENT = [
    # asyncpg, raw (as from a bare asyncpg connection) and wrapped by SQLAlchemy
    *(
        pytest.param(wrap(error), id=f"{label}-{type(error).__name__}")
        for label, wrap in (("asyncpg", lambda e: e), ("sqlalchemy", as_sqlalchemy))
        for error in (
            asyncpg.exceptions.PostgresConnectionError("connection failure"),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
            asyncpg.exceptions.ConnectionFailureError("connection failure"),
            asyncpg.exceptions.ClientCannotConnectError("cannot connect"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.CrashShutdownError("crash shutdown"),
            asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
            asyncpg.exceptions.SerializationError("could not serialize access"),
            asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
            asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
        )
    ),
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.InterfaceError("connection is closed"),
            adapted=DBAPI.InterfaceError,
            connection_invalidated=True,
        ),
        id="sqlalchemy-InterfaceError-connection-invalidated",
    ),
    pytest.param(
        sa_exc.DBAPIError(STATEMENT, None, Exception("server closed"), connection_invalidated=True),
        id="DBAPIError-connection-invalidated",
    ),
    # OS level
    pytest.param(ConnectionRefusedError(111, "Connection refused"), id="ConnectionRefusedError"),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="ConnectionResetError"),
    pytest.param(TimeoutError(), id="TimeoutError"),
    pytest.param(
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached, timed out"),
        id="sqlalchemy-pool-timeout",
    ),
    # SQLSTATEs carried by any driver's orig
    pytest.param(operational("40P01"), id="sqlstate-40P01-deadlock"),
    pytest.param(operational("40001"), id="sqlstate-40001-serialization"),
    pytest.param(operational("57014"), id="sqlstate-57014-statement-timeout"),
    pytest.param(operational("57P01"), id="sqlstate-57P01-admin-shutdown"),
    pytest.param(operational("08006"), id="sqlstate-08006-connection-failure"),
    # the broker, while publishing
    pytest.param(aiormq.exceptions.ChannelClosed(406, "PRECONDITION_FAILED"), id="ChannelClosed"),
    pytest.param(
        aiormq.exceptions.ChannelInvalidStateError("channel closed"),
        id="ChannelInvalidStateError",
    ),
    pytest.param(aiormq.exceptions.AMQPConnectionError("lost"), id="AMQPConnectionError"),
    pytest.param(
        aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"), id="ConnectionClosed"
    ),
    pytest.param(
        aiormq.exceptions.DeliveryError(None, Basic.Nack(delivery_tag=1)),  # type: ignore[arg-type]
        id="DeliveryError-nack",
    ),
    pytest.param(OSError(errno.EHOSTUNREACH, "No route to host"), id="OSError-EHOSTUNREACH"),
    # SQLite
    pytest.param(sqlite3.OperationalError("database is locked"), id="sqlite-locked-raw"),
    pytest.param(
        sa_exc.OperationalError(STATEMENT, (), sqlite3.OperationalError("database is locked")),
        id="sqlite-locked-wrapped",
    ),
]

UNEXPECTED = [
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
            adapted=DBAPI.IntegrityError,
        ),
        id="IntegrityError-asyncpg-unique-unknown-constraint",
    ),
    # A plain InterfaceError is a misuse of the connection (a bug), not an outage.
    pytest.param(
        asyncpg.exceptions.InterfaceError(
            "cannot perform operation: another operation is in progress"
        ),
        id="asyncpg-InterfaceError-another-operation",
    ),
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.InterfaceError("another operation is in progress"),
            adapted=DBAPI.InterfaceError,
        ),
        id="sqlalchemy-InterfaceError-not-invalidated",
    ),
    pytest.param(FileNotFoundError(2, "No such file or directory"), id="FileNotFoundError"),
    pytest.param(PermissionError(13, "Permission denied"), id="PermissionError"),
    pytest.param(OSError(errno.ENOSPC, "No space left on device"), id="OSError-ENOSPC"),
    pytest.param(
        sa_exc.IntegrityError(STATEMENT, (), sqlite3.IntegrityError("UNIQUE constraint failed")),
        id="IntegrityError-sqlite-unique",
    ),
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.NumericValueOutOfRangeError("numeric field overflow"),
            adapted=DBAPI.DataError,
        ),
        id="DataError-numeric-overflow",
    ),
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.UndefinedTableError("relation does not exist"),
            adapted=DBAPI.ProgrammingError,
        ),
        id="ProgrammingError-undefined-table",
    ),
    pytest.param(
        sa_exc.OperationalError(STATEMENT, (), sqlite3.OperationalError("no such table: x")),
        id="sqlite-no-such-table",
    ),
    pytest.param(ValueError("bad"), id="ValueError"),
    pytest.param(KeyError("missing"), id="KeyError"),
    pytest.param(AssertionError("invariant"), id="AssertionError"),
    pytest.param(TypeError("wrong"), id="TypeError"),
    pytest.param(RuntimeError("bug"), id="RuntimeError"),
]


@pytest.mark.parametrize("error", OURS)
def test_our_own_errors_keep_their_name(error: WorkerError) -> None:
    assert translate(error) is error


@pytest.mark.parametrize(("error", "expected"), KNOWN_UNIQUE)
def test_a_unique_violation_the_contract_names_becomes_its_rejection(
    error: sa_exc.IntegrityError, expected: type[DomainError]
) -> None:
    translated = translate(error)
    assert type(translated) is expected


@pytest.mark.parametrize(("error", "expected"), KNOWN_UNIQUE)
def test_unique_violations_raises_the_rejection_from_the_drivers_error(
    error: sa_exc.IntegrityError, expected: type[DomainError]
) -> None:
    with pytest.raises(expected) as raised, unique_violations():
        raise error
    assert raised.value.__cause__ is error


def test_unique_violations_lets_other_integrity_errors_through() -> None:
    error = sa_exc.IntegrityError(STATEMENT, (), sqlite3.IntegrityError("NOT NULL failed"))
    with pytest.raises(sa_exc.IntegrityError), unique_violations():
        raise error


@pytest.mark.parametrize("error", TRANSIENT)
def test_unavailable_or_contended_resources_are_transient(error: BaseException) -> None:
    assert isinstance(translate(error), TransientError)


@pytest.mark.parametrize("error", UNEXPECTED)
def test_bugs_and_data_errors_have_no_name_in_the_tree(error: BaseException) -> None:
    assert translate(error) is None


def test_a_transient_error_hidden_behind_a_cause_is_still_transient() -> None:
    error = RuntimeError("while publishing")
    error.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert isinstance(translate(error), TransientError)


def test_a_cause_cycle_does_not_recurse_forever() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert translate(first) is None


# --- the error tree ---------------------------------------------------------------------------


def test_there_are_domain_errors_to_check() -> None:
    assert len(domain_errors()) >= 12


@pytest.mark.parametrize("cls", domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_reason_is_a_contract_rejection_reason(cls: type[DomainError]) -> None:
    assert cls.reason in REJECTION_REASONS, cls.reason
    assert cls("detail").reason == cls.reason


def test_no_two_domain_errors_share_a_reason() -> None:
    reasons = [cls.reason for cls in domain_errors()]
    assert len(reasons) == len(set(reasons)), reasons


@pytest.mark.parametrize("cls", subclasses(WorkerError), ids=lambda c: c.__name__)
def test_the_errors_module_docstring_draws_every_error(cls: type[BaseException]) -> None:
    doc = worker.errors.__doc__ or ""
    assert f" {cls.__name__} " in doc or f" {cls.__name__}\n" in doc, (
        f"{cls.__name__} is missing from the tree in worker/errors.py's docstring"
    )


@pytest.mark.parametrize("cls", domain_errors(), ids=lambda c: c.__name__)
def test_the_docstring_tree_names_each_domain_errors_reason(cls: type[DomainError]) -> None:
    lines = [line for line in (worker.errors.__doc__ or "").splitlines() if cls.__name__ in line]
    assert any(cls.reason in line for line in lines), (cls.__name__, lines)
