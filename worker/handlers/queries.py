"""Query handlers: read-only, answered on ``reply_to`` only."""

from __future__ import annotations

from typing import Any

from contracts import (
    AccountView,
    ConversationView,
    CustomerView,
    FaqView,
    GetCustomer,
    ListCustomerAccounts,
    ListCustomerConversations,
    ListEscalatedConversations,
    ListRecentTransactions,
    SearchFaq,
    TransactionView,
)
from worker.db.models import FAQ, Account, Conversation, Customer, Transaction
from worker.services import AccountService, CatalogService, ConversationService, CustomerService
from worker.services.catalog import split_keywords

Items = dict[str, Any]
"""A QueryResult payload without ``query_type``: ``items`` (+ ``next_cursor`` if paged)."""


def customer_view(c: Customer) -> CustomerView:
    """The read model of a customer."""
    return CustomerView(
        customer_id=c.customer_id,
        email=c.email,
        full_name=c.full_name,
        phone=c.phone,
        is_vip=c.is_vip,
        created_at=c.created_at,
    )


def account_view(a: Account, customer_id: str) -> AccountView:
    """The read model of an account."""
    return AccountView.model_validate(
        {
            "account_number": a.account_number,
            "customer_id": customer_id,
            "account_type": a.account_type,
            "currency": a.currency,
            "balance": str(a.balance),
            "is_frozen": a.status == "frozen",
            "created_at": a.created_at,
        }
    )


def transaction_view(t: Transaction) -> TransactionView:
    """The read model of a transaction."""
    return TransactionView.model_validate(
        {
            "reference": t.reference,
            "amount": str(t.amount),
            "direction": t.direction,
            "description": t.description,
            "balance_after": str(t.balance_after),
            "created_at": t.created_at,
        }
    )


def conversation_view(c: Conversation, customer_id: str) -> ConversationView:
    """The read model of a conversation."""
    return ConversationView.model_validate(
        {
            "conversation_id": c.conversation_id,
            "customer_id": customer_id,
            "channel": c.channel,
            "subject": c.subject,
            "status": c.status,
            "priority": c.priority,
            "escalation_id": c.escalation_id,
            "escalation_reason": c.escalation_reason,
            "escalated_at": c.escalated_at,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }
    )


def faq_view(f: FAQ) -> FaqView:
    """The read model of an FAQ."""
    return FaqView(
        faq_id=f.faq_id,
        question=f.question,
        answer=f.answer,
        keywords=tuple(split_keywords(f.keywords)),
        category=f.category,
    )


async def get_customer(query: GetCustomer, service: CustomerService) -> Items:
    """One customer by business id or email."""
    p = query.payload
    customer = await service.get_customer(customer_id=p.customer_id, email=p.email)
    return {"items": [customer_view(customer)]}


async def search_faq(query: SearchFaq, service: CatalogService) -> Items:
    """FAQs matching a keyword."""
    p = query.payload
    return {"items": [faq_view(f) for f in await service.search_faq(p.keyword, limit=p.limit)]}


async def list_customer_conversations(
    query: ListCustomerConversations, service: ConversationService
) -> Items:
    """A customer's conversations, newest activity first, keyset-paginated."""
    p = query.payload
    page = await service.customer_conversations(p.customer_id, limit=p.limit, cursor=p.cursor)
    items = [conversation_view(c, p.customer_id) for c in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


async def list_escalated_conversations(
    query: ListEscalatedConversations, service: ConversationService
) -> Items:
    """The escalation queue, oldest first, keyset-paginated."""
    p = query.payload
    page = await service.escalated(limit=p.limit, cursor=p.cursor)
    owners = await service.customers.business_ids({c.customer_id for c in page.items})
    items = [conversation_view(c, owners[c.customer_id]) for c in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


async def list_recent_transactions(query: ListRecentTransactions, service: AccountService) -> Items:
    """An account's latest transactions."""
    p = query.payload
    rows = await service.recent_transactions(p.account_number, limit=p.limit)
    return {"items": [transaction_view(t) for t in rows]}


async def list_customer_accounts(query: ListCustomerAccounts, service: AccountService) -> Items:
    """A customer's accounts, newest first."""
    customer_id = query.payload.customer_id
    accounts = await service.customer_accounts(customer_id)
    return {"items": [account_view(a, customer_id) for a in accounts]}
