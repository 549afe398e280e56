"""Construction: everything the programs build (environments and their seeds, the
agent and its compiled train loop, checkpointers, policy savers, summary writers,
the workers' actors and evaluation policy). The replay data path's pieces (tables,
writers, the learner's memory, datasets) are built in `tfagents_system.replay`.
Program modules only wire these together.
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

import numpy as np

from tfagents_system import constants as C
from tfagents_system.params import TrainParamsBase
from tfagents_system.paths import ExperimentPaths

COLLECT, EVAL = "collect", "eval"


# --- Seeds and shares ---

def derive_seed(base_seed: int, *keys: int) -> int:
    """A 31-bit seed that differs for every (base_seed, keys) combination."""
    entropy = [int(base_seed), len(keys), *map(int, keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def worker_env_seeds(params: TrainParamsBase, worker_index: int) -> tuple[int, int]:
    """(collect seed, eval seed) of a worker: distinct per worker and per role."""
    return (derive_seed(params.seed, worker_index, 0), derive_seed(params.seed, worker_index, 1))


def collect_env_seeds(params: TrainParamsBase, worker_index: int) -> list[int]:
    """Seeds of a worker's `num_envs_per_worker` collect envs; the first one is the
    worker's collect seed, so one env per worker seeds exactly as before."""
    first = worker_env_seeds(params, worker_index)[0]
    return [first] + [derive_seed(params.seed, worker_index, 0, j)
                      for j in range(1, int(params.num_envs_per_worker))]


def worker_share(total: int, num_workers: int, worker_index: int) -> int:
    """This worker's share of `total` (episodes, steps); shares differ by at most 1."""
    base, extra = divmod(total, num_workers)
    return base + (1 if worker_index < extra else 0)


def warmup_for_worker(params: TrainParamsBase, num_workers: int,
                      worker_index: int) -> dict[str, int | None]:
    """This worker's uniform-random warm-up as `Collector.run` arguments: its share of
    `n_buffer_init_steps` steps when that is set, else of `n_buffer_init_episodes`."""
    if params.n_buffer_init_steps is not None:
        return {"episodes": None,
                "steps": worker_share(params.n_buffer_init_steps, num_workers, worker_index)}
    return {"episodes": worker_share(params.n_buffer_init_episodes, num_workers, worker_index),
            "steps": None}


# --- Environments ---

def env_ctor_context(env_ctor, seed, args: tuple, kind: str,
                     worker_index: int | None) -> dict:
    """`worker_index` and `env_role` for an `env_ctor` whose parameters name them (and
    whose positional `args` do not fill them). Only named parameters: a `**kwargs`
    catch-all must not get them (GymTrainParams and the README's example forward it to
    gym's constructor), so existing env_ctors are called as before."""
    try:
        signature = inspect.signature(env_ctor)
        filled = signature.bind_partial(seed, *args).arguments
    except (TypeError, ValueError):  # no signature, or args it cannot take: as before
        return {}
    named = {name for name, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in filled}
    offered = {"worker_index": worker_index, "env_role": kind}
    return {name: value for name, value in offered.items() if name in named}


def make_env(params: TrainParamsBase, kind: str, seed: int | None,
             worker_index: int | None = None):
    """Build a collect or eval env through the user's `env_ctor`, for worker
    `worker_index` (None: outside a worker)."""
    from tf_agents.environments import py_environment

    args, kwargs = (
        params.collect_env_args_kwargs() if kind == COLLECT else params.eval_env_args_kwargs()
    )
    context = env_ctor_context(params.env_ctor, seed, args, kind, worker_index)
    env = params.env_ctor(seed, *args, **{**context, **kwargs})
    if not isinstance(env, py_environment.PyEnvironment):
        raise TypeError(
            f"TrainParams.env_ctor returned {type(env).__name__}, not a TF-Agents "
            "PyEnvironment; wrap gym envs with tfagents_system.envs.load_gym_env"
        )
    return env


def env_specs(params: TrainParamsBase) -> tuple:
    """(time step spec, action spec) of the collect env (built once and closed)."""
    env = make_env(params, COLLECT, seed=params.seed)
    try:
        return env.time_step_spec(), env.action_spec()
    finally:
        env.close()


# --- The agent and its training ---

def make_agent(params: TrainParamsBase, time_step_spec, action_spec, train_step):
    """The user's agent (SAC by default) on the env's specs, initialized."""
    from tf_agents.specs import tensor_spec

    time_step_spec = tensor_spec.from_spec(time_step_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    actor_net = params.actor_net_ctor(time_step_spec.observation, action_spec)
    critic_net = params.critic_net_ctor(time_step_spec.observation, action_spec)
    agent = params.agent_ctor(time_step_spec, action_spec, actor_net, critic_net, train_step)
    agent.initialize()
    return agent


def train_on(agent, batch):
    """One gradient step on a sampled batch: replay windows train with their mask as
    the per-step weights (`recurrent.SequenceSacAgent`)."""
    from tfagents_system.replay.packing import SequenceBatch

    if isinstance(batch, SequenceBatch):
        return agent.train(batch.experience, weights=batch.mask)
    return agent.train(batch)


def make_train_loop(agent, next_batch):
    """`train_steps(n, *loop_args)`: a compiled loop of n gradient steps, each on
    `next_batch(*loop_args)`; returns the last step's LossInfo. Several steps per
    call keep Python out of the loop. The step is a function of its own, traced once
    for its two call sites (a third less tracing, the same speed)."""
    import tensorflow as tf

    @tf.function
    def step(*loop_args):
        return train_on(agent, next_batch(*loop_args))

    @tf.function
    def train_steps(n, *loop_args):
        loss_info = step(*loop_args)
        for _ in tf.range(n - 1):
            loss_info = step(*loop_args)
        return loss_info

    return train_steps


def make_entropy_estimate(agent):
    """`entropy(time_steps)`: the policy's entropy, estimated as the mean -log pi of
    actions sampled on a batch (SAC's own sampling, compiled)."""
    import tensorflow as tf

    @tf.function
    def entropy(time_steps):
        _, log_pi = agent._actions_and_log_probs(time_steps, training=False)
        return -tf.reduce_mean(log_pi)

    return entropy


def make_checkpointer(params: TrainParamsBase, paths: ExperimentPaths, agent, train_step):
    """The learner's checkpointer (networks, optimizers, alpha, train step); restores
    the latest checkpoint when there is one."""
    from tf_agents.utils import common

    return common.Checkpointer(str(paths.checkpoints), max_to_keep=params.checkpoints_to_keep,
                               agent=agent, train_step=train_step)


def make_policy_saver(policy, train_step):
    """A SavedModel saver of `policy` that records `train_step`."""
    from tf_agents.policies import policy_saver

    return policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step)


def export_policy(policy, train_step, directory: Path) -> None:
    """Save a SavedModel policy atomically: temp dir, READY sentinel, rename."""
    if (directory / C.POLICY_READY).exists():
        return
    tmp = directory.with_name(f".{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    make_policy_saver(policy, train_step).save(str(tmp))
    (tmp / C.POLICY_READY).write_text(str(int(train_step.numpy())))
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, directory)


def make_summary_writer(paths: ExperimentPaths, kind: str, program: str | None = None):
    """A TensorBoard writer for `kind` (train/collect/eval), per worker where given."""
    import tensorflow as tf

    return tf.summary.create_file_writer(str(paths.tensorboard(kind, program)))


# --- The workers' policies ---

def make_collect_actor(params: TrainParamsBase, paths: ExperimentPaths, env, seed: int, log):
    """(actor, TF variables to refresh): numpy for the default actor network, else the
    exported collect policy."""
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.specs import tensor_spec

    from tfagents_system.actors import NumpyActor, TFPolicyActor

    actor_net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                      tensor_spec.from_spec(env.action_spec()))
    actor, reason = NumpyActor.from_network(actor_net, env.action_spec(), seed)
    if actor is not None:
        log.info("collect policy: the SAC actor network in numpy")
        return actor, []
    log.info("collect policy: the exported TF policy (%s)", reason)
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True, batch_time_steps=False)
    return TFPolicyActor(policy, params.num_envs_per_worker), policy.variables()


def make_eval_policy(paths: ExperimentPaths, actor) -> tuple:
    """(greedy policy, TF variables to refresh) for a worker's evaluation: the numpy
    actor's mode when the collect actor is a NumpyActor (the same network), else the
    exported greedy policy."""
    from tf_agents.policies import py_tf_eager_policy

    from tfagents_system.actors import NumpyActor, NumpyGreedyPolicy

    if isinstance(actor, NumpyActor):
        return NumpyGreedyPolicy(actor), []
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(paths.policy(C.GREEDY_POLICY)), load_specs_from_pbtxt=True)
    return policy, policy.variables()
