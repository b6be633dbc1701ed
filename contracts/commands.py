"""Commands: imperative requests published to ``fca.commands`` with their type as routing key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    model_serializer,
    model_validator,
)

from contracts.base import CommandEnvelope, Payload
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
    InterestRate,
    Keyword,
    Phone,
    PositiveMoney,
    Priority,
    Reference,
    Role,
    multi_line,
    single_line,
)

__all__ = [
    "AppendMessage",
    "AppendMessagePayload",
    "CreateCustomer",
    "CreateCustomerPayload",
    "CustomerFields",
    "DeleteCustomer",
    "DeleteCustomerPayload",
    "EscalateConversation",
    "EscalateConversationPayload",
    "FreezeAccounts",
    "FreezeAccountsPayload",
    "OpenAccount",
    "OpenAccountPayload",
    "RecordTransaction",
    "RecordTransactionPayload",
    "ResolveConversation",
    "ResolveConversationPayload",
    "StartConversation",
    "StartConversationPayload",
    "UpdateCustomer",
    "UpdateCustomerPayload",
    "UpsertFaq",
    "UpsertFaqPayload",
    "UpsertProduct",
    "UpsertProductPayload",
]

_CUSTOMER_ID = "The customer's business id, e.g. CUST-000001."


def _not_nullable(schema: dict[str, Any]) -> None:
    """Describe an optional field that may be omitted but not null."""
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


class CreateCustomerPayload(Payload):
    """The fields of CreateCustomer."""

    email: Email = Field(description="Email address; unique among customers.")
    full_name: FullName = Field(description="The customer's full name.")
    phone: Phone | None = Field(default=None, description="Phone number, if known.")
    is_vip: StrictBool = Field(default=False, description="Whether the customer is a VIP.")


class CreateCustomer(CommandEnvelope):
    """Register a customer: CustomerCreated, or CommandRejected(email_taken)."""

    type: Literal["CreateCustomer"] = "CreateCustomer"
    payload: CreateCustomerPayload


class CustomerFields(Payload):
    """Customer fields that change: omitted means unchanged, only ``phone`` may be null.

    Serialised with only the fields that were given, so ``{"phone": null}`` (clear the
    phone) and ``{}`` (keep it) stay distinct on the wire.
    """

    email: Email | None = Field(
        default=None, description="New email address.", json_schema_extra=_not_nullable
    )
    full_name: FullName | None = Field(
        default=None, description="New full name.", json_schema_extra=_not_nullable
    )
    phone: Phone | None = Field(default=None, description="New phone number; null clears it.")
    is_vip: StrictBool | None = Field(
        default=None, description="New VIP flag.", json_schema_extra=_not_nullable
    )

    @model_validator(mode="after")
    def _no_null_except_phone(self) -> CustomerFields:
        for name in ("email", "full_name", "is_vip"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may be omitted but not null")
        return self

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        optional = {"email", "full_name", "phone", "is_vip"} - self.model_fields_set
        return {key: value for key, value in data.items() if key not in optional}


class UpdateCustomerPayload(CustomerFields):
    """The fields of UpdateCustomer: the customer and at least one field to change."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateCustomerPayload:
        if not self.model_fields_set - {"customer_id"}:
            raise ValueError("give at least one of email, full_name, phone, is_vip")
        return self


class UpdateCustomer(CommandEnvelope):
    """Change a customer: CustomerUpdated, or CommandRejected(customer_not_found|email_taken)."""

    type: Literal["UpdateCustomer"] = "UpdateCustomer"
    payload: UpdateCustomerPayload


class DeleteCustomerPayload(Payload):
    """The fields of DeleteCustomer."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class DeleteCustomer(CommandEnvelope):
    """Soft-delete a customer: CustomerDeleted, or CommandRejected(customer_not_found)."""

    type: Literal["DeleteCustomer"] = "DeleteCustomer"
    payload: DeleteCustomerPayload


class OpenAccountPayload(Payload):
    """The fields of OpenAccount."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(default="GBP", description="ISO 4217 currency code.")


class OpenAccount(CommandEnvelope):
    """Open an account: AccountOpened, or CommandRejected(customer_not_found)."""

    type: Literal["OpenAccount"] = "OpenAccount"
    payload: OpenAccountPayload


class FreezeAccountsPayload(Payload):
    """The fields of FreezeAccounts."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        min_length=1, max_length=1000, description="The accounts to freeze (1..1000)."
    )
    reason: Annotated[str, single_line(500)] = Field(description="Why they are frozen.")


class FreezeAccounts(CommandEnvelope):
    """Freeze accounts in one update: AccountsFrozen, or CommandRejected(accounts_not_found)."""

    type: Literal["FreezeAccounts"] = "FreezeAccounts"
    payload: FreezeAccountsPayload


class RecordTransactionPayload(Payload):
    """The fields of RecordTransaction."""

    account_number: AccountNumber = Field(description="The account to credit or debit.")
    amount: PositiveMoney = Field(description='Amount, a decimal string > 0 such as "12.50".')
    direction: Direction = Field(description="credit adds to the balance, debit subtracts.")
    description: Annotated[str, single_line(500)] = Field(description="Statement text.")
    reference: Reference = Field(description="Caller's reference; unique per account.")


class RecordTransaction(CommandEnvelope):
    """Record a transaction: TransactionRecorded, or CommandRejected(account_not_found, ...)."""

    type: Literal["RecordTransaction"] = "RecordTransaction"
    payload: RecordTransactionPayload


class StartConversationPayload(Payload):
    """The fields of StartConversation."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    channel: Channel = Field(description="Where the conversation takes place.")
    conversation_id: ConversationId | None = Field(
        default=None, description="A UUID chosen by the caller; assigned by the worker if absent."
    )
    subject: Annotated[str, single_line(200)] | None = Field(
        default=None, description="What the conversation is about."
    )


class StartConversation(CommandEnvelope):
    """Start a conversation: ConversationStarted, or CommandRejected(customer_not_found, ...)."""

    type: Literal["StartConversation"] = "StartConversation"
    payload: StartConversationPayload


class AppendMessagePayload(Payload):
    """The fields of AppendMessage."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    role: Role = Field(description="Who wrote the message.")
    content: Annotated[str, multi_line(10000)] = Field(description="The text (1..10000 chars).")


class AppendMessage(CommandEnvelope):
    """Append a message: MessageAppended, or CommandRejected(conversation_not_found, ...)."""

    type: Literal["AppendMessage"] = "AppendMessage"
    payload: AppendMessagePayload


class EscalateConversationPayload(Payload):
    """The fields of EscalateConversation."""

    conversation_id: ConversationId = Field(description="The conversation's UUID.")
    reason: Annotated[str, multi_line(1000)] = Field(description="Why a human is needed.")
    priority: Priority = Field(
        default="normal", description="Requested priority; a VIP's is never below high."
    )


class EscalateConversation(CommandEnvelope):
    """Escalate to a human: ConversationEscalated, or CommandRejected(already_escalated, ...)."""

    type: Literal["EscalateConversation"] = "EscalateConversation"
    payload: EscalateConversationPayload


class ResolveConversationPayload(Payload):
    """The fields of ResolveConversation: exactly one of conversation_id or escalation_id."""

    conversation_id: ConversationId | None = Field(
        default=None, description="The conversation's UUID."
    )
    escalation_id: BusinessId | None = Field(
        default=None, description="The escalation's id, e.g. ESC-000042."
    )
    resolution: Annotated[str, multi_line(2000)] = Field(description="How it was resolved.")

    @model_validator(mode="after")
    def _exactly_one_target(self) -> ResolveConversationPayload:
        if (self.conversation_id is None) == (self.escalation_id is None):
            raise ValueError("give exactly one of conversation_id or escalation_id")
        return self


class ResolveConversation(CommandEnvelope):
    """Resolve a conversation: ConversationResolved, or CommandRejected(...)."""

    type: Literal["ResolveConversation"] = "ResolveConversation"
    payload: ResolveConversationPayload


class UpsertProductPayload(Payload):
    """The fields of UpsertProduct: the whole product, created or replaced by ``code``."""

    code: BusinessId = Field(description="The product code (1..32 chars); the upsert key.")
    name: Annotated[str, single_line(200)] = Field(description="Product name.")
    category: Annotated[str, single_line(100)] = Field(description="Product category.")
    description: Annotated[str, multi_line(5000)] = Field(description="Product description.")
    interest_rate: InterestRate | None = Field(
        default=None, description='Annual rate in percent as a string, e.g. "3.25"; 0..100.'
    )
    is_active: StrictBool = Field(default=True, description="Whether the product is offered.")


class UpsertProduct(CommandEnvelope):
    """Create or replace a product: ProductUpserted."""

    type: Literal["UpsertProduct"] = "UpsertProduct"
    payload: UpsertProductPayload


class UpsertFaqPayload(Payload):
    """The fields of UpsertFaq: without ``faq_id`` a new FAQ, with one a replacement."""

    faq_id: BusinessId | None = Field(
        default=None, description="The FAQ to replace; a new one is created when absent."
    )
    question: Annotated[str, single_line(500)] = Field(description="The question.")
    answer: Annotated[str, multi_line(5000)] = Field(description="The answer.")
    keywords: tuple[Keyword, ...] = Field(
        max_length=50, description="Search keywords (up to 50, each 1..50 chars)."
    )
    category: Annotated[str, single_line(100)] = Field(description="FAQ category.")


class UpsertFaq(CommandEnvelope):
    """Create or replace an FAQ: FaqUpserted, or CommandRejected(faq_not_found)."""

    type: Literal["UpsertFaq"] = "UpsertFaq"
    payload: UpsertFaqPayload
