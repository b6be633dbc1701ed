"""Group commit's queue: who runs, what is grouped, and what a failure falls back to."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from worker.group_commit import ALONE, Alone, GroupCommit

pytestmark = pytest.mark.unit


@dataclass
class Recorder:
    """``one`` and ``together`` that record their calls; the first call can be held open."""

    hold: asyncio.Event | None = None
    fail_together: bool = False
    alone: set[str] = field(default_factory=set)
    fail_one: set[str] = field(default_factory=set)
    ones: list[str] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    """The sizes ``on_group`` reported."""
    fallbacks: int = 0

    def fell_back(self) -> None:
        self.fallbacks += 1

    async def one(self, item: str) -> str:
        self.ones.append(item)
        await self._maybe_hold()
        if item in self.fail_one:
            raise ValueError(item)
        return f"one:{item}"

    async def together(self, items: Sequence[str]) -> list[str | Alone]:
        self.groups.append(list(items))
        await self._maybe_hold()
        if self.fail_together:
            raise RuntimeError("the group rolled back")
        return [ALONE if i in self.alone else f"group:{i}" for i in items]

    async def _maybe_hold(self) -> None:
        if self.hold is not None:
            hold, self.hold = self.hold, None  # only the first call waits
            await hold.wait()


async def test_a_lone_command_runs_the_ordinary_path() -> None:
    rec = Recorder()
    group = GroupCommit(rec.one, rec.together)

    assert await group.submit("a") == "one:a"
    assert rec.ones == ["a"]
    assert rec.groups == []


async def grouped(rec: Recorder, items: list[str], **options: int) -> list[str | BaseException]:
    """Run ``first`` alone while it holds the only runner, queue ``items`` behind it."""
    hold = asyncio.Event()
    rec.hold = hold
    group = GroupCommit(
        rec.one, rec.together, on_group=rec.sizes.append, on_fallback=rec.fell_back, **options
    )
    first = asyncio.create_task(group.submit("first"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in items]
    await asyncio.sleep(0)
    assert not any(t.done() for t in [first, *rest])
    hold.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


async def test_commands_queued_behind_a_busy_runner_commit_together() -> None:
    rec = Recorder()

    results = await grouped(rec, ["a", "b", "c"], runners=1)

    assert results == ["one:first", "group:a", "group:b", "group:c"]
    assert rec.ones == ["first"]
    assert rec.groups == [["a", "b", "c"]]
    assert rec.sizes == [3]


async def test_groups_are_at_most_max_batch() -> None:
    rec = Recorder()

    results = await grouped(rec, ["a", "b", "c", "d", "e"], runners=1, max_batch=2)

    assert results == ["one:first", "group:a", "group:b", "group:c", "group:d", "one:e"]
    assert rec.groups == [["a", "b"], ["c", "d"]]
    assert rec.ones == ["first", "e"]


async def test_a_group_that_fails_runs_each_command_alone() -> None:
    rec = Recorder(fail_together=True)

    results = await grouped(rec, ["a", "b"], runners=1)

    assert results == ["one:first", "one:a", "one:b"]
    assert rec.groups == [["a", "b"]]
    assert sorted(rec.ones) == ["a", "b", "first"]
    assert rec.sizes == []
    assert rec.fallbacks == 1


async def test_a_command_the_group_leaves_out_runs_alone() -> None:
    rec = Recorder(alone={"b"})

    results = await grouped(rec, ["a", "b", "c"], runners=1)

    assert results == ["one:first", "group:a", "one:b", "group:c"]
    assert rec.sizes == [2]
    assert rec.fallbacks == 0


async def test_a_lone_failure_is_raised_in_its_own_task_only() -> None:
    rec = Recorder(fail_one={"first"})

    results = await grouped(rec, ["a", "b"], runners=1)

    assert isinstance(results[0], ValueError)
    assert results[1:] == ["group:a", "group:b"]


async def test_with_max_batch_one_nothing_is_grouped_or_queued() -> None:
    rec = Recorder(hold=asyncio.Event())
    group = GroupCommit(rec.one, rec.together, runners=1, max_batch=1)
    first = asyncio.create_task(group.submit("first"))
    await asyncio.sleep(0)

    # "first" is held, yet the others run at once: without grouping nothing waits for a runner
    assert await asyncio.gather(group.submit("a"), group.submit("b")) == ["one:a", "one:b"]
    assert rec.hold is None
    assert not first.done()
    first.cancel()
    assert rec.groups == []


async def test_a_command_cancelled_while_queued_is_never_applied() -> None:
    rec = Recorder()
    hold = asyncio.Event()
    rec.hold = hold
    group = GroupCommit(rec.one, rec.together, runners=1)
    first = asyncio.create_task(group.submit("first"))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(group.submit("gone"))
    kept = asyncio.create_task(group.submit("kept"))
    await asyncio.sleep(0)

    cancelled.cancel()
    hold.set()
    assert await first == "one:first"
    assert await kept == "one:kept"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert "gone" not in rec.ones + [i for g in rec.groups for i in g]


async def test_when_the_task_running_a_group_is_cancelled_the_others_run_alone() -> None:
    gate, group_started, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def one(item: str) -> str:
        if item == "first":
            await gate.wait()
        return f"one:{item}"

    async def together(items: Sequence[str]) -> list[str | Alone]:
        group_started.set()
        await never.wait()
        return list(items)

    group = GroupCommit(one, together, runners=1)
    first = asyncio.create_task(group.submit("first"))
    await asyncio.sleep(0)
    a = asyncio.create_task(group.submit("a"))
    b = asyncio.create_task(group.submit("b"))
    await asyncio.sleep(0)
    gate.set()
    assert await first == "one:first"
    await group_started.wait()  # "a", first in the queue, runs the group ["a", "b"]

    a.cancel()

    assert await b == "one:b"
    with pytest.raises(asyncio.CancelledError):
        await a


async def test_two_runners_run_two_transactions_at_once() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def one(item: str) -> str:
        started.append(item)
        await release.wait()
        return item

    async def together(items: Sequence[str]) -> list[str | Alone]:
        return list(items)

    group = GroupCommit(one, together, runners=2)
    tasks = [asyncio.create_task(group.submit(i)) for i in ("a", "b", "c")]
    await asyncio.sleep(0)

    assert started == ["a", "b"]  # "c" waits for a free runner
    release.set()
    assert await asyncio.gather(*tasks) == ["a", "b", "c"]


async def test_a_command_taken_into_another_tasks_group_only_waits_for_it() -> None:
    """Both runners free up at once while a new command takes the waiting ones into its
    group: the task of a command already taken must wait, not run a group of its own (an
    empty one, which on the real bus never yields: the worker would spin forever)."""
    holds = {"A": asyncio.Event(), "B": asyncio.Event()}
    group_hold = asyncio.Event()
    groups: list[list[str]] = []

    async def one(item: str) -> str:
        if item in holds:
            await holds[item].wait()
        return f"one:{item}"

    async def together(items: Sequence[str]) -> list[str | Alone]:
        groups.append(list(items))
        await group_hold.wait()
        return [f"group:{i}" for i in items]

    group = GroupCommit(one, together, runners=2)
    a = asyncio.create_task(group.submit("A"))
    b = asyncio.create_task(group.submit("B"))
    await asyncio.sleep(0)
    c = asyncio.create_task(group.submit("C"))
    d = asyncio.create_task(group.submit("D"))
    await asyncio.sleep(0)  # both runners busy: C and D wait in the queue

    holds["B"].set()  # B's runner frees and wakes C ...
    holds["A"].set()  # ... and A's too, while E arrives and takes C and D into its group
    e = asyncio.create_task(group.submit("E"))
    for _ in range(10):
        await asyncio.sleep(0)
    group_hold.set()

    assert await asyncio.gather(a, b, c, d, e) == ["one:A", "one:B", *(f"group:{i}" for i in "CDE")]
    assert groups == [["C", "D", "E"]]


async def test_a_command_cancelled_just_after_being_woken_passes_the_turn_on() -> None:
    """The first in the queue is woken to run the next group and cancelled before it can:
    the one behind it must run instead of waiting for a newcomer that may never come."""
    rec = Recorder(hold=asyncio.Event())
    hold = rec.hold
    assert hold is not None
    group = GroupCommit(rec.one, rec.together, runners=1)
    first = asyncio.create_task(group.submit("first"))
    await asyncio.sleep(0)
    woken = asyncio.create_task(group.submit("woken"))
    behind = asyncio.create_task(group.submit("behind"))
    await asyncio.sleep(0)

    hold.set()
    await asyncio.sleep(0)  # "first" finished and woke "woken", which has not run yet
    woken.cancel()

    assert await asyncio.wait_for(behind, 5) == "one:behind"  # a hang guard
    assert await first == "one:first"
    with pytest.raises(asyncio.CancelledError):
        await woken
