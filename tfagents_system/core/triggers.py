"""Periodic work as small objects that carry their action (checkpoints, summaries,
evaluations), instead of `if step % n` scattered through the loops, and rates."""

from __future__ import annotations

import time
from collections.abc import Callable


class IntervalTrigger:
    """Runs `action(*args)` when the iteration count crosses a multiple of `period`.

    With `start_iteration` (a program resuming there) the first crossing is the
    next multiple after it; without, the first call fires too (a worker evaluates
    the weights it starts with).
    """

    def __init__(self, period: int, action: Callable, start_iteration: int | None = None):
        self._period = int(period)
        self._action = action
        self._last = None if start_iteration is None else start_iteration // self._period

    def due(self, iteration: int) -> bool:
        """Whether the trigger fires at `iteration`."""
        return self._last is None or iteration // self._period > self._last

    def __call__(self, iteration: int, *args) -> bool:
        """Run the action if due; whether it ran. An action that raises is due again."""
        if not self.due(iteration):
            return False
        self._action(*args)
        self._last = iteration // self._period
        return True


class RateMeter:
    """Events per second since the previous call."""

    def __init__(self, start: int = 0):
        self._last_count = start
        self._last_time = time.monotonic()

    def rate(self, count: int) -> float:
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-9)
        value = (count - self._last_count) / elapsed
        self._last_count, self._last_time = count, now
        return value
