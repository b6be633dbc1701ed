"""Accounts: by number, by customer, and the row lock that guards balances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import cast

from sqlalchemy import (
    BigInteger,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)

from worker.db.models import Account, AccountStatusChange, Customer
from worker.repositories.base import BaseRepository, clamp_limit
from worker.repositories.customers import CustomerRepository, live_customer
from worker.repositories.sequences import next_number, next_value

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

# OpenAccount's hot path on PostgreSQL, in Core, built once: one INSERT … SELECT from the
# live customer's row (none: nothing inserted), numbered as ``next_account_number`` numbers,
# by nextval inside it. PostgreSQL evaluates the select list only for a row that passed the
# WHERE, so a missing customer takes no number. The customer is read from the statement's
# snapshot, as the separate lookup read it before, and the foreign key locks its row.
_CUSTOMERS = cast(Table, Customer.__table__)
_NEW_NUMBER = literal_column(str(ACCOUNT_NUMBER_BASE), BigInteger) + next_value("account")
_GIVEN = ("account_type", "currency")
_OPEN_FOR_LIVE_CUSTOMER = (
    insert(_ACCOUNTS)
    .from_select(
        ["account_number", "customer_id", *_GIVEN],
        select(
            _NEW_NUMBER.cast(String),
            _CUSTOMERS.c.id,
            *(bindparam(f"new_{name}", type_=_ACCOUNTS.c[name].type) for name in _GIVEN),
        ).where(live_customer(bindparam("owner", type_=_CUSTOMERS.c.customer_id.type))),
        include_defaults=False,  # the server defaults apply, as RETURNING reports them
    )
    .returning(*(c for c in _ACCOUNTS.c if c.key not in _GIVEN))
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

    async def open_for_live_customer(
        self, customer_id: str, *, account_type: str, currency: str
    ) -> Account | None:
        """Open an account with a fresh number for the live customer with business id
        ``customer_id``; ``None``, having written nothing, if there is no such customer.

        PostgreSQL: one ``INSERT … SELECT … FROM customers RETURNING``, the number from
        ``nextval`` inside it, the row returned held by the session. SQLite has no
        sequences: :meth:`CustomerRepository.find_by_business_id`,
        :meth:`next_account_number` and :meth:`create`, one after the other.
        """
        given = {"account_type": account_type, "currency": currency}
        if self.session.get_bind().dialect.name != "postgresql":
            customer = await CustomerRepository(self.session).find_by_business_id(customer_id)
            if customer is None:
                return None
            number = await self.next_account_number()
            return await self.create(account_number=number, customer_id=customer.id, **given)
        params = {"owner": customer_id, **{f"new_{k}": v for k, v in given.items()}}
        row = (await self.session.execute(_OPEN_FOR_LIVE_CUSTOMER, params)).first()
        if row is None:
            return None
        return self._adopt({**given, **row._mapping})

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
