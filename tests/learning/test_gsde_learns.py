"""Slow: SAC with gSDE learns, and explores with smoother actions than white noise.

`PointMassReach` (flat, 50-step episodes) trains in this process through the
framework's own pieces (the default networks with gSDE's head, the workers' numpy
actor drawing the noise matrix per episode, the transition packer), then the greedy
policy is evaluated. A uniform random policy returns about -67; plain SAC about -10
after this budget (test_dict_observation_learns). The collect policy's actions are
also compared step to step: gSDE's noise is a function of the state, so consecutive
actions differ less than with SAC's white noise (the reason robots want it).

gSDE's initial noise scale is sqrt(sum_f f^2) exp(sde_log_std_init), so it depends on
how large the actor's features are. On this task they are small (about 0.1 per unit
of 64): SB3's -3 starts the policy at a scale of about 0.05, far below SAC's target
entropy, and alpha then grows while the mean stays at 0 (measured: no learning in
2500 steps); -1 starts it near 0.4 and learns. The noise matrix is drawn every 4
steps: held for a whole 50-step episode it explored too little (greedy -22 against
plain SAC's -10; every 16 steps -18.5, every 4 steps -10.8 against -10.7, measured).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from in_process import agent_actor_packer

pytestmark = pytest.mark.slow

EPISODE_STEPS = 50
WARMUP_STEPS = 500
TRAIN_STEPS = 2500  # one gradient step per env step after the warm-up
EVAL_EPISODES = 20
RANDOM_RETURN = -67.0


def train_and_evaluate(use_sde: bool, seed: int = 0) -> tuple[float, float]:
    """(mean greedy return, mean |a_t - a_t-1| of the collect policy's actions within
    episodes) after TRAIN_STEPS of SAC with or without gSDE."""
    import tensorflow as tf

    from tfagents_system import actors
    from tfagents_system.params import TrainParamsBase
    from tfagents_system.testing_envs import point_mass_reach

    class Params(TrainParamsBase):
        actor_fc_layers = (64, 64)
        critic_joint_fc_layers = (64, 64)
        target_update_tau = 0.01
        sde_log_std_init = -1.0  # module docstring
        sde_sample_freq = 4  # module docstring

        def env_ctor(self, seed=None):
            return point_mass_reach(seed, flat=True, episode_steps=EPISODE_STEPS)

    Params.use_sde = use_sde
    params = Params()
    env = params.env_ctor(seed)
    agent, actor, packer = agent_actor_packer(params, env, seed)
    rows = np.zeros((WARMUP_STEPS + TRAIN_STEPS, packer.size), np.float32)
    train = tf.function(lambda batch: agent.train(packer.unpack(batch)).loss)
    rng = np.random.default_rng(seed)
    time_step, jumps = env.reset(), []
    previous = None
    for i in range(len(rows)):
        if i < WARMUP_STEPS:
            action = rng.uniform(-1, 1, 2).astype(np.float32)
        else:
            if i % 50 == 0:
                actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
            action = actor([time_step])[0].action
            if previous is not None and not time_step.is_first():
                jumps.append(float(np.abs(action - previous).mean()))
            previous = action
        next_time_step = env.step(action)
        packer.pack(time_step, action, next_time_step, out=rows[i])
        time_step = env.reset() if next_time_step.is_last() else next_time_step
        if i >= WARMUP_STEPS:
            train(rows[rng.integers(0, i + 1, 256)])
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    greedy = actors.NumpyGreedyPolicy(actor)
    eval_env = params.env_ctor(1000 + seed)
    returns = []
    for _ in range(EVAL_EPISODES):
        time_step, total = eval_env.reset(), 0.0
        while not time_step.is_last():
            time_step = eval_env.step(greedy.action(time_step).action)
            total += float(time_step.reward)
        returns.append(total)
    return float(np.mean(returns)), float(np.mean(jumps))


def test_gsde_learns_with_smoother_exploration():
    start = time.monotonic()
    sde_return, sde_jump = train_and_evaluate(use_sde=True)
    plain_return, plain_jump = train_and_evaluate(use_sde=False)
    print(f"\npoint-mass reach after {TRAIN_STEPS} gradient steps: greedy return gSDE "
          f"{sde_return:.1f}, plain SAC {plain_return:.1f}; mean |a_t - a_t-1| while "
          f"collecting: gSDE {sde_jump:.3f}, plain {plain_jump:.3f} "
          f"({time.monotonic() - start:.0f} s for both)")
    assert plain_return > -30, "the plain baseline did not learn: the test proves nothing"
    assert sde_return - RANDOM_RETURN >= 0.9 * (plain_return - RANDOM_RETURN)
    assert sde_jump < 0.5 * plain_jump
