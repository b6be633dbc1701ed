"""The unit of work: a service owns one session and one transaction.

``async with service:`` opens both; ``await service.commit()`` makes the work durable;
leaving the block without commit rolls everything back. Handlers never see the session.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.session import SessionFactory
from worker.repositories import (
    AccountRepository,
    AuditRepository,
    ConversationRepository,
    CustomerRepository,
    FAQRepository,
    InboxRepository,
    MessageRepository,
    OutboxRepository,
    ProductRepository,
    RetentionRepository,
    StoredEventRepository,
    TransactionRepository,
)

JoinedT = TypeVar("JoinedT")


class BaseService:
    """One session, one transaction, and the repositories bound to that session."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._owner = True

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError(f"{type(self).__name__} is already in use")
        session = self._session_factory()
        await session.begin()
        self._bind(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed and returns the connection; unlike
        # rollback() it does not expire loaded objects, so read-only results stay usable.
        await self.session.close()

    def _bind(self, session: AsyncSession) -> None:
        self._session = session
        self.customers = CustomerRepository(session)
        self.accounts = AccountRepository(session)
        self.transactions = TransactionRepository(session)
        self.conversations = ConversationRepository(session)
        self.messages = MessageRepository(session)
        self.products = ProductRepository(session)
        self.faqs = FAQRepository(session)
        self.inbox = InboxRepository(session)
        self.outbox = OutboxRepository(session)
        self.audit = AuditRepository(session)
        self.stored_events = StoredEventRepository(session)
        self.retention = RetentionRepository(session)

    @property
    def session(self) -> AsyncSession:
        """The open session; only inside ``async with``."""
        if self._session is None:
            raise RuntimeError(f"use `async with {type(self).__name__}(...)` first")
        return self._session

    async def commit(self) -> None:
        """Commit the transaction; leaving the block afterwards has nothing left to roll back."""
        if not self._owner:
            raise RuntimeError("a joined unit of work is committed by the one it joined")
        await self.session.commit()

    def join(self, kind: type[JoinedT]) -> JoinedT:
        """A service of ``kind`` inside this transaction (group commit: several commands'
        handlers, each with the service it asks for, share one transaction). Only this unit
        of work commits it."""
        joined = kind(self._session_factory)  # type: ignore[call-arg]
        if not isinstance(joined, BaseService):
            raise TypeError(f"{kind.__name__} is not a service")
        joined._bind(self.session)
        joined._owner = False
        return joined
