"""Read models: the items of a QueryResult.

Views describe data the worker already stored, so their text fields check type and shape
but not the stricter input rules of commands (an old row must never make a reply invalid).
"""

from __future__ import annotations

from pydantic import Field, StrictBool, StrictStr

from contracts.base import ContractModel
from contracts.fields import (
    AccountNumber,
    AccountType,
    BusinessId,
    Channel,
    ConversationId,
    ConversationStatus,
    Currency,
    Direction,
    Money,
    Priority,
    Timestamp,
)

__all__ = [
    "AccountView",
    "ConversationView",
    "CustomerView",
    "FaqView",
    "TransactionView",
]


class CustomerView(ContractModel):
    """A live (not deleted) customer."""

    customer_id: BusinessId = Field(description="The customer's business id.")
    email: StrictStr = Field(description="Email address.")
    full_name: StrictStr = Field(description="Full name.")
    phone: StrictStr | None = Field(description="Phone number, or null.")
    is_vip: StrictBool = Field(description="Whether the customer is a VIP.")
    created_at: Timestamp = Field(description="When the customer was registered.")


class AccountView(ContractModel):
    """An account with its current balance."""

    account_number: AccountNumber = Field(description="The account number.")
    customer_id: BusinessId = Field(description="The owner's business id.")
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(description="ISO 4217 currency code.")
    balance: Money = Field(description="Current balance, a decimal string.")
    is_frozen: StrictBool = Field(description="Whether the account is frozen.")
    created_at: Timestamp = Field(description="When the account was opened.")


class TransactionView(ContractModel):
    """A recorded transaction."""

    reference: StrictStr = Field(description="The caller's reference.")
    amount: Money = Field(description="The amount, a decimal string.")
    direction: Direction = Field(description="credit or debit.")
    description: StrictStr = Field(description="Statement text.")
    balance_after: Money = Field(description="Balance after this transaction.")
    created_at: Timestamp = Field(description="When it was recorded.")


class ConversationView(ContractModel):
    """A conversation, with its escalation if it has one."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    customer_id: BusinessId = Field(description="The customer's business id.")
    channel: Channel = Field(description="Where the conversation takes place.")
    subject: StrictStr | None = Field(description="What it is about, or null.")
    status: ConversationStatus = Field(description="open, escalated, resolved or closed.")
    priority: Priority = Field(description="Priority (normal unless escalated higher).")
    escalation_id: BusinessId | None = Field(description="The escalation's id, or null.")
    escalation_reason: StrictStr | None = Field(description="Why it was escalated, or null.")
    escalated_at: Timestamp | None = Field(description="When it was escalated, or null.")
    created_at: Timestamp = Field(description="When it was started.")
    updated_at: Timestamp = Field(description="When it last changed (e.g. a new message).")


class FaqView(ContractModel):
    """A frequently asked question."""

    faq_id: BusinessId = Field(description="The FAQ's id.")
    question: StrictStr = Field(description="The question.")
    answer: StrictStr = Field(description="The answer.")
    keywords: tuple[StrictStr, ...] = Field(description="Search keywords.")
    category: StrictStr = Field(description="FAQ category.")
