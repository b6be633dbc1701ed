"""Accounts: by number, by customer, and the row lock that guards balances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, literal, select, update

from worker.db.models import Account, AccountStatusChange
from worker.repositories.base import BaseRepository, clamp_limit
from worker.repositories.sequences import next_number

ACCOUNT_NUMBER_BASE = 10_000_000


_BY_NUMBER = select(Account).where(Account.account_number == bindparam("number")).limit(1)
_LOCK_BY_NUMBER = _BY_NUMBER.with_for_update().execution_options(populate_existing=True)
_ACCOUNTS = cast(Table, Account.__table__)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("pk"))
    .values(balance=bindparam("new_balance"))
    .returning(*_ACCOUNTS.c)
)


class AccountRepository(BaseRepository[Account]):
    """Accounts and their balances."""

    model = Account

    async def find_by_account_number(self, account_number: str) -> Account | None:
        """The account with this number."""
        return await self.session.scalar(_BY_NUMBER, {"number": account_number})

    async def lock_by_account_number(self, account_number: str) -> Account | None:
        """The account, locked for this transaction (``SELECT … FOR UPDATE`` on PostgreSQL).

        Two concurrent debits both wait here, so the second sees the first's balance.
        SQLite ignores the clause; its ``BEGIN IMMEDIATE`` already serialises writers.
        ``populate_existing`` makes sure a cached object is refreshed from the locked row.
        """
        return await self.session.scalar(_LOCK_BY_NUMBER, {"number": account_number})

    async def set_balance(self, account_pk: int, balance: Decimal) -> Account:
        """Set the balance in one ``UPDATE … RETURNING`` (Core, built once) and return the
        account; call it with the row locked."""
        params = {"pk": account_pk, "new_balance": balance}
        row = (await self.session.execute(_SET_BALANCE, params)).one()
        return self._adopt(row._mapping)

    def adopt(self, row: Mapping[str, object]) -> Account:
        """The session's account for ``row`` (every column), which a Core statement built
        elsewhere just wrote (``TransactionRepository.record_against_balance`` updates the
        balance in its own statement)."""
        return self._adopt(row)

    async def list_by_customer(self, customer_pk: int, *, limit: int = 100) -> list[Account]:
        """A customer's accounts, newest first."""
        stmt = (
            select(Account)
            .where(Account.customer_id == customer_pk)
            .order_by(Account.created_at.desc(), Account.id.desc())
        )
        return await self._all(stmt.limit(clamp_limit(limit)))

    async def change_status(
        self, account_numbers: Sequence[str], *, before: str, after: str
    ) -> list[str]:
        """Set ``after`` on the accounts among ``account_numbers`` whose status is ``before``,
        in one UPDATE; returns their numbers, sorted."""
        stmt = (
            update(Account)
            .where(Account.account_number.in_(list(account_numbers)), Account.status == before)
            .values(status=after)
            .returning(Account.account_number)
            .execution_options(synchronize_session=False)
        )
        return sorted((await self.session.scalars(stmt)).all())

    async def record_status_change(
        self,
        account_numbers: Sequence[str],
        *,
        status: str,
        reason: str,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> int:
        """Add one history row per account among ``account_numbers`` (one INSERT … SELECT)."""
        if not account_numbers:
            return 0
        source = select(
            Account.id,
            literal(status),
            literal(reason),
            literal(actor, AccountStatusChange.actor.type),
            literal(message_id, AccountStatusChange.message_id.type),
        ).where(Account.account_number.in_(list(account_numbers)))
        columns = ["account_id", "status", "reason", "actor", "message_id"]
        stmt = insert(AccountStatusChange).from_select(columns, source)
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def status_history(self, account_number: str) -> list[AccountStatusChange]:
        """The account's status changes, oldest first."""
        stmt = (
            select(AccountStatusChange)
            .join(Account, Account.id == AccountStatusChange.account_id)
            .where(Account.account_number == account_number)
            .order_by(AccountStatusChange.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count_existing(self, account_numbers: Sequence[str]) -> int:
        """How many of ``account_numbers`` exist."""
        stmt = select(func.count()).where(Account.account_number.in_(list(account_numbers)))
        return int(await self.session.scalar(stmt) or 0)

    async def next_account_number(self) -> str:
        """A fresh 8-digit account number."""
        return str(ACCOUNT_NUMBER_BASE + await next_number(self.session, "account"))
