"""Accounts: open them, freeze and unfreeze them, and list a customer's accounts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from contracts.base import (
    CommandEnvelope,
    ContractModel,
    Payload,
    QueryEnvelope,
    ResultPayload,
    RoutedEvent,
)
from contracts.fields import (
    AccountNumber,
    AccountType,
    BusinessId,
    Currency,
    Money,
    Timestamp,
    single_line,
)
from contracts.samples import ACCOUNT_NUMBER, AT, CUSTOMER_ID

__all__ = [
    "AccountOpened",
    "AccountOpenedPayload",
    "AccountView",
    "AccountsFrozen",
    "AccountsFrozenPayload",
    "AccountsUnfrozen",
    "AccountsUnfrozenPayload",
    "FreezeAccounts",
    "FreezeAccountsPayload",
    "ListCustomerAccounts",
    "ListCustomerAccountsPayload",
    "ListCustomerAccountsResult",
    "OpenAccount",
    "OpenAccountPayload",
    "UnfreezeAccounts",
    "UnfreezeAccountsPayload",
]

_CUSTOMER_ID = "The customer's business id, e.g. CUST-000001."
_TWO_ACCOUNTS = {"account_numbers": [ACCOUNT_NUMBER, "40000002"], "reason": "Suspected fraud"}
_EVENT_REASON = "The command's reason (since contract v2; absent from v1 events)."
_Reason = Annotated[str, single_line(500)]


class AccountView(ContractModel):
    """An account with its current balance."""

    account_number: AccountNumber = Field(description="The account number.")
    customer_id: BusinessId = Field(description="The owner's business id.")
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(description="ISO 4217 currency code.")
    balance: Money = Field(description="Current balance, a decimal string.")
    is_frozen: StrictBool = Field(description="Whether the account is frozen.")
    created_at: Timestamp = Field(description="When the account was opened.")


# --- OpenAccount ------------------------------------------------------------------------------


class AccountOpenedPayload(Payload):
    """The fields of AccountOpened."""

    account_number: AccountNumber = Field(description="The number the worker assigned.")
    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(description="ISO 4217 currency code.")


class AccountOpened(RoutedEvent):
    """An account was opened."""

    routing_key = "account.opened"
    example = {
        "account_number": ACCOUNT_NUMBER,
        "customer_id": CUSTOMER_ID,
        "account_type": "savings",
        "currency": "GBP",
    }
    type: Literal["AccountOpened"] = "AccountOpened"
    payload: AccountOpenedPayload


class OpenAccountPayload(Payload):
    """The fields of OpenAccount."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)
    account_type: AccountType = Field(description="The kind of account.")
    currency: Currency = Field(default="GBP", description="ISO 4217 currency code.")


class OpenAccount(CommandEnvelope):
    """Open an account for a customer; the worker assigns its account_number."""

    events = (AccountOpened,)
    ordering_fields = ("customer_id",)
    rejections = ("customer_not_found",)
    example = {"customer_id": CUSTOMER_ID, "account_type": "savings", "currency": "GBP"}
    type: Literal["OpenAccount"] = "OpenAccount"
    payload: OpenAccountPayload


# --- FreezeAccounts ---------------------------------------------------------------------------


class AccountsFrozenPayload(Payload):
    """The fields of AccountsFrozen."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        max_length=1000, description="The accounts this command actually froze."
    )
    reason: _Reason | None = Field(default=None, description=_EVENT_REASON)


class AccountsFrozen(RoutedEvent):
    """Accounts were frozen (those already frozen are not listed)."""

    routing_key = "account.frozen"
    example = {"account_numbers": [ACCOUNT_NUMBER], "reason": "Suspected fraud"}
    type: Literal["AccountsFrozen"] = "AccountsFrozen"
    payload: AccountsFrozenPayload


class FreezeAccountsPayload(Payload):
    """The fields of FreezeAccounts."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        min_length=1, max_length=1000, description="The accounts to freeze (1..1000)."
    )
    reason: _Reason = Field(description="Why they are frozen (stored, and carried in the event).")


class FreezeAccounts(CommandEnvelope):
    """Freeze accounts in one update; debits and credits on them are then refused."""

    events = (AccountsFrozen,)
    ordering_fields = ("account_numbers",)
    rejections = ("accounts_not_found",)
    example = _TWO_ACCOUNTS
    type: Literal["FreezeAccounts"] = "FreezeAccounts"
    payload: FreezeAccountsPayload


# --- UnfreezeAccounts (contract v2) -----------------------------------------------------------


class AccountsUnfrozenPayload(Payload):
    """The fields of AccountsUnfrozen."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        max_length=1000, description="The accounts this command actually unfroze."
    )
    reason: _Reason | None = Field(default=None, description=_EVENT_REASON)


class AccountsUnfrozen(RoutedEvent):
    """Accounts were unfrozen (those that were not frozen are not listed)."""

    routing_key = "account.unfrozen"
    example = {"account_numbers": [ACCOUNT_NUMBER], "reason": "Fraud check cleared"}
    type: Literal["AccountsUnfrozen"] = "AccountsUnfrozen"
    payload: AccountsUnfrozenPayload


class UnfreezeAccountsPayload(Payload):
    """The fields of UnfreezeAccounts."""

    account_numbers: tuple[AccountNumber, ...] = Field(
        min_length=1, max_length=1000, description="The accounts to unfreeze (1..1000)."
    )
    reason: _Reason = Field(description="Why they are unfrozen (stored, and carried in the event).")


class UnfreezeAccounts(CommandEnvelope):
    """Unfreeze accounts in one update (since contract v2)."""

    events = (AccountsUnfrozen,)
    ordering_fields = ("account_numbers",)
    rejections = ("accounts_not_found",)
    example = {**_TWO_ACCOUNTS, "reason": "Fraud check cleared"}
    type: Literal["UnfreezeAccounts"] = "UnfreezeAccounts"
    payload: UnfreezeAccountsPayload


# --- ListCustomerAccounts ---------------------------------------------------------------------


class ListCustomerAccountsPayload(Payload):
    """The fields of ListCustomerAccounts."""

    customer_id: BusinessId = Field(description=_CUSTOMER_ID)


class ListCustomerAccountsResult(ResultPayload):
    """The answer to ListCustomerAccounts: newest first."""

    example = {
        "items": [
            {
                "account_number": ACCOUNT_NUMBER,
                "customer_id": CUSTOMER_ID,
                "account_type": "savings",
                "currency": "GBP",
                "balance": "1024.00",
                "is_frozen": False,
                "created_at": AT,
            }
        ]
    }
    query_type: Literal["ListCustomerAccounts"] = Field(description="The query answered.")
    items: tuple[AccountView, ...] = Field(description="The customer's accounts.")


class ListCustomerAccounts(QueryEnvelope):
    """A customer's accounts, newest first."""

    result = ListCustomerAccountsResult
    rejections = ("customer_not_found",)
    example = {"customer_id": CUSTOMER_ID}
    type: Literal["ListCustomerAccounts"] = "ListCustomerAccounts"
    payload: ListCustomerAccountsPayload
