"""Handlers: one short function per command and query, registered in :data:`HANDLERS`.

Importing this package imports every resource's handler module, which registers its
handlers (see :mod:`worker.handlers.registry`).
"""

from worker.handlers import accounts, catalog, conversations, customers
from worker.handlers.registry import HANDLERS, Answer, CommandHandler, Handlers, QueryHandler, emit

__all__ = [
    "HANDLERS",
    "Answer",
    "CommandHandler",
    "Handlers",
    "QueryHandler",
    "accounts",
    "catalog",
    "conversations",
    "customers",
    "emit",
]
