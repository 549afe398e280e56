"""A prior policy's log-density, for SAC regularized toward it (SPiRL: Pertsch et al.,
2020, "Accelerating Reinforcement Learning with Learned Skill Priors"). README,
"Prior-regularized SAC".

The prior is a SavedModel policy (TF-Agents' PolicySaver): its `distribution` gives
log p(a|s); a greedy prior's deterministic action becomes a normal of scale `std` per
action dimension. `losses.PriorDivergence` puts log pi - log p in the place of SAC's
log pi. At launch, `check_policy` checks a prior against the experiment's env; the
launch then copies it into the experiment, whose learner loads that copy.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tensorflow_probability as tfp

from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError, ParamsError
from tfagents_system.core.specs import spec_shapes

# Actions are pulled this fraction of their half-range inside the action bounds before
# the prior scores them: a tanh-squashed prior's density is not finite at the bounds,
# which a float32 tanh sample of pi can reach.
BOUND_MARGIN = 1e-6


def _inside_bounds(action, spec):
    """`action` pulled BOUND_MARGIN inside a bounded spec's limits."""
    if not hasattr(spec, "minimum"):
        return action
    low, high = (tf.cast(v, action.dtype) for v in (spec.minimum, spec.maximum))
    margin = BOUND_MARGIN * (high - low) / 2
    return tf.clip_by_value(action, low + margin, high - margin)


def _merge_outer(nest, rank: int):
    """Each tensor of `nest` with its `rank` outer dims merged into one."""
    return tf.nest.map_structure(
        lambda t: tf.reshape(t, tf.concat([[-1], tf.shape(t)[rank:]], 0)), nest)


class PriorPolicy:
    """A loaded SavedModel policy as a density over actions. A plain object, not a
    tf.Module: the prior's variables stay out of the agent's checkpoints and training."""

    def __init__(self, loaded, action_spec, std: float):
        self._loaded = loaded
        self._action_spec = action_spec
        self._std = float(std)

    def log_prob(self, time_steps, actions):
        """log p(actions | time_steps), summed over the action's leaves and dimensions:
        [B], or [B, T] for the steps of replay windows (the prior is feed-forward: each
        step is scored on its own observation)."""
        rank = time_steps.step_type.shape.rank
        if rank > 1:
            outer = tf.shape(time_steps.step_type)
            flat = self.log_prob(_merge_outer(time_steps, rank), _merge_outer(actions, rank))
            return tf.reshape(flat, outer)
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


def default_target_divergence(action_spec) -> float:
    """0.5 nats per action dimension: the policy stays close to the prior yet can improve
    on it, scaled with the action space as SAC's default target entropy is."""
    return 0.5 * sum(int(s.shape.num_elements()) for s in tf.nest.flatten(action_spec))


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
    time_step_spec, action_spec = specs
    loaded = _open(directory, where)
    theirs = _action_shapes(loaded, time_step_spec, directory, where)
    ours = spec_shapes(action_spec)
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
