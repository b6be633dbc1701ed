"""Domain services: each owns one transaction (see :class:`BaseService`)."""

from worker.services.accounts import AccountService
from worker.services.base import BaseService
from worker.services.catalog import CatalogService
from worker.services.conversations import ConversationService
from worker.services.customers import CustomerService
from worker.services.retention import RetentionService

__all__ = [
    "AccountService",
    "BaseService",
    "CatalogService",
    "ConversationService",
    "CustomerService",
    "RetentionService",
]
