"""The worker's one error tree.

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
    │   └── FaqNotFound                 faq_not_found
    ├── RepositoryError             a caller misused a repository (a bug, not bad input)
    │   ├── UnknownFilterField
    │   └── InvalidCursor               also a DomainError-like rejection for queries
    ├── TransientError              worth retrying: the database or broker was unavailable
    ├── StartupError                a service is unreachable at start-up (worker/startup.py)
    └── DlqError                    the DLQ tool cannot carry out an operation (worker/dlq)

Driver errors (SQLAlchemy, asyncpg, aio-pika) are translated into this tree in one
place, :mod:`worker.classify`, which decides each delivery's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class RepositoryError(WorkerError):
    """A repository was called with arguments it cannot honour."""


class UnknownFilterField(RepositoryError, ValueError):
    """A filter or update named a field that is not a mapped column."""

    def __init__(self, model: str, fields: Sequence[str]) -> None:
        super().__init__(f"{model} has no column(s) {', '.join(fields)}")
        self.fields = list(fields)


class InvalidCursor(RepositoryError, ValueError):
    """A pagination cursor that this worker did not issue (or that was altered)."""

    reason = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("invalid pagination cursor")


class TransientError(WorkerError):
    """A temporary fault; the delivery is retried with back-off."""
