"""The audit log: one JSON object per line for every replay and purge, dry runs included.

Each run writes a ``started`` record before it touches the queue (if the log cannot be
written, nothing happens) and a ``finished`` record with the message ids it acted on; both
carry the same ``run_id``, so a run that was killed shows as a ``started`` without a
``finished``. The file is ``$WORKER_DLQ_AUDIT_LOG``, else ``dlq-audit.log`` in the current
directory.
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

from worker.errors import DlqError
from worker.settings import Settings


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
