"""Sampling the worker with py-spy: collapsed stacks, a top-N table and a flame graph.

py-spy records in ``raw`` (collapsed) format with ``--function`` (one frame per function,
not per line); idle frames (waiting in the event loop's selector) are not sampled, so the
profile is where the worker spends CPU. The same samples give the table here and the SVG
(:mod:`bench.flame`).
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

# Which library a file belongs to, by its path relative to sys.path, for the split by area.
AREAS = (
    ("worker/", "worker (our code)"),
    ("contracts/", "contracts (our models)"),
    ("sqlalchemy/orm/", "SQLAlchemy ORM (session, flush, loading)"),
    ("sqlalchemy/sql/", "SQLAlchemy Core (statements, cache keys, compiler)"),
    ("sqlalchemy/engine/", "SQLAlchemy engine + asyncpg dialect"),
    ("sqlalchemy/dialects/", "SQLAlchemy engine + asyncpg dialect"),
    ("sqlalchemy/", "SQLAlchemy other (greenlet bridge, util)"),
    ("asyncpg/", "asyncpg"),
    ("aio_pika/", "aio-pika/aiormq/pamqp"),
    ("aiormq/", "aio-pika/aiormq/pamqp"),
    ("pamqp/", "aio-pika/aiormq/pamqp"),
    ("pydantic", "pydantic"),
    ("structlog/", "logging (structlog + stdlib)"),
    ("logging/", "logging (structlog + stdlib)"),
    ("prometheus_client/", "prometheus_client"),
    ("json/", "json (stdlib)"),
    ("asyncio/", "asyncio (event loop)"),
    ("uvloop/", "asyncio (event loop)"),
)


def start(pid: int, seconds: float, raw_path: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` against ``pid`` for ``seconds`` (it stops by itself)."""
    return subprocess.Popen(
        [
            str(PY_SPY), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--format", "raw", "--function", "--output", str(raw_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait for py-spy to write its output; raise with its message if it failed."""
    _, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')}")


def compress(raw_path: Path) -> Path:
    """Gzip the collapsed stacks (they are large); returns the ``.gz`` path."""
    gz_path = raw_path.with_name(raw_path.name + ".gz")
    gz_path.write_bytes(gzip.compress(raw_path.read_bytes()))
    raw_path.unlink()
    return gz_path


def read_stacks(raw_path: Path) -> list[tuple[list[str], int]]:
    """The collapsed stacks (plain or ``.gz``): (frames root first, sample count)."""
    data = raw_path.read_bytes()
    text = gzip.decompress(data) if raw_path.suffix == ".gz" else data
    stacks = []
    for line in text.decode().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_name(frame: str) -> str:
    """``func (file:line)`` → ``func (file)``."""
    match = _FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def area_of(frame: str) -> str:
    """The library a frame's file belongs to."""
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    return next((area for prefix, area in AREAS if prefix in path), "other")


def summarise(raw_path: Path, top: int = 15) -> dict[str, Any]:
    """Top frames by own (self) and total (inclusive) samples, and time by library.

    The total ranking leaves out the spine (frames on nearly every stack: the entry point
    and the event loop), which says nothing about where the time goes. SQLAlchemy runs its
    sync core inside greenlets; py-spy shows those stacks under their own roots
    (``Session.execute`` …), not under the coroutine that awaited them: ``roots`` says how
    many samples each root has, and ``top_worker`` (our frames by total) undercounts the
    SQLAlchemy work below them by that much.
    """
    stacks = read_stacks(raw_path)
    samples = sum(count for _, count in stacks)
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    areas_total: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    for frames, count in stacks:
        names = [frame_name(f) for f in frames]
        own[names[-1]] += count
        roots[names[0]] += count
        areas[area_of(frames[-1])] += count
        for name in set(names):
            total[name] += count
        for area in {area_of(f) for f in frames}:
            areas_total[area] += count

    def pct(count: int) -> float:
        return round(100 * count / max(samples, 1), 1)

    def ranked(counter: Counter[str], keep: Any = lambda f: True) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": pct(c)} for f, c in counter.most_common() if keep(f)][:top]

    widest = max(total.values(), default=0)
    spine = {name for name, count in total.items() if count >= 0.9 * widest}
    ours = ("(worker/", "(contracts/")
    return {
        "samples": samples,
        "top_own": ranked(own),
        "top_total": ranked(total, lambda f: f not in spine),
        "top_worker": ranked(total, lambda f: f not in spine and any(o in f for o in ours)),
        "roots": ranked(roots)[:5],
        "own_by_area": [{"area": a, "pct": pct(c)} for a, c in areas.most_common()],
        "total_by_area": [{"area": a, "pct": pct(c)} for a, c in areas_total.most_common()],
    }
