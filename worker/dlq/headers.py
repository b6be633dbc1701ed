"""Read header values and bodies the way they arrive: bytes, str, int, datetimes, tables.

Nothing here raises on odd input: a dead letter is by definition a message something
could not read, and the operator's tool must still show it. A body is peeked at the way
the worker peeks at a body it cannot parse (strict UTF-8, then JSON read as far as it
goes), so the tool finds the same ``message_id`` the worker reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pydantic_core import from_json

PEEK_LIMIT = 1024 * 1024
"""Bodies larger than this are not parsed to find their ``message_id`` and ``type``."""

_SCALARS = (str, int, float, bool, type(None))


def plain(value: object) -> object:
    """The value as JSON-friendly data: bytes decoded, datetimes ISO, tables recursed."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return repr(raw)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value if isinstance(value, _SCALARS) else str(value)


def text(value: object) -> str | None:
    """The value as a string, or ``None`` when absent or empty."""
    if value is None:
        return None
    shown = plain(value)
    result = shown if isinstance(shown, str) else json.dumps(shown)
    return result or None


def integer(value: object) -> int | None:
    """The value as a whole number (``3``, ``"3"``, ``b"3"``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    shown = text(value)
    try:
        return int(shown.strip()) if shown is not None else None
    except ValueError:
        return None


def instant(value: object) -> datetime | None:
    """The value as an aware datetime (naive ones are UTC), from a datetime or ISO text."""
    if not isinstance(value, datetime):
        shown = text(value)
        try:
            value = datetime.fromisoformat(shown) if shown is not None else None
        except ValueError:
            return None
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def peek(body: bytes) -> Mapping[str, object]:
    """The body's top-level JSON object (read as far as it goes), else an empty mapping."""
    if len(body) > PEEK_LIMIT:
        return {}
    try:
        body.decode("utf-8")
        data = from_json(body, allow_partial=True)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True, slots=True)
class BrokerDeath:
    """What the broker's ``x-death`` header says about how the message got here."""

    reason: str
    queue: str | None
    first_at: str | None
    last_at: str | None
    routing_key: str | None


def broker_death(headers: Mapping[str, object]) -> BrokerDeath | None:
    """The broker's dead-lettering record, if the broker (not the worker) moved the message.

    The worker strips every ``x-`` header when it dead-letters, so an ``x-death`` on a
    message in the DLQ means its last hop was the broker's (e.g. the delivery limit).
    """
    deaths = [d for d in _sequence(headers.get("x-death")) if isinstance(d, Mapping)]
    if not deaths:
        return None
    newest, oldest = deaths[0], deaths[-1]  # the broker keeps the newest first
    times = sorted(t for t in (text(d.get("time")) for d in deaths) if t)
    keys = _sequence(oldest.get("routing-keys"))
    return BrokerDeath(
        reason=text(newest.get("reason")) or text(headers.get("x-first-death-reason")) or "broker",
        queue=text(newest.get("queue")),
        first_at=times[0] if times else None,
        last_at=times[-1] if times else None,
        routing_key=text(keys[0]) if keys else None,
    )


def _sequence(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()
