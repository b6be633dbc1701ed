"""Per-key FIFO serialisation: commands sharing an ordering key run one after another.

Deliveries arrive in order and each one claims its key *synchronously* (before its
first ``await``), so the claim order is the delivery order; unrelated keys run
concurrently. A key's state is dropped as soon as nobody holds or waits for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedSequencer:
    """Hands out turns per key in the order :meth:`claim` was called."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}

    def claim(self, key: str | None) -> asyncio.Future[None]:
        """Take a place in ``key``'s line; await the returned future for the turn."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key is None:
            turn.set_result(None)
            return turn
        line = self._queues.setdefault(key, deque())
        line.append(turn)
        if len(line) == 1:
            turn.set_result(None)
        return turn

    def release(self, key: str | None, turn: asyncio.Future[None]) -> None:
        """Give up a place (after the work, or when cancelled) and wake the next in line."""
        if key is None:
            return
        line = self._queues.get(key)
        if line is None:
            return
        was_head = bool(line) and line[0] is turn
        try:
            line.remove(turn)
        except ValueError:
            return
        if not line:
            del self._queues[key]
        elif was_head and not line[0].done():
            # A head that is already done was cancelled while waiting: its owner's own
            # release (in its ``finally``) passes the turn on.
            line[0].set_result(None)

    @asynccontextmanager
    async def turn(self, key: str | None, claimed: asyncio.Future[None]) -> AsyncIterator[None]:
        """Wait for a claimed turn, run the block, then pass the turn on."""
        try:
            await claimed
            yield
        finally:
            self.release(key, claimed)

    def __len__(self) -> int:
        return len(self._queues)
