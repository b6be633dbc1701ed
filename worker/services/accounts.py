"""Account rules: opening, freezing, and money movements under a row lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from contracts import AccountView, TransactionView
from worker.db.models import Account, Transaction
from worker.errors import (
    AccountFrozen,
    AccountNotFound,
    AccountsNotFound,
    BalanceLimitExceeded,
    DuplicateReference,
    InsufficientFunds,
)
from worker.services.base import BaseService
from worker.services.customers import require_customer

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_BALANCE = Decimal("999999999999999.99")
"""The largest balance the wire format (15 integer digits) and NUMERIC(18, 2) both carry."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who asked for a change (the envelope's ``actor``) and in which command."""

    actor: str | None = None
    message_id: str | None = None


class AccountService(BaseService):
    """Accounts and the money that moves through them."""

    async def open_account(
        self, *, customer_id: str, account_type: str, currency: str = "GBP"
    ) -> tuple[Account, str]:
        """Open an account for a live customer; returns it with the customer's business id.

        One statement opens it if the customer is live; only when it opens nothing does the
        step-by-step path below find out why and reject (or open it, if the customer was
        created since).
        """
        opened = await self.accounts.open_for_live_customer(
            customer_id, account_type=account_type, currency=currency
        )
        if opened is not None:
            return opened, customer_id  # the customer's id, which it matched exactly
        customer = await require_customer(self.customers, customer_id)
        number = await self.accounts.next_account_number()
        account = await self.accounts.create(
            account_number=number,
            customer_id=customer.id,
            account_type=account_type,
            currency=currency,
        )
        return account, customer.customer_id

    async def freeze_accounts(
        self, account_numbers: Sequence[str], *, reason: str, by: Provenance = Provenance()
    ) -> list[str]:
        """Freeze every active account among ``account_numbers`` in one UPDATE, recording why."""
        return await self._change_status(
            account_numbers, before="active", after="frozen", reason=reason, by=by
        )

    async def unfreeze_accounts(
        self, account_numbers: Sequence[str], *, reason: str, by: Provenance = Provenance()
    ) -> list[str]:
        """Make every frozen account among ``account_numbers`` active again, recording why."""
        return await self._change_status(
            account_numbers, before="frozen", after="active", reason=reason, by=by
        )

    async def _change_status(
        self,
        account_numbers: Sequence[str],
        *,
        before: str,
        after: str,
        reason: str,
        by: Provenance,
    ) -> list[str]:
        numbers = sorted(set(account_numbers))
        changed = await self.accounts.change_status(numbers, before=before, after=after)
        if not changed and not await self.accounts.count_existing(numbers):
            raise AccountsNotFound("none of the given accounts exist")
        await self.accounts.record_status_change(
            changed, status=after, reason=reason, actor=by.actor, message_id=by.message_id
        )
        return changed

    async def record_transaction(
        self,
        *,
        account_number: str,
        amount: Decimal,
        direction: str,
        description: str,
        reference: str,
    ) -> tuple[Transaction, Account]:
        """Credit or debit an account, never below zero, with the account row locked.

        One statement records the transaction and sets the balance when every rule allows
        it (and locks the account row); only when it records nothing does
        :meth:`_check_rules` look up which rule refused.
        """
        amount = amount.quantize(CENT)
        delta = amount if direction == "credit" else -amount
        entry = {"direction": direction, "description": description, "reference": reference}
        recorded = await self.transactions.record_against_balance(
            account_number,
            amount=amount,
            **entry,
            delta=delta,
            status="active",
            floor=ZERO,
            ceiling=MAX_BALANCE,
        )
        if recorded is not None:
            return recorded
        account_pk, balance_after = await self._check_rules(account_number, reference, delta)
        transaction = await self.transactions.create(
            account_id=account_pk, amount=amount, balance_after=balance_after, **entry
        )
        account = await self.accounts.set_balance(account_pk, balance_after)
        return transaction, account

    async def _check_rules(
        self, account_number: str, reference: str, delta: Decimal
    ) -> tuple[int, Decimal]:
        """Lock the account and apply the rules in order, raising the first that refuses;
        returns the account's key and balance after ``delta`` if none does (a concurrent
        change may have allowed the transaction since)."""
        account = await self.accounts.lock_by_account_number(account_number)
        if account is None:
            raise AccountNotFound(f"no account {account_number}")
        if account.status != "active":
            raise AccountFrozen(f"account {account_number} is {account.status}")
        if await self.transactions.find_by_reference(account.id, reference) is not None:
            raise DuplicateReference("this reference was already used on the account")
        balance_after = (account.balance + delta).quantize(CENT)
        if balance_after < 0:
            raise InsufficientFunds("the balance does not cover this debit")
        if balance_after > MAX_BALANCE:
            raise BalanceLimitExceeded("the balance would exceed the account's limit")
        return account.id, balance_after

    async def recent_transactions(
        self, account_number: str, *, limit: int = 20
    ) -> list[TransactionView]:
        """The account's latest transactions, newest first."""
        account = await self.accounts.find_by_account_number(account_number)
        if account is None:
            raise AccountNotFound(f"no account {account_number}")
        rows = await self.transactions.find_recent_transactions(account.id, limit=limit)
        return [transaction_view(t) for t in rows]

    async def customer_accounts(self, customer_id: str) -> list[AccountView]:
        """The customer's accounts, newest first."""
        customer = await require_customer(self.customers, customer_id)
        accounts = await self.accounts.list_by_customer(customer.id)
        return [account_view(a, customer_id) for a in accounts]


def account_view(a: Account, customer_id: str) -> AccountView:
    """The read model of an account."""
    return AccountView.model_validate(
        {
            "account_number": a.account_number,
            "customer_id": customer_id,
            "account_type": a.account_type,
            "currency": a.currency,
            "balance": str(a.balance),
            "is_frozen": a.status == "frozen",
            "created_at": a.created_at,
        }
    )


def transaction_view(t: Transaction) -> TransactionView:
    """The read model of a transaction."""
    return TransactionView.model_validate(
        {
            "reference": t.reference,
            "amount": str(t.amount),
            "direction": t.direction,
            "description": t.description,
            "balance_after": str(t.balance_after),
            "created_at": t.created_at,
        }
    )
