"""What ``worker run`` does once the worker has started."""

from __future__ import annotations

import gc
import weakref

import pytest

from worker.cli.run import freeze_startup_objects

pytestmark = pytest.mark.unit


class Node:
    """An object that can take part in a reference cycle."""

    peer: Node | None = None


def test_startup_objects_are_frozen_after_the_garbage_is_collected() -> None:
    garbage = Node()
    garbage.peer = garbage  # a cycle: only the cyclic collector frees it
    collected = weakref.ref(garbage)
    del garbage
    kept = Node()
    try:
        freeze_startup_objects()

        assert gc.get_freeze_count() > 0
        assert collected() is None, "unreachable objects must be collected, not frozen"
        assert kept not in gc.get_objects(), "a live object is out of the collector's reach"
    finally:
        gc.unfreeze()
