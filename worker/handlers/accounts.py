"""Account and transaction commands."""

from __future__ import annotations

from contracts import (
    AccountOpened,
    AccountOpenedPayload,
    AccountsFrozen,
    AccountsFrozenPayload,
    AccountsUnfrozen,
    AccountsUnfrozenPayload,
    FreezeAccounts,
    ListCustomerAccounts,
    ListRecentTransactions,
    OpenAccount,
    RecordTransaction,
    RoutedEvent,
    TransactionRecorded,
    TransactionRecordedPayload,
    UnfreezeAccounts,
)
from worker.handlers.registry import HANDLERS, Answer, emit
from worker.services import AccountService
from worker.services.accounts import Provenance


@HANDLERS.command(OpenAccount, AccountService)
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


@HANDLERS.command(FreezeAccounts, AccountService)
async def freeze_accounts(command: FreezeAccounts, service: AccountService) -> list[RoutedEvent]:
    """Freeze accounts in one UPDATE, recording why and who asked."""
    p = command.payload
    frozen = await service.freeze_accounts(
        p.account_numbers, reason=p.reason, by=Provenance(command.actor, command.message_id)
    )
    payload = AccountsFrozenPayload(account_numbers=tuple(frozen), reason=p.reason)
    return [emit(command, AccountsFrozen, payload)]


@HANDLERS.command(RecordTransaction, AccountService)
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


@HANDLERS.query(ListRecentTransactions, AccountService)
async def list_recent_transactions(
    query: ListRecentTransactions, service: AccountService
) -> Answer:
    """An account's latest transactions."""
    p = query.payload
    return Answer(await service.recent_transactions(p.account_number, limit=p.limit))


@HANDLERS.query(ListCustomerAccounts, AccountService)
async def list_customer_accounts(query: ListCustomerAccounts, service: AccountService) -> Answer:
    """A customer's accounts, newest first."""
    return Answer(await service.customer_accounts(query.payload.customer_id))


@HANDLERS.command(UnfreezeAccounts, AccountService)
async def unfreeze_accounts(
    command: UnfreezeAccounts, service: AccountService
) -> list[RoutedEvent]:
    """Make frozen accounts active again, in one UPDATE, recording why and who asked."""
    p = command.payload
    unfrozen = await service.unfreeze_accounts(
        p.account_numbers, reason=p.reason, by=Provenance(command.actor, command.message_id)
    )
    payload = AccountsUnfrozenPayload(account_numbers=tuple(unfrozen), reason=p.reason)
    return [emit(command, AccountsUnfrozen, payload)]
