"""Business-id numbers that are safe under concurrency on every backend."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Sequence, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import IdCounter

_NEXTVAL = {
    name: text(f"SELECT nextval('{name}_number_seq')")
    for name in ("customer", "account", "escalation", "faq")
}


def next_value(name: str) -> ColumnElement[int]:
    """``nextval('<name>_number_seq')`` as an expression (PostgreSQL only), for a statement
    that numbers the row it inserts itself instead of asking :func:`next_number` first.

    The number is taken when the statement evaluates it, whether or not a row is then
    inserted (a conflict, say): that leaves a gap, as a rolled-back transaction does.
    """
    return Sequence(f"{name}_number_seq").next_value()


async def next_number(session: AsyncSession, name: str) -> int:
    """The next number of the counter ``name`` (``customer``, ``account``, ``escalation``, ``faq``).

    PostgreSQL: ``nextval`` on a sequence, which never waits for other transactions
    (a rolled-back transaction leaves a gap, which business ids may have). SQLite has
    no sequences but serialises writers, so an upsert on a counter row is just as safe.
    """
    if session.get_bind().dialect.name == "postgresql":
        return int(await session.scalar(_NEXTVAL[name]) or 0)
    await session.execute(
        sqlite_insert(IdCounter).values(name=name, value=0).on_conflict_do_nothing()
    )
    stmt = (
        update(IdCounter)
        .where(IdCounter.name == name)
        .values(value=IdCounter.value + 1)
        .returning(IdCounter.value)
    )
    return int((await session.execute(stmt)).scalar_one())
