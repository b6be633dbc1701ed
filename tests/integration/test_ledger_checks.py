"""The ``text()`` queries of ``worker.repositories.raw_queries`` on every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import account_data, conversation_data, message_data, transaction_data
from tests.integration.ledger import (
    conversation_message_counts,
    ledger_balance,
    running_balance_gaps,
)
from worker.db.models import Account, Customer
from worker.repositories import (
    AccountRepository,
    ConversationRepository,
    MessageRepository,
    TransactionRepository,
)

pytestmark = pytest.mark.integration

# Amounts whose binary floating-point sums are inexact (0.1 + 0.2 != 0.3).
MOVES = [
    ("credit", Decimal("0.10")),
    ("credit", Decimal("0.20")),
    ("debit", Decimal("0.30")),
    ("credit", Decimal("1234.57")),
    ("debit", Decimal("0.07")),
]


@pytest.fixture
async def account(session: AsyncSession, customers: list[Customer]) -> Account:
    """An account of the first customer with a consistent ledger of ``MOVES``."""
    account = await AccountRepository(session).create(**account_data(customers[0].id))
    transactions = TransactionRepository(session)
    balance = Decimal("0.00")
    for direction, amount in MOVES:
        balance += amount if direction == "credit" else -amount
        await transactions.create(
            **transaction_data(
                account.id, direction=direction, amount=amount, balance_after=balance
            )
        )
    return account


async def test_ledger_balance_adds_credits_and_subtracts_debits_exactly(
    session: AsyncSession, account: Account
) -> None:
    assert await ledger_balance(session, account.id) == Decimal("1234.50")


async def test_ledger_balance_of_an_account_without_transactions_is_zero(
    session: AsyncSession, customers: list[Customer]
) -> None:
    empty = await AccountRepository(session).create(**account_data(customers[1].id))

    assert await ledger_balance(session, empty.id) == Decimal("0.00")


async def test_running_balance_gaps_is_empty_for_a_consistent_ledger(
    session: AsyncSession, account: Account
) -> None:
    assert await running_balance_gaps(session, account.id) == []


async def test_running_balance_gaps_names_each_inconsistent_transaction(
    session: AsyncSession, account: Account
) -> None:
    transactions = TransactionRepository(session)
    wrong = await transactions.create(
        **transaction_data(account.id, amount=Decimal("5.00"), balance_after=Decimal("9999.99"))
    )
    await transactions.create(
        **transaction_data(account.id, amount=Decimal("1.00"), balance_after=Decimal("1240.50"))
    )

    assert await running_balance_gaps(session, account.id) == [wrong.id]


async def test_conversation_message_counts_ranks_conversations_by_activity(
    session: AsyncSession, customers: list[Customer]
) -> None:
    conversations = ConversationRepository(session)
    messages = MessageRepository(session)
    owner, other = customers[0], customers[1]
    quiet = await conversations.create(**conversation_data(owner.id))
    busy = await conversations.create(**conversation_data(owner.id))
    silent = await conversations.create(**conversation_data(owner.id))
    foreign = await conversations.create(**conversation_data(other.id))
    for sequence in (1, 2, 3):
        await messages.create(**message_data(busy.id, sequence))
    await messages.create(**message_data(quiet.id, 1))
    await messages.create(**message_data(foreign.id, 1))

    rows = await conversation_message_counts(session, owner.id)

    assert rows == [
        (str(busy.conversation_id), 3, 3, 1),
        (str(quiet.conversation_id), 1, 1, 2),
        (str(silent.conversation_id), 0, 0, 3),
    ]


async def test_conversation_message_counts_is_empty_for_a_customer_without_conversations(
    session: AsyncSession, customers: list[Customer]
) -> None:
    assert await conversation_message_counts(session, customers[9].id) == []
