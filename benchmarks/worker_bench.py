"""A worker's collection rate (env steps/s) against raw environment stepping, in
one process on one CPU, writing into a running replay server (another process).

- raw: the env as `load_gym_env` builds it (TF-Agents' suite_gym wrappers around
  the pybullet env), uniform random actions, reset at episode ends; nothing else;
- ours: `collect_worker`'s collection path as a worker runs it with the default
  settings: `Builder.collect_actor` (the SAC collect policy), a `Collector` and the
  experience writer of the layout the learner picks, into Reverb;
- perturbed: ours, on envs with dynamics randomization and every perturbation
  wrapper switched on (`common.PERTURBED_CONFIG`);
- ours_dict: ours, on the env's observation given as a dict of its slices
  (`common.dict_bench_params`): the combiner in the numpy policy, dict leaves packed;
- ours_recurrent: ours with the LSTM agent of the recurrent example
  (`common.recurrent_bench_params`): its exported TF collect policy, its state
  carried per env, replay windows written.

With `--ideas`, also the alternatives measured while tuning: the previous path
(PyDriver + SavedModelPyTFEagerPolicy + TF-Agents-layout writer), the exported
TF policy with 1 and 8 lockstep envs, and the numpy policy with the 2-step
item layout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help='JSON {"layout": port}')
    parser.add_argument("--steps", type=int, default=4000, help="env steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ideas", action="store_true")
    args = parser.parse_args(argv)
    common.quiet_imports()
    common.configure_threads(1)
    import numpy as np
    import reverb
    import tensorflow as tf
    from tf_agents.drivers import py_driver
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.utils import common as tfa_common

    from tfagents_system import actors, collection, process
    from tfagents_system.agents.export import export_policy
    from tfagents_system.builder import COLLECT, Builder, make_env
    from tfagents_system.core import constants as C
    from tfagents_system.core.paths import ExperimentPaths
    from tfagents_system.replay import packing, writers
    from tfagents_system.replay.format import LAYOUT_PACKED, LAYOUT_STEPS, ReplayFormat

    ports = json.loads(args.ports)
    client = {layout: reverb.Client(f"localhost:{port}") for layout, port in ports.items()}
    log = logging.getLogger("bench")
    params = common.bench_params()
    episode_steps = 1000  # HalfCheetahBulletEnv-v0's limit

    # An exported collect policy, as the learner writes it (random initial weights).
    root = Path(tempfile.mkdtemp(prefix="worker_bench_"))
    paths = ExperimentPaths(root)
    env = make_env(params, COLLECT, seed=0)
    train_step = tfa_common.create_variable("train_step", 0, dtype=tf.int64)
    agent = Builder(params).agent(train_step)
    export_policy(agent.collect_policy, train_step, paths.policy(C.COLLECT_POLICY))
    weights = [v.numpy() for v in agent.collect_policy.variables()]
    ours = Builder(params).choose_replay_format(agent, 1_000_000)  # the default capacity
    layout = ours.layout
    act_spec = env.action_spec()

    def bound(layout_name, obs_spec=None, window=None):
        return ReplayFormat(layout_name, window=window).bind(
            obs_spec or env.observation_spec(), act_spec)

    variants = {}

    def raw_run(n):
        rng = np.random.default_rng(0)
        low, high = act_spec.minimum, act_spec.maximum
        env.reset()
        for _ in range(n):
            time_step = env.step(rng.uniform(low, high, act_spec.shape).astype(np.float32))
            if time_step.is_last():
                env.reset()
        return n

    variants["raw"] = raw_run

    def collector_variant(actor, num_envs, replay_format, chunk_length=None, env_params=None,
                          spreads=None):
        if env_params is None:
            envs = [env] + [make_env(params, COLLECT, seed=j) for j in range(1, num_envs)]
        else:
            envs = [make_env(env_params, COLLECT, seed=j) for j in range(num_envs)]
        for e in envs if spreads else []:
            e.set_state(spreads)
        env_obs_spec = envs[0].observation_spec()
        stats = collection.EpisodeStats(num_envs)
        collector = collection.Collector(envs, stats, lambda: None, lambda: False,
                                         collection.TaskMetrics(params, C.COLLECT_METRICS_WINDOW))
        item_client = client[replay_format.layout]
        if chunk_length:
            collector.writers = [writers.PackedExperienceWriter(
                item_client, packing.TransitionPacker(env_obs_spec, act_spec),
                lambda: False, chunk_length=chunk_length) for _ in envs]
        else:
            collector.writers = [writers.make_experience_writer(
                item_client, replay_format, lambda: False, common.bench_signer())
                for _ in envs]

        def run(n):
            collector.reset()
            before = stats.env_steps
            # whole episodes, about n env steps (at least one episode per env)
            collector.run(actor, num_envs * max(1, round(n / (episode_steps * num_envs))))
            return stats.env_steps - before
        return run

    actor, tf_variables = Builder(params, paths).collect_actor(env, 0, log)
    if isinstance(actor, actors.NumpyActor):
        actor.set_weights(weights)
    variants["ours"] = collector_variant(actor, params.num_envs_per_worker, ours)
    perturbed = common.bench_params()
    perturbed.env_config.update(common.PERTURBED_CONFIG)
    variants["perturbed"] = collector_variant(actor, params.num_envs_per_worker, ours,
                                              env_params=perturbed,
                                              spreads=common.PERTURBED_SPREADS)
    # The same numbers as a dict: its actor network has the flat one's variables (the
    # combiner has none) and its packed rows the same size, so the same layout.
    dict_params = common.dict_bench_params()
    dict_env = make_env(dict_params, COLLECT, seed=0)
    dict_actor, _ = Builder(dict_params, paths).collect_actor(dict_env, 0, log)
    if isinstance(dict_actor, actors.NumpyActor):
        dict_actor.set_weights(weights)
    dict_format = bound(layout, dict_env.observation_spec())
    dict_env.close()
    variants["ours_dict"] = collector_variant(dict_actor, params.num_envs_per_worker,
                                              dict_format, env_params=dict_params)
    # The LSTM agent: its exported collect policy (the numpy path is feed-forward only).
    lstm_params = common.recurrent_bench_params()
    lstm_paths = ExperimentPaths(root / "lstm")
    lstm_agent = Builder(lstm_params).agent(train_step)
    export_policy(lstm_agent.collect_policy, train_step, lstm_paths.policy(C.COLLECT_POLICY))
    lstm_actor, _ = Builder(lstm_params, lstm_paths).collect_actor(env, 0, log)
    variants["ours_recurrent"] = collector_variant(
        lstm_actor, params.num_envs_per_worker, bound(layout, window=lstm_params.window),
        env_params=lstm_params)

    if args.ideas:
        def tf_actor(num_envs):
            policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
                str(paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True,
                batch_time_steps=False)
            return actors.TFPolicyActor(policy, num_envs)

        variants["idea_tf_policy_1_env"] = collector_variant(tf_actor(1), 1, ours)
        variants["idea_tf_policy_8_envs"] = collector_variant(tf_actor(8), 8, ours)
        numpy_actor, _ = actors.NumpyActor.from_network(
            params.actor_net_ctor(*(agent.time_step_spec.observation, agent.action_spec)),
            act_spec, 0)
        if numpy_actor is not None:
            numpy_actor.set_weights(weights)
            variants["idea_numpy_steps_layout"] = collector_variant(
                numpy_actor, 1, bound(LAYOUT_STEPS))
            variants["idea_numpy_4_envs"] = collector_variant(numpy_actor, 4, ours)
            variants["idea_packed_items"] = collector_variant(numpy_actor, 1,
                                                              bound(LAYOUT_PACKED))
            variants["idea_packed_items_signed"] = collector_variant(
                numpy_actor, 1, dataclasses.replace(bound(LAYOUT_PACKED), signed_rows=True))
            for chunk in (1, 16):
                variants[f"idea_chunk_{chunk}"] = collector_variant(
                    numpy_actor, 1, bound(LAYOUT_PACKED), chunk)

        # The worker before this work: PyDriver, PyTFEagerPolicy, 2-step items.
        old_policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
            str(paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True)
        old_writer = writers.ExperienceWriter(client[LAYOUT_STEPS], lambda: False)
        counted = [0]

        def count(traj):
            counted[0] += 0 if traj.is_boundary() else 1

        def previous_run(n):
            counted[0] = 0
            py_driver.PyDriver(env, old_policy, observers=[old_writer, count],
                               max_episodes=max(1, round(n / episode_steps))).run(env.reset())
            return counted[0]

        variants["idea_previous_path"] = previous_run

    process.freeze_heap()  # as a worker does before it collects
    for name, run in variants.items():
        common.log(f"warming up {name}")
        run(episode_steps)
    runs = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.repeats):
        # Each round starts one variant later, so a periodic disturbance spreads out.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run = variants[name]
            common.settle()
            start = time.perf_counter()
            done = run(args.steps)
            runs[name].append(done / (time.perf_counter() - start))
        common.log(f"round {round_index + 1}/{args.repeats}: " + ", ".join(
            f"{name} {runs[name][-1]:.0f}/s" for name in names))
    shutil.rmtree(root, ignore_errors=True)
    common.emit({
        "cpus": sorted(os.sched_getaffinity(0)), "layout": layout,
        "actor": type(actor).__name__, "num_envs_per_worker": params.num_envs_per_worker,
        "steps": args.steps, "repeats": args.repeats,
        "rates": {name: statistics.median(r) for name, r in runs.items()}, "runs": runs,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
