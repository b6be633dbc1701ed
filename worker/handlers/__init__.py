"""The dispatch tables: one handler per command and per query type of the contract."""

from __future__ import annotations

from typing import Any

from worker.handlers import accounts, catalog, conversations, customers, queries
from worker.handlers.base import CommandHandler, QueryHandler, emit
from worker.services import AccountService, CatalogService, ConversationService, CustomerService

COMMAND_HANDLERS: dict[str, CommandHandler[Any, Any]] = {
    "CreateCustomer": CommandHandler(CustomerService, customers.create_customer),
    "UpdateCustomer": CommandHandler(CustomerService, customers.update_customer),
    "DeleteCustomer": CommandHandler(CustomerService, customers.delete_customer),
    "OpenAccount": CommandHandler(AccountService, accounts.open_account),
    "FreezeAccounts": CommandHandler(AccountService, accounts.freeze_accounts),
    "RecordTransaction": CommandHandler(AccountService, accounts.record_transaction),
    "StartConversation": CommandHandler(ConversationService, conversations.start_conversation),
    "AppendMessage": CommandHandler(ConversationService, conversations.append_message),
    "EscalateConversation": CommandHandler(
        ConversationService, conversations.escalate_conversation
    ),
    "ResolveConversation": CommandHandler(ConversationService, conversations.resolve_conversation),
    "UpsertProduct": CommandHandler(CatalogService, catalog.upsert_product),
    "UpsertFaq": CommandHandler(CatalogService, catalog.upsert_faq),
}

QUERY_HANDLERS: dict[str, QueryHandler[Any, Any]] = {
    "GetCustomer": QueryHandler(CustomerService, queries.get_customer),
    "SearchFaq": QueryHandler(CatalogService, queries.search_faq),
    "ListCustomerConversations": QueryHandler(
        ConversationService, queries.list_customer_conversations
    ),
    "ListEscalatedConversations": QueryHandler(
        ConversationService, queries.list_escalated_conversations
    ),
    "ListRecentTransactions": QueryHandler(AccountService, queries.list_recent_transactions),
    "ListCustomerAccounts": QueryHandler(AccountService, queries.list_customer_accounts),
}

__all__ = ["COMMAND_HANDLERS", "QUERY_HANDLERS", "CommandHandler", "QueryHandler", "emit"]
