"""Group commit: when commands queue up, several run in one transaction.

Each transaction has a fixed cost (``BEGIN``, ``COMMIT`` and its WAL flush, a pooled
connection, a session) that one command alone pays in full. When the worker is busy,
commands of different keys wait for a transaction anyway; here they share one.

No background task: a command waiting to be applied joins a queue, and whichever waiting
task finds one of ``runners`` slots free takes up to ``max_batch`` queued commands and
runs them (flat combining). A lone command runs the ordinary one-transaction path inside
the slot, so grouping only happens when commands arrive while the slots are busy: at low
load every command runs alone, with the latency it always had. ``together`` applies
several at once and says, per command, its outcome or :data:`ALONE`: run it on its own,
in its own task, as if there were no grouping (what a failed group falls back to).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class _Alone(Enum):
    ALONE = "alone"


ALONE: Final = _Alone.ALONE
"""``together``'s answer for a command that must run on its own."""
Alone = Literal[_Alone.ALONE]


@dataclass(eq=False, slots=True)
class _Member(Generic[T, R]):
    item: T
    wake: asyncio.Future[None]
    taken: bool = False
    """In a group that some task is running: its own task must only wait."""
    done: bool = False
    outcome: R | Alone = ALONE
    error: BaseException | None = None

    def settle(self, outcome: R | Alone, error: BaseException | None = None) -> None:
        self.outcome, self.error, self.done = outcome, error, True
        self.poke()

    def poke(self) -> None:
        if not self.wake.done():
            self.wake.set_result(None)


@dataclass(eq=False)
class GroupCommit(Generic[T, R]):
    """Runs ``one`` per item, or ``together`` over several queued items."""

    one: Callable[[T], Awaitable[R]]
    together: Callable[[Sequence[T]], Awaitable[Sequence[R | Alone]]]
    max_batch: int = 32
    runners: int = 2
    on_group: Callable[[int], None] = lambda size: None
    """Called with the size of every group of two or more that committed."""
    on_fallback: Callable[[], None] = lambda: None
    """Called when a group rolled back and its commands run alone."""
    _queue: deque[_Member[T, R]] = field(default_factory=deque, init=False)
    _free: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._free = self.runners

    async def submit(self, item: T) -> R:
        """Apply ``item``, alone or in a group; raises what applying it alone raised."""
        if self.max_batch <= 1:
            return await self.one(item)
        loop = asyncio.get_running_loop()
        member: _Member[T, R] = _Member(item, loop.create_future())
        self._queue.append(member)
        try:
            while not member.done:
                # Run a group only while our own command still waits in the queue: one taken
                # into another task's group must wait for it (running an empty group here
                # would never yield, and that group would never finish).
                if self._free > 0 and not member.taken:
                    await self._run_group()
                else:
                    member.wake = loop.create_future()
                    await member.wake
        except asyncio.CancelledError:
            if not member.taken:
                self._queue.remove(member)  # nobody will run it
                if self._queue and self._free > 0:
                    self._queue[0].poke()  # it may have been woken to run the next group
            raise
        if member.error is not None:
            raise member.error
        if member.outcome is ALONE:
            return await self.one(item)
        return member.outcome

    async def _run_group(self) -> None:
        self._free -= 1
        group = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        for member in group:
            member.taken = True
        if self._queue and self._free > 0:
            self._queue[0].poke()  # more waiting and a slot free: the next one runs them
        try:
            await self._apply(group)
        finally:
            for member in group:
                if not member.done:  # cancelled mid-way: each member runs alone
                    member.settle(ALONE)
            self._free += 1
            if self._queue:
                self._queue[0].poke()

    async def _apply(self, group: list[_Member[T, R]]) -> None:
        if len(group) == 1:
            (member,) = group
            try:
                member.settle(await self.one(member.item))
            except Exception as exc:  # its own failure, raised in its own task
                member.settle(ALONE, exc)
            return
        try:
            outcomes = await self.together([m.item for m in group])
        except Exception as exc:  # the group rolled back: each command meets its fate alone
            log.info("group_commit.fell_back", size=len(group), error=type(exc).__name__)
            self.on_fallback()
            outcomes = [ALONE] * len(group)
        else:
            together = sum(1 for o in outcomes if o is not ALONE)
            if together > 1:
                self.on_group(together)
        for member, outcome in zip(group, outcomes, strict=True):
            member.settle(outcome)
