"""The operator's dead-letter-queue tool: list, show, replay and purge dead letters.

The logic is plain async functions (``browse``, ``find``, ``replay``, ``purge``) over
:class:`worker.settings.Settings`; :mod:`worker.cli.dlq` is the ``worker dlq`` click group.
"""

from __future__ import annotations

from worker.dlq.audit import AuditLog, audit_log_path
from worker.dlq.browse import Browse, browse, find
from worker.dlq.model import DeadLetter, Progress, Selector, parse_dead_letter
from worker.dlq.purge import PurgeSummary, purge
from worker.dlq.replay import Failure, ReplaySummary, replay, replay_headers, replay_message
from worker.errors import DlqError

__all__ = [
    "AuditLog",
    "Browse",
    "DeadLetter",
    "DlqError",
    "Failure",
    "Progress",
    "PurgeSummary",
    "ReplaySummary",
    "Selector",
    "audit_log_path",
    "browse",
    "find",
    "parse_dead_letter",
    "purge",
    "replay",
    "replay_headers",
    "replay_message",
]
