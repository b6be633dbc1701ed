"""Look at the dead-letter queue without consuming anything (``list``, ``show``, ``groups``).

Browsing fetches every message and returns it unacked (see :mod:`worker.dlq.broker`), so
the queue keeps its messages and their order. The broker counts each return as a
redelivery (``x-delivery-count`` grows by one per pass); nothing else changes. On
RabbitMQ 4.0-4.2 every pass also counts towards a quorum queue's delivery limit (default
20, and the DLQ has no dead-letter target), so there the DLQ needs that limit raised or
disabled by a policy, or messages browsed 20 times would be dropped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from worker.dlq.broker import dlq_pass
from worker.dlq.groups import Group, Tally
from worker.dlq.model import DeadLetter, Selector
from worker.dlq.window import ReplayWindow
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class Browse:
    """What a browse found: the first ``limit`` matches, how many matched, how many seen."""

    letters: list[DeadLetter]
    matched: int
    scanned: int


async def browse(settings: Settings, *, selector: Selector, limit: int | None = None) -> Browse:
    """The dead letters ``selector`` matches, in queue order, at most ``limit`` of them."""
    letters: list[DeadLetter] = []
    matched = scanned = 0
    async with dlq_pass(settings) as run, contextlib.aclosing(run.fetch()) as fetched:
        async for held in fetched:
            scanned += 1
            if not selector.matches(held.letter):
                continue
            matched += 1
            if limit is None or len(letters) < limit:
                letters.append(held.letter)
    return Browse(letters, matched, scanned)


async def find(settings: Settings, message_id: str) -> list[DeadLetter]:
    """Every dead letter with this message id (a message can be dead-lettered twice)."""
    found = await browse(settings, selector=Selector.of(message_ids=[message_id]))
    return found.letters


async def survey(
    settings: Settings, *, selector: Selector, window: ReplayWindow | None = None
) -> list[Group]:
    """The groups of the dead letters ``selector`` matches, largest first."""
    tally = Tally(window or ReplayWindow.of(settings))
    async with dlq_pass(settings) as run, contextlib.aclosing(run.fetch()) as fetched:
        async for held in fetched:
            if selector.matches(held.letter):
                tally.add(held.letter)
    return tally.groups()
