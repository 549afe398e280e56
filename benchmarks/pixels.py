"""Throughput of the pixel layout, each part against its own baseline in the same run,
with the pixels preset's settings (examples/pixels.py) on a dm_control task from
84x84 pixels (default: cartpole swingup, action repeat 8).

- Worker: env steps/s (one per action) of a collect loop as a worker runs it (the
  convolutional collect policy on a batch of `--envs` envs in one call, each
  transition written into frame rows as a block writer fills its block), against
  stepping the same envs with random actions and rendering (the env alone).
- Learner: gradient steps/s of the compiled train step sampling from the learner's
  replay memory (a transition and its block's frames, stacked back into
  observations), against the same train step on one fixed batch already in memory.
- Memory: bytes per transition of the rows the worker loop wrote, against one frame.

TensorFlow runs with one thread per pool here (a worker's CPU); each ratio's two
sides run in the same configuration, one after the other.

    ./benchmarks/run.sh pixels [--task dm_control/cartpole-swingup] [--seconds S]

Prints a table and `RESULT {...}` (benchmarks.common).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common

ACTION_REPEAT = {"dm_control/cartpole-swingup": 8, "dm_control/reacher-easy": 4,
                 "dm_control/cheetah-run": 4, "dm_control/finger-spin": 2,
                 "dm_control/ball_in_cup-catch": 4, "dm_control/walker-walk": 2}


def preset_params(task: str):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from pixels import TrainParams

    return TrainParams({"env_id": task, "pixels": {
        "size": 84, "frame_stack": 3, "action_repeat": ACTION_REPEAT.get(task, 4)}})


class BlockRows:
    """A block writer without a server: frame rows into one reused block per env."""

    def __init__(self, packer, envs: int, keep: bool = False):
        self.kept = [] if keep else None  # copies of every row written
        self.builders = [packer.builder() for _ in range(envs)]
        self.blocks = [np.zeros((128, packer.size), np.float32) for _ in range(envs)]
        self.counts = [0] * envs
        self.rows = self.transitions = 0

    def add(self, index, time_step, action, next_time_step) -> None:
        builder, block = self.builders[index], self.blocks[index]
        if self.counts[index] + builder.max_rows > len(block):
            self.counts[index] = 0
            builder.block_started()
        start = self.counts[index]
        written = builder.write(time_step, action, next_time_step, block[start:])
        if self.kept is not None:
            self.kept.append(block[start:start + written].copy())
        self.counts[index] += written
        self.rows += written
        self.transitions += 1
        if next_time_step.is_last():
            self.counts[index] = 0
            builder.block_started()


def step_rate(envs, act, seconds: float, on_step=None) -> float:
    """Env steps/s of stepping `envs` in lockstep with `act(time_steps) -> actions`."""
    time_steps = [env.reset() for env in envs]
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        actions = act(time_steps)
        for i, env in enumerate(envs):
            next_time_step = env.step(actions[i])
            if on_step is not None:
                on_step(i, time_steps[i], actions[i], next_time_step)
            time_steps[i] = env.reset() if next_time_step.is_last() else next_time_step
            steps += 1
    return steps / (time.perf_counter() - started)


def worker_rates(params, agent, packer, envs: int, seconds: float) -> dict:
    """Env steps/s of the env alone (random actions, rendering) and of the worker's
    loop (the conv policy batched over the envs, frame rows written)."""
    from tf_agents.policies import py_tf_eager_policy

    from tfagents_system.actors import RandomActor, TFPolicyActor

    built = [params.env_ctor(seed) for seed in range(envs)]
    random_actor = RandomActor(built[0].action_spec(), 0)
    policy = TFPolicyActor(py_tf_eager_policy.PyTFEagerPolicy(agent.collect_policy,
                                                              use_tf_function=True), envs)
    rows = BlockRows(packer, envs)

    def random_actions(time_steps):
        return [step.action for step in random_actor(time_steps)]

    def policy_actions(time_steps):
        return [step.action for step in policy(time_steps)]

    alone = step_rate(built, random_actions, seconds)
    worker = step_rate(built, policy_actions, seconds, rows.add)
    for env in built:
        env.close()
    return {"env_alone": alone, "worker": worker,
            "bytes_per_transition": rows.rows * packer.row_bytes() / max(1, rows.transitions)}


def learner_rates(params, agent, packer, memory_rows: np.ndarray, seconds: float) -> dict:
    """Gradient steps/s sampling from the replay memory, and on one fixed batch."""
    import tensorflow as tf

    from tfagents_system.agents.sac import train
    from tfagents_system.replay import frames
    from tfagents_system.replay.memory import ReplayMemory

    memory = ReplayMemory(len(memory_rows), packer.size, None)
    memory.add(memory_rows)
    batch_size = int(params.batch_size)

    def sampled():
        return memory.sample_with_history(batch_size, packer.history, frames.POSITION,
                                          packer.valid)

    fixed = tf.constant(sampled())

    @tf.function
    def from_memory(n):
        for _ in tf.range(n):
            train(agent, packer.unpack(sampled()))

    @tf.function
    def from_fixed(n):
        for _ in tf.range(n):
            train(agent, packer.unpack(fixed))

    out = {}
    for name, loop in (("fixed_batch", from_fixed), ("replay_memory", from_memory)):
        loop(tf.constant(2))
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            loop(tf.constant(10))
            steps += 10
        out[name] = steps / (time.perf_counter() - started)
    return out


def collected_rows(params, packer, steps: int) -> np.ndarray:
    """Frame rows of `steps` random transitions, as the workers' blocks deliver them."""
    from tfagents_system.actors import RandomActor

    env = params.env_ctor(7)
    actor = RandomActor(env.action_spec(), 7)
    writer = BlockRows(packer, 1, keep=True)
    time_step = env.reset()
    for _ in range(steps):
        action = actor([time_step])[0].action
        next_time_step = env.step(action)
        writer.add(0, time_step, action, next_time_step)
        time_step = env.reset() if next_time_step.is_last() else next_time_step
    env.close()
    return np.concatenate(writer.kept)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="dm_control/cartpole-swingup")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4],
                        help="envs per worker to measure (one policy call for all)")
    parser.add_argument("--memory_steps", type=int, default=2000)
    args = parser.parse_args(argv)
    common.quiet_imports()
    common.configure_threads(1)
    import tensorflow as tf
    from tf_agents.utils import common as tfa_common

    from tfagents_system.builder import Builder
    from tfagents_system.replay.frames import FramePacker

    params = preset_params(args.task)
    env = params.env_ctor(0)
    agent = Builder(params).agent(tfa_common.create_variable("train_step", 0, dtype=tf.int64),
                                  (env.time_step_spec(), env.action_spec()))
    packer = FramePacker(agent.collect_data_spec.observation, agent.collect_data_spec.action,
                         params.frame_stack)
    env.close()
    workers = {n: worker_rates(params, agent, packer, n, args.seconds) for n in args.envs}
    learner = learner_rates(params, agent, packer,
                            collected_rows(params, packer, args.memory_steps), args.seconds)
    lines = ["| part | baseline | measured | ratio |", "|---|---|---|---|"]
    for n, rates in workers.items():
        lines.append(f"| worker env steps/s, {n} env(s), conv policy + frame rows "
                     f"(baseline: the envs alone, random actions, rendering) | "
                     f"{rates['env_alone']:.1f} | {rates['worker']:.1f} | "
                     f"{rates['worker'] / rates['env_alone']:.2f} |")
    lines.append(f"| learner grad steps/s, sampled from the replay memory (baseline: one "
                 f"fixed batch) | {learner['fixed_batch']:.2f} | {learner['replay_memory']:.2f}"
                 f" | {learner['replay_memory'] / learner['fixed_batch']:.2f} |")
    bytes_per = next(iter(workers.values()))["bytes_per_transition"]
    lines.append(f"| replay memory bytes per transition (baseline: one "
                 f"{'x'.join(map(str, packer.frame_shape))} frame) | {packer.frame_bytes} | "
                 f"{bytes_per:.0f} | {bytes_per / packer.frame_bytes:.3f} |")
    print("\n".join(lines))
    common.emit({"task": args.task, "batch_size": int(params.batch_size),
                 "workers": {str(n): rates for n, rates in workers.items()},
                 "learner": learner, "frame_bytes": packer.frame_bytes,
                 "bytes_per_transition": bytes_per})
    return 0


if __name__ == "__main__":
    sys.exit(main())
