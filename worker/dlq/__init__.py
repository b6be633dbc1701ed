"""The operator's dead-letter-queue tool: list, show, group, replay and purge dead letters.

The logic is plain async functions (``browse``, ``find``, ``survey``, ``replay``, ``purge``)
over :class:`worker.settings.Settings`; :mod:`worker.cli.dlq` is the ``worker dlq`` click
group. A dead letter is named by its envelope's ``message_id`` (:mod:`worker.dlq.model`).
"""

from __future__ import annotations

from worker.dlq.audit import AuditLog, audit_log_path
from worker.dlq.browse import Browse, browse, find, survey
from worker.dlq.groups import Group
from worker.dlq.model import DeadLetter, Progress, Selector, parse_dead_letter
from worker.dlq.purge import PurgeSummary, purge
from worker.dlq.replay import Failure, ReplaySummary, replay, replay_headers, replay_message
from worker.dlq.window import ReplayWindow
from worker.errors import DlqError

__all__ = [
    "AuditLog",
    "Browse",
    "DeadLetter",
    "DlqError",
    "Failure",
    "Group",
    "Progress",
    "PurgeSummary",
    "ReplaySummary",
    "ReplayWindow",
    "Selector",
    "audit_log_path",
    "browse",
    "find",
    "parse_dead_letter",
    "purge",
    "replay",
    "replay_headers",
    "replay_message",
    "survey",
]
