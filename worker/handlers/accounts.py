"""Account and transaction commands."""

from __future__ import annotations

from contracts import (
    AccountOpened,
    AccountOpenedPayload,
    AccountsFrozen,
    AccountsFrozenPayload,
    FreezeAccounts,
    OpenAccount,
    RecordTransaction,
    RoutedEvent,
    TransactionRecorded,
    TransactionRecordedPayload,
)
from worker.handlers.base import emit
from worker.services import AccountService


async def open_account(command: OpenAccount, service: AccountService) -> list[RoutedEvent]:
    """Open an account for a customer."""
    p = command.payload
    account, customer_id = await service.open_account(
        customer_id=p.customer_id, account_type=p.account_type, currency=p.currency
    )
    payload = AccountOpenedPayload(
        account_number=account.account_number,
        customer_id=customer_id,
        account_type=p.account_type,
        currency=account.currency,
    )
    return [emit(command, AccountOpened, payload)]


async def freeze_accounts(command: FreezeAccounts, service: AccountService) -> list[RoutedEvent]:
    """Freeze accounts in one UPDATE."""
    frozen = await service.freeze_accounts(command.payload.account_numbers)
    return [emit(command, AccountsFrozen, AccountsFrozenPayload(account_numbers=tuple(frozen)))]


async def record_transaction(
    command: RecordTransaction, service: AccountService
) -> list[RoutedEvent]:
    """Credit or debit an account."""
    p = command.payload
    transaction, account = await service.record_transaction(
        account_number=p.account_number,
        amount=p.amount,
        direction=p.direction,
        description=p.description,
        reference=p.reference,
    )
    payload = TransactionRecordedPayload(
        account_number=account.account_number,
        amount=transaction.amount,
        direction=p.direction,
        reference=transaction.reference,
        balance_after=transaction.balance_after,
    )
    return [emit(command, TransactionRecorded, payload)]
