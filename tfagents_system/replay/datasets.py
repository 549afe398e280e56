"""Batches sampled from Reverb's experience table: the learner's data in the
Reverb-sampled layouts (packed_transition, steps2)."""

from __future__ import annotations

from tfagents_system.core import constants as C
from tfagents_system.replay.auth import SIGNATURE_FLOATS, RowCheck
from tfagents_system.replay.format import LAYOUT_PACKED, ReplayFormat

# Batches a sampling stream requests ahead, and batches ready before they are needed.
SAMPLES_IN_FLIGHT_BATCHES = 2
PREFETCH_BATCHES = 2


def experience_dataset(address: str, replay_format: ReplayFormat, batch_size: int,
                       rate_limiter_timeout_ms: int = -1, collect_data_spec=None,
                       row_check: RowCheck | None = None):
    """Batches sampled uniformly from the experience table.

    packed_transition: the rows of the format (bound to the env's specs) unpacked:
    Transitions with [batch, ...] tensors, or SequenceBatches of replay windows.
    steps2: Trajectories of `collect_data_spec` with [batch, 2, ...] tensors. Items are
    batched before they are touched: a per-item `map` costs more than the sampling.

    Anyone who reaches the server can insert items. One of another structure fails
    the batch with an InvalidArgumentError naming an incompatible tensor
    (`ReverbSource.sampling_failed` counts it; the stream goes on past it). With `row_check`
    (signed rows) a batch's rows without their signature are counted and replaced by
    draws from its signed ones, and a batch without any is skipped.
    """
    import reverb
    import tensorflow as tf

    if replay_format.layout == LAYOUT_PACKED:
        packer = replay_format.packer()
        dtypes, shapes = tf.float32, tf.TensorShape([packer.size])
        decode = packer.unpack
        if row_check is not None:  # rows with their signature appended
            shapes = tf.TensorShape([packer.size + SIGNATURE_FLOATS])
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
    if row_check is not None:
        dataset = _signed_rows(dataset.map(lambda sample: sample.data), row_check, batch_size)
        return dataset.map(decode).prefetch(PREFETCH_BATCHES)
    dataset = dataset.map(lambda sample: sample.data if decode is None else decode(sample.data))
    return dataset.prefetch(PREFETCH_BATCHES)


def _signed_rows(batches, row_check: RowCheck, batch_size: int):
    """Batches of rows (their signatures cut off) that `row_check` accepts: a forged row
    is replaced by one of the batch's signed rows drawn at random; a batch with none is
    skipped."""
    import tensorflow as tf

    def check(rows):
        valid = tf.numpy_function(row_check.valid, [rows], tf.bool, stateful=True)
        valid.set_shape([batch_size])
        return rows, valid

    def keep_signed(rows, valid):
        signed = tf.where(valid)[:, 0]
        draws = tf.gather(signed, tf.random.uniform(
            [batch_size], maxval=tf.shape(signed, tf.int64)[0], dtype=tf.int64))
        index = tf.where(valid, tf.range(batch_size, dtype=tf.int64), draws)
        return tf.gather(rows[:, :row_check.size], index)  # signed rows stay as sampled

    return (batches.map(check)
            .filter(lambda rows, valid: tf.reduce_any(valid))
            .map(keep_signed))
