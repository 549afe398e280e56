"""Policy ensembles: several trained greedy policies acting as one.

A member is an experiment directory with an optional checkpoint:

    EXP_DIR               the checkpoint given by --checkpoint (default: latest)
    EXP_DIR:CHECKPOINT    CHECKPOINT as for --checkpoint: a name from --list
                          (policy_checkpoint_0000000300), a train step (300) or latest

An argument that is an existing directory is an EXP_DIR as a whole, even if it
holds a ':'. Members must share their observation and action specs (shapes,
dtypes, action bounds); the eval env is the first member's.

The ensemble's action is the mean of its members' greedy actions, clipped to
the action spec's bounds. The ensemble is one `tf.Module` whose functions call
the members' exported policies, so the module evaluated is the one
`--export DIR` saves. `tf.saved_model.load(DIR)` (plain TensorFlow, nothing
from this package or TF-Agents) gives:

    act(observation)                  a batch of observations (the observation
                                      spec with a leading batch dimension) to a
                                      batch of actions; also the SavedModel's
                                      `serving_default` signature when the
                                      observation is one tensor
    action(time_step, policy_state)   TF-Agents' policy call: a batched TimeStep
                                      and () to PolicyStep(action, (), ())
    get_initial_state(batch_size)     ()

DIR also holds the members' `policy_specs.pbtxt`, so TF-Agents'
`SavedModelPyTFEagerPolicy(DIR, load_specs_from_pbtxt=True)` loads it as a
policy, and `ensemble.json`, naming the members and their checkpoints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.files import write_json_atomic
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.specs import spec_shapes
from tfagents_system.tools.evaluation import (
    EvalError,
    EvalPolicy,
    PolicyCheckpoint,
    check_experiment,
    find_checkpoint,
    load_greedy_policy,
)


@dataclass(frozen=True)
class Member:
    """One policy of an ensemble: the argument naming it, its experiment and checkpoint."""

    argument: str
    exp_dir: Path
    checkpoint: PolicyCheckpoint

    def as_dict(self) -> dict:
        """The member as summary.json and ensemble.json list it."""
        return {"experiment": str(self.exp_dir), "checkpoint": self.checkpoint.name,
                "train_step": self.checkpoint.train_step}


def parse_member(argument: str, default_checkpoint: str) -> tuple[Path, str]:
    """(experiment directory, checkpoint) of a member argument, EXP_DIR[:CHECKPOINT]."""
    if Path(argument).is_dir() or ":" not in argument:
        return Path(argument), default_checkpoint
    exp_dir, _, checkpoint = argument.rpartition(":")
    return Path(exp_dir), checkpoint


def resolve_member(argument: str, default_checkpoint: str) -> Member:
    """The member an argument names; EvalError naming it unless it is an experiment with an
    exported greedy policy and that checkpoint (files only: before TF loads)."""
    exp_dir, checkpoint = parse_member(argument, default_checkpoint)
    try:
        check_experiment(exp_dir)
        return Member(argument, exp_dir, find_checkpoint(exp_dir, checkpoint))
    except EvalError as exc:
        raise EvalError(f"--ensemble member {argument!r}: {exc}") from None


def resolve_members(arguments: list[str], default_checkpoint: str) -> list[Member]:
    """Every member the arguments name (see resolve_member)."""
    return [resolve_member(argument, default_checkpoint) for argument in arguments]


def load_member_policy(member: Member):
    """A member's greedy py policy; EvalError if it keeps a state (nothing to average)."""
    policy = load_greedy_policy(member.exp_dir, member.checkpoint)
    if policy.policy_state_spec:
        raise EvalError(f"--ensemble member {member.argument!r}: its policy keeps a recurrent "
                        "state; an ensemble averages stateless policies only")
    return policy


def spec_description(policy) -> str:
    """What members must share: observation and action shapes and dtypes, action bounds."""
    import numpy as np
    import tensorflow as tf

    bounds = [(np.asarray(s.minimum).tolist(), np.asarray(s.maximum).tolist())
              for s in tf.nest.flatten(policy.action_spec)]
    return (f"observation {spec_shapes(policy.time_step_spec.observation)}, action "
            f"{spec_shapes(policy.action_spec)} within {bounds}")


def check_member_specs(members: list[Member], policies: list) -> None:
    """EvalError naming the first member whose specs differ from the first member's."""
    first = spec_description(policies[0])
    for member, policy in zip(members[1:], policies[1:]):
        specs = spec_description(policy)
        if specs != first:
            raise EvalError(f"--ensemble member {member.argument!r}: its specs ({specs}) differ "
                            f"from those of the first member {members[0].argument!r} ({first}); "
                            "ensemble members must be trained on the same environment")


def build_module(policies: list):
    """One tf.Module acting with the mean of the policies' greedy actions (see the module
    docstring for its functions)."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import policy_step
    from tf_agents.trajectories import time_step as ts

    time_step_spec = tensor_spec.add_outer_dim(tensor_spec.from_spec(policies[0].time_step_spec))
    action_spec = policies[0].action_spec
    # The loaded SavedModels: SavedModelPyTFEagerPolicy keeps its own as `_policy`.
    models = [policy._policy for policy in policies]

    def mean_action(time_step):
        actions = [model.action(time_step, ()).action for model in models]
        mean = tf.nest.map_structure(lambda *each: tf.add_n(each) / len(each), *actions)
        return tf.nest.map_structure(
            lambda action, spec: tf.clip_by_value(action, spec.minimum, spec.maximum),
            mean, action_spec)

    def act(observation):
        batch = tf.shape(tf.nest.flatten(observation)[0])[:1]
        return mean_action(ts.TimeStep(
            step_type=tf.fill(batch, ts.StepType.MID),
            reward=tf.zeros(batch, time_step_spec.reward.dtype),
            discount=tf.ones(batch, time_step_spec.discount.dtype),
            observation=observation))

    module = tf.Module()
    # Tracked, so that the SavedModel holds every member's weights.
    module.model_variables = tuple(v for model in models for v in model.model_variables)
    module.act = tf.function(act, input_signature=[time_step_spec.observation])
    module.action = tf.function(
        lambda time_step, policy_state: policy_step.PolicyStep(mean_action(time_step), (), ()),
        input_signature=[time_step_spec, ()])
    module.get_initial_state = tf.function(
        lambda batch_size: (), input_signature=[tf.TensorSpec((), tf.int32)])
    return module


class Ensemble:
    """The members' greedy policies as one tf.Module (`module`), and a TF-Agents py
    policy over it (`policy`) for the evaluation loop."""

    def __init__(self, members: list[Member], policies: list):
        from tf_agents.policies import py_tf_eager_policy

        self.members = members
        self.module = build_module(policies)
        self.policy = py_tf_eager_policy.PyTFEagerPolicyBase(
            self.module, policies[0].time_step_spec, policies[0].action_spec,
            policy_state_spec=(), info_spec=())

    @property
    def name(self) -> str:
        """The name of its evaluations: a hash of the members, the same in every run."""
        text = "\n".join(f"{m.exp_dir.resolve()}:{m.checkpoint.name}" for m in self.members)
        return C.ENSEMBLE_PREFIX + hashlib.sha1(text.encode()).hexdigest()[:8]

    @property
    def title(self) -> str:
        """The ensemble in printed lines."""
        return (f"ensemble of {len(self.members)} ["
                + ", ".join(f"{m.exp_dir}:{m.checkpoint.name}" for m in self.members) + "]")

    def description(self) -> dict:
        """The ensemble in summary.json and ensemble.json."""
        return {"ensemble": self.name, "members": [m.as_dict() for m in self.members]}

    def eval_policy(self) -> EvalPolicy:
        """The ensemble as tfagents_system.run evaluates it (the first member's env)."""
        return EvalPolicy(self.policy, self.members[0].exp_dir, self.name, self.title,
                          self.description())

    def export(self, out_dir: Path) -> None:
        """Save the ensemble as one SavedModel in out_dir (new, or an empty directory:
        check_export_dir), with the TF-Agents specs file and ensemble.json; written under a
        temporary name and renamed, so out_dir is never half written."""
        import tensorflow as tf
        from tf_agents.policies.policy_saver import POLICY_SPECS_PBTXT

        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        single_tensor = not tf.nest.is_nested(self.policy.time_step_spec.observation)
        tf.saved_model.save(self.module, str(tmp), signatures=(
            {"serving_default": self.module.act} if single_tensor else None))
        spec_dir = ExperimentPaths(self.members[0].exp_dir).policy(C.GREEDY_POLICY)
        shutil.copy2(spec_dir / POLICY_SPECS_PBTXT, tmp / POLICY_SPECS_PBTXT)
        write_json_atomic(tmp / C.ENSEMBLE_FILE, self.description())
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
        print(f"exported the {self.title} to {out_dir}; load it with "
              f"tf.saved_model.load({str(out_dir)!r}).act(observations)")


def check_export_dir(out_dir: Path) -> None:
    """EvalError unless out_dir is new or an empty directory (before TF loads)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise EvalError(f"--export {out_dir}: exists and is not an empty directory; "
                        "choose a new directory")


def load_ensemble(members: list[Member]) -> Ensemble:
    """The ensemble of the members' greedy policies; EvalError naming a member whose specs
    differ from the first member's."""
    policies = [load_member_policy(member) for member in members]
    check_member_specs(members, policies)
    return Ensemble(members, policies)
