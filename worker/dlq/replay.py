"""Replay dead letters through the commands exchange (contract, guarantee 6).

Each selected message is republished with its original body byte for byte, its
``message_id`` (the name the tool knows it by, :mod:`worker.dlq.model`: the envelope's,
never a new one) and its original ``type``, ``correlation_id``, ``reply_to`` and content
type, to the routing key it was first published with (else its type). ``fca-replay-count``
grows by one; ``fca-attempts`` is dropped so the worker grants a full retry budget again;
every ``x-`` header is dropped (they belong to the broker).

A dead letter older than the replay window (:mod:`worker.dlq.window`) is refused: it stays
in the DLQ and is reported and audited, since the worker may have forgotten that it applied
it. The others are named in a ``removing`` audit record a batch at a time before any of them
is published. The publish is mandatory on a channel with publisher confirms: only after the
broker confirms it (routed to at least one queue) is the dead letter acked, i.e. removed.
An unroutable replay fails loudly and its dead letter stays. A run killed between the
confirm and the ack leaves the message both in the DLQ and on the command queue; the
worker's inbox makes the second copy a no-op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import aiormq.exceptions
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractExchange, HeadersType

from contracts.topology import HEADER_ATTEMPTS, HEADER_REPLAY_COUNT
from worker.dlq.audit import AuditLog, Batch, new_run_id
from worker.dlq.broker import DlqPass, Held, dlq_pass
from worker.dlq.headers import integer, text
from worker.dlq.model import DeadLetter, Progress, Selector
from worker.dlq.window import ReplayWindow
from worker.errors import DlqError
from worker.settings import Settings

PUBLISH_TIMEOUT = 30.0
"""Seconds to wait for the broker's confirm of one replay."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A selected dead letter that was not replayed, and why; it stays in the DLQ."""

    message_id: str
    reason: str


@dataclass(slots=True)
class ReplaySummary:
    """The outcome of a replay run.

    ``selected`` matched the selector (within the limit); ``admitted`` passed the checks
    (window, routing key) and were, or in a dry run would be, published.
    """

    dry_run: bool
    scanned: int = 0
    selected: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    replayed: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    refused: list[Failure] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Messages looked at and left alone (not selected, or beyond the limit)."""
        return self.scanned - len(self.selected)

    @property
    def complete(self) -> bool:
        """Whether every selected message was (or, in a dry run, would be) replayed."""
        return not self.failed and not self.refused

    def record(self) -> dict[str, object]:
        """The outcome as JSON-friendly data (for the audit log and ``--json``)."""
        return {
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "replayed": len(self.replayed),
            "skipped": self.skipped,
            "failed": len(self.failed),
            "refused": len(self.refused),
            "message_ids": self.admitted if self.dry_run else self.replayed,
            "failures": [{"message_id": f.message_id, "reason": f.reason} for f in self.failed],
            "refusals": [{"message_id": f.message_id, "reason": f.reason} for f in self.refused],
        }


def replay_headers(headers: Mapping[str, object]) -> dict[str, object]:
    """The original headers minus ``x-`` ones and ``fca-attempts``, replay count plus one."""
    kept = {
        name: value
        for name, value in headers.items()
        if not name.lower().startswith("x-") and name.lower() != HEADER_ATTEMPTS
    }
    kept[HEADER_REPLAY_COUNT] = (integer(headers.get(HEADER_REPLAY_COUNT)) or 0) + 1
    return kept


def replay_message(letter: DeadLetter) -> Message:
    """The message that replays ``letter``: same body and identity, fresh retry budget."""
    props = letter.properties
    stamp = props.get("timestamp")
    return Message(
        letter.body,
        headers=cast("HeadersType", replay_headers(letter.headers)),
        content_type=text(props.get("content_type")),
        content_encoding=text(props.get("content_encoding")),
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=letter.message_id,
        type=text(props.get("type")),
        correlation_id=text(props.get("correlation_id")),
        reply_to=text(props.get("reply_to")),
        app_id=text(props.get("app_id")),
        timestamp=stamp if isinstance(stamp, datetime) else None,
    )


async def replay(
    settings: Settings,
    selector: Selector,
    *,
    audit: AuditLog,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    window: ReplayWindow | None = None,
) -> ReplaySummary:
    """Replay up to ``limit`` selected dead letters; the rest stay in the DLQ, in order."""
    window = window or ReplayWindow.of(settings)
    summary = ReplaySummary(dry_run)
    details: dict[str, object] = {
        "run_id": new_run_id(),
        "queue": settings.dead_letter_queue,
        "exchange": settings.commands_exchange,
    }
    request = {"selector": selector.describe(), "limit": limit, "dry_run": dry_run}
    audit.write("replay", "started", {**details, **request, "window_days": window.days})
    try:
        async with dlq_pass(settings) as run:
            exchange = await run.exchange(settings.commands_exchange)
            replayer = Replayer(run, exchange, Batch(audit, "replay", details), summary, window)
            async with contextlib.aclosing(run.fetch(progress)) as fetched:
                async for held in fetched:
                    await replayer.consider(held, selector, limit)
            await replayer.flush()
    except (aiormq.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
        details["error"] = type(exc).__name__
        raise DlqError(f"replay stopped: lost the broker ({type(exc).__name__})") from None
    finally:
        audit.write("replay", "finished", {**details, **summary.record()})
    return summary


@dataclass(frozen=True, slots=True)
class Replayer:
    """Carries out one replay run over the messages of a pass, a batch at a time."""

    run: DlqPass
    exchange: AbstractExchange
    batch: Batch[Held]
    summary: ReplaySummary
    window: ReplayWindow

    async def consider(self, held: Held, selector: Selector, limit: int | None) -> None:
        """Select, check and (a batch at a time) replay one fetched dead letter."""
        summary, letter = self.summary, held.letter
        summary.scanned += 1
        full = limit is not None and len(summary.selected) >= limit
        if full or not selector.matches(letter):
            return
        summary.selected.append(letter.message_id)
        if (refusal := self.window.refusal(letter)) is not None:
            summary.refused.append(Failure(letter.message_id, refusal))
        elif letter.routing_key is None:
            reason = "no routing key (no fca-original-routing-key header and no type)"
            summary.failed.append(Failure(letter.message_id, reason))
        else:
            summary.admitted.append(letter.message_id)
            if not summary.dry_run:
                self.batch.add(letter.message_id, held)
                if self.batch.full:
                    await self.flush()

    async def flush(self) -> None:
        """Record the batch in the audit log, then replay each of its messages."""
        for held in self.batch.record():
            await self._replay_one(held)

    async def _replay_one(self, held: Held) -> None:
        letter, summary, exchange = held.letter, self.summary, self.exchange
        assert letter.routing_key is not None
        try:
            await exchange.publish(
                replay_message(letter), letter.routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT
            )
        except aiormq.exceptions.PublishError:
            reason = f"unroutable: no queue bound to {exchange.name!r} for {letter.routing_key!r}"
            summary.failed.append(Failure(letter.message_id, reason))
            return
        except aiormq.exceptions.DeliveryError:
            summary.failed.append(Failure(letter.message_id, "the broker refused the replay"))
            return
        await self.run.remove(held)
        summary.replayed.append(letter.message_id)
