"""The replay server's tables and their rate limiters (built by the replay server;
the learner's replay memory applies the same limits to itself, `memory.RatioLimit`).
"""

from __future__ import annotations

import numpy as np

from tfagents_system import constants as C
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay.packing import BLOCK_ROWS, item_capacity

# Blocks the experience queue holds before writers wait (x BLOCK_ROWS transitions).
QUEUE_MAX_BLOCKS = 512


def replay_capacity(params: TrainParamsBase, max_episode_steps: int | None) -> int:
    """Transitions the replay buffer keeps: n_episodes_in_buffer episodes if set and
    the env has a step limit, else replay_capacity."""
    if params.n_episodes_in_buffer is not None and max_episode_steps:
        return int(params.n_episodes_in_buffer * max_episode_steps)
    return int(params.replay_capacity)


def min_items(params: TrainParamsBase) -> int:
    """Replay items (transitions, or windows of recurrent training) in the buffer before
    the learner may sample: min_replay_size transitions' worth, at least 1."""
    return max(item_capacity(params.min_replay_size, params.sequence), 1)


def ratio_error_buffer(params: TrainParamsBase) -> float | None:
    """The samples_per_insert limiter's slack in samples (None without a ratio):
    the setting, or the warm-up's samples plus 10 batches."""
    if params.samples_per_insert is None:
        return None
    if params.samples_per_insert_error_buffer is not None:
        return float(params.samples_per_insert_error_buffer)
    return float(params.samples_per_insert) * min_items(params) + 10.0 * params.batch_size


def experience_rate_limiter(params: TrainParamsBase):
    """The experience table's limiter: min size, and samples_per_insert if set."""
    import reverb

    min_size = min_items(params)
    if params.samples_per_insert is None:
        return reverb.rate_limiters.MinSize(min_size)
    return reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=float(params.samples_per_insert), min_size_to_sample=min_size,
        error_buffer=ratio_error_buffer(params))


def queue_blocks(params: TrainParamsBase) -> int:
    """Blocks the experience queue holds before writers wait. With samples_per_insert
    the queue holds about the limiter's slack in transitions (at least 2 blocks), so
    workers run ahead of the learner about as far as Reverb's own limiter lets them."""
    if params.samples_per_insert is None:
        return QUEUE_MAX_BLOCKS
    lead = ratio_error_buffer(params) / float(params.samples_per_insert)
    return int(max(2, min(QUEUE_MAX_BLOCKS, np.ceil(lead / BLOCK_ROWS))))


def make_tables(params: TrainParamsBase, capacity: int) -> list:
    """The experience table, the one-slot weights table and the experience queue."""
    import reverb

    experience = reverb.Table(
        C.EXPERIENCE_TABLE,
        max_size=item_capacity(capacity, params.sequence),
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        rate_limiter=experience_rate_limiter(params),
    )
    weights = reverb.Table(
        C.WEIGHTS_TABLE,
        max_size=1,
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        rate_limiter=reverb.rate_limiters.MinSize(1),
    )
    # packed_blocks layout: a FIFO queue the learner drains into its replay
    # memory; a full queue (a learner away, or held back by samples_per_insert)
    # makes the workers wait.
    queue = reverb.Table.queue(C.QUEUE_TABLE, max_size=queue_blocks(params))
    return [experience, weights, queue]
