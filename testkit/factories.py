"""Fresh values for test data, and polling.

Names nobody else uses, so tests that share a worker and a database never collide:

``unique_token(n_bytes=4)``
    A random lower-case hex string.
``unique_email(domain="e2e.example")``
    An email address nobody else uses.
``unique_code(prefix="E2E")``
    A business-id-shaped code, ``PREFIX-<hex>`` (product codes, references).
``new_id()``
    A fresh UUID string (message ids, caller-chosen conversation ids).
``pii_token()``
    A marker to embed in personal data and search for in logs and headers afterwards.
``wait_until(condition, timeout=DEFAULT_TIMEOUT, interval=0.05, message=…)``
    Poll until ``condition()`` returns something truthy; return it, or fail the test.
``await eventually(condition, timeout=DEFAULT_TIMEOUT, interval=0.05, message=…)``
    The same inside an event loop, which keeps running while it waits; ``condition`` may
    be a coroutine function.
``DEFAULT_TIMEOUT``
    15 seconds: how long a test waits for an outcome before it fails.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = [
    "DEFAULT_TIMEOUT",
    "eventually",
    "new_id",
    "pii_token",
    "unique_code",
    "unique_email",
    "unique_token",
    "wait_until",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 15.0
"""Seconds to wait for an outcome before a test fails (generous for slow CI machines)."""

_sequence = itertools.count(1)


def unique_token(n_bytes: int = 4) -> str:
    """A random lower-case hex string."""
    return secrets.token_hex(n_bytes)


def unique_email(domain: str = "e2e.example") -> str:
    """An email address nobody else uses."""
    return f"e2e-{next(_sequence)}-{unique_token()}@{domain}"


def unique_code(prefix: str = "E2E") -> str:
    """A business-id-shaped code (``PREFIX-<hex>``), e.g. for product codes or references."""
    return f"{prefix}-{unique_token(5)}"


def new_id() -> str:
    """A fresh UUID string (message ids, caller-chosen conversation ids)."""
    return str(uuid.uuid4())


def pii_token() -> str:
    """A marker to embed in personal data, easy to search for in logs and headers."""
    return f"pii{unique_token(6)}"


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll ``condition`` until it returns something truthy; return that or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.1f}s: {text}")
        time.sleep(interval)


async def eventually(
    condition: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Await ``condition`` until it gives something truthy; return that or fail the test.

    Unlike :func:`wait_until` it sleeps on the event loop, so the tasks it waits for run.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.1f}s: {text}")
        await asyncio.sleep(interval)
