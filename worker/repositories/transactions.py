"""Transactions: recent history, reference lookups, and the insert that checks the balance."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from sqlalchemy import Numeric, Table, bindparam, select
from sqlalchemy.dialects import postgresql

from worker.db.models import Account, Transaction
from worker.repositories.base import BaseRepository, clamp_limit

_BY_REFERENCE = (
    select(Transaction)
    .where(
        Transaction.account_id == bindparam("account_id"),
        Transaction.reference == bindparam("reference"),
    )
    .limit(1)
)

# RecordTransaction's hot path on PostgreSQL, in Core, built once: the transaction row is
# computed from the account row it locks (``balance_after = balance + delta``) and inserted
# only if every condition holds. ``delta`` and the bounds are unconstrained NUMERIC, so an
# out-of-range sum fails the bounds instead of overflowing NUMERIC(18, 2).
_ACCOUNTS = cast(Table, Account.__table__)
_TRANSACTIONS = cast(Table, Transaction.__table__)
_EXACT = Numeric(asdecimal=True)
_BALANCE_AFTER = _ACCOUNTS.c.balance + bindparam("delta", type_=_EXACT)
_INSERT_AGAINST_BALANCE = (
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
            _ACCOUNTS.c.status == bindparam("status"),
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
)
_ACCOUNT_FOR_ENTRY = select(_ACCOUNTS.c.id, _ACCOUNTS.c.status, _ACCOUNTS.c.balance).where(
    _ACCOUNTS.c.account_number == bindparam("number")
)


class TransactionRepository(BaseRepository[Transaction]):
    """An account's transactions."""

    model = Transaction

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

    async def insert_against_balance(
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
    ) -> Transaction | None:
        """Record a transaction on the account with ``balance_after`` = its balance +
        ``delta``, if the account has ``status``, that sum lies within ``floor``..``ceiling``
        and ``reference`` is unused on it; else insert nothing and return ``None`` (the
        finders say which condition failed). The account row stays locked for the
        transaction; the caller then sets its balance.

        PostgreSQL: one ``INSERT … SELECT … FOR UPDATE ON CONFLICT DO NOTHING RETURNING``.
        SQLite keeps money as text, so the sum is taken in Python (its ``BEGIN IMMEDIATE``
        already serialises writers, so reading first is safe): a lookup, then the insert.
        """
        values = {
            "amount": amount,
            "direction": direction,
            "description": description,
            "reference": reference,
        }
        if self.session.get_bind().dialect.name != "postgresql":
            return await self._insert_checked_in_python(
                account_number, values, delta=delta, status=status, floor=floor, ceiling=ceiling
            )
        params = {f"tx_{k}": v for k, v in values.items()}
        params |= {
            "number": account_number,
            "status": status,
            "delta": delta,
            "floor": floor,
            "ceiling": ceiling,
        }
        row = (await self.session.execute(_INSERT_AGAINST_BALANCE, params)).first()
        return None if row is None else self._adopt({**values, **row._mapping})

    async def _insert_checked_in_python(
        self,
        account_number: str,
        values: dict[str, object],
        *,
        delta: Decimal,
        status: str,
        floor: Decimal,
        ceiling: Decimal,
    ) -> Transaction | None:
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
        return await self.create(account_id=account.id, balance_after=balance_after, **values)
