"""A small flame graph renderer: collapsed stacks (py-spy ``raw``) to a static SVG.

Root at the bottom, each frame as wide as its share of the samples; hover a box for its
name and share. Narrow frames (under 0.1%) are left out to keep the file small.
"""

from __future__ import annotations

import hashlib
from html import escape
from pathlib import Path

from bench.profiling import frame_name, read_stacks

WIDTH = 1200
ROW = 16
MIN_SHARE = 0.001


class _Node:
    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(stacks: list[tuple[list[str], int]]) -> _Node:
    root = _Node()
    for frames, count in stacks:
        node = root
        node.count += count
        for frame in frames:
            node = node.children.setdefault(frame_name(frame), _Node())
            node.count += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def _colour(name: str) -> str:
    digest = hashlib.md5(name.encode()).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 130},{digest[2] % 60})"


def render(raw_path: Path, svg_path: Path, title: str) -> None:
    """Write the flame graph of ``raw_path`` to ``svg_path``."""
    root = _tree(read_stacks(raw_path))
    total = max(root.count, 1)
    height = (_depth(root) + 2) * ROW
    boxes: list[str] = []

    def draw(node: _Node, name: str, x: float, level: int) -> None:
        width = WIDTH * node.count / total
        y = height - (level + 1) * ROW
        share = f"{100 * node.count / total:.1f}%"
        label = escape(name if width > 7 * len(name) else name[: max(0, int(width / 7) - 2)])
        boxes.append(
            f"<g><title>{escape(name)} ({share})</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}" '
            f'fill="{_colour(name)}"/>'
            f'<text x="{x + 2:.1f}" y="{y + ROW - 4}">{label}</text></g>'
        )
        for child_name, child in sorted(node.children.items()):
            if child.count / total >= MIN_SHARE:
                draw(child, child_name, x, level + 1)
            x += WIDTH * child.count / total

    draw(root, f"all ({root.count} samples)", 0.0, 0)
    svg_path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height + ROW}" '
        f'font-family="monospace" font-size="11">'
        f'<text x="4" y="{ROW}" font-size="13">{escape(title)}</text>' + "".join(boxes) + "</svg>"
    )
