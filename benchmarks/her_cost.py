"""Where hindsight relabeling should run: its cost on a worker (at each episode's
end, as `tfagents_system.hindsight` does it) against its cost in the learner's
sampling (the alternative), on PandaPush-v3 with the manipulation preset's settings.

- Worker: env steps/s of a collect env with the preset's wrappers, packing every
  transition into rows (as a block writer does), without HER and with the preset's
  HER (4 relabeled copies per transition, the env's own `compute_reward`).
- Learner: gradient steps/s of the compiled train loop on a fixed batch of 256 rows,
  plain, and with what relabeling in the sampling needs at least: one call into
  Python per gradient step for the env's `compute_reward` of the batch (a
  `tf.numpy_function`; the goals themselves would be drawn in TensorFlow). The
  drawing of future goals, which needs each row's episode bounds, is not counted:
  the learner-side figure is a lower bound of its cost.

    ./benchmarks/run.sh her_cost [--seconds S]

Prints a table and `RESULT {...}` (benchmarks.common).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common

ENV_ID = "PandaPush-v3"
BATCH = 256


def preset_params():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from manipulation import TrainParams

    return TrainParams({"env_id": ENV_ID})


class Rows:
    """A packing writer without a server: rows into a reused block, as a block writer
    fills its block."""

    def __init__(self, packer):
        self.packer = packer
        self.block = np.zeros((128, packer.size), np.float32)
        self.count = 0

    def add(self, time_step, action_step, next_time_step, episode_end=None):
        self.packer.pack(time_step, action_step.action, next_time_step,
                         out=self.block[self.count % 128])
        self.count += 1


def worker_rates(params, packer, seconds: float) -> dict:
    """Env steps/s without and with HER relabeling (random actions)."""
    from tfagents_system import gymnasium_bridge
    from tfagents_system.actors import RandomActor
    from tfagents_system.hindsight import GoalFunctions, HindsightWriter, settings_of

    env = params.env_ctor(0)
    functions = GoalFunctions(gymnasium_bridge.goal_env(env))
    actor = RandomActor(env.action_spec(), 0)

    def rate(writer) -> tuple[float, int]:
        time_step, steps = env.reset(), 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or not time_step.is_first():
            action_step = actor([time_step])[0]
            next_time_step = env.step(action_step.action)
            writer.add(time_step, action_step, next_time_step)
            steps += 1
            time_step = env.reset() if next_time_step.is_last() else next_time_step
        return steps / (time.perf_counter() - started), steps

    plain = Rows(packer)
    relabeled = Rows(packer)
    her = HindsightWriter(relabeled, settings_of(params), functions, np.random.default_rng(0))
    rates = {}
    for name, writer in (("plain", plain), ("her", her), ("plain_again", plain),
                         ("her_again", her)):
        rates[name] = rate(writer)[0]
    env.close()
    return {"plain": max(rates["plain"], rates["plain_again"]),
            "her": max(rates["her"], rates["her_again"]),
            "rows_per_env_step_her": relabeled.count / max(1, her.relabeled // 4)}


def learner_rates(params, packer, agent, functions, seconds: float) -> dict:
    """Gradient steps/s on a fixed batch: plain, and with one Python call per step for
    the env's compute_reward of the batch."""
    import tensorflow as tf

    from tfagents_system.testing_envs import random_rows

    env = params.env_ctor(1)
    batch = tf.constant(random_rows(env, packer, BATCH, seed=1)[:BATCH])
    env.close()

    def reward(achieved, desired):
        return np.asarray(functions.rewards(achieved, desired), np.float32)

    @tf.function
    def plain(n):
        for _ in tf.range(n):
            agent.train(packer.unpack(batch))

    @tf.function
    def relabeling(n):
        for _ in tf.range(n):
            rows = batch
            # two goal-sized column slices: only the call's cost matters here
            achieved, desired = rows[:, 4:7], rows[:, 7:10]
            rewards = tf.numpy_function(reward, [achieved, desired], tf.float32)
            rows = tf.concat([rows[:, :2], rewards[:, None], rows[:, 3:]], axis=1)
            agent.train(packer.unpack(rows))

    out = {}
    for name, loop in (("plain", plain), ("relabeling", relabeling)):
        loop(tf.constant(5))
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            loop(tf.constant(50))
            steps += 50
        out[name] = steps / (time.perf_counter() - started)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    common.quiet_imports()
    common.configure_threads(1)
    import tensorflow as tf
    from tf_agents.utils import common as tfa_common

    from tfagents_system import gymnasium_bridge
    from tfagents_system.builder import Builder
    from tfagents_system.hindsight import GoalFunctions
    from tfagents_system.replay.packing import TransitionPacker

    params = preset_params()
    env = params.env_ctor(0)
    agent = Builder(params).agent(tfa_common.create_variable("train_step", 0, dtype=tf.int64),
                                  (env.time_step_spec(), env.action_spec()))
    functions = GoalFunctions(gymnasium_bridge.goal_env(env))
    packer = TransitionPacker.for_spec(agent.collect_data_spec)
    env.close()
    worker = worker_rates(params, packer, args.seconds)
    learner = learner_rates(params, packer, agent, functions, args.seconds)
    step_us = 1e6 / worker["her"] - 1e6 / worker["plain"]
    grad_us = 1e6 / learner["relabeling"] - 1e6 / learner["plain"]
    print(f"| part | without HER | with HER | ratio | cost |\n|---|---|---|---|---|\n"
          f"| worker env steps/s (relabel at the episode's end) | {worker['plain']:.0f} | "
          f"{worker['her']:.0f} | {worker['her'] / worker['plain']:.2f} | "
          f"{step_us:.0f} us per env step |\n"
          f"| learner grad steps/s (relabel in the sampling, lower bound) | "
          f"{learner['plain']:.0f} | {learner['relabeling']:.0f} | "
          f"{learner['relabeling'] / learner['plain']:.2f} | {grad_us:.0f} us per gradient "
          f"step |\n"
          f"row size {packer.size} floats ({packer.size * 4} bytes); rows stored per env "
          f"step: 1 learner-side, {params.rows_per_env_step} worker-side")
    common.emit({"worker": worker, "learner": learner, "row_bytes": packer.size * 4,
                 "worker_us_per_env_step": step_us, "learner_us_per_grad_step": grad_us})
    return 0


if __name__ == "__main__":
    sys.exit(main())
