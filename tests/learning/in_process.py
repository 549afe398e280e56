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
