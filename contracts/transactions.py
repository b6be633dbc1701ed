"""Transactions: record a credit or debit on an account, and list the recent ones."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictStr

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
    Direction,
    Money,
    PositiveMoney,
    Reference,
    Timestamp,
    page_limit,
    single_line,
)
from contracts.samples import ACCOUNT_NUMBER, AT

__all__ = [
    "ListRecentTransactions",
    "ListRecentTransactionsPayload",
    "ListRecentTransactionsResult",
    "RecordTransaction",
    "RecordTransactionPayload",
    "TransactionRecorded",
    "TransactionRecordedPayload",
    "TransactionView",
]

_REFERENCE = "POS-2026-000123"


class TransactionView(ContractModel):
    """A recorded transaction."""

    reference: StrictStr = Field(description="The caller's reference.")
    amount: Money = Field(description="The amount, a decimal string.")
    direction: Direction = Field(description="credit or debit.")
    description: StrictStr = Field(description="Statement text.")
    balance_after: Money = Field(description="Balance after this transaction.")
    created_at: Timestamp = Field(description="When it was recorded.")


# --- RecordTransaction ------------------------------------------------------------------------


class TransactionRecordedPayload(Payload):
    """The fields of TransactionRecorded."""

    account_number: AccountNumber = Field(description="The account.")
    amount: PositiveMoney = Field(description='The amount, a decimal string such as "12.50".')
    direction: Direction = Field(description="credit or debit.")
    reference: Reference = Field(description="The caller's reference.")
    balance_after: Money = Field(description="The account balance after this transaction.")


class TransactionRecorded(RoutedEvent):
    """A transaction was recorded and the balance updated."""

    routing_key = "transaction.recorded"
    example = {
        "account_number": ACCOUNT_NUMBER,
        "amount": "12.50",
        "direction": "debit",
        "reference": _REFERENCE,
        "balance_after": "-2.50",
    }
    type: Literal["TransactionRecorded"] = "TransactionRecorded"
    payload: TransactionRecordedPayload


class RecordTransactionPayload(Payload):
    """The fields of RecordTransaction."""

    account_number: AccountNumber = Field(description="The account to credit or debit.")
    amount: PositiveMoney = Field(description='Amount, a decimal string > 0 such as "12.50".')
    direction: Direction = Field(description="credit adds to the balance, debit subtracts.")
    description: Annotated[str, single_line(500)] = Field(description="Statement text.")
    reference: Reference = Field(description="Caller's reference; unique per account.")


class RecordTransaction(CommandEnvelope):
    """Credit or debit an account and update its balance.

    ``balance_limit_exceeded`` (our extension): a credit would take the balance past
    15 integer digits.
    """

    events = (TransactionRecorded,)
    ordering_fields = ("account_number",)
    rejections = (
        "account_not_found",
        "account_frozen",
        "insufficient_funds",
        "balance_limit_exceeded",
        "duplicate_reference",
    )
    example = {
        "account_number": ACCOUNT_NUMBER,
        "amount": "12.50",
        "direction": "debit",
        "description": "Coffee",
        "reference": _REFERENCE,
    }
    type: Literal["RecordTransaction"] = "RecordTransaction"
    payload: RecordTransactionPayload


# --- ListRecentTransactions -------------------------------------------------------------------


class ListRecentTransactionsPayload(Payload):
    """The fields of ListRecentTransactions."""

    account_number: AccountNumber = Field(description="The account.")
    limit: int = page_limit(20, 100)


class ListRecentTransactionsResult(ResultPayload):
    """The answer to ListRecentTransactions: newest first."""

    example = {
        "items": [
            {
                "reference": _REFERENCE,
                "amount": "12.50",
                "direction": "debit",
                "description": "Coffee",
                "balance_after": "-2.50",
                "created_at": AT,
            }
        ]
    }
    query_type: Literal["ListRecentTransactions"] = Field(description="The query answered.")
    items: tuple[TransactionView, ...] = Field(max_length=100, description="The transactions.")


class ListRecentTransactions(QueryEnvelope):
    """An account's most recent transactions, newest first."""

    result = ListRecentTransactionsResult
    rejections = ("account_not_found",)
    example = {"account_number": ACCOUNT_NUMBER, "limit": 20}
    type: Literal["ListRecentTransactions"] = "ListRecentTransactions"
    payload: ListRecentTransactionsPayload
