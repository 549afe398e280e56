"""Batches sampled from Reverb's experience table: the learner's data in the
Reverb-sampled layouts (packed_transition, steps2)."""

from __future__ import annotations

from tfagents_system import constants as C
from tfagents_system.replay.layouts import LAYOUT_PACKED, LAYOUT_STEPS, LAYOUTS
from tfagents_system.replay.packing import make_packer

# Batches a sampling stream requests ahead, and batches ready before they are needed.
SAMPLES_IN_FLIGHT_BATCHES = 2
PREFETCH_BATCHES = 2


def experience_dataset(address: str, collect_data_spec, batch_size: int,
                       rate_limiter_timeout_ms: int = -1, layout: str = LAYOUT_STEPS,
                       sequence: tuple[int, int] | None = None):
    """Batches sampled uniformly from the experience table.

    LAYOUT_STEPS: Trajectories with [batch, 2, ...] tensors. LAYOUT_PACKED:
    Transitions with [batch, ...] tensors (what SacAgent.train turns a 2-step
    trajectory into), or with `sequence` SequenceBatches of replay windows. Items
    are batched before they are touched: a per-item
    `map` costs more than the sampling itself.
    """
    import reverb
    import tensorflow as tf

    if layout == LAYOUT_PACKED:
        packer = make_packer(collect_data_spec.observation, collect_data_spec.action, sequence)
        dtypes, shapes = tf.float32, tf.TensorShape([packer.size])
        decode = packer.unpack
    elif layout == LAYOUT_STEPS:
        dtypes = tf.nest.map_structure(lambda s: s.dtype, collect_data_spec)
        shapes = tf.nest.map_structure(
            lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape),
            collect_data_spec)
        decode = None
    else:
        raise ValueError(f"unknown replay item layout {layout!r}; known: {', '.join(LAYOUTS)}")
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
