"""Every error type we know of has one outcome, and the error tree matches the contract.

The exceptions are real objects of the drivers' own classes, wrapped the way SQLAlchemy's
asyncpg dialect wraps them (``AsyncAdapt_asyncpg_dbapi.Error`` carrying ``sqlstate``, inside
a ``DBAPIError``), so a change in how a layer reports a failure shows up here.
"""

from __future__ import annotations

import sqlite3

import aiormq.exceptions
import asyncpg.exceptions
import pytest
from pamqp.commands import Basic
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

import worker.errors
from contracts import RejectionReason
from worker.classify import Outcome, classify
from worker.errors import DomainError, InvalidCursor, TransientError, WorkerError

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

REJECTED = [
    *(pytest.param(cls("detail"), id=f"domain-{cls.__name__}") for cls in domain_errors()),
    pytest.param(InvalidCursor(), id="InvalidCursor"),
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
    # SQLite
    pytest.param(sqlite3.OperationalError("database is locked"), id="sqlite-locked-raw"),
    pytest.param(
        sa_exc.OperationalError(STATEMENT, (), sqlite3.OperationalError("database is locked")),
        id="sqlite-locked-wrapped",
    ),
    # our own
    pytest.param(TransientError("broker unavailable"), id="TransientError"),
]

UNEXPECTED = [
    pytest.param(
        as_sqlalchemy(
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
            adapted=DBAPI.UniqueViolationError,
        ),
        id="IntegrityError-asyncpg-unique",
    ),
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


@pytest.mark.parametrize("error", REJECTED)
def test_business_rejections_are_answered_not_retried(error: BaseException) -> None:
    assert classify(error) is Outcome.REJECTED


@pytest.mark.parametrize("error", TRANSIENT)
def test_unavailable_or_contended_resources_are_transient(error: BaseException) -> None:
    assert classify(error) is Outcome.TRANSIENT


@pytest.mark.parametrize("error", UNEXPECTED)
def test_bugs_and_data_errors_are_unexpected(error: BaseException) -> None:
    assert classify(error) is Outcome.UNEXPECTED


def test_a_transient_error_hidden_behind_a_cause_is_still_transient() -> None:
    error = RuntimeError("while publishing")
    error.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert classify(error) is Outcome.TRANSIENT


def test_a_cause_cycle_does_not_recurse_forever() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert classify(first) is Outcome.UNEXPECTED


def test_classify_never_answers_invalid_message() -> None:
    """Invalid messages are decided by parsing, before any handler runs."""
    everything = [p.values[0] for p in (*REJECTED, *TRANSIENT, *UNEXPECTED)]
    assert Outcome.INVALID not in {classify(e) for e in everything}  # type: ignore[arg-type]


# --- the error tree ---------------------------------------------------------------------------


def test_there_are_domain_errors_to_check() -> None:
    assert len(domain_errors()) >= 12


@pytest.mark.parametrize("cls", domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_reason_is_a_contract_rejection_reason(cls: type[DomainError]) -> None:
    assert cls.reason in {r.value for r in RejectionReason}, cls.reason
    assert cls("detail").reason == cls.reason


def test_the_invalid_cursor_reason_is_a_contract_rejection_reason() -> None:
    assert InvalidCursor.reason in {r.value for r in RejectionReason}


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
