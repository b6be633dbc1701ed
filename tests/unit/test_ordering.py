"""Per-key ordering inside one process: the KeyedSequencer hands out turns in claim order.

The key itself is ``contracts.ordering_key`` (tested with the contract).
"""

from __future__ import annotations

import asyncio
import random

import pytest

from worker.messaging.ordering import KeyedSequencer

pytestmark = pytest.mark.unit

CONVERSATION = "0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90"
STEP = 0.5
"""Seconds a test waits for something that must happen (it happens in microseconds)."""


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def work(
    sequencer: KeyedSequencer,
    key: str | None,
    turn: asyncio.Future[None],
    log: list[str],
    name: str,
    *,
    gate: asyncio.Event | None = None,
    pause: float = 0.0,
) -> None:
    """Take the turn, note the start, wait for the gate or a pause, note the end."""
    async with sequencer.turn(key, turn):
        log.append(f"start {name}")
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(pause)
        log.append(f"end {name}")


# --- KeyedSequencer ---------------------------------------------------------------------------


async def test_turns_on_one_key_run_in_claim_order_one_at_a_time() -> None:
    sequencer, log = KeyedSequencer(), []
    rng = random.Random(3)
    tasks = []
    for i in range(20):
        turn = sequencer.claim("k")  # claimed synchronously, in delivery order
        pause = rng.uniform(0, 0.005)
        tasks.append(asyncio.create_task(work(sequencer, "k", turn, log, str(i), pause=pause)))
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert log == [f"{edge} {i}" for i in range(20) for edge in ("start", "end")]


async def test_unrelated_keys_run_concurrently() -> None:
    sequencer, log = KeyedSequencer(), []
    gate = asyncio.Event()
    blocked = asyncio.create_task(work(sequencer, "a", sequencer.claim("a"), log, "a", gate=gate))
    other = asyncio.create_task(work(sequencer, "b", sequencer.claim("b"), log, "b"))
    await asyncio.wait_for(other, STEP)  # b finishes while a still holds its turn
    assert log == ["start a", "start b", "end b"]
    gate.set()
    await asyncio.wait_for(blocked, STEP)


async def test_a_later_claim_on_a_busy_key_waits_for_the_holder() -> None:
    sequencer, log = KeyedSequencer(), []
    gate = asyncio.Event()
    first = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "1", gate=gate))
    second = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "2"))
    await settle()
    assert log == ["start 1"]
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), STEP)
    assert log == ["start 1", "end 1", "start 2", "end 2"]


async def test_the_none_key_never_waits_and_keeps_no_state() -> None:
    sequencer = KeyedSequencer()
    turns = [sequencer.claim(None) for _ in range(3)]
    assert all(t.done() for t in turns)
    assert len(sequencer) == 0
    log: list[str] = []
    gate = asyncio.Event()
    holder = asyncio.create_task(work(sequencer, None, turns[0], log, "0", gate=gate))
    free = asyncio.create_task(work(sequencer, None, turns[1], log, "1"))
    await asyncio.wait_for(free, STEP)
    gate.set()
    await asyncio.wait_for(holder, STEP)
    sequencer.release(None, turns[2])  # a no-op
    assert len(sequencer) == 0


async def test_state_is_dropped_when_a_key_has_no_holder_and_no_waiter() -> None:
    sequencer, log = KeyedSequencer(), []
    tasks = [
        asyncio.create_task(work(sequencer, key, sequencer.claim(key), log, key))
        for key in ("a", "b", "a", "c")
    ]
    assert len(sequencer) == 3
    await asyncio.wait_for(asyncio.gather(*tasks), STEP)
    assert len(sequencer) == 0


async def test_a_holder_cancelled_mid_work_passes_the_turn_on() -> None:
    sequencer, log = KeyedSequencer(), []
    gate = asyncio.Event()
    holder = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "1", gate=gate))
    waiter = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "2"))
    await settle()
    holder.cancel()
    await asyncio.wait_for(waiter, STEP)
    assert log == ["start 1", "start 2", "end 2"]
    assert holder.cancelled()
    assert len(sequencer) == 0


async def test_a_waiter_cancelled_before_its_turn_leaves_the_line() -> None:
    sequencer, log = KeyedSequencer(), []
    gate = asyncio.Event()
    holder = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "1", gate=gate))
    doomed = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "2"))
    last = asyncio.create_task(work(sequencer, "k", sequencer.claim("k"), log, "3"))
    await settle()
    doomed.cancel()
    await settle()
    gate.set()
    await asyncio.wait_for(asyncio.gather(holder, last), STEP)
    assert doomed.cancelled()
    assert log == ["start 1", "end 1", "start 3", "end 3"]
    assert len(sequencer) == 0


async def test_a_waiter_cancelled_in_the_same_tick_as_the_holder_releases() -> None:
    """Shutdown cancels many deliveries at once: the holder's release must skip the waiter
    whose turn future was just cancelled (not raise ``InvalidStateError``) and wake the next."""
    sequencer = KeyedSequencer()
    first, second, third = (sequencer.claim("k") for _ in range(3))

    async def wait_for_turn() -> None:
        await second  # the task waits on the turn future itself, as ``turn()`` does

    waiter = asyncio.create_task(wait_for_turn())
    await settle()
    waiter.cancel()  # cancels ``second`` at once; the task itself runs later
    sequencer.release("k", first)  # the holder finishes in this same tick
    await asyncio.gather(waiter, return_exceptions=True)
    sequencer.release("k", second)  # what the cancelled delivery's ``finally`` does
    await asyncio.wait_for(third, STEP)
    sequencer.release("k", third)
    assert len(sequencer) == 0


async def test_releasing_twice_or_an_unknown_turn_is_harmless() -> None:
    sequencer = KeyedSequencer()
    first, second = sequencer.claim("k"), sequencer.claim("k")
    sequencer.release("k", first)
    sequencer.release("k", first)
    sequencer.release("other", first)
    assert second.done()
    sequencer.release("k", second)
    assert len(sequencer) == 0
