"""How dead letters look on a terminal: the ``list`` and ``groups`` tables, the ``show`` page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from worker.dlq.groups import Group
from worker.dlq.headers import PEEK_LIMIT, plain
from worker.dlq.model import DeadLetter
from worker.dlq.window import ReplayWindow, age_text

SHORT_ERROR = 48
"""Characters of the error message shown in the table."""

COLUMNS = (
    "MESSAGE ID",
    "TYPE",
    "ERROR TYPE",
    "GROUP",
    "ERROR",
    "ATTEMPTS",
    "FIRST FAILED",
    "LAST FAILED",
    "AGE",
    "REPLAYABLE",
)
GROUP_COLUMNS = (
    "GROUP",
    "TYPE",
    "ERROR TYPE",
    "COUNT",
    "REPLAYABLE",
    "FIRST SEEN",
    "LAST SEEN",
    "ERROR",
)


def shorten(value: str, width: int = SHORT_ERROR) -> str:
    """``value`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def row(letter: DeadLetter, window: ReplayWindow) -> tuple[str, ...]:
    """The table cells of one dead letter (``-`` where a value is unknown)."""
    cells = (
        letter.message_id,
        letter.type,
        letter.error_type,
        letter.group,
        shorten(letter.error_message) if letter.error_message else None,
        None if letter.attempts is None else str(letter.attempts),
        letter.first_failed_at,
        letter.last_failed_at,
        age_text(window.age(letter)),
        "no" if window.refusal(letter) else "yes",
    )
    return tuple(cell if cell else "-" for cell in cells)


def group_row(group: Group) -> tuple[str, ...]:
    """The table cells of one group."""
    cells = (
        group.id,
        group.type,
        group.error_type,
        str(group.count),
        str(group.replayable),
        _when(group.first_seen),
        _when(group.last_seen),
        shorten(group.pattern, 60) if group.pattern else None,
    )
    return tuple(cell if cell else "-" for cell in cells)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def table(letters: Sequence[DeadLetter], window: ReplayWindow) -> str:
    """The ``list`` table of these dead letters."""
    return grid(COLUMNS, [row(letter, window) for letter in letters])


def groups_table(groups: Sequence[Group]) -> str:
    """The ``groups`` table."""
    return grid(GROUP_COLUMNS, [group_row(group) for group in groups])


def grid(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a header line, columns padded to their widest cell."""
    lines = [tuple(columns), *rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip()
        for r in lines
    )


def described(letter: DeadLetter, window: ReplayWindow) -> dict[str, object]:
    """The listed fields with age and replayability, as JSON-friendly data."""
    return {**letter.summary(), **window.describe(letter)}


def body_text(body: bytes) -> str:
    """The body as indented JSON if it is JSON, else as an escaped bytes literal."""
    if len(body) <= PEEK_LIMIT:
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    return repr(body)


def page(letter: DeadLetter, window: ReplayWindow) -> str:
    """Everything about one dead letter: summary, properties, headers and body."""
    summary = described(letter, window)
    if refusal := window.refusal(letter):
        summary["not_replayable_because"] = refusal
    sections = {
        "summary": summary,
        "properties": plain(dict(letter.properties)),
        "headers": plain(dict(letter.headers)),
    }
    parts = [
        f"{name}:\n{json.dumps(data, indent=2, ensure_ascii=False)}"
        for name, data in sections.items()
    ]
    parts.append(f"body ({len(letter.body)} bytes):\n{body_text(letter.body)}")
    return "\n".join(parts)
