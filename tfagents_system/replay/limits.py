"""How much replay data the learner needs and how fast it may sample it: the replay
settings, and Reverb's rate limiters applied to the learner's own memory.

The replay server builds its tables' limiters from `ReplaySettings` (`tables`); the
learner's `MemorySource` applies the same limits to its memory (`RatioLimit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfagents_system.replay.format import ReplayFormat
from tfagents_system.replay.packing import BLOCK_ROWS

# Blocks the experience queue holds before writers wait (x BLOCK_ROWS transitions).
QUEUE_MAX_BLOCKS = 512


@dataclass(frozen=True)
class ReplaySettings:
    """The replay buffer's size and the learner's sampling: `capacity` and `min_size`
    in transitions, `batch_size` and the ratio in items (transitions, or windows);
    `error_buffer` None: the warm-up's samples plus 10 batches."""

    capacity: int
    min_size: int
    batch_size: int
    samples_per_insert: float | None = None
    error_buffer: float | None = None

    def min_items(self, replay_format: ReplayFormat) -> int:
        """Items in the buffer before the learner may sample: min_size transitions'
        worth, at least 1."""
        return max(replay_format.items(self.min_size), 1)

    def ratio_error_buffer(self, replay_format: ReplayFormat) -> float | None:
        """The samples_per_insert limiter's slack in samples (None without a ratio)."""
        if self.samples_per_insert is None:
            return None
        if self.error_buffer is not None:
            return float(self.error_buffer)
        return (float(self.samples_per_insert) * self.min_items(replay_format)
                + 10.0 * self.batch_size)

    def queue_blocks(self, replay_format: ReplayFormat) -> int:
        """Blocks the experience queue holds before writers wait. With samples_per_insert
        the queue holds about the limiter's slack in transitions (at least 2 blocks), so
        workers run ahead of the learner about as far as Reverb's own limiter lets them."""
        if self.samples_per_insert is None:
            return QUEUE_MAX_BLOCKS
        lead = self.ratio_error_buffer(replay_format) / float(self.samples_per_insert)
        return int(max(2, min(QUEUE_MAX_BLOCKS, np.ceil(lead / BLOCK_ROWS))))


class RatioLimit:
    """When the learner may sample and take in more data: Reverb's rate limiters,
    applied to the learner's own memory.

    Without `samples_per_insert`: sample once `min_size` transitions' worth is in,
    take in everything. With it: as Reverb's SampleToInsertRatio (same default error
    buffer), with the counts of items sampled (train step x batch size) and
    inserted; the learner takes in one block at a time while inserts are not too far
    ahead, so the queue (sized to the slack, `ReplaySettings.queue_blocks`) fills up
    and the workers wait.
    """

    def __init__(self, settings: ReplaySettings, replay_format: ReplayFormat):
        self.min_size = settings.min_items(replay_format)
        self.batch_size = int(settings.batch_size)
        self.spi = (None if settings.samples_per_insert is None
                    else float(settings.samples_per_insert))
        self.error_buffer = settings.ratio_error_buffer(replay_format)

    def steps_allowed(self, size: int, inserted: int, train_step: int, wanted: int) -> int:
        """How many of `wanted` gradient steps may run now."""
        if size < self.min_size:
            return 0
        if self.spi is None:
            return wanted
        min_diff = self.spi * self.min_size - self.error_buffer
        room = self.spi * inserted - min_diff - train_step * self.batch_size
        return int(max(0, min(wanted, math.floor(room / self.batch_size))))

    def may_take_in(self, inserted: int, train_step: int) -> bool:
        """Whether the learner may take in another block now."""
        if self.spi is None:
            return True
        max_diff = self.spi * self.min_size + self.error_buffer
        return self.spi * inserted - train_step * self.batch_size <= max_diff
