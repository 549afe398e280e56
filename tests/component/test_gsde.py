"""gSDE (`agents.gsde`, `actors.NumpyActor`, `actors.SdeNoise`): the head's density,
the workers' numpy actor against the TF network, the noise held over an episode and
redrawn where it should be, seeded noise, and a SAC step that trains the noise scale."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from parts import agent_of
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfagents_system import actors
from tfagents_system.agents import gsde
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase


class SdeParams(TrainParamsBase):
    actor_fc_layers = (32, 16)
    critic_joint_fc_layers = (32, 32)
    use_sde = True
    sde_log_std_init = -1.0
    sde_clip_mean = 1.5

    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed)


def numpy_actor(params, env, agent, seed=5, sample_freq=-1):
    net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                tensor_spec.from_spec(env.action_spec()))
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed, sample_freq)
    assert reason is None
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    return actor


@pytest.fixture(scope="module")
def setup():
    params = SdeParams()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    for var in agent.collect_policy.variables():  # non-trivial weights, biases included
        if "log_std" not in var.name:
            var.assign(tf.random.normal(var.shape, stddev=0.5, seed=1))
    return params, env, agent


def observations(n=64):
    return np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)


def test_the_head_is_gsde_with_a_learned_noise_matrix(setup):
    params, env, agent = setup
    head = agent._actor_network._projection_networks
    assert isinstance(head, gsde.SdeProjectionNetwork)
    assert head.log_std.shape == (16, 1) and np.allclose(head.log_std.numpy(), -1.0)
    assert any(v is head.log_std for v in agent.collect_policy.variables())  # published


def test_numpy_actor_matches_the_tf_density_and_mode(setup):
    params, env, agent = setup
    actor = numpy_actor(params, env, agent)
    obs = observations()
    dist, _ = agent._actor_network(obs, step_type=(), network_state=(), training=False)
    loc, std = actor.loc_and_std(obs)
    np.testing.assert_allclose(loc, dist.input_distribution.loc.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, dist.input_distribution.stddev().numpy(), rtol=1e-4,
                               atol=1e-6)
    assert np.abs(loc).max() <= 1.5 + 1e-6  # the mean is clipped before the tanh
    # the scale is sqrt(f^2 sigma^2): a function of the state
    features = actor.features(obs)
    sigma = np.exp(head_log_std(agent))
    np.testing.assert_allclose(std[:, 0], np.sqrt(features ** 2 @ sigma[:, 0] ** 2 + 1e-6),
                               rtol=1e-4)
    assert std.std() > 0.01 * std.mean()
    from tf_agents.policies import greedy_policy

    tf_greedy = greedy_policy.GreedyPolicy(agent.policy).action(
        ts.restart(tf.constant(obs), batch_size=64)).action.numpy()
    np.testing.assert_allclose(actor.greedy(obs), tf_greedy, rtol=1e-4, atol=1e-5)


def head_log_std(agent):
    return agent._actor_network._projection_networks.log_std.numpy()


def test_the_noise_is_held_over_an_episode_and_has_the_density(setup):
    params, env, agent = setup
    actor = numpy_actor(params, env, agent)
    obs = observations(4)
    first = np.ones(4, bool)
    a0 = actor.sample(obs, first)
    # same states, no episode start: the same noise matrix, so the same actions
    np.testing.assert_array_equal(actor.sample(obs, ~first), a0)
    # one env starts an episode: only its action changes
    restart = np.array([False, True, False, False])
    a1 = actor.sample(obs, restart)
    assert np.array_equal(a1[[0, 2, 3]], a0[[0, 2, 3]]) and not np.array_equal(a1[1], a0[1])
    # over many episode starts the pre-tanh noise has the learner's scale
    state = np.repeat(obs[:1], 2000, axis=0)
    samples = actor.sample(state, np.ones(2000, bool))
    loc, std = actor.loc_and_std(obs[:1])
    low, high = env.action_spec().minimum, env.action_spec().maximum
    pre = np.arctanh(np.clip((samples - (high + low) / 2) / ((high - low) / 2), -0.999999,
                             0.999999))
    assert abs(pre.mean() - loc[0, 0]) < 4 * std[0, 0] / np.sqrt(2000)
    assert abs(pre.std() / std[0, 0] - 1) < 0.1


def test_the_noise_is_redrawn_every_sample_freq_steps_and_seeded(setup):
    params, env, agent = setup
    obs = observations(2)
    actor = numpy_actor(params, env, agent, seed=7, sample_freq=3)
    steps = [actor.sample(obs, np.array([i == 0] * 2)) for i in range(7)]
    same = [np.array_equal(steps[i], steps[i - 1]) for i in range(1, 7)]
    assert same == [True, True, False, True, True, False]
    again = numpy_actor(params, env, agent, seed=7, sample_freq=3)
    np.testing.assert_array_equal(
        np.stack([again.sample(obs, np.array([i == 0] * 2)) for i in range(7)]),
        np.stack(steps))
    other = numpy_actor(params, env, agent, seed=8, sample_freq=3)
    assert not np.array_equal(other.sample(obs, np.ones(2, bool)), steps[0])


def test_a_sac_step_trains_the_noise_scale_and_the_features_through_it(setup):
    params, env, agent = setup
    obs = tf.constant(observations(32))
    # the scale's gradient reaches log_std and the hidden layers (SB3's SAC learns the
    # features), never the mean's layer
    head = agent._actor_network._projection_networks
    with tf.GradientTape(persistent=True) as tape:
        dist, _ = agent._actor_network(obs, step_type=(), network_state=(), training=True)
        scale = tf.reduce_sum(dist.input_distribution.stddev())
    grads = tape.gradient(scale, agent._actor_network.trainable_variables)
    named = {v.name: g for v, g in zip(agent._actor_network.trainable_variables, grads)}
    assert named[head.log_std.name] is not None
    mean_layer = {v.name for v in head.mean_layer.trainable_variables}
    assert mean_layer and all(named[name] is None for name in mean_layer)
    hidden = [name for name in named if name not in mean_layer and "log_std" not in name]
    assert hidden and all(named[name] is not None and np.any(named[name].numpy() != 0)
                          for name in hidden if "kernel" in name)
    before = head.log_std.numpy().copy()
    batch = 32
    experience = trajectory.Trajectory(
        step_type=tf.zeros([batch, 2], tf.int32) + [[0, 1]],
        observation=tf.random.normal([batch, 2, 3], seed=2),
        action=tf.random.uniform([batch, 2, 1], -2, 2, seed=3),
        policy_info=(), next_step_type=tf.ones([batch, 2], tf.int32),
        reward=tf.random.normal([batch, 2], seed=4), discount=tf.ones([batch, 2]))
    loss = agent.train(experience)
    assert np.isfinite(float(loss.loss))
    assert not np.allclose(head.log_std.numpy(), before)


@pytest.mark.parametrize("change, named", [
    ({"recurrent": True}, "recurrent = True"),
    ({"actor_fc_layers": ()}, "actor_fc_layers=()"),
    ({"sde_clip_mean": -1.0}, "sde_clip_mean=-1.0"),
    ({"sde_sample_freq": 2.5}, "sde_sample_freq=2.5"),
    ({"use_sde": "yes"}, "use_sde='yes'"),
])
def test_bad_gsde_settings_are_named(change, named):
    params = SdeParams()
    for name, value in change.items():
        setattr(params, name, value)
    problems = params.validate()
    assert any(named in p for p in problems), problems


def test_gsde_with_pixels_is_refused():
    params = SdeParams({"env_id": "dm_control/cartpole-swingup", "pixels": {"size": 32}})
    assert any("image observations" in p and "use_sde = False" in p for p in params.validate())


def test_the_exported_greedy_policy_is_the_numpy_greedy_and_the_collect_policy_loads(
        setup, tmp_path):
    """The workers wait for both SavedModels and the evaluation CLI loads the greedy one:
    gSDE's head exports, and its greedy actions are the numpy actor's."""
    from tf_agents.policies import greedy_policy, py_tf_eager_policy

    from tfagents_system.agents.export import export_policy

    params, env, agent = setup
    export_policy(greedy_policy.GreedyPolicy(agent.policy), agent.train_step_counter,
                  tmp_path / "greedy")  # as the learner exports it
    export_policy(agent.collect_policy, agent.train_step_counter, tmp_path / "collect")
    obs = observations(8)
    actor = numpy_actor(params, env, agent)
    loaded = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(tmp_path / "greedy"), load_specs_from_pbtxt=True)
    greedy = np.stack([loaded.action(ts.restart(o)).action for o in obs])
    np.testing.assert_allclose(greedy, actor.greedy(obs), rtol=1e-4, atol=1e-5)
    collect = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(tmp_path / "collect"), load_specs_from_pbtxt=True)
    sampled = collect.action(ts.restart(obs[0])).action
    spec = env.action_spec()
    assert spec.minimum <= sampled.min() and sampled.max() <= spec.maximum
