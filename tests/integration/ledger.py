"""Ledger checks the tests run against the stored balances, as documented `text()` statements.

Each statement runs unchanged on PostgreSQL and SQLite (window functions and CTEs
exist on both); each has a small function that binds it and materialises the rows.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

LEDGER_BALANCE = text(
    """
    -- The balance an account's transactions add up to, for auditing the stored balance.
    SELECT COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0)
    FROM transactions
    WHERE account_id = :account_id
    """
)

RUNNING_BALANCE_GAPS = text(
    """
    -- Transactions whose recorded balance_after disagrees with the running total of the
    -- ledger up to them (ordered by id): should always be empty. The difference is
    -- compared with half a cent, not with <>: SQLite sums the text-stored amounts as
    -- floats and would compare them with the text balance_after as text.
    WITH ledger AS (
        SELECT id, balance_after,
               SUM(CASE WHEN direction = 'credit' THEN amount ELSE -amount END)
                   OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                   AS running
        FROM transactions
        WHERE account_id = :account_id
    )
    SELECT id FROM ledger WHERE ABS(running - balance_after) >= 0.005 ORDER BY id
    """
)

CONVERSATION_MESSAGE_COUNTS = text(
    """
    -- Per conversation of a customer: how many messages and the latest sequence,
    -- ranked by activity; for support dashboards.
    SELECT c.conversation_id, COUNT(m.id) AS messages, COALESCE(MAX(m.sequence), 0) AS last_seq,
           RANK() OVER (ORDER BY COUNT(m.id) DESC) AS activity_rank
    FROM conversations c
    LEFT JOIN messages m ON m.conversation_id = c.id
    WHERE c.customer_id = :customer_id
    GROUP BY c.id, c.conversation_id
    ORDER BY activity_rank, c.id
    """
)


async def ledger_balance(session: AsyncSession, account_pk: int) -> Decimal:
    """The balance implied by the account's transactions."""
    value = await session.scalar(LEDGER_BALANCE, {"account_id": account_pk})
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def running_balance_gaps(session: AsyncSession, account_pk: int) -> list[int]:
    """Ids of transactions whose ``balance_after`` disagrees with the ledger."""
    rows = await session.execute(RUNNING_BALANCE_GAPS, {"account_id": account_pk})
    return [int(r[0]) for r in rows]


async def conversation_message_counts(
    session: AsyncSession, customer_pk: int
) -> list[tuple[str, int, int, int]]:
    """``(conversation_id, messages, last_sequence, activity_rank)`` per conversation."""
    rows = await session.execute(CONVERSATION_MESSAGE_COUNTS, {"customer_id": customer_pk})
    # SQLite returns the UUID as 32 bare hex digits, PostgreSQL as a UUID: one text form.
    return [(str(uuid.UUID(str(r[0]))), int(r[1]), int(r[2]), int(r[3])) for r in rows]
