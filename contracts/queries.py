"""Queries: read-only requests answered on ``reply_to`` with QueryResult or CommandRejected.

Limits: each query has a default page size from the contract and a maximum chosen here
(SearchFaq 10/50, ListCustomerConversations 50/100, ListEscalatedConversations 100/200,
ListRecentTransactions 20/100). A larger ``limit`` makes the query an invalid message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from contracts.base import Payload, QueryEnvelope
from contracts.fields import AccountNumber, BusinessId, Cursor, Email, Keyword

__all__ = [
    "GetCustomer",
    "GetCustomerPayload",
    "ListCustomerAccounts",
    "ListCustomerAccountsPayload",
    "ListCustomerConversations",
    "ListCustomerConversationsPayload",
    "ListEscalatedConversations",
    "ListEscalatedConversationsPayload",
    "ListRecentTransactions",
    "ListRecentTransactionsPayload",
    "SearchFaq",
    "SearchFaqPayload",
]

_CUSTOMER_ID = "The customer's business id, e.g. CUST-000001."
_CURSOR = "The next_cursor of the previous page; absent for the first page."


def _limit(default: int, maximum: int) -> Any:
    """A page-size field with the given default and maximum."""
    return Field(
        default=default,
        ge=1,
        le=maximum,
        strict=True,
        description=f"Maximum number of items (1..{maximum}, default {default}).",
    )


class GetCustomerPayload(Payload):
    """The fields of GetCustomer: exactly one of customer_id or email."""

    customer_id: BusinessId | None = Field(default=None, description=_CUSTOMER_ID)
    email: Email | None = Field(default=None, description="The customer's email address.")

    @model_validator(mode="after")
    def _exactly_one_key(self) -> GetCustomerPayload:
        if (self.customer_id is None) == (self.email is None):
            raise ValueError("give exactly one of customer_id or email")
        return self


class GetCustomer(QueryEnvelope):
    """Fetch one live customer; answered by QueryResult or CommandRejected(customer_not_found)."""

    type: Literal["GetCustomer"] = "GetCustomer"
    payload: GetCustomerPayload


class SearchFaqPayload(Payload):
    """The fields of SearchFaq."""

    keyword: Keyword = Field(description="Matched case-insensitively in questions and keywords.")
    limit: int = _limit(10, 50)


class SearchFaq(QueryEnvelope):
    """Find FAQs whose question or keywords contain a keyword."""

    type: Literal["SearchFaq"] = "SearchFaq"
    payload: SearchFaqPayload


class ListCustomerConversationsPayload(Payload):
    """The fields of ListCustomerConversations."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    limit: int = _limit(50, 100)
    cursor: Cursor | None = Field(default=None, description=_CURSOR)


class ListCustomerConversations(QueryEnvelope):
    """A customer's conversations, most recently updated first, keyset-paginated."""

    type: Literal["ListCustomerConversations"] = "ListCustomerConversations"
    payload: ListCustomerConversationsPayload


class ListEscalatedConversationsPayload(Payload):
    """The fields of ListEscalatedConversations."""

    limit: int = _limit(100, 200)
    cursor: Cursor | None = Field(default=None, description=_CURSOR)


class ListEscalatedConversations(QueryEnvelope):
    """Escalated conversations awaiting an agent, oldest escalation first, keyset-paginated."""

    type: Literal["ListEscalatedConversations"] = "ListEscalatedConversations"
    payload: ListEscalatedConversationsPayload


class ListRecentTransactionsPayload(Payload):
    """The fields of ListRecentTransactions."""

    account_number: AccountNumber = Field(description="The account.")
    limit: int = _limit(20, 100)


class ListRecentTransactions(QueryEnvelope):
    """An account's most recent transactions, newest first."""

    type: Literal["ListRecentTransactions"] = "ListRecentTransactions"
    payload: ListRecentTransactionsPayload


class ListCustomerAccountsPayload(Payload):
    """The fields of ListCustomerAccounts."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class ListCustomerAccounts(QueryEnvelope):
    """A customer's accounts, newest first."""

    type: Literal["ListCustomerAccounts"] = "ListCustomerAccounts"
    payload: ListCustomerAccountsPayload
