"""The default combiner of structured observations (a dict or other nest of arrays).

SAC's default networks take one float vector. For an observation spec that is a
nest, has a non-float32 leaf, or has `observation_normalization` set, the default
`actor_net_ctor` and `critic_net_ctor` put a combiner in front of the usual MLPs:
each leaf, in tf.nest order (dict keys sorted), is flattened, cast to float32,
optionally normalized as (x - mean) / std, and the leaves are concatenated. A flat
float32 observation without normalization builds exactly the networks it always did.

Leaves are named by their nest path, the keys joined with "/" ("position",
"sensors/imu", "0" for a tuple's first element); a non-nested observation is
named "observation". `ObservationCombiner` is the Keras layer (for the actor's
EncodingNetwork and `CombinedCriticNetwork`); `NumpyCombiner` computes the same in
numpy for the workers' `actors.NumpyActor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tf_agents.agents.ddpg import critic_network
from tf_agents.networks import network

from tfagents_system.params import ParamsError

# The name of a non-nested observation's only leaf.
SINGLE_LEAF = "observation"


class ObservationError(ParamsError):
    """The observation normalization does not fit the env's observation spec."""


@dataclass(frozen=True)
class Leaf:
    """One leaf of an observation spec: its nest path, shape and dtype name."""

    path: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def as_record(self) -> dict:
        return {"path": self.path, "shape": list(self.shape), "dtype": self.dtype}


def leaves(spec) -> list[Leaf]:
    """The spec's leaves in tf.nest order (the order of the packed vector and the
    combined features)."""
    from tensorflow.python.util import nest  # tf.nest has no public flatten-with-paths

    if not tf.nest.is_nested(spec):
        return [Leaf(SINGLE_LEAF, tuple(spec.shape), tf.as_dtype(spec.dtype).name)]
    return [Leaf(path, tuple(leaf.shape), tf.as_dtype(leaf.dtype).name)
            for path, leaf in nest.flatten_with_joined_string_paths(spec, separator="/")]


def structure_record(spec) -> list[dict]:
    """The spec's leaves as JSON (replay_layout.json): what a resumed run must match."""
    return [leaf.as_record() for leaf in leaves(spec)]


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


class CombinedCriticNetwork(network.Network):
    """SAC's default critic (ddpg CriticNetwork, which reads a single observation
    tensor) behind an `ObservationCombiner`. Built from plain values, so the copies
    SacAgent makes (second critic, targets) get their own variables."""

    def __init__(self, input_tensor_spec, joint_fc_layer_params=(256, 256),
                 normalization=None, name="CombinedCriticNetwork"):
        observation_spec, action_spec = input_tensor_spec
        super().__init__(input_tensor_spec, state_spec=(), name=name)
        self._combiner = ObservationCombiner.for_spec(observation_spec, normalization)
        combined = tf.TensorSpec((self._combiner.size,), tf.float32)
        self._critic = critic_network.CriticNetwork(
            (combined, action_spec), joint_fc_layer_params=tuple(joint_fc_layer_params),
            kernel_initializer="glorot_uniform", last_kernel_initializer="glorot_uniform",
            name=f"{name}MLP")

    def call(self, inputs, step_type=(), network_state=(), training=False):
        observation, action = inputs
        return self._critic((self._combiner(observation), action), step_type=step_type,
                            network_state=network_state, training=training)


def actor_combiner_kwargs(spec, normalization: Mapping | None) -> dict:
    """Extra ActorDistributionNetwork arguments: the combiner where one is needed."""
    if not needs_combiner(spec, normalization):
        return {}
    return {"preprocessing_combiner": ObservationCombiner.for_spec(spec, normalization)}


def combined_critic(observation_spec, action_spec, joint_fc_layer_params,
                    normalization: Mapping | None):
    """The default critic for an observation that needs the combiner, else None."""
    if not needs_combiner(observation_spec, normalization):
        return None
    return CombinedCriticNetwork((observation_spec, action_spec),
                                 joint_fc_layer_params=joint_fc_layer_params,
                                 normalization=normalization)
