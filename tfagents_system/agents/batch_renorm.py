"""Batch renormalization (Ioffe, 2017) as CrossQ uses it (Bhatt et al., 2024), and
CrossQ's networks built from it.

`BatchRenorm` normalizes each feature over the batch in training and with its
running statistics in evaluation. For its first `warmup_steps` training calls it is
plain batch normalization, (x - m) / sqrt(v + eps); after them it is Ioffe's
(x - m) / sqrt(v + eps) * r + d, with r = sqrt(v + eps) / sqrt(ra_var + eps) clipped
to [1/3, 3] and d = (m - ra_mean) / sqrt(ra_var + eps) clipped to [-5, 5], both
without gradient, as CrossQ's reference implementations do (fixed clips, no
relaxation schedule). The
running statistics move by (1 - momentum) toward each batch's, warm-up included.

- `BatchRenormCriticNetwork`: both critics in one network (Q1 and Q2 as [..., 2],
  read by the agent as `TwinCriticNetwork`'s), each its own stack BRN -> Dense ->
  ReLU -> ... -> BRN -> Dense(1) on the observation and action joined, with its own
  statistics.
- `BatchRenormActorNetwork`: BRN -> Dense -> ReLU -> ... -> BRN, then SAC's
  tanh-squashed normal head (TF-Agents' TanhNormalProjectionNetwork) with its log
  std clipped to [-20, 2], as CrossQ's reference implementations clip it (SAC's
  default head leaves it unclipped).

A structured observation goes through the default combiner first
(`encoders.ObservationCombiner`). The statistics are non-trainable variables of the
networks, so checkpoints, the exported policies and the weights the workers fetch
carry them; the workers' numpy actor applies them as the evaluation mode does.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
from tf_agents.networks import network

from tfagents_system.agents.encoders import ObservationCombiner, needs_combiner

EPSILON = 1e-3
R_MAX = 3.0
D_MAX = 5.0


class BatchRenorm(tf.keras.layers.Layer):
    """Batch renormalization of the last axis (module docstring). `momentum`: the
    running statistics keep this share at each training call (Keras' convention;
    CrossQ's 0.99, torch's 0.01)."""

    def __init__(self, momentum: float = 0.99, warmup_steps: int = 100_000,
                 name: str | None = None):
        super().__init__(name=name)
        self.momentum = float(momentum)
        self.warmup_steps = int(warmup_steps)

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.scale = self.add_weight(name="scale", shape=(size,), initializer="ones")
        self.offset = self.add_weight(name="offset", shape=(size,), initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(size,),
                                           initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(size,),
                                               initializer="ones", trainable=False)
        # float32 like every published weight (exact to 16.7M calls)
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros",
                                     trainable=False)

    def call(self, x, training=False):
        if not training:
            return self._normalize(x, self.moving_mean, self.moving_variance)
        axes = list(range(x.shape.rank - 1))
        mean, variance = tf.nn.moments(x, axes)  # biased variance, as the JAX reference
        # sqrt(v + eps), never sqrt(v): a feature constant over the batch (a dead ReLU)
        # would otherwise give an infinite gradient, NaN through tf.where's other branch
        std = tf.sqrt(variance + EPSILON)
        running_std = tf.sqrt(self.moving_variance + EPSILON)
        renorm = self.steps >= float(self.warmup_steps)
        r = tf.where(renorm, tf.stop_gradient(tf.clip_by_value(std / running_std,
                                                               1.0 / R_MAX, R_MAX)), 1.0)
        d = tf.where(renorm, tf.stop_gradient(tf.clip_by_value(
            (mean - self.moving_mean) / running_std, -D_MAX, D_MAX)), 0.0)
        keep = self.momentum
        self.moving_mean.assign(keep * self.moving_mean + (1.0 - keep) * tf.stop_gradient(mean))
        self.moving_variance.assign(keep * self.moving_variance
                                    + (1.0 - keep) * tf.stop_gradient(variance))
        self.steps.assign_add(1.0)
        return ((x - mean) / std * r + d) * self.scale + self.offset

    def _normalize(self, x, mean, variance):
        return (x - mean) * tf.math.rsqrt(variance + EPSILON) * self.scale + self.offset


def _stack(layers: tuple[int, ...], momentum: float, warmup: int, name: str) -> list:
    """[BRN, Dense(n, relu)] per hidden layer, then a final BRN."""
    out = []
    for i, units in enumerate(layers):
        out += [BatchRenorm(momentum, warmup, name=f"{name}_brn{i}"),
                tf.keras.layers.Dense(units, activation="relu", name=f"{name}_dense{i}")]
    return out + [BatchRenorm(momentum, warmup, name=f"{name}_brn{len(layers)}")]


def _apply(layers: list, x, training: bool):
    for layer in layers:
        x = layer(x, training=training) if isinstance(layer, BatchRenorm) else layer(x)
    return x


def _combiner(spec, normalization):
    """The default combiner where the observation needs one (structured, non-float32 or
    normalized), else None."""
    if not needs_combiner(spec, normalization):
        return None
    return ObservationCombiner.for_spec(spec, normalization)


def _flat_observation(combiner, observation, spec):
    """The observation as [batch, features] float32 (through the combiner when there
    is one)."""
    if combiner is not None:
        return combiner(observation)
    x = tf.cast(observation, tf.float32)
    return tf.reshape(x, [-1, spec.shape.num_elements()])


class BatchRenormCriticNetwork(network.Network):
    """Both of CrossQ's critics (module docstring); Q1 and Q2 as [..., 2]."""

    twin = True

    def __init__(self, input_tensor_spec, layers=(1024, 1024), momentum: float = 0.99,
                 warmup_steps: int = 100_000, normalization=None,
                 name="BatchRenormCriticNetwork"):
        observation_spec, _ = input_tensor_spec
        super().__init__(input_tensor_spec, state_spec=(), name=name)
        self._combiner = _combiner(observation_spec, normalization)
        self._critics = [_stack(tuple(layers), momentum, warmup_steps, f"q{i}")
                         + [tf.keras.layers.Dense(1, name=f"q{i}_value")] for i in range(2)]

    def call(self, inputs, step_type=(), network_state=(), training=False):
        observation, action = inputs
        outer = tf.shape(tf.nest.flatten(action)[0])[:-1]
        obs = _flat_observation(self._combiner, observation, self.input_tensor_spec[0])
        actions = [tf.reshape(tf.cast(a, tf.float32), [tf.shape(obs)[0], -1])
                   for a in tf.nest.flatten(action)]
        joint = tf.concat([obs] + actions, axis=-1)
        q = tf.concat([_apply(critic, joint, training) for critic in self._critics], -1)
        return tf.reshape(q, tf.concat([outer, [2]], 0)), network_state


class BatchRenormActorNetwork(network.DistributionNetwork):
    """CrossQ's actor (module docstring): a tanh-squashed normal."""

    def __init__(self, input_tensor_spec, output_tensor_spec, layers=(256, 256),
                 momentum: float = 0.99, warmup_steps: int = 100_000, normalization=None,
                 name="BatchRenormActorNetwork"):
        # log std clipped to [-20, 2] before the exp, as CrossQ's reference code does
        head = tanh_normal_projection_network.TanhNormalProjectionNetwork(
            output_tensor_spec, std_transform=sac_agent.std_clip_transform)
        super().__init__(input_tensor_spec, state_spec=(), output_spec=head.output_spec,
                         name=name)
        self._combiner = _combiner(input_tensor_spec, normalization)
        self.stack = _stack(tuple(layers), momentum, warmup_steps, "pi")
        self.head = head

    def call(self, observation, step_type=(), network_state=(), training=False):
        outer_rank = len(tf.nest.flatten(observation)[0].shape) - len(
            tf.nest.flatten(self.input_tensor_spec)[0].shape)
        outer = tf.shape(tf.nest.flatten(observation)[0])[:outer_rank]
        flat = tf.nest.map_structure(
            lambda x, s: tf.reshape(x, tf.concat([[-1], s.shape], 0)), observation,
            self.input_tensor_spec)
        x = _apply(self.stack, _flat_observation(self._combiner, flat, self.input_tensor_spec),
                   training)
        x = tf.reshape(x, tf.concat([outer, tf.shape(x)[-1:]], 0))
        distribution, _ = self.head(x, outer_rank, training=training)
        return distribution, network_state
