"""Reading what a worker wrote: its log file, as text and as JSON records.

``WorkerLog`` is the log half of :class:`testkit.processes.WorkerProcess` (which inherits
it); it needs only ``log_path`` and ``name``:

``.logs() -> str``, ``.log_tail(lines=40)``
    Everything written so far (the migration's output too), or its last lines.
``.log_records() -> list[dict]``
    The JSON lines, parsed (tracebacks and other non-JSON lines skipped).
``.find_logs(event, **fields)``, ``.count_log(event, **fields)``
    Records with this ``event`` whose fields equal ``fields``, or how many there are.
``.wait_for_log(event, timeout=DEFAULT_TIMEOUT, **fields) -> dict``
    Wait for a matching record and return the first one (fails with the log's tail).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from testkit.factories import DEFAULT_TIMEOUT, wait_until

__all__ = ["WorkerLog"]


class WorkerLog:
    """A worker's log file, written as JSON lines (``WORKER_LOG_FORMAT=json``)."""

    log_path: Path
    name: str

    def logs(self) -> str:
        """Everything the process (and its migration) wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.logs().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines as dicts (non-JSON lines such as tracebacks are skipped)."""
        records = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def find_logs(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """Log records with this ``event`` whose fields equal ``fields``."""
        return [
            r
            for r in self.log_records()
            if r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        ]

    def count_log(self, event: str, **fields: Any) -> int:
        """How many log records match (see :meth:`find_logs`)."""
        return len(self.find_logs(event, **fields))

    def wait_for_log(
        self, event: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any
    ) -> dict[str, Any]:
        """Wait for a matching log record and return the first one."""
        found = wait_until(
            lambda: self.find_logs(event, **fields),
            timeout=timeout,
            interval=0.05,
            message=lambda: f"{self.name}: no log {event} {fields}; tail:\n{self.log_tail()}",
        )
        return found[0]
