"""The replay server's tables and their rate limiters (built by the replay server;
the learner's replay memory applies the same limits to itself, `limits.RatioLimit`).
"""

from __future__ import annotations

from tfagents_system.core import constants as C
from tfagents_system.replay.format import ReplayFormat
from tfagents_system.replay.limits import ReplaySettings


def experience_rate_limiter(settings: ReplaySettings, replay_format: ReplayFormat):
    """The experience table's limiter: min size, and samples_per_insert if set."""
    import reverb

    min_size = settings.min_items(replay_format)
    if settings.samples_per_insert is None:
        return reverb.rate_limiters.MinSize(min_size)
    return reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=float(settings.samples_per_insert), min_size_to_sample=min_size,
        error_buffer=settings.ratio_error_buffer(replay_format))


def make_tables(settings: ReplaySettings, replay_format: ReplayFormat) -> list:
    """The experience table, the one-slot weights table and the experience queue."""
    import reverb

    experience = reverb.Table(
        C.EXPERIENCE_TABLE,
        max_size=replay_format.items(settings.capacity),
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        rate_limiter=experience_rate_limiter(settings, replay_format),
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
    queue = reverb.Table.queue(C.QUEUE_TABLE, max_size=settings.queue_blocks(replay_format))
    return [experience, weights, queue]
