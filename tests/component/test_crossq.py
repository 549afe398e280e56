"""CrossQ (`agents.crossq`, `agents.batch_renorm`): batch renormalization against its
formula, the joint pass that trains the critics without target networks, the policy
delay, the running statistics' modes, the workers' numpy actor and the exported
greedy policy, a checkpoint round trip, and the settings' validation."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from parts import agent_of
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfagents_system import actors
from tfagents_system.agents import batch_renorm, crossq, networks
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase


class CrossQParams(TrainParamsBase):
    agent = "crossq"
    actor_fc_layers = (32, 16)
    crossq_critic_layers = (64, 64)
    crossq_renorm_warmup_steps = 5

    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed)


def batch(size=32, seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return tf.constant(rng.normal(size=shape).astype(np.float32))

    return trajectory.Trajectory(
        step_type=tf.zeros([size, 2], tf.int32) + [[0, 1]], observation=normal(size, 2, 3),
        action=tf.clip_by_value(normal(size, 2, 1), -2, 2), policy_info=(),
        next_step_type=tf.ones([size, 2], tf.int32), reward=normal(size, 2),
        discount=tf.ones([size, 2]))


def renorm_reference(x, mean, variance, moving_mean, moving_variance, warm, eps=1e-3):
    """Batch renormalization's output (scale 1, offset 0) in numpy."""
    if not warm:
        return (x - mean) / np.sqrt(variance + eps)
    running = np.sqrt(moving_variance + eps)
    r = np.clip(np.sqrt(variance + eps) / running, 1 / 3, 3)
    d = np.clip((mean - moving_mean) / running, -5, 5)
    return (x - mean) / np.sqrt(variance + eps) * r + d


def test_batch_renorm_is_batch_norm_in_warm_up_then_renormalizes():
    layer = batch_renorm.BatchRenorm(momentum=0.9, warmup_steps=2)
    rng = np.random.default_rng(0)
    moving_mean, moving_variance = np.zeros(4), np.ones(4)
    for step in range(5):
        x = rng.normal(3.0 * step, 1.0 + step, size=(256, 4)).astype(np.float32)
        mean, variance = x.mean(0), x.var(0)
        expected = renorm_reference(x, mean, variance, moving_mean, moving_variance,
                                    warm=step >= 2)
        np.testing.assert_allclose(layer(x, training=True).numpy(), expected, rtol=1e-3,
                                   atol=1e-3)
        moving_mean = 0.9 * moving_mean + 0.1 * mean
        moving_variance = 0.9 * moving_variance + 0.1 * variance
        np.testing.assert_allclose(layer.moving_mean.numpy(), moving_mean, rtol=1e-4)
    assert layer.steps.numpy() == 5
    # evaluation: the running statistics, nothing updated
    x = rng.normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(x, training=False).numpy(),
                               (x - moving_mean) / np.sqrt(moving_variance + 1e-3), rtol=1e-4,
                               atol=1e-5)
    assert layer.steps.numpy() == 5


@pytest.mark.parametrize("warm", [False, True])
def test_a_dead_relu_unit_keeps_the_gradients_finite(warm):
    """A ReLU unit that is 0 over the whole batch gives a feature of variance 0:
    sqrt(0)'s infinite gradient once made a CrossQ run's critic loss NaN."""
    x = tf.constant(np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32))
    dense = tf.keras.layers.Dense(  # unit 0 is dead: zero kernel, bias -1
        4, activation="relu", kernel_initializer="zeros",
        bias_initializer=tf.keras.initializers.Constant([-1.0, 1.0, 1.0, 1.0]))
    layer = batch_renorm.BatchRenorm(warmup_steps=0 if warm else 100)
    with tf.GradientTape() as tape:
        y = layer(dense(x), training=True)
        loss = tf.reduce_sum(tf.square(y - 1.0))
    grads = tape.gradient(loss, dense.trainable_variables + layer.trainable_variables)
    assert np.isfinite(y.numpy()).all()
    assert all(np.isfinite(g.numpy()).all() for g in grads)


@pytest.fixture(scope="module")
def setup():
    params = CrossQParams()
    env = params.env_ctor(0)
    return params, env, agent_of(params, env)


def test_the_agent_has_batch_renormalized_networks_and_no_targets(setup):
    params, env, agent = setup
    assert isinstance(agent, crossq.CrossQAgent)
    assert isinstance(agent._critic_network_1, batch_renorm.BatchRenormCriticNetwork)
    assert isinstance(agent._actor_network, batch_renorm.BatchRenormActorNetwork)
    for target in (agent._target_critic_network_1, agent._target_critic_network_2,
                   agent._critic_network_2):
        assert isinstance(target, networks.NoCritic) and not target.variables
    widths = [v.shape[-1] for v in agent._critic_network_1.trainable_variables
              if "dense" in v.name and "kernel" in v.name]
    assert widths == [64, 64, 64, 64]  # two critics of 64 x 64
    assert agent._actor_optimizer.beta_1 == 0.5 and agent._critic_optimizer.beta_1 == 0.5


def test_a_train_step_updates_the_critics_and_every_third_the_actor(setup):
    params, env, agent = setup
    critic_stats = [v for v in agent._critic_network_1.variables if "moving_mean" in v.name]
    actor_stats = [v for v in agent._actor_network.variables if "moving_mean" in v.name]
    actor_weights = agent._actor_network.trainable_variables
    train = tf.function(agent.train)
    for step in range(1, 7):
        critic_before = [v.numpy().copy() for v in critic_stats]
        actor_before = [v.numpy().copy() for v in actor_weights + actor_stats]
        loss = train(batch(seed=step))
        assert np.isfinite(float(loss.loss))
        assert all(not np.allclose(b, v.numpy()) for b, v in zip(critic_before, critic_stats))
        changed = [not np.allclose(b, v.numpy())
                   for b, v in zip(actor_before, actor_weights + actor_stats)]
        assert all(changed) if step % 3 == 0 else not any(changed), step
    assert int(agent.train_step_counter.numpy()) == 6
    # the critics' first layer normalized the joined batch of current and next pairs:
    # 6 training calls; the actor's statistics moved only in its 2 updates
    first = agent._critic_network_1._critics[0][0]
    assert first.steps.numpy() == 6 and agent._actor_network.stack[0].steps.numpy() == 2


def test_the_critic_pass_joins_current_and_next_state_actions(setup):
    params, env, agent = setup
    experience = batch(size=16, seed=9)
    seen = []
    critic = agent._critic_network_1
    original = critic.call

    def record(inputs, **kwargs):
        seen.append((int(inputs[0].shape[0]), kwargs.get("training")))
        return original(inputs, **kwargs)

    critic.call = record
    try:
        time_steps, policy_steps, next_time_steps = agent._as_transition(experience)
        agent.critic_loss(time_steps, policy_steps.action, next_time_steps,
                          tf.math.squared_difference, gamma=0.99, training=True)
    finally:
        del critic.call
    assert seen == [(32, True)]  # one pass over 2B in training mode


def test_numpy_actor_and_exported_greedy_policy_use_the_running_statistics(setup, tmp_path):
    from tf_agents.policies import greedy_policy, py_tf_eager_policy

    from tfagents_system.agents.export import export_policy

    params, env, agent = setup
    for variable in agent._actor_network.variables:  # statistics far from 0 and 1
        if "moving" in variable.name:
            variable.assign(tf.random.uniform(variable.shape, 0.5, 2.0, seed=3))
    net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                tensor_spec.from_spec(env.action_spec()))
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed=1)
    assert reason is None
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    obs = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    dist, _ = agent._actor_network(obs, training=False)
    loc, std = actor.loc_and_std(obs)
    np.testing.assert_allclose(loc, dist.input_distribution.loc.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, dist.input_distribution.stddev().numpy(), rtol=1e-4,
                               atol=1e-5)
    export_policy(greedy_policy.GreedyPolicy(agent.policy), agent.train_step_counter,
                  tmp_path / "greedy")
    loaded = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(tmp_path / "greedy"), load_specs_from_pbtxt=True)
    greedy = np.stack([loaded.action(ts.restart(o)).action for o in obs])
    np.testing.assert_allclose(greedy, actor.greedy(obs), rtol=1e-4, atol=1e-5)


def test_the_actor_log_std_is_clipped_and_the_numpy_actor_agrees(setup):
    """CrossQ's reference code clips the actor's log std to [-20, 2]; an unclipped one
    lets the entropy term blow up the critics (Ant diverged without it)."""
    params, env, agent = setup
    net = agent._actor_network
    _, bias = net.head._projection_layer.weights
    size = int(np.prod(env.action_spec().shape))
    bias.assign(tf.concat([tf.zeros([size]), tf.fill([size], 50.0)], 0))  # log std 50
    obs = np.random.default_rng(4).normal(size=(4, 3)).astype(np.float32)
    dist, _ = net(obs, training=False)
    std = dist.input_distribution.stddev().numpy()
    np.testing.assert_allclose(std, np.exp(2.0), rtol=1e-5)  # not exp(50)
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed=1)
    assert reason is None
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    np.testing.assert_allclose(actor.loc_and_std(obs)[1], std, rtol=1e-5)


def test_a_checkpoint_restores_the_statistics(setup, tmp_path):
    params, env, agent = setup
    checkpoint = tf.train.Checkpoint(agent=agent)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    saved = {v.name: v.numpy().copy() for v in agent._critic_network_1.variables}
    agent.train(batch(seed=42))
    other = agent_of(params, env, name="restored_step")
    tf.train.Checkpoint(agent=other).restore(path).assert_existing_objects_matched()
    restored = {v.name.replace("restored_step", "train_step"): v.numpy()
                for v in other._critic_network_1.variables}
    assert saved.keys() == restored.keys()
    for name, value in saved.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)


@pytest.mark.parametrize("change, named", [
    ({"agent": "crossqq"}, "agent='crossqq'"),
    ({"recurrent": True}, "agent='crossq' with recurrent = True"),
    ({"use_sde": True}, "agent='crossq' with use_sde = True"),
    ({"crossq_policy_delay": 0}, "crossq_policy_delay=0"),
    ({"crossq_batch_norm_momentum": 1.0}, "crossq_batch_norm_momentum=1.0"),
    ({"crossq_critic_layers": (0,)}, "crossq_critic_layers=(0,)"),
])
def test_bad_crossq_settings_are_named(change, named):
    params = CrossQParams()
    for name, value in change.items():
        setattr(params, name, value)
    assert any(named in p for p in params.validate()), params.validate()


def test_the_config_selects_the_agent():
    class Plain(CrossQParams):
        agent = "sac"

    assert Plain({"env_id": "Pendulum-v1", "agent": "crossq"}).crossq_settings() is not None
    assert Plain({"env_id": "Pendulum-v1"}).crossq_settings() is None
