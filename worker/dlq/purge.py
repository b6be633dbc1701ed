"""Delete selected dead letters for good (``purge``); everything else stays, in order.

Purging goes message by message over the same snapshot pass as a replay rather than using
``queue.purge``, so that messages arriving meanwhile survive. Selected messages are deleted
a batch at a time, each batch only after a ``removing`` record naming its message ids is on
disk (:class:`worker.dlq.audit.Batch`): a purge killed half-way has still written down
every message it deleted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import aiormq.exceptions

from worker.dlq.audit import AuditLog, Batch, new_run_id
from worker.dlq.broker import DlqPass, Held, dlq_pass
from worker.dlq.model import Progress, Selector
from worker.errors import DlqError
from worker.settings import Settings


@dataclass(slots=True)
class PurgeSummary:
    """The outcome of a purge run."""

    scanned: int = 0
    purged: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Messages looked at and left in the DLQ."""
        return self.scanned - len(self.purged)

    def record(self) -> dict[str, object]:
        """The outcome as JSON-friendly data (for the audit log)."""
        return {
            "scanned": self.scanned,
            "purged": len(self.purged),
            "skipped": self.skipped,
            "message_ids": self.purged,
        }


async def purge(
    settings: Settings,
    selector: Selector,
    *,
    audit: AuditLog,
    limit: int | None = None,
    progress: Progress | None = None,
) -> PurgeSummary:
    """Delete up to ``limit`` selected dead letters, each named in the audit log first."""
    summary = PurgeSummary()
    details: dict[str, object] = {"run_id": new_run_id(), "queue": settings.dead_letter_queue}
    request = {"selector": selector.describe(), "limit": limit, "dry_run": False}
    audit.write("purge", "started", {**details, **request})
    batch: Batch[Held] = Batch(audit, "purge", details)
    try:
        async with dlq_pass(settings) as run, contextlib.aclosing(run.fetch(progress)) as fetched:
            chosen = 0
            async for held in fetched:
                summary.scanned += 1
                if (limit is None or chosen < limit) and selector.matches(held.letter):
                    chosen += 1
                    batch.add(held.letter.message_id, held)
                    if batch.full:
                        await _remove(run, batch, summary)
            await _remove(run, batch, summary)
    except (aiormq.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
        details["error"] = type(exc).__name__
        raise DlqError(f"purge stopped: lost the broker ({type(exc).__name__})") from None
    finally:
        audit.write("purge", "finished", {**details, **summary.record()})
    return summary


async def _remove(run: DlqPass, batch: Batch[Held], summary: PurgeSummary) -> None:
    for held in batch.record():
        await run.remove(held)
        summary.purged.append(held.letter.message_id)
