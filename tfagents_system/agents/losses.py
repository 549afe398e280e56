"""The terms SAC's losses are assembled from (`sac.SacAgent`).

- `td_targets`: r + gamma * discount * V(s'). A time-limit truncation keeps discount 1
  and bootstraps, a terminal state's 0 does not. n-step rows carry the discounted sum
  of their rewards as r and gamma**(m-1) times their steps' discounts as discount
  (`replay.packing.NStepPacker`), so the same target bootstraps from the n-th state.
- A penalty on the policy, weighted by alpha: `Entropy` (SAC's log pi, alpha tuned
  toward a target entropy) or `PriorDivergence` (log pi - log p of a prior policy,
  alpha tuned toward a target divergence).
- `reduce`: per-example losses [B] to a scalar as TF-Agents' SAC does (the weighted
  mean, plus the networks' regularization); per-step losses of replay windows [B, T]
  to the mean over the steps their mask (the weights) keeps.
- `behaviour_cloning`: the capped negative log-likelihood of demonstrated actions
  under the actor, on transitions or on windows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tf_agents.utils import common

from tfagents_system.core import constants as C


def masked_mean(per_step, mask):
    """The mean of [B, T] values over every step of the batch where the [B, T] mask
    is 1 (0 when none is)."""
    mask = tf.cast(mask, per_step.dtype)
    return tf.reduce_sum(per_step * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def reduce(per_example, weights=None, regularization=None):
    """A loss's scalar: over a batch of transitions ([B]) TF-Agents' weighted mean plus
    the regularization losses; over replay windows ([B, T], `weights` their mask, every
    step when None) the mean over the masked steps plus the regularization losses."""
    if per_example.shape.rank == 1:
        return common.aggregate_losses(per_example_loss=per_example, sample_weight=weights,
                                       regularization_loss=regularization).total_loss
    mask = (tf.ones_like(per_example) if weights is None
            else tf.broadcast_to(tf.cast(weights, per_example.dtype), tf.shape(per_example)))
    return masked_mean(per_example, mask) + tf.add_n(
        [tf.constant(0.0)] + list(regularization or ()))


def td_targets(next_time_steps, soft_value, gamma, reward_scale_factor):
    """The critics' regression targets (module docstring), without gradient."""
    return tf.stop_gradient(reward_scale_factor * next_time_steps.reward
                            + gamma * next_time_steps.discount * soft_value)


class Entropy:
    """SAC's own penalty: alpha log pi(a|s), which pays the policy for its entropy;
    alpha grows while the entropy is below `target_entropy`."""

    metric = None  # nothing to log beyond the policy's entropy, which the learner logs

    def __init__(self, target_entropy: float):
        self.budget = -target_entropy  # the penalty alpha is tuned toward

    def __call__(self, time_steps, actions, log_pi):
        """The per-example penalty of actions a ~ pi."""
        return log_pi

    def loss_info(self, extra, mean):
        """The train step's loss info (SAC's own)."""
        return extra


class PriorDivergence:
    """SPiRL's penalty: alpha (log pi(a|s) - log p(a|s)) for a prior policy p, a
    one-sample estimate of KL(pi || p); alpha grows while the policy is further from
    the prior than `target_divergence` nats, and shrinks while it is closer."""

    metric = C.M_PRIOR_DIVERGENCE

    def __init__(self, prior, target_divergence: float):
        self._prior = prior
        self.budget = float(target_divergence)

    def __call__(self, time_steps, actions, log_pi):
        """log pi - log p of actions a ~ pi (reparameterized: the gradient reaches the
        actor through log pi and through a in log p)."""
        return log_pi - self._prior.log_prob(time_steps, actions)

    def loss_info(self, extra, mean):
        """SAC's loss info and the batch's mean divergence."""
        return PriorLossInfo(*extra, divergence=mean.read_value())


class PriorLossInfo(NamedTuple):
    """SacLossInfo's fields and the batch's mean divergence log pi - log p."""

    critic_loss: tf.Tensor
    actor_loss: tf.Tensor
    alpha_loss: tf.Tensor
    divergence: tf.Tensor


# The log-likelihood a demonstrated action counts for at most, per action dimension
# (about that of a Gaussian of std 0.05 at its mean): a deterministic demonstrator
# would otherwise drive the policy's std to zero and its loss to -inf (NaN gradients);
# SAC then starts from a policy that still explores.
LOG_PROB_CAP_PER_DIM = 2.0
# Demonstrated actions are moved this fraction of the action range inside the bounds:
# a tanh-squashed policy gives the bounds themselves a log-likelihood of -inf.
BC_BOUND_MARGIN = 1e-3


def clip_into_bounds(action, action_spec):
    """Actions clipped strictly inside the spec's bounds (BC_BOUND_MARGIN of the range)."""
    low = np.asarray(action_spec.minimum, np.float32)
    high = np.asarray(action_spec.maximum, np.float32)
    margin = BC_BOUND_MARGIN * (high - low)
    return tf.clip_by_value(action, low + margin, high - margin)


def behaviour_cloning(actor, experience, weights, action_spec):
    """The mean negative log-likelihood of the demonstrated actions under the actor,
    each capped at LOG_PROB_CAP_PER_DIM per action dimension: a Transition of [B]
    (weights None), or of replay windows [B, T] with their mask as weights (a
    recurrent actor runs over each window from its initial state)."""
    time_step = experience.time_step
    cap = LOG_PROB_CAP_PER_DIM * sum(
        int(np.prod(spec.shape)) for spec in tf.nest.flatten(action_spec))
    state = actor.get_initial_state(tf.shape(time_step.step_type)[0])
    distribution, _ = actor(time_step.observation, step_type=time_step.step_type,
                            network_state=state, training=True)
    actions = clip_into_bounds(experience.action_step.action, action_spec)
    log_likelihood = tf.minimum(distribution.log_prob(actions), cap)
    if log_likelihood.shape.rank == 1:
        return -tf.reduce_mean(log_likelihood)
    return -reduce(log_likelihood, weights)
