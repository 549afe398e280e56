"""Prior-regularized SAC: SAC whose entropy bonus is replaced by a penalty on the
divergence from a fixed prior policy, as SPiRL does (Pertsch et al., 2020, "Accelerating
Reinforcement Learning with Learned Skill Priors"). README, "Prior-regularized SAC".

With `prior_policy` set in the params, the divergence log pi(a|s) - log p(a|s), on
actions a ~ pi, takes the place of log pi(a|s) in the actor's loss and the critic's
soft target, and alpha is tuned toward `target_divergence` (it grows while the policy
is further from the prior than that). The prior is a SavedModel policy (TF-Agents'
PolicySaver): its `distribution` gives log p; a greedy prior's deterministic action
becomes a normal of scale `prior_std` per action dimension.

At launch, `check_policy` checks the prior against the env and `copy_into` copies it
into the new experiment (`prior_policy/`); the learner then loads that copy
(`use_copy`), so an experiment never depends on where its prior came from.
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.agents.sac import sac_agent
from tf_agents.utils import common

from tfagents_system import constants as C
from tfagents_system.checks import CheckError
from tfagents_system.params import ParamsError
from tfagents_system.paths import ExperimentPaths

# Actions are pulled this fraction of their half-range inside the action bounds before
# the prior scores them: a tanh-squashed prior's density is not finite at the bounds,
# which a float32 tanh sample of pi can reach.
BOUND_MARGIN = 1e-6


class PriorLossInfo(NamedTuple):
    """SacLossInfo's fields and the batch's mean divergence log pi - log p."""

    critic_loss: tf.Tensor
    actor_loss: tf.Tensor
    alpha_loss: tf.Tensor
    divergence: tf.Tensor


# --- Where the prior is ---

def requested(params, params_file: Path) -> Path | None:
    """params.prior_policy as an absolute path (relative: to the params file, so the
    process's working directory never matters); None without a prior."""
    if params.prior_policy is None:
        return None
    source = Path(os.path.expanduser(params.prior_policy))
    return (source if source.is_absolute() else Path(params_file).parent / source).resolve()


def use_copy(params, paths: ExperimentPaths) -> None:
    """Point params.prior_policy at the experiment's copy of the prior, which the
    launch made: the learner trains with that copy, whatever the source became."""
    if params.prior_policy is not None and paths.prior_policy.is_dir():
        params.prior_policy = str(paths.prior_policy)


def copy_into(source: Path, exp_dir: Path) -> None:
    """Copy the prior's SavedModel into a new experiment's directory (being created)."""
    shutil.copytree(source, ExperimentPaths(exp_dir).prior_policy)


# --- The prior's log-density ---

def _inside_bounds(action, spec):
    """`action` pulled BOUND_MARGIN inside a bounded spec's limits."""
    if not hasattr(spec, "minimum"):
        return action
    low, high = (tf.cast(v, action.dtype) for v in (spec.minimum, spec.maximum))
    margin = BOUND_MARGIN * (high - low) / 2
    return tf.clip_by_value(action, low + margin, high - margin)


class PriorPolicy:
    """A loaded SavedModel policy as a density over actions. A plain object, not a
    tf.Module: the prior's variables stay out of the agent's checkpoints and training."""

    def __init__(self, loaded, action_spec, std: float):
        self._loaded = loaded
        self._action_spec = action_spec
        self._std = float(std)

    def log_prob(self, time_steps, actions):
        """log p(actions | time_steps), [B]: summed over the action's leaves and
        dimensions; a deterministic (greedy) prior as a normal of scale std."""
        distributions = self._loaded.distribution(time_steps, ()).action
        per_leaf = [self._leaf_log_prob(d, a, s) for d, a, s in zip(
            tf.nest.flatten(distributions), tf.nest.flatten(actions),
            tf.nest.flatten(self._action_spec))]
        return tf.add_n(per_leaf)

    def _leaf_log_prob(self, distribution, action, spec):
        """log p of one action leaf, summed over its dimensions: [B]."""
        if isinstance(distribution, tfp.distributions.Deterministic):
            distribution = tfp.distributions.Normal(distribution.loc, self._std)
        log_prob = distribution.log_prob(_inside_bounds(action, spec))
        return tf.reduce_sum(tf.reshape(log_prob, [tf.shape(log_prob)[0], -1]), axis=1)


def load(directory: Path, action_spec, std: float) -> PriorPolicy:
    """The prior at `directory`; ParamsError (one line) if it cannot be loaded."""
    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as exc:  # missing, damaged or not a SavedModel: TensorFlow says which
        raise ParamsError(f"prior_policy {directory} cannot be loaded ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); point it at a "
                          "SavedModel policy exported by TF-Agents' PolicySaver") from exc
    return PriorPolicy(loaded, action_spec, std)


# --- The agent ---

class PriorSacAgent(sac_agent.SacAgent):
    """SAC regularized toward a prior policy: log pi - log p replaces log pi in the
    actor's loss and the critic's target; alpha is tuned toward a target divergence.
    `train` returns a PriorLossInfo (the alpha loss's batch divergence included)."""

    def __init__(self, time_step_spec, action_spec, *, prior: PriorPolicy,
                 target_divergence: float, **sac_settings):
        super().__init__(time_step_spec, action_spec, **sac_settings)
        self._prior = prior
        self._target_divergence = float(target_divergence)
        # The alpha loss's divergence, read back by _train for the learner's summaries.
        self._divergence = tf.Variable(0.0, trainable=False, name="prior_divergence")

    def _actions_and_divergences(self, time_steps, training: bool):
        """Actions a ~ pi (reparameterized) and log pi(a|s) - log p(a|s), [B]."""
        actions, log_pi = self._actions_and_log_probs(time_steps, training=training)
        return actions, log_pi - self._prior.log_prob(time_steps, actions)

    def critic_loss(self, time_steps, actions, next_time_steps, td_errors_loss_fn,
                    gamma=1.0, reward_scale_factor=1.0, weights=None, training=False):
        """SAC's critic loss with the soft target
        r + gamma d (min Q_targ(s', a') - alpha (log pi(a'|s') - log p(a'|s')))."""
        next_actions, next_divergences = self._actions_and_divergences(next_time_steps,
                                                                       training=False)
        target_input = (next_time_steps.observation, next_actions)
        target_q1, _ = self._target_critic_network_1(
            target_input, step_type=next_time_steps.step_type, training=False)
        target_q2, _ = self._target_critic_network_2(
            target_input, step_type=next_time_steps.step_type, training=False)
        soft_value = (tf.minimum(target_q1, target_q2)
                      - tf.exp(self._log_alpha) * next_divergences)
        td_targets = tf.stop_gradient(reward_scale_factor * next_time_steps.reward
                                      + gamma * next_time_steps.discount * soft_value)
        pred_input = (time_steps.observation, actions)
        q1, _ = self._critic_network_1(pred_input, step_type=time_steps.step_type,
                                       training=training)
        q2, _ = self._critic_network_2(pred_input, step_type=time_steps.step_type,
                                       training=training)
        per_example = td_errors_loss_fn(td_targets, q1) + td_errors_loss_fn(td_targets, q2)
        return common.aggregate_losses(
            per_example_loss=per_example, sample_weight=weights,
            regularization_loss=self._critic_network_1.losses + self._critic_network_2.losses,
        ).total_loss

    def actor_loss(self, time_steps, weights=None, training=True):
        """alpha (log pi(a|s) - log p(a|s)) - min Q(s, a), a ~ pi reparameterized: the
        gradient reaches the actor through log pi and through a in log p and Q."""
        actions, divergences = self._actions_and_divergences(time_steps, training=training)
        q_input = (time_steps.observation, actions)
        q1, _ = self._critic_network_1(q_input, step_type=time_steps.step_type, training=False)
        q2, _ = self._critic_network_2(q_input, step_type=time_steps.step_type, training=False)
        per_example = tf.exp(self._log_alpha) * divergences - tf.minimum(q1, q2)
        return common.aggregate_losses(per_example_loss=per_example, sample_weight=weights,
                                       regularization_loss=self._actor_network.losses
                                       ).total_loss

    def alpha_loss(self, time_steps, weights=None, training=False):
        """-log_alpha (divergence - target_divergence): alpha grows while the policy is
        further from the prior than the target, and shrinks while it is closer."""
        _, divergences = self._actions_and_divergences(time_steps, training=False)
        divergence = common.aggregate_losses(per_example_loss=divergences,
                                             sample_weight=weights).total_loss
        self._divergence.assign(divergence)
        excess = tf.stop_gradient(divergences - self._target_divergence)
        scale = self._log_alpha if self._use_log_alpha_in_alpha_loss else tf.exp(
            self._log_alpha)
        return common.aggregate_losses(per_example_loss=-scale * excess,
                                       sample_weight=weights).total_loss

    def _train(self, experience, weights):
        """SAC's gradient steps; the loss info also carries the batch's divergence."""
        loss_info = super()._train(experience, weights)
        return loss_info._replace(extra=PriorLossInfo(
            *loss_info.extra, divergence=self._divergence.read_value()))


def default_target_divergence(action_spec) -> float:
    """0.5 nats per action dimension (params.py says why)."""
    return 0.5 * sum(int(s.shape.num_elements()) for s in tf.nest.flatten(action_spec))


def make_agent(params, time_step_spec, action_spec, **sac_settings) -> PriorSacAgent:
    """The agent of params with a prior_policy: SAC's settings, the prior loaded from
    params.prior_policy (relative: to the file defining the params class)."""
    directory = requested(params, Path(inspect.getfile(type(params))))
    target = params.target_divergence
    return PriorSacAgent(
        time_step_spec, action_spec, prior=load(directory, action_spec, params.prior_std),
        target_divergence=default_target_divergence(action_spec) if target is None else target,
        **sac_settings)


# --- At launch ---

def _sample_time_steps(time_step_spec):
    """Two random time steps of the env's spec, to call the prior on."""
    from tf_agents.specs import tensor_spec

    return tensor_spec.sample_spec_nest(tensor_spec.from_spec(time_step_spec),
                                        outer_dims=(2,))


def _open(directory: Path, where: str):
    """The loaded SavedModel at `directory`; CheckError when there is none to load."""
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise CheckError(f"{where} {directory} {what}: point it at a SavedModel policy, e.g. "
                         "another experiment's policies/final/collect_policy")
    if not (directory / "saved_model.pb").is_file():
        raise CheckError(f"{where} {directory} is not a SavedModel (it holds no "
                         "saved_model.pb): point it at a policy exported by TF-Agents' "
                         "PolicySaver, e.g. another experiment's policies/final/collect_policy")
    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as exc:  # damaged: what TensorFlow raised says how
        raise CheckError(f"{where} {directory} cannot be loaded ({type(exc).__name__}); "
                         "export the prior again with TF-Agents' PolicySaver") from exc
    if not hasattr(loaded, "distribution"):
        raise CheckError(f"{where} {directory} is a SavedModel without a distribution "
                         "function, not a TF-Agents policy: export one with PolicySaver")
    return loaded


def _action_shapes(loaded, time_step_spec, directory: Path, where: str) -> list[tuple]:
    """(shape, dtype) of each leaf of the prior's actions on this env's time steps."""
    time_steps = _sample_time_steps(time_step_spec)
    if tf.nest.flatten(loaded.get_initial_state(2)):
        raise CheckError(f"{where} {directory} is a recurrent policy (it keeps a state), "
                         "which is not supported as a prior: use a feed-forward policy")
    try:
        actions = tf.nest.map_structure(lambda d: d.sample(),
                                        loaded.distribution(time_steps, ()).action)
    except Exception as exc:  # the saved signature refuses this env's time steps
        raise CheckError(f"{where} {directory} cannot be called on this env's time steps "
                         f"({type(exc).__name__}): it is a policy of another observation "
                         "spec; use a prior trained on this env's observations") from exc
    return [(tuple(a.shape[1:]), a.dtype.name) for a in tf.nest.flatten(actions)]


def check_policy(directory: Path, specs: tuple, where: str) -> str | None:
    """Check a prior against this experiment's env: a loadable TF-Agents SavedModel
    policy, called on the env's time steps, giving actions of the env's shape. Returns
    a warning for a policy exported at train step 0 (untrained), else None."""
    from tfagents_system.run import spec_shapes

    time_step_spec, action_spec = specs
    loaded = _open(directory, where)
    theirs, ours = _action_shapes(loaded, time_step_spec, directory, where), spec_shapes(
        action_spec)
    if theirs != ours:
        raise CheckError(f"{where} {directory} gives actions {theirs}, this experiment's "
                         f"env takes {ours}: use a prior trained on an env with the same "
                         "actions")
    ready = directory / C.POLICY_READY
    first_export = directory.name == C.COLLECT_POLICY and directory.parent.name == C.POLICY_DIR
    if first_export and ready.is_file() and ready.read_text().strip() == "0":
        return (f"{where} {directory} was exported at train step 0 (an experiment's "
                f"{C.POLICY_DIR}/{C.COLLECT_POLICY} keeps its first weights): for a trained "
                f"prior use {C.POLICY_DIR}/{C.FINAL_POLICY_DIR}/{C.COLLECT_POLICY}")
    return None
