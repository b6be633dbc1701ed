"""Transactions: recent history and reference lookups."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from worker.db.models import Transaction
from worker.repositories.base import BaseRepository, clamp_limit

_BY_REFERENCE = (
    select(Transaction)
    .where(
        Transaction.account_id == bindparam("account_id"),
        Transaction.reference == bindparam("reference"),
    )
    .limit(1)
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
