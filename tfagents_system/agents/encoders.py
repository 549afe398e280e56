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
same in numpy for the workers' `actors.NumpyActor`.

Image leaves (uint8 [H, W, C], `is_image`) go through `ImageEncoder` instead: a
convolutional stack per image leaf (`ConvSettings`), then a dense layer to
`features` units with layer normalization and tanh (SAC-AE, DrQ), the other leaves
joined after it as the combiner joins them. `random_shift` is DrQ's augmentation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tfagents_system.agents.settings import ConvSettings
from tfagents_system.core.errors import ParamsError
from tfagents_system.core.specs import leaves


def is_image(leaf) -> bool:
    """Whether a spec leaf (`core.specs.Leaf`) is an image: uint8 [H, W, C]."""
    return len(leaf.shape) == 3 and leaf.dtype == "uint8"


def has_images(spec) -> bool:
    """Whether an observation spec has an image leaf (the pixel networks' input)."""
    return any(is_image(leaf) for leaf in leaves(spec))


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


class ImageEncoder(tf.keras.layers.Layer):
    """Features of an observation with image leaves: per image leaf, uint8 / 255 ->
    conv stack -> dense `features` -> layer norm -> tanh; the other leaves flattened,
    cast to float32 and joined after (in tf.nest order). Takes [N, ...] leaves.
    The config is plain values, so TF-Agents can copy the layer (`from_config`)."""

    def __init__(self, shapes, dtypes, channels=ConvSettings.channels,
                 kernels=ConvSettings.kernels, strides=ConvSettings.strides,
                 features=ConvSettings.features, **kwargs):
        super().__init__(**kwargs)
        self._shapes = [tuple(int(d) for d in shape) for shape in shapes]
        self._dtypes = [str(dtype) for dtype in dtypes]
        self._conv = ConvSettings(tuple(channels), tuple(kernels), tuple(strides),
                                  int(features))
        self._images = [len(shape) == 3 and dtype == "uint8"
                        for shape, dtype in zip(self._shapes, self._dtypes)]
        self._towers = [self._tower() if image else None for image in self._images]
        self.size = sum(features if image else int(np.prod(shape, dtype=np.int64))
                        for shape, image in zip(self._shapes, self._images))

    @classmethod
    def for_spec(cls, spec, conv: ConvSettings, **kwargs) -> ImageEncoder:
        """The encoder of an observation spec."""
        spec_leaves = leaves(spec)
        for leaf in spec_leaves:
            if is_image(leaf) and min(conv.output_size(*leaf.shape[:2])) < 1:
                raise ObservationError(
                    f"observation leaf {leaf.path!r} ({leaf.shape[0]}x{leaf.shape[1]}) is "
                    f"too small for conv_kernels {conv.kernels} with conv_strides "
                    f"{conv.strides}; use fewer layers, smaller kernels or strides")
        return cls([leaf.shape for leaf in spec_leaves], [leaf.dtype for leaf in spec_leaves],
                   conv.channels, conv.kernels, conv.strides, conv.features, **kwargs)

    def _tower(self) -> list:
        conv = self._conv
        layers = [tf.keras.layers.Conv2D(channels, kernel, stride, activation="relu")
                  for channels, kernel, stride in zip(conv.channels, conv.kernels,
                                                      conv.strides)]
        return layers + [tf.keras.layers.Flatten(), tf.keras.layers.Dense(conv.features),
                         tf.keras.layers.LayerNormalization()]

    def call(self, observation):
        parts = []
        for x, shape, tower in zip(tf.nest.flatten(observation), self._shapes, self._towers):
            if tower is None:
                x = tf.cast(x, tf.float32)
                parts.append(tf.reshape(x, [-1, int(np.prod(shape, dtype=np.int64))]))
                continue
            x = tf.cast(x, tf.float32) / 255.0
            for layer in tower:
                x = layer(x)
            parts.append(tf.tanh(x))
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def get_config(self) -> dict:
        conv = self._conv
        return {**super().get_config(), "shapes": [list(s) for s in self._shapes],
                "dtypes": list(self._dtypes), "channels": list(conv.channels),
                "kernels": list(conv.kernels), "strides": list(conv.strides),
                "features": conv.features}


def random_shift(images, pad: int, seed=None):
    """DrQ's augmentation: each image of [N, H, W, C] shifted by up to `pad` pixels
    each way, the border repeated (pad by replication, then a random H x W crop),
    without building the padded images: rows and columns are gathered at clipped
    indices. Any dtype; returns the input's."""
    shape = tf.shape(images)
    n, height, width = shape[0], shape[1], shape[2]
    offsets = tf.random.uniform([n, 2], 0, 2 * pad + 1, dtype=tf.int32, seed=seed) - pad
    rows = tf.clip_by_value(offsets[:, :1] + tf.range(height)[None], 0, height - 1)
    cols = tf.clip_by_value(offsets[:, 1:] + tf.range(width)[None], 0, width - 1)
    shifted = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)
