"""Repositories: one per resource, all on :class:`BaseRepository`; none of them commit."""

from worker.repositories.accounts import AccountRepository
from worker.repositories.audit import AuditRepository
from worker.repositories.base import BaseRepository, Page, SoftDeleteMixin
from worker.repositories.catalog import FAQRepository, ProductRepository
from worker.repositories.conversations import ConversationRepository, MessageRepository
from worker.repositories.customers import CustomerRepository
from worker.repositories.erasure import StoredEventRepository
from worker.repositories.inbox import Claim, InboxRepository
from worker.repositories.outbox import NewEvent, OutboxRepository, PendingEvent
from worker.repositories.retention import RetentionRepository
from worker.repositories.transactions import TransactionRepository

__all__ = [
    "AccountRepository",
    "AuditRepository",
    "BaseRepository",
    "Claim",
    "ConversationRepository",
    "CustomerRepository",
    "FAQRepository",
    "InboxRepository",
    "MessageRepository",
    "NewEvent",
    "OutboxRepository",
    "Page",
    "PendingEvent",
    "ProductRepository",
    "RetentionRepository",
    "SoftDeleteMixin",
    "StoredEventRepository",
    "TransactionRepository",
]
