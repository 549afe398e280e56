"""Generalized state-dependent exploration (gSDE; Raffin, Kober and Stulp, 2021): the
actor's head.

SAC's actor adds white noise to every action; gSDE makes the exploration noise a
function of the policy's last hidden features f(s): the pre-tanh action is
mu(s) + f(s) theta, with a matrix theta ~ N(0, sigma^2) drawn at each episode start
(and every `sde_sample_freq` steps), so consecutive actions in similar states move the
same way instead of jittering. sigma = exp(log_std) is a learned [features, actions]
matrix starting at exp(log_std_init). For a fixed theta the action is a deterministic
function of the state; over theta it is N(mu(s), f(s)^2 sigma^2) per action
dimension, the density SAC's losses use here. The losses' gradients reach the
features through that scale too, as in Stable-Baselines3's SAC (its actor passes
`learn_features=True`): the policy can widen its exploration by growing its features as
well as through sigma.

- `SdeProjectionNetwork`: the tanh-squashed normal of mean mu(s) (clipped to
  +-`clip_mean` before the tanh, as SB3's SAC does) and scale
  sqrt(f(s)^2 sigma^2 + eps). The learner's losses sample it independently per example:
  per example the same distribution as SB3's one theta for a whole batch, with less
  correlated gradient noise.
- The workers draw theta per env (`actors.SdeNoise`, in `actors.NumpyActor`).
- Greedy evaluation is the mean's tanh, as without gSDE.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.distributions import utils as distribution_utils
from tf_agents.networks import network
from tf_agents.networks import utils as network_utils
from tf_agents.specs import distribution_spec, tensor_spec

# Added to the variance before its square root (SB3's epsilon): zero features would
# otherwise give a zero scale and an infinite log-density.
VARIANCE_EPSILON = 1e-6


def projection_network(features: int, log_std_init: float, clip_mean: float):
    """The ctor ActorDistributionNetwork takes as `continuous_projection_net`, for an
    actor whose last hidden layer has `features` units."""

    def build(sample_spec):
        return SdeProjectionNetwork(sample_spec, features, log_std_init, clip_mean)

    return build


class SdeProjectionNetwork(network.DistributionNetwork):
    """gSDE's head (module docstring): loc = clip(W f + b, +-clip_mean), scale =
    sqrt(f^2 exp(2 log_std) + eps), squashed to the action spec."""

    def __init__(self, sample_spec, features: int, log_std_init: float = -3.0,
                 clip_mean: float = 2.0, name="SdeProjectionNetwork"):
        if len(tf.nest.flatten(sample_spec)) != 1:
            raise ValueError("gSDE needs a single action array")
        size = sample_spec.shape.num_elements()
        params = {key: tensor_spec.TensorSpec(sample_spec.shape, sample_spec.dtype,
                                              name=f"{name}_{key}")
                  for key in ("loc", "scale_diag")}

        def builder(*args, **kwargs):
            return distribution_utils.scale_distribution_to_spec(
                tfp.distributions.MultivariateNormalDiag(*args, **kwargs), sample_spec)

        super().__init__(input_tensor_spec=None, state_spec=(),
                         output_spec=distribution_spec.DistributionSpec(
                             builder, params, sample_spec=sample_spec), name=name)
        self._sample_spec = sample_spec
        self.clip_mean = float(clip_mean)
        self.mean_layer = tf.keras.layers.Dense(size, name="mean")
        self.log_std = tf.Variable(tf.fill([int(features), size], float(log_std_init)),
                                   name="log_std")

    def call(self, inputs, outer_rank, training=False, mask=None):
        if mask is not None:
            raise NotImplementedError("gSDE does not mask actions")
        squash = network_utils.BatchSquash(outer_rank)
        features = squash.flatten(inputs)
        loc = self.mean_layer(features, training=training)
        if self.clip_mean > 0:
            loc = tf.clip_by_value(loc, -self.clip_mean, self.clip_mean)
        variance = tf.matmul(tf.square(features), tf.exp(2.0 * self.log_std))
        scale = tf.sqrt(variance + VARIANCE_EPSILON)
        shape = [-1] + self._sample_spec.shape.as_list()
        loc = squash.unflatten(tf.reshape(loc, shape))
        scale = squash.unflatten(tf.reshape(scale, shape))
        return self.output_spec.build_distribution(loc=loc, scale_diag=scale), ()
