"""Domain events: what a committed command changed, published to ``fca.events``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt

from contracts.base import Payload, RoutedEvent
from contracts.commands import CustomerFields
from contracts.fields import (
    AccountNumber,
    AccountType,
    BusinessId,
    Channel,
    ConversationId,
    Currency,
    Direction,
    Email,
    FullName,
    Money,
    PositiveMoney,
    Priority,
    Reference,
    Role,
    multi_line,
    single_line,
)

__all__ = [
    "AccountOpened",
    "AccountOpenedPayload",
    "AccountsFrozen",
    "AccountsFrozenPayload",
    "ConversationEscalated",
    "ConversationEscalatedPayload",
    "ConversationResolved",
    "ConversationResolvedPayload",
    "ConversationStarted",
    "ConversationStartedPayload",
    "CustomerChanges",
    "CustomerCreated",
    "CustomerCreatedPayload",
    "CustomerDeleted",
    "CustomerDeletedPayload",
    "CustomerUpdated",
    "CustomerUpdatedPayload",
    "FaqUpserted",
    "FaqUpsertedPayload",
    "MessageAppended",
    "MessageAppendedPayload",
    "ProductUpserted",
    "ProductUpsertedPayload",
    "TransactionRecorded",
    "TransactionRecordedPayload",
]

_CUSTOMER_ID = "The customer's business id, e.g. CUST-000001."


class CustomerCreatedPayload(Payload):
    """The fields of CustomerCreated."""

    customer_id: BusinessId = Field(description="The id the worker assigned, e.g. CUST-000001.")
    email: Email = Field(description="Email address.")
    full_name: FullName = Field(description="Full name.")
    is_vip: StrictBool = Field(description="Whether the customer is a VIP.")


class CustomerCreated(RoutedEvent):
    """A customer was registered."""

    routing_key: ClassVar[str] = "customer.created"
    type: Literal["CustomerCreated"] = "CustomerCreated"
    payload: CustomerCreatedPayload


class CustomerChanges(CustomerFields):
    """The fields an update set, with their new values (fields not changed are absent)."""


class CustomerUpdatedPayload(Payload):
    """The fields of CustomerUpdated."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    changes: CustomerChanges = Field(description="The fields that were set, new values only.")


class CustomerUpdated(RoutedEvent):
    """A customer's details changed."""

    routing_key: ClassVar[str] = "customer.updated"
    type: Literal["CustomerUpdated"] = "CustomerUpdated"
    payload: CustomerUpdatedPayload


class CustomerDeletedPayload(Payload):
    """The fields of CustomerDeleted."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class CustomerDeleted(RoutedEvent):
    """A customer was soft-deleted: finders no longer return it."""

    routing_key: ClassVar[str] = "customer.deleted"
    type: Literal["CustomerDeleted"] = "CustomerDeleted"
    payload: CustomerDeletedPayload


class AccountOpenedPayload(Payload):
    """The fields of AccountOpened."""

    account_number: AccountNumber = Field(description="The number the worker assigned.")
    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(description="ISO 4217 currency code.")


class AccountOpened(RoutedEvent):
    """An account was opened."""

    routing_key: ClassVar[str] = "account.opened"
    type: Literal["AccountOpened"] = "AccountOpened"
    payload: AccountOpenedPayload


class AccountsFrozenPayload(Payload):
    """The fields of AccountsFrozen."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        max_length=1000, description="The accounts this command actually froze."
    )


class AccountsFrozen(RoutedEvent):
    """Accounts were frozen (those already frozen are not listed)."""

    routing_key: ClassVar[str] = "account.frozen"
    type: Literal["AccountsFrozen"] = "AccountsFrozen"
    payload: AccountsFrozenPayload


class TransactionRecordedPayload(Payload):
    """The fields of TransactionRecorded."""

    account_number: AccountNumber = Field(description="The account.")
    amount: PositiveMoney = Field(description='The amount, a decimal string such as "12.50".')
    direction: Direction = Field(description="credit or debit.")
    reference: Reference = Field(description="The caller's reference.")
    balance_after: Money = Field(description="The account balance after this transaction.")


class TransactionRecorded(RoutedEvent):
    """A transaction was recorded and the balance updated."""

    routing_key: ClassVar[str] = "transaction.recorded"
    type: Literal["TransactionRecorded"] = "TransactionRecorded"
    payload: TransactionRecordedPayload


class ConversationStartedPayload(Payload):
    """The fields of ConversationStarted."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    channel: Channel = Field(description="Where the conversation takes place.")


class ConversationStarted(RoutedEvent):
    """A conversation was started."""

    routing_key: ClassVar[str] = "conversation.started"
    type: Literal["ConversationStarted"] = "ConversationStarted"
    payload: ConversationStartedPayload


class MessageAppendedPayload(Payload):
    """The fields of MessageAppended."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    role: Role = Field(description="Who wrote the message.")
    sequence: StrictInt = Field(ge=1, description="Position in the conversation, from 1.")


class MessageAppended(RoutedEvent):
    """A message was appended to a conversation."""

    routing_key: ClassVar[str] = "conversation.message_appended"
    type: Literal["MessageAppended"] = "MessageAppended"
    payload: MessageAppendedPayload


class ConversationEscalatedPayload(Payload):
    """The fields of ConversationEscalated."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    escalation_id: BusinessId = Field(description="The escalation's unique id, e.g. ESC-000042.")
    priority: Priority = Field(description="The priority given (never below high for a VIP).")


class ConversationEscalated(RoutedEvent):
    """A conversation was escalated to a human agent."""

    routing_key: ClassVar[str] = "conversation.escalated"
    type: Literal["ConversationEscalated"] = "ConversationEscalated"
    payload: ConversationEscalatedPayload


class ConversationResolvedPayload(Payload):
    """The fields of ConversationResolved."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    escalation_id: BusinessId | None = Field(
        description="The escalation it closed, or null if it was never escalated."
    )
    resolution: Annotated[str, multi_line(2000)] = Field(description="How it was resolved.")


class ConversationResolved(RoutedEvent):
    """A conversation was resolved and is now closed."""

    routing_key: ClassVar[str] = "conversation.resolved"
    type: Literal["ConversationResolved"] = "ConversationResolved"
    payload: ConversationResolvedPayload


class ProductUpsertedPayload(Payload):
    """The fields of ProductUpserted."""

    code: BusinessId = Field(description="The product code.")
    name: Annotated[str, single_line(200)] = Field(description="Product name.")
    category: Annotated[str, single_line(100)] = Field(description="Product category.")
    is_active: StrictBool = Field(description="Whether the product is offered.")
    created: StrictBool = Field(description="True if new, false if an existing one was replaced.")


class ProductUpserted(RoutedEvent):
    """A product was created or replaced."""

    routing_key: ClassVar[str] = "product.upserted"
    type: Literal["ProductUpserted"] = "ProductUpserted"
    payload: ProductUpsertedPayload


class FaqUpsertedPayload(Payload):
    """The fields of FaqUpserted."""

    faq_id: BusinessId = Field(description="The FAQ's id (assigned by the worker when new).")


class FaqUpserted(RoutedEvent):
    """An FAQ was created or replaced."""

    routing_key: ClassVar[str] = "faq.upserted"
    type: Literal["FaqUpserted"] = "FaqUpserted"
    payload: FaqUpsertedPayload
