"""Unit-test fixtures: services whose repositories are mocks, so rules run without I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from unittest.mock import MagicMock

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

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
from worker.services import BaseService

ServiceT = TypeVar("ServiceT", bound=BaseService)

REPOSITORIES: dict[str, type[Any]] = {
    "customers": CustomerRepository,
    "accounts": AccountRepository,
    "transactions": TransactionRepository,
    "conversations": ConversationRepository,
    "messages": MessageRepository,
    "products": ProductRepository,
    "faqs": FAQRepository,
    "inbox": InboxRepository,
    "outbox": OutboxRepository,
    "audit": AuditRepository,
    "stored_events": StoredEventRepository,
    "retention": RetentionRepository,
}


def with_mocked_repositories(service_type: type[ServiceT]) -> ServiceT:
    """A service bound to a mock session whose repositories are ``MagicMock(spec=…)``.

    A spec'd ``MagicMock`` turns every ``async def`` of the repository into an ``AsyncMock``,
    so tests set ``service.customers.find_by_business_id.return_value`` and await as usual.
    Any call the repository class does not have fails, as does any real database access.
    """
    service = service_type(MagicMock(name="session_factory"))
    service._bind(MagicMock(spec=AsyncSession))
    for attribute, repository in REPOSITORIES.items():
        setattr(service, attribute, MagicMock(spec=repository, name=attribute))
    return service


@pytest.fixture
def mocked() -> Callable[[type[ServiceT]], ServiceT]:
    """Build a service with mocked repositories: ``mocked(CustomerService)``."""
    return with_mocked_repositories
