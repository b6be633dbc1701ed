"""How dead letters look on a terminal: the ``list`` table and the ``show`` page."""

from __future__ import annotations

import json
from collections.abc import Sequence

from worker.dlq.headers import PEEK_LIMIT, plain
from worker.dlq.model import DeadLetter

SHORT_ERROR = 48
"""Characters of the error message shown in the table."""

COLUMNS = (
    "MESSAGE ID",
    "TYPE",
    "ERROR TYPE",
    "ERROR",
    "ATTEMPTS",
    "FIRST FAILED",
    "LAST FAILED",
)


def shorten(value: str, width: int = SHORT_ERROR) -> str:
    """``value`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def row(letter: DeadLetter) -> tuple[str, ...]:
    """The table cells of one dead letter (``-`` where a value is unknown)."""
    cells = (
        letter.message_id,
        letter.type,
        letter.error_type,
        shorten(letter.error_message) if letter.error_message else None,
        None if letter.attempts is None else str(letter.attempts),
        letter.first_failed_at,
        letter.last_failed_at,
    )
    return tuple(cell if cell else "-" for cell in cells)


def table(letters: Sequence[DeadLetter]) -> str:
    """A plain-text table with a header line, columns padded to their widest cell."""
    rows = [COLUMNS, *(row(letter) for letter in letters)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip()
        for r in rows
    )


def body_text(body: bytes) -> str:
    """The body as indented JSON if it is JSON, else as an escaped bytes literal."""
    if len(body) <= PEEK_LIMIT:
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    return repr(body)


def page(letter: DeadLetter) -> str:
    """Everything about one dead letter: summary, properties, headers and body."""
    sections = {
        "summary": letter.summary(),
        "properties": plain(dict(letter.properties)),
        "headers": plain(dict(letter.headers)),
    }
    parts = [
        f"{name}:\n{json.dumps(data, indent=2, ensure_ascii=False)}"
        for name, data in sections.items()
    ]
    parts.append(f"body ({len(letter.body)} bytes):\n{body_text(letter.body)}")
    return "\n".join(parts)
