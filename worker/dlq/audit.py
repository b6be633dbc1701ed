"""The audit log: one JSON object per line for every replay and purge, dry runs included.

Each run writes a ``started`` record before it touches the queue (if the log cannot be
written, nothing happens), a ``removing`` record naming each batch of messages before any
of them leaves the DLQ (:class:`Batch`), and a ``finished`` record with the message ids it
acted on. All carry the same ``run_id``, so a run that was killed shows as a ``started``
without a ``finished``, and its ``removing`` records still name every message it may have
removed (some of them may still be in the DLQ: a record says what was about to happen).
Every record is flushed to disk before the tool goes on. The file is
``$WORKER_DLQ_AUDIT_LOG``, else ``dlq-audit.log`` in the current directory.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from worker.errors import DlqError
from worker.settings import Settings

T = TypeVar("T")
BATCH_SIZE = 16
"""Messages named by one ``removing`` record (one disk flush per batch, not per message).

Small on purpose: a batch's acks go out together, and a quorum queue's client that has more
than ~32 commands in flight starts merging them, which would shuffle the messages a pass
returns to the queue right after (see :mod:`worker.dlq.broker`). 16 acks, then the next
synchronous fetch, never get there.
"""


def audit_log_path(settings: Settings) -> Path:
    """Where the audit log is: ``WORKER_DLQ_AUDIT_LOG``, else ``./dlq-audit.log``."""
    return settings.dlq_audit_log


def new_run_id() -> str:
    """An id that ties a run's ``started`` and ``finished`` records together."""
    return uuid.uuid4().hex


def current_user() -> str:
    """The operator's login name (``unknown`` if the system cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class AuditLog:
    """Appends audit records, as one operator on one host."""

    path: Path
    user: str = field(default_factory=current_user)
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def default(cls, settings: Settings) -> AuditLog:
        """The audit log at :func:`audit_log_path`, written as the current user."""
        return cls(audit_log_path(settings))

    def write(self, action: str, phase: str, details: Mapping[str, object]) -> None:
        """Append one record and flush it to disk."""
        record = {
            "at": datetime.now(UTC).isoformat(),
            "user": self.user,
            "host": self.host,
            "action": action,
            "phase": phase,
            **details,
        }
        line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as log:
                log.write(line)
                log.flush()
                os.fsync(log.fileno())
        except OSError as exc:
            raise DlqError(f"cannot write the audit log {self.path}: {exc.strerror}") from None


class Batch(Generic[T]):
    """Messages about to leave the DLQ, named in the audit log before any of them does."""

    def __init__(self, audit: AuditLog, action: str, details: Mapping[str, object]) -> None:
        self._audit = audit
        self._action = action
        self._details = details
        self._size = BATCH_SIZE
        self._items: list[tuple[str, T]] = []

    @property
    def full(self) -> bool:
        """Whether the batch should be recorded and carried out now."""
        return len(self._items) >= self._size

    def add(self, message_id: str, item: T) -> None:
        """Put one more message in the batch."""
        self._items.append((message_id, item))

    def record(self) -> list[T]:
        """Write the ``removing`` record naming the batch; return its items and start anew."""
        items, self._items = self._items, []
        if items:
            ids = [message_id for message_id, _ in items]
            self._audit.write(self._action, "removing", {**self._details, "message_ids": ids})
        return [item for _, item in items]
