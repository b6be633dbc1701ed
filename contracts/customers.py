"""Customers: register, change and delete them, and look one up."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    model_serializer,
    model_validator,
)

from contracts.base import (
    CommandEnvelope,
    ContractModel,
    Payload,
    QueryEnvelope,
    ResultPayload,
    RoutedEvent,
)
from contracts.fields import BusinessId, Email, FullName, Phone, Timestamp
from contracts.samples import AT, CUSTOMER_ID, EMAIL

__all__ = [
    "CreateCustomer",
    "CreateCustomerPayload",
    "CustomerChanges",
    "CustomerCreated",
    "CustomerCreatedPayload",
    "CustomerDeleted",
    "CustomerDeletedPayload",
    "CustomerErased",
    "CustomerErasedPayload",
    "CustomerFields",
    "CustomerUpdated",
    "CustomerUpdatedPayload",
    "CustomerView",
    "DeleteCustomer",
    "DeleteCustomerPayload",
    "EraseCustomer",
    "EraseCustomerPayload",
    "GetCustomer",
    "GetCustomerPayload",
    "GetCustomerResult",
    "UpdateCustomer",
    "UpdateCustomerPayload",
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


class CustomerView(ContractModel):
    """A live (not deleted) customer."""

    customer_id: BusinessId = Field(description="The customer's business id.")
    email: StrictStr = Field(description="Email address.")
    full_name: StrictStr = Field(description="Full name.")
    phone: StrictStr | None = Field(description="Phone number, or null.")
    is_vip: StrictBool = Field(description="Whether the customer is a VIP.")
    created_at: Timestamp = Field(description="When the customer was registered.")


# --- CreateCustomer ---------------------------------------------------------------------------


class CustomerCreatedPayload(Payload):
    """The fields of CustomerCreated."""

    customer_id: BusinessId = Field(description="The id the worker assigned, e.g. CUST-000001.")
    email: Email = Field(description="Email address.")
    full_name: FullName = Field(description="Full name.")
    is_vip: StrictBool = Field(description="Whether the customer is a VIP.")


class CustomerCreated(RoutedEvent):
    """A customer was registered."""

    routing_key = "customer.created"
    example = {
        "customer_id": CUSTOMER_ID,
        "email": EMAIL,
        "full_name": "Ada Lovelace",
        "is_vip": False,
    }
    type: Literal["CustomerCreated"] = "CustomerCreated"
    payload: CustomerCreatedPayload


class CreateCustomerPayload(Payload):
    """The fields of CreateCustomer."""

    email: Email = Field(description="Email address; unique among customers.")
    full_name: FullName = Field(description="The customer's full name.")
    phone: Phone | None = Field(default=None, description="Phone number, if known.")
    is_vip: StrictBool = Field(default=False, description="Whether the customer is a VIP.")


class CreateCustomer(CommandEnvelope):
    """Register a customer; the worker assigns its customer_id."""

    events = (CustomerCreated,)
    ordering_fields = ("email",)
    rejections = ("email_taken",)
    example = {"email": EMAIL, "full_name": "Ada Lovelace", "is_vip": False}
    type: Literal["CreateCustomer"] = "CreateCustomer"
    payload: CreateCustomerPayload


# --- UpdateCustomer ---------------------------------------------------------------------------


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


class CustomerChanges(CustomerFields):
    """The fields an update set, with their new values (fields not changed are absent)."""


class CustomerUpdatedPayload(Payload):
    """The fields of CustomerUpdated."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    changes: CustomerChanges = Field(description="The fields that were set, new values only.")


class CustomerUpdated(RoutedEvent):
    """A customer's details changed."""

    routing_key = "customer.updated"
    example = {"customer_id": CUSTOMER_ID, "changes": {"phone": None}}
    type: Literal["CustomerUpdated"] = "CustomerUpdated"
    payload: CustomerUpdatedPayload


class UpdateCustomerPayload(CustomerFields):
    """The fields of UpdateCustomer: the customer and at least one field to change."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateCustomerPayload:
        if not self.model_fields_set - {"customer_id"}:
            raise ValueError("give at least one of email, full_name, phone, is_vip")
        return self


class UpdateCustomer(CommandEnvelope):
    """Change some of a customer's details."""

    events = (CustomerUpdated,)
    ordering_fields = ("customer_id", "email")
    rejections = ("customer_not_found", "email_taken")
    example = {"customer_id": CUSTOMER_ID, "phone": "+44 20 7946 0958"}
    type: Literal["UpdateCustomer"] = "UpdateCustomer"
    payload: UpdateCustomerPayload


# --- DeleteCustomer ---------------------------------------------------------------------------


class CustomerDeletedPayload(Payload):
    """The fields of CustomerDeleted."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class CustomerDeleted(RoutedEvent):
    """A customer was soft-deleted: finders no longer return it."""

    routing_key = "customer.deleted"
    example = {"customer_id": CUSTOMER_ID}
    type: Literal["CustomerDeleted"] = "CustomerDeleted"
    payload: CustomerDeletedPayload


class DeleteCustomerPayload(Payload):
    """The fields of DeleteCustomer."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class DeleteCustomer(CommandEnvelope):
    """Soft-delete a customer: the row stays, finders no longer return it."""

    events = (CustomerDeleted,)
    ordering_fields = ("customer_id",)
    rejections = ("customer_not_found",)
    example = {"customer_id": CUSTOMER_ID}
    type: Literal["DeleteCustomer"] = "DeleteCustomer"
    payload: DeleteCustomerPayload


# --- EraseCustomer (contract v2) --------------------------------------------------------------


class CustomerErasedPayload(Payload):
    """The fields of CustomerErased."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class CustomerErased(RoutedEvent):
    """A customer's name, email, phone and conversation texts were erased; accounts stay."""

    routing_key = "customer.erased"
    example = {"customer_id": CUSTOMER_ID}
    type: Literal["CustomerErased"] = "CustomerErased"
    payload: CustomerErasedPayload


class EraseCustomerPayload(Payload):
    """The fields of EraseCustomer."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    legal_basis: Literal["gdpr_art17", "retention_expired"] = Field(
        description="Why: a data subject's request (GDPR Art. 17) or the end of retention."
    )


class EraseCustomer(CommandEnvelope):
    """Erase a customer's personal data for good, deleted or not (since contract v2); idempotent."""

    events = (CustomerErased,)
    ordering_fields = ("customer_id",)
    rejections = ("customer_not_found",)
    example = {"customer_id": CUSTOMER_ID, "legal_basis": "gdpr_art17"}
    type: Literal["EraseCustomer"] = "EraseCustomer"
    payload: EraseCustomerPayload


# --- GetCustomer ------------------------------------------------------------------------------


class GetCustomerPayload(Payload):
    """The fields of GetCustomer: exactly one of customer_id or email."""

    customer_id: BusinessId | None = Field(default=None, description=_CUSTOMER_ID)
    email: Email | None = Field(default=None, description="The customer's email address.")

    @model_validator(mode="after")
    def _exactly_one_key(self) -> GetCustomerPayload:
        if (self.customer_id is None) == (self.email is None):
            raise ValueError("give exactly one of customer_id or email")
        return self


class GetCustomerResult(ResultPayload):
    """The answer to GetCustomer: the one customer found."""

    example = {
        "items": [
            {
                "customer_id": CUSTOMER_ID,
                "email": EMAIL,
                "full_name": "Ada Lovelace",
                "phone": "+44 20 7946 0958",
                "is_vip": False,
                "created_at": AT,
            }
        ]
    }
    query_type: Literal["GetCustomer"] = Field(description="The query answered.")
    items: tuple[CustomerView, ...] = Field(max_length=1, description="The customer.")


class GetCustomer(QueryEnvelope):
    """Fetch one live customer by customer_id or email."""

    result = GetCustomerResult
    rejections = ("customer_not_found",)
    example = {"email": EMAIL}
    type: Literal["GetCustomer"] = "GetCustomer"
    payload: GetCustomerPayload
