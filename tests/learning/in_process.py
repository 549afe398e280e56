"""Training through the framework's own pieces in the test's process (no launch): the
agent the builder makes, the workers' numpy actor, the transition packer."""

from __future__ import annotations


def agent_actor_packer(params, env, seed: int):
    """(SAC agent, numpy actor of its policy network, transition packer) for `env`,
    TensorFlow seeded with `seed`."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    from tf_agents.utils import common

    from tfagents_system import actors
    from tfagents_system.builder import Builder
    from tfagents_system.replay.packing import TransitionPacker

    tf.random.set_seed(seed)
    agent = Builder(params).agent(common.create_variable("train_step", 0, dtype=tf.int64),
                                  (env.time_step_spec(), env.action_spec()))
    actor, reason = actors.NumpyActor.from_network(
        params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                              tensor_spec.from_spec(env.action_spec())), env.action_spec(), seed,
        params.sde_sample_freq)
    assert reason is None, reason
    return agent, actor, TransitionPacker.for_spec(agent.collect_data_spec)


def train_point_mass(settings: dict, seed: int = 0, warmup: int = 500, train_steps: int = 2500,
                     eval_episodes: int = 20, flat: bool = True) -> tuple[float, float]:
    """SAC (or CrossQ) with `settings` on `PointMassReach` (50-step episodes; its flat
    observation, or the dict of position, velocity and goal with `flat=False`): one
    gradient step per env step after `warmup` random ones, the workers' numpy actor
    collecting with weights refreshed every 50 steps. Returns (mean greedy return over
    `eval_episodes`, mean |a_t - a_t-1| of the collect policy within episodes)."""
    import numpy as np
    import tensorflow as tf

    from tfagents_system import actors
    from tfagents_system.params import TrainParamsBase
    from tfagents_system.testing_envs import point_mass_reach

    class Params(TrainParamsBase):
        actor_fc_layers = (64, 64)
        critic_joint_fc_layers = (64, 64)
        target_update_tau = 0.01

        def env_ctor(self, seed=None):
            return point_mass_reach(seed, flat=flat, episode_steps=50)

    params = Params()
    for name, value in settings.items():
        setattr(params, name, value)
    assert params.validate() == [], params.validate()
    env = params.env_ctor(seed)
    agent, actor, packer = agent_actor_packer(params, env, seed)
    rows = np.zeros((warmup + train_steps, packer.size), np.float32)
    train = tf.function(lambda batch: agent.train(packer.unpack(batch)).loss)
    rng = np.random.default_rng(seed)
    time_step, jumps, previous = env.reset(), [], None
    for i in range(len(rows)):
        if i < warmup:
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
        if i >= warmup:
            train(rows[rng.integers(0, i + 1, 256)])
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    greedy = actors.NumpyGreedyPolicy(actor)
    eval_env = params.env_ctor(1000 + seed)
    returns = []
    for _ in range(eval_episodes):
        time_step, total = eval_env.reset(), 0.0
        while not time_step.is_last():
            time_step = eval_env.step(greedy.action(time_step).action)
            total += float(time_step.reward)
        returns.append(total)
    return float(np.mean(returns)), float(np.mean(jumps))
