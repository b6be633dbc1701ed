"""One valid example of every message type, as it appears on the wire.

Used by the AsyncAPI document and by tests; every example validates against its model.
"""

from __future__ import annotations

import copy
from typing import Any

from contracts.registry import COMMAND_TYPES, QUERY_TYPES

__all__ = ["example_message", "example_payload", "example_result_payload"]

_CONVERSATION = "0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90"
_AT = "2026-11-21T10:00:00Z"
_CUSTOMER: dict[str, Any] = {
    "customer_id": "CUST-000001",
    "email": "ada@example.com",
    "full_name": "Ada Lovelace",
    "phone": "+44 20 7946 0958",
    "is_vip": False,
    "created_at": _AT,
}
_CONVERSATION_VIEW: dict[str, Any] = {
    "conversation_id": _CONVERSATION,
    "customer_id": "CUST-000001",
    "channel": "chat",
    "subject": "Card declined",
    "status": "escalated",
    "priority": "high",
    "escalation_id": "ESC-000042",
    "escalation_reason": "Customer asked for a human",
    "escalated_at": _AT,
    "created_at": _AT,
    "updated_at": _AT,
}

_PAYLOADS: dict[str, dict[str, Any]] = {
    "CreateCustomer": {"email": "ada@example.com", "full_name": "Ada Lovelace", "is_vip": False},
    "UpdateCustomer": {"customer_id": "CUST-000001", "phone": "+44 20 7946 0958"},
    "DeleteCustomer": {"customer_id": "CUST-000001"},
    "OpenAccount": {"customer_id": "CUST-000001", "account_type": "savings", "currency": "GBP"},
    "FreezeAccounts": {"account_numbers": ["40000001", "40000002"], "reason": "Suspected fraud"},
    "RecordTransaction": {
        "account_number": "40000001",
        "amount": "12.50",
        "direction": "debit",
        "description": "Coffee",
        "reference": "POS-2026-000123",
    },
    "StartConversation": {
        "customer_id": "CUST-000001",
        "channel": "chat",
        "conversation_id": _CONVERSATION,
        "subject": "Card declined",
    },
    "AppendMessage": {
        "conversation_id": _CONVERSATION,
        "role": "customer",
        "content": "My card was declined.",
    },
    "EscalateConversation": {
        "conversation_id": _CONVERSATION,
        "reason": "Customer asked for a human",
        "priority": "normal",
    },
    "ResolveConversation": {"escalation_id": "ESC-000042", "resolution": "Card unblocked"},
    "UpsertProduct": {
        "code": "SAV-EASY",
        "name": "Easy Saver",
        "category": "savings",
        "description": "Instant-access savings.",
        "interest_rate": "3.25",
        "is_active": True,
    },
    "UpsertFaq": {
        "question": "How do I reset my PIN?",
        "answer": "Use the app: Cards, then Reset PIN.",
        "keywords": ["pin", "card"],
        "category": "cards",
    },
    "GetCustomer": {"email": "ada@example.com"},
    "SearchFaq": {"keyword": "pin", "limit": 10},
    "ListCustomerConversations": {"customer_id": "CUST-000001", "limit": 50},
    "ListEscalatedConversations": {"limit": 100, "cursor": "eyJrIjoxfQ"},
    "ListRecentTransactions": {"account_number": "40000001", "limit": 20},
    "ListCustomerAccounts": {"customer_id": "CUST-000001"},
    "CustomerCreated": {
        "customer_id": "CUST-000001",
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "is_vip": False,
    },
    "CustomerUpdated": {"customer_id": "CUST-000001", "changes": {"phone": None}},
    "CustomerDeleted": {"customer_id": "CUST-000001"},
    "AccountOpened": {
        "account_number": "40000001",
        "customer_id": "CUST-000001",
        "account_type": "savings",
        "currency": "GBP",
    },
    "AccountsFrozen": {"account_numbers": ["40000001"]},
    "TransactionRecorded": {
        "account_number": "40000001",
        "amount": "12.50",
        "direction": "debit",
        "reference": "POS-2026-000123",
        "balance_after": "-2.50",
    },
    "ConversationStarted": {
        "conversation_id": _CONVERSATION,
        "customer_id": "CUST-000001",
        "channel": "chat",
    },
    "MessageAppended": {"conversation_id": _CONVERSATION, "role": "customer", "sequence": 1},
    "ConversationEscalated": {
        "conversation_id": _CONVERSATION,
        "escalation_id": "ESC-000042",
        "priority": "high",
    },
    "ConversationResolved": {
        "conversation_id": _CONVERSATION,
        "escalation_id": "ESC-000042",
        "resolution": "Card unblocked",
    },
    "ProductUpserted": {
        "code": "SAV-EASY",
        "name": "Easy Saver",
        "category": "savings",
        "is_active": True,
        "created": True,
    },
    "FaqUpserted": {"faq_id": "FAQ-000007"},
    "CommandRejected": {
        "command_type": "CreateCustomer",
        "command_message_id": "7b6f1c1e-0000-4000-8000-000000000001",
        "reason": "email_taken",
        "detail": "another customer uses this email",
    },
    "CommandDeadLettered": {
        "command_message_id": "7b6f1c1e-0000-4000-8000-000000000001",
        "command_type": "CreateCustomer",
        "error_type": "invalid_message",
        "error_message": "CreateCustomer.payload.email: Field required",
        "attempts": 1,
    },
    "QueryResult": {"query_type": "GetCustomer", "items": [_CUSTOMER]},
}

# The QueryResult payload answering each query, keyed by query type.
_RESULT_PAYLOADS: dict[str, dict[str, Any]] = {
    "GetCustomer": _PAYLOADS["QueryResult"],
    "SearchFaq": {
        "query_type": "SearchFaq",
        "items": [
            {
                "faq_id": "FAQ-000007",
                "question": "How do I reset my PIN?",
                "answer": "Use the app.",
                "keywords": ["pin"],
                "category": "cards",
            }
        ],
    },
    "ListCustomerConversations": {
        "query_type": "ListCustomerConversations",
        "items": [_CONVERSATION_VIEW],
        "next_cursor": "eyJrIjoxfQ",
    },
    "ListEscalatedConversations": {
        "query_type": "ListEscalatedConversations",
        "items": [_CONVERSATION_VIEW],
        "next_cursor": None,
    },
    "ListRecentTransactions": {
        "query_type": "ListRecentTransactions",
        "items": [
            {
                "reference": "POS-2026-000123",
                "amount": "12.50",
                "direction": "debit",
                "description": "Coffee",
                "balance_after": "-2.50",
                "created_at": _AT,
            }
        ],
    },
    "ListCustomerAccounts": {
        "query_type": "ListCustomerAccounts",
        "items": [
            {
                "account_number": "40000001",
                "customer_id": "CUST-000001",
                "account_type": "savings",
                "currency": "GBP",
                "balance": "1024.00",
                "is_frozen": False,
                "created_at": _AT,
            }
        ],
    },
}


def example_payload(message_type: str) -> dict[str, Any]:
    """A fresh copy of the example payload of a message type."""
    return copy.deepcopy(_PAYLOADS[message_type])


def example_result_payload(query_type: str) -> dict[str, Any]:
    """A fresh copy of an example QueryResult payload answering a query type."""
    return copy.deepcopy(_RESULT_PAYLOADS[query_type])


def example_message(message_type: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete example body (as a dict) of a message type, optionally with another payload."""
    message: dict[str, Any] = {
        "message_id": "7b6f1c1e-0000-4000-8000-000000000001",
        "type": message_type,
        "version": 1,
        "correlation_id": "chat-session-42",
        "occurred_at": _AT,
        "payload": example_payload(message_type) if payload is None else payload,
    }
    if message_type not in COMMAND_TYPES | QUERY_TYPES:
        message["message_id"] = "5d0c6a2e-3b7f-5c1a-9e4d-2a8b6f0c1d3e"
        message["causation_id"] = "7b6f1c1e-0000-4000-8000-000000000001"
    return message
