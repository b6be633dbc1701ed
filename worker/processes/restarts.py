"""When the supervisor starts an exited child again, and when it gives up: a crash loop."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """Back-off between restarts of each child, and how many quick exits in a row are too many.

    A child that ran ``stable_after`` seconds or more before it exited starts a fresh count,
    so a process killed once a day is restarted after ``first_delay`` every time. Each exit
    in a row sooner than that doubles the pause (at most ``max_delay``); the exit after
    ``max_restarts`` such restarts is a crash loop, and the supervisor gives up.
    """

    first_delay: float = 0.5
    max_delay: float = 10.0
    max_restarts: int = 5
    stable_after: float = 60.0
    _exits: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def after_exit(self, number: int, ran_for: float) -> float | None:
        """Seconds to wait before starting child ``number`` again; ``None``: give up."""
        exits = 1 if ran_for >= self.stable_after else self._exits.get(number, 0) + 1
        self._exits[number] = exits
        if exits > self.max_restarts:
            return None
        return float(min(self.first_delay * 2 ** (exits - 1), self.max_delay))

    def exits_in_a_row(self, number: int) -> int:
        """How many times child ``number`` exited in a row, each soon after it started."""
        return self._exits.get(number, 0)
