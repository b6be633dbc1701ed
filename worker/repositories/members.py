"""Replica membership and partition ownership: who is alive, and who consumes which partition.

Liveness is measured in the database's own time (``now()``), never a replica's clock: a
replica is alive while its heartbeat is younger than the liveness window. Ownership changes
are compare-and-set updates, so two replicas can never both believe they claimed a partition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import Base, PartitionOwner, WorkerMember


class MembershipRepository:
    """Heartbeats of replicas and the owners of partitions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self) -> Callable[[type[Base]], Any]:
        return pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert

    async def heartbeat(self, member_id: str, *, host: str, pid: int) -> datetime:
        """Record that ``member_id`` is alive now; returns the database's ``now``."""
        insert = self._insert()
        stmt = (
            insert(WorkerMember)
            .values(member_id=member_id, host=host, pid=pid)
            .on_conflict_do_update(index_elements=["member_id"], set_={"heartbeat_at": func.now()})
            .returning(WorkerMember.heartbeat_at)
        )
        moment: datetime = (await self.session.execute(stmt)).scalar_one()
        return moment

    async def live_members(self, alive_since: datetime) -> list[str]:
        """Members whose last heartbeat is after ``alive_since``, sorted by id."""
        stmt = (
            select(WorkerMember.member_id)
            .where(WorkerMember.heartbeat_at > alive_since)
            .order_by(WorkerMember.member_id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def forget(self, member_id: str) -> None:
        """Remove a member (a replica leaving) and give up whatever it still owned."""
        await self.session.execute(delete(WorkerMember).where(WorkerMember.member_id == member_id))
        await self.session.execute(
            update(PartitionOwner)
            .where(PartitionOwner.owner == member_id)
            .values(owner=None, since=None)
        )

    async def forget_dead(self, dead_before: datetime) -> int:
        """Remove members silent since before ``dead_before`` (crashed long ago)."""
        stmt = delete(WorkerMember).where(WorkerMember.heartbeat_at < dead_before)
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def ensure_partitions(self, count: int) -> None:
        """Make sure partitions ``0 .. count-1`` have an ownership row."""
        insert = self._insert()
        rows = [{"partition": p} for p in range(count)]
        stmt = insert(PartitionOwner).values(rows).on_conflict_do_nothing()
        await self.session.execute(stmt)

    async def owners(self, count: int) -> dict[int, str | None]:
        """The owner of each partition ``0 .. count-1`` (``None``: nobody)."""
        stmt = select(PartitionOwner.partition, PartitionOwner.owner).where(
            PartitionOwner.partition < count
        )
        rows = (await self.session.execute(stmt)).all()
        found: dict[int, str | None] = {row.partition: row.owner for row in rows}
        return {p: found.get(p) for p in range(count)}

    async def claim(self, partition: int, member_id: str, previous: str | None) -> bool:
        """Take ``partition`` if its owner is still ``previous``; ``True`` if taken."""
        current = (
            PartitionOwner.owner.is_(None) if previous is None else PartitionOwner.owner == previous
        )
        stmt = (
            update(PartitionOwner)
            .where(PartitionOwner.partition == partition, current)
            .values(owner=member_id, since=func.now())
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def release(self, partitions: Sequence[int], member_id: str) -> int:
        """Give up ``partitions`` (only those ``member_id`` still owns); returns how many."""
        stmt = (
            update(PartitionOwner)
            .where(PartitionOwner.partition.in_(list(partitions)))
            .where(PartitionOwner.owner == member_id)
            .values(owner=None, since=None)
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
