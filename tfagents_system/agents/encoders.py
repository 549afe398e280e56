"""Encoders: what turns an observation into the networks' input.

SAC's default networks take one float vector. For an observation spec that is a
nest, has a non-float32 leaf, or has `observation_normalization` set, the default
networks put the combiner in front of their layers: each leaf, in tf.nest order
(dict keys sorted), is flattened, cast to float32, optionally normalized as
(x - mean) / std, and the leaves are concatenated. A flat float32 observation
without normalization builds exactly the networks it always did.

Leaves are named by their nest path (`core.specs.leaves`: "position",
"sensors/imu", "0" for a tuple's first element; a non-nested observation is
"observation"). `ObservationCombiner` is the Keras layer (the actor's
EncodingNetwork and `networks.CombinedCriticNetwork`); `NumpyCombiner` computes the
same in numpy for the workers' `actors.NumpyActor`. Image encoders go here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tfagents_system.core.errors import ParamsError
from tfagents_system.core.specs import leaves


class ObservationError(ParamsError):
    """The observation normalization does not fit the env's observation spec."""


def needs_combiner(spec, normalization: Mapping | None) -> bool:
    """Whether the default networks put a combiner in front (else: today's networks)."""
    if normalization:
        return True
    return tf.nest.is_nested(spec) or tf.as_dtype(spec.dtype) != tf.float32


def resolve_normalization(spec, normalization: Mapping | None
                          ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(mean, std) per leaf as float32 arrays of the leaf's flattened size, or None
    for a leaf left as it is; ObservationError for a key naming no leaf or a list of
    the wrong length."""
    spec_leaves = leaves(spec)
    by_path = {leaf.path: leaf for leaf in spec_leaves}
    normalization = dict(normalization or {})
    unknown = sorted(set(normalization) - set(by_path))
    if unknown:
        raise ObservationError(
            f"observation_normalization names {', '.join(map(repr, unknown))}, which is no "
            f"leaf of the env's observation (leaves: {', '.join(by_path)}); use these paths")
    out = []
    for leaf in spec_leaves:
        if leaf.path not in normalization:
            out.append(None)
            continue
        pair = []
        for what, value in zip(("mean", "std"), normalization[leaf.path]):
            array = np.asarray(value, np.float32).reshape(-1)
            if array.size not in (1, leaf.size):
                raise ObservationError(
                    f"observation_normalization[{leaf.path!r}] {what} has {array.size} "
                    f"values, the leaf has {leaf.size} (shape {leaf.shape}); give one number "
                    f"or {leaf.size}")
            pair.append(np.broadcast_to(array, (leaf.size,)).copy())
        out.append((pair[0], pair[1]))
    return out


class ObservationCombiner(tf.keras.layers.Layer):
    """Flatten, cast to float32, normalize and concatenate an observation's leaves.

    Takes the observation nest with any outer (batch) dims; returns [..., size]. The
    config is plain lists, so TF-Agents can copy the layer (`from_config`)."""

    def __init__(self, shapes, dtypes, normalization=None, **kwargs):
        super().__init__(**kwargs)
        self._shapes = [tuple(int(d) for d in shape) for shape in shapes]
        self._dtypes = [str(dtype) for dtype in dtypes]
        self._sizes = [int(np.prod(shape, dtype=np.int64)) for shape in self._shapes]
        self._norm = [None if pair is None else [np.asarray(p, np.float32).tolist()
                                                 for p in pair]
                      for pair in (normalization or [None] * len(self._shapes))]
        self.size = sum(self._sizes)

    @classmethod
    def for_spec(cls, spec, normalization: Mapping | None = None) -> ObservationCombiner:
        """The combiner of an observation spec and `observation_normalization`."""
        spec_leaves = leaves(spec)
        pairs = resolve_normalization(spec, normalization)
        return cls([leaf.shape for leaf in spec_leaves], [leaf.dtype for leaf in spec_leaves],
                   [None if p is None else [p[0].tolist(), p[1].tolist()] for p in pairs])

    def call(self, observation):
        parts = []
        for x, shape, size, norm in zip(tf.nest.flatten(observation), self._shapes,
                                        self._sizes, self._norm):
            x = tf.cast(x, tf.float32)
            outer = tf.shape(x)[:tf.rank(x) - len(shape)]
            x = tf.reshape(x, tf.concat([outer, [size]], axis=0))
            if norm is not None:
                x = (x - tf.constant(norm[0], tf.float32)) / tf.constant(norm[1], tf.float32)
            parts.append(x)
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "shapes": [list(s) for s in self._shapes],
                "dtypes": list(self._dtypes), "normalization": self._norm}

    def numpy_combiner(self) -> NumpyCombiner:
        """The same computation in numpy (the workers' NumpyActor)."""
        return NumpyCombiner(self._sizes, [None if n is None else
                                           (np.asarray(n[0], np.float32),
                                            np.asarray(n[1], np.float32))
                                           for n in self._norm])


class NumpyCombiner:
    """`ObservationCombiner` in numpy, on a batch: nest of [B, ...] -> [B, size]."""

    def __init__(self, sizes: list[int], normalization: list):
        self._sizes = sizes
        self._norm = normalization

    def __call__(self, observation) -> np.ndarray:
        parts = []
        for x, size, norm in zip(tf.nest.flatten(observation), self._sizes, self._norm):
            x = np.asarray(x)
            x = x.reshape(x.shape[0], size).astype(np.float32, copy=norm is not None)
            if norm is not None:
                x -= norm[0]
                x /= norm[1]
            parts.append(x)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def actor_combiner_kwargs(spec, normalization: Mapping | None) -> dict:
    """Extra ActorDistributionNetwork arguments: the combiner where one is needed."""
    if not needs_combiner(spec, normalization):
        return {}
    return {"preprocessing_combiner": ObservationCombiner.for_spec(spec, normalization)}
