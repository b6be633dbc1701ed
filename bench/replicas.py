"""Partitions and replicas: when the system under test is ready, and which replica did what.

Since contract v2 the input is ``WORKER_PARTITIONS`` quorum queues with a single active
consumer each; the replicas share them through a membership table in the database
(``partition_owners``, ``worker_members``: each takes a fair share, re-balanced every few
seconds). A run is ready when every partition queue has a consumer and, for the worker,
when the ownership is settled: every partition owned, by as many distinct replicas as were
started (or as there are partitions), shares differing by at most one. Measuring before that
would time a hand-over, not the steady state.

Per-replica work is read back from the outbox after a phase: each event row carries the
partition its command arrived on, so the commands of a phase (distinct ``causation_id``)
per partition, summed over the partitions a replica owned, are that replica's commands.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiormq
import asyncpg

from testkit.services import asyncpg_dsn

OWNERS = """
SELECT o.partition, o.owner, m.pid
FROM partition_owners o LEFT JOIN worker_members m ON m.member_id = o.owner
ORDER BY o.partition
"""
LAST_EVENT = "SELECT coalesce(max(id), 0) FROM outbox_events"
COMMANDS_PER_PARTITION = """
SELECT partition, count(DISTINCT (body::jsonb) ->> 'causation_id')
FROM outbox_events WHERE id > $1 GROUP BY partition
"""


class NotReady(RuntimeError):
    """The partitions did not all get a consumer (or a settled owner) in time."""


@dataclass(frozen=True)
class Ownership:
    """Who owns each partition (``partition -> owner pid``; ``None``: nobody, or unknown)."""

    owners: dict[int, int | None]
    last_event_id: int = 0

    def shares(self) -> Counter[int]:
        """Partitions per owner pid."""
        return Counter(pid for pid in self.owners.values() if pid is not None)

    def settled(self, partitions: int, replicas: int) -> bool:
        """Every partition owned, by ``min(replicas, partitions)`` replicas, fairly."""
        if any(self.owners.get(p) is None for p in range(partitions)):
            return False
        shares = self.shares()
        return len(shares) == min(replicas, partitions) and (
            max(shares.values()) - min(shares.values()) <= 1
        )


async def ownership(database_url: str) -> Ownership:
    """The partition owners now, and the last outbox row (where a phase's events begin)."""
    db = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await db.fetch(OWNERS)
        last = int(await db.fetchval(LAST_EVENT))
    finally:
        await db.close()
    return Ownership({r["partition"]: r["pid"] for r in rows}, last)


async def consumers(connection: aiormq.abc.AbstractConnection, queues: Sequence[str]) -> list[int]:
    """The consumer count of each queue (0 for a queue that does not exist yet)."""
    counts = []
    channel = await connection.channel()
    try:
        for name in queues:
            try:
                ok = await channel.queue_declare(name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                counts.append(0)
                channel = await connection.channel()  # a failed passive declare closes it
                continue
            counts.append(ok.consumer_count or 0)
    finally:
        if not channel.is_closed:
            await channel.close()
    return counts


async def wait_ready(
    amqp_url: str,
    database_url: str,
    queues: Sequence[str],
    *,
    replicas: int,
    membership: bool,
    check: Callable[[], None],
    timeout: float = 120,
) -> dict[str, Any]:
    """Wait until every queue has a consumer and (with ``membership``) the ownership is
    settled; ``check`` raises if a process died. Returns how long it took and the shares."""
    started = time.monotonic()
    connection = await aiormq.connect(amqp_url)
    state = "no consumer yet"
    try:
        while time.monotonic() - started < timeout:
            check()
            counts = await consumers(connection, queues)
            idle = [q for q, c in zip(queues, counts, strict=True) if c == 0]
            state = f"{len(idle)} of {len(queues)} partitions without a consumer"
            if not idle:
                if not membership:
                    return {"ready_s": round(time.monotonic() - started, 1)}
                owned = await ownership(database_url)
                state = f"ownership not settled: {dict(owned.shares())}"
                if owned.settled(len(queues), replicas):
                    return {
                        "ready_s": round(time.monotonic() - started, 1),
                        "partitions_per_replica": sorted(owned.shares().values(), reverse=True),
                    }
            await asyncio.sleep(0.25)
    finally:
        await connection.close()
    raise NotReady(f"not ready after {timeout:.0f}s: {state}")


async def work_per_replica(
    database_url: str, before: Ownership, pids: Sequence[int]
) -> dict[str, Any]:
    """The commands each replica applied since ``before`` (by the partitions it owned then),
    its partitions, and whether the ownership stayed the same through the phase."""
    after = await ownership(database_url)
    db = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await db.fetch(COMMANDS_PER_PARTITION, before.last_event_id)
    finally:
        await db.close()
    per_partition = {r["partition"]: int(r["count"]) for r in rows}
    commands = dict.fromkeys(pids, 0)
    partitions = dict.fromkeys(pids, 0)
    unattributed = per_partition.pop(None, 0)
    for partition, count in per_partition.items():
        pid = before.owners.get(partition)
        if pid in commands:
            commands[pid] += count
        else:
            unattributed += count
    for pid in before.owners.values():
        if pid in partitions:
            partitions[pid] += 1
    return {
        "commands": [commands[pid] for pid in pids],
        "partitions": [partitions[pid] for pid in pids],
        "unattributed": unattributed,
        "handed_over": before.owners != after.owners,
        "per_partition": [per_partition.get(p, 0) for p in sorted(before.owners)],
    }
