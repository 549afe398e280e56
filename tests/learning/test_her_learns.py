"""Slow: hindsight relabeling learns a sparse-reward goal task that SAC alone does not.

`PointGoal` (tfagents_system.testing_envs, a gymnasium id loaded through the
framework's bridge): move a point in 3-D to a goal within 0.05, reward 0 there and
-1 elsewhere, 25 steps. A uniform random policy never reached the goal in 300
episodes. Measured: HER 1.00, SAC alone 0.00 (43 s for both on 2 cores).
Both runs train through the framework's own pieces (the default networks over the
dict observation, the workers' numpy actor, the transition packer, and for HER the
workers' `HindsightWriter` with the env's own `compute_reward`), with the same seeds,
settings and env steps; then the greedy policy is judged on the same 50 episodes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from in_process import agent_actor_packer

pytestmark = pytest.mark.slow

ENV_ID = "tfagents_system.testing_envs:PointGoal-v0"
WARMUP_STEPS = 500
ENV_STEPS = 4000  # warm-up included; one gradient step per env step after it
EVAL_EPISODES = 50


class RowBuffer:
    """An experience writer's interface over an in-memory array of packed rows."""

    def __init__(self, packer, capacity):
        self.packer = packer
        self.rows = np.zeros((capacity, packer.size), np.float32)
        self.count = 0

    def add(self, time_step, action_step, next_time_step, episode_end=None):
        self.packer.pack(time_step, action_step.action, next_time_step,
                         out=self.rows[self.count])
        self.count += 1


def train_and_evaluate(her: bool, seed: int = 0) -> tuple[float, int]:
    """(greedy success rate, rows trained on) after ENV_STEPS env steps."""
    import tensorflow as tf

    from tfagents_system import actors, gymnasium_bridge
    from tfagents_system.hindsight import GoalFunctions, HerSettings, HindsightWriter
    from tfagents_system.params import GymTrainParams

    class Params(GymTrainParams):
        actor_fc_layers = (64, 64)
        critic_joint_fc_layers = (64, 64)
        discount = 0.95
        target_update_tau = 0.05
        actor_learning_rate = critic_learning_rate = alpha_learning_rate = 1e-3

    params = Params({"env_id": ENV_ID})
    env = params.env_ctor(seed)
    agent, actor, packer = agent_actor_packer(params, env, seed)
    buffer = RowBuffer(packer, ENV_STEPS * 5)
    writer = buffer if not her else HindsightWriter(
        buffer, HerSettings("future", 4), GoalFunctions(gymnasium_bridge.goal_env(env)),
        np.random.default_rng(seed))
    train = tf.function(lambda batch: agent.train(packer.unpack(batch)).loss)
    rng = np.random.default_rng(seed)
    time_step = env.reset()
    for i in range(ENV_STEPS):
        if i < WARMUP_STEPS:
            action = rng.uniform(-1, 1, env.action_spec().shape).astype(np.float32)
        else:
            if i % 50 == 0:
                actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
            action = actor([time_step])[0].action
        next_time_step = env.step(action)
        writer.add(time_step, type("Step", (), {"action": action})(), next_time_step)
        time_step = env.reset() if next_time_step.is_last() else next_time_step
        if i >= WARMUP_STEPS:
            train(buffer.rows[rng.integers(0, buffer.count, 256)])
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    greedy = actors.NumpyGreedyPolicy(actor)
    eval_env = params.env_ctor(1000 + seed)  # the same goals for both runs
    successes = 0
    for _ in range(EVAL_EPISODES):
        time_step = eval_env.reset()
        while not time_step.is_last():
            time_step = eval_env.step(greedy.action(time_step).action)
        successes += bool(eval_env.get_info()["is_success"])
    return successes / EVAL_EPISODES, buffer.count


def test_her_learns_a_sparse_goal_task_that_sac_alone_does_not():
    start = time.monotonic()
    with_her, rows_her = train_and_evaluate(her=True)
    without, rows_plain = train_and_evaluate(her=False)
    print(f"\nPointGoal after {ENV_STEPS} env steps, greedy success over {EVAL_EPISODES} "
          f"episodes: HER {with_her:.2f} ({rows_her} rows), SAC alone {without:.2f} "
          f"({rows_plain} rows) ({time.monotonic() - start:.0f} s for both)")
    assert rows_plain == ENV_STEPS and rows_her == 5 * ENV_STEPS  # every episode relabeled
    assert with_her >= 0.8
    assert without <= 0.2
