"""Batches sampled from Reverb's experience table: the learner's data in the
Reverb-sampled layouts (packed_transition, steps2)."""

from __future__ import annotations

from tfagents_system.core import constants as C
from tfagents_system.replay.format import LAYOUT_PACKED, ReplayFormat

# Batches a sampling stream requests ahead, and batches ready before they are needed.
SAMPLES_IN_FLIGHT_BATCHES = 2
PREFETCH_BATCHES = 2


def experience_dataset(address: str, replay_format: ReplayFormat, batch_size: int,
                       rate_limiter_timeout_ms: int = -1, collect_data_spec=None):
    """Batches sampled uniformly from the experience table.

    packed_transition: the rows of the format (bound to the env's specs) unpacked:
    Transitions with [batch, ...] tensors, or SequenceBatches of replay windows.
    steps2: Trajectories of `collect_data_spec` with [batch, 2, ...] tensors. Items are
    batched before they are touched: a per-item `map` costs more than the sampling.
    """
    import reverb
    import tensorflow as tf

    if replay_format.layout == LAYOUT_PACKED:
        packer = replay_format.packer()
        dtypes, shapes = tf.float32, tf.TensorShape([packer.size])
        decode = packer.unpack
    else:
        dtypes = tf.nest.map_structure(lambda s: s.dtype, collect_data_spec)
        shapes = tf.nest.map_structure(
            lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape),
            collect_data_spec)
        decode = None
    dataset = reverb.TrajectoryDataset(
        server_address=address,
        table=C.EXPERIENCE_TABLE,
        dtypes=dtypes,
        shapes=shapes,
        max_in_flight_samples_per_worker=SAMPLES_IN_FLIGHT_BATCHES * batch_size,
        rate_limiter_timeout_ms=rate_limiter_timeout_ms,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda sample: sample.data if decode is None else decode(sample.data))
    return dataset.prefetch(PREFETCH_BATCHES)
