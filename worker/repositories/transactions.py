"""Transactions: recent history, reference lookups, and recording one against the balance."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from sqlalchemy import Numeric, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import Account, Transaction
from worker.repositories.accounts import AccountRepository
from worker.repositories.base import BaseRepository, clamp_limit

_BY_REFERENCE = (
    select(Transaction)
    .where(
        Transaction.account_id == bindparam("account_id"),
        Transaction.reference == bindparam("reference"),
    )
    .limit(1)
)

# RecordTransaction's hot path on PostgreSQL, in Core, built once: one statement of two
# data-modifying CTEs. ``inserted`` computes the transaction row from the account row it
# locks (``balance_after = balance + delta``) and inserts it only if every condition holds;
# ``delta`` and the bounds are unconstrained NUMERIC, so an out-of-range sum fails the
# bounds instead of overflowing NUMERIC(18, 2). ``updated`` then sets the account's balance
# to that ``balance_after``, and the outer SELECT returns both rows (none if nothing was
# inserted: ``updated`` joins ``inserted``, so it updates nothing either).
#
# Under READ COMMITTED every part of the statement shares one snapshot, possibly older than
# a concurrent writer's commit, so no part may take the balance from the snapshot. The
# SELECT … FOR UPDATE waits for that writer and re-evaluates its conditions and the sum on
# the newest row version (EvalPlanQual); ``updated`` finds the snapshot's version superseded,
# follows it to the newest one (locked by us, so no wait) and writes ``inserted``'s
# ``balance_after`` there, read from the RETURNING, never ``balance + delta`` of the snapshot.
#
# No parameter is named like a column of ``accounts``: SQLAlchemy adds such a parameter to
# the UPDATE's SET clause (a ``status`` parameter did), hence ``required_status``.
_ACCOUNTS = cast(Table, Account.__table__)
_TRANSACTIONS = cast(Table, Transaction.__table__)
_EXACT = Numeric(asdecimal=True)
_BALANCE_AFTER = _ACCOUNTS.c.balance + bindparam("delta", type_=_EXACT)
_INSERTED = (
    postgresql.insert(_TRANSACTIONS)
    .from_select(
        ["account_id", "amount", "direction", "description", "reference", "balance_after"],
        select(
            _ACCOUNTS.c.id,
            bindparam("tx_amount", type_=_TRANSACTIONS.c.amount.type),
            bindparam("tx_direction", type_=_TRANSACTIONS.c.direction.type),
            bindparam("tx_description", type_=_TRANSACTIONS.c.description.type),
            bindparam("tx_reference", type_=_TRANSACTIONS.c.reference.type),
            _BALANCE_AFTER,
        )
        .where(
            _ACCOUNTS.c.account_number == bindparam("number"),
            _ACCOUNTS.c.status == bindparam("required_status"),
            _BALANCE_AFTER.between(
                bindparam("floor", type_=_EXACT), bindparam("ceiling", type_=_EXACT)
            ),
        )
        .with_for_update(),
    )
    .on_conflict_do_nothing(index_elements=["account_id", "reference"])
    .returning(
        _TRANSACTIONS.c.id,
        _TRANSACTIONS.c.account_id,
        _TRANSACTIONS.c.balance_after,
        _TRANSACTIONS.c.created_at,
    )
    .cte("inserted")
)
_UPDATED = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == _INSERTED.c.account_id)
    .values(balance=_INSERTED.c.balance_after)
    .returning(*_ACCOUNTS.c)
    .cte("updated")
)
_RECORD_AGAINST_BALANCE = select(*_INSERTED.c, *_UPDATED.c).join_from(
    _INSERTED, _UPDATED, _UPDATED.c.id == _INSERTED.c.account_id
)
# The outer SELECT's columns by position: the transaction's, then the account's (both have
# ``id`` and ``created_at``, so their labels are not the attribute names).
_TRANSACTION_KEYS = tuple(c.key for c in _INSERTED.c)
_ACCOUNT_KEYS = tuple(c.key for c in _UPDATED.c)
_ACCOUNT_FOR_ENTRY = select(_ACCOUNTS.c.id, _ACCOUNTS.c.status, _ACCOUNTS.c.balance).where(
    _ACCOUNTS.c.account_number == bindparam("number")
)


class TransactionRepository(BaseRepository[Transaction]):
    """An account's transactions."""

    model = Transaction

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        # The account side of recording a transaction (its balance) is the account
        # repository's: adopting the updated row, or setting the balance on SQLite.
        self._accounts = AccountRepository(session)

    async def find_recent_transactions(
        self, account_pk: int, *, limit: int = 20
    ) -> list[Transaction]:
        """The account's latest transactions, newest first."""
        stmt = (
            select(Transaction)
            .where(Transaction.account_id == account_pk)
            .order_by(Transaction.created_at.desc(), Transaction.id.desc())
        )
        return await self._all(stmt.limit(clamp_limit(limit)))

    async def find_by_reference(self, account_pk: int, reference: str) -> Transaction | None:
        """The account's transaction with this reference."""
        params = {"account_id": account_pk, "reference": reference}
        return await self.session.scalar(_BY_REFERENCE, params)

    async def record_against_balance(
        self,
        account_number: str,
        *,
        amount: Decimal,
        direction: str,
        description: str,
        reference: str,
        delta: Decimal,
        status: str,
        floor: Decimal,
        ceiling: Decimal,
    ) -> tuple[Transaction, Account] | None:
        """Record a transaction on the account with ``balance_after`` = its balance +
        ``delta`` and set the account's balance to that sum, if the account has ``status``,
        the sum lies within ``floor``..``ceiling`` and ``reference`` is unused on it; returns
        the transaction and the account. Else write nothing and return ``None`` (the finders
        say which condition failed). The account row stays locked for the transaction.

        PostgreSQL: one statement, an ``INSERT … SELECT … FOR UPDATE ON CONFLICT DO NOTHING``
        and an ``UPDATE`` of the account as data-modifying CTEs, both rows returned. SQLite
        keeps money as text, so the sum is taken in Python (its ``BEGIN IMMEDIATE`` already
        serialises writers, so reading first is safe): lookups, the insert, then
        :meth:`AccountRepository.set_balance`.
        """
        values = {
            "amount": amount,
            "direction": direction,
            "description": description,
            "reference": reference,
        }
        if self.session.get_bind().dialect.name != "postgresql":
            return await self._record_checked_in_python(
                account_number, values, delta=delta, status=status, floor=floor, ceiling=ceiling
            )
        params = {f"tx_{k}": v for k, v in values.items()}
        params |= {
            "number": account_number,
            "required_status": status,
            "delta": delta,
            "floor": floor,
            "ceiling": ceiling,
        }
        row = (await self.session.execute(_RECORD_AGAINST_BALANCE, params)).first()
        if row is None:
            return None
        split = len(_TRANSACTION_KEYS)
        transaction = self._adopt(
            {**values, **dict(zip(_TRANSACTION_KEYS, row[:split], strict=True))}
        )
        account = self._accounts.adopt(dict(zip(_ACCOUNT_KEYS, row[split:], strict=True)))
        return transaction, account

    async def _record_checked_in_python(
        self,
        account_number: str,
        values: dict[str, object],
        *,
        delta: Decimal,
        status: str,
        floor: Decimal,
        ceiling: Decimal,
    ) -> tuple[Transaction, Account] | None:
        account = (
            await self.session.execute(_ACCOUNT_FOR_ENTRY, {"number": account_number})
        ).first()
        if account is None or account.status != status:
            return None
        balance_after: Decimal = account.balance + delta
        if not floor <= balance_after <= ceiling:
            return None
        if await self.find_by_reference(account.id, str(values["reference"])) is not None:
            return None
        transaction = await self.create(
            account_id=account.id, balance_after=balance_after, **values
        )
        return transaction, await self._accounts.set_balance(account.id, balance_after)
