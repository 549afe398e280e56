"""Component tests against a real in-process Reverb server on a free port."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")

from parts import agent_of, tables_of
from tf_agents.drivers import py_driver
from tf_agents.policies import random_py_policy
from tf_agents.trajectories import trajectory

from tfagents_system.core import constants as C
from tfagents_system.core import errors
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import client as replay_client
from tfagents_system.replay import datasets, tables
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.format import LAYOUT_STEPS, ReplayFormat


class PendulumParams(TrainParamsBase):
    """Pendulum-v1 never terminates: every episode end is a time limit."""

    batch_size = 8
    min_replay_size = 8
    actor_fc_layers = (16,)
    critic_joint_fc_layers = (16,)

    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=6)


@pytest.fixture
def server():
    params = PendulumParams()
    srv = reverb.Server(tables_of(params, 1000), port=None)
    yield srv, f"localhost:{srv.port}", params
    srv.stop()


def _collect(address, params, episodes, should_stop=lambda: False):
    env = params.env_ctor(seed=1)
    client = reverb.Client(address)
    writer = replay_writers.ExperienceWriter(client, should_stop)
    policy = random_py_policy.RandomPyPolicy(env.time_step_spec(), env.action_spec(), seed=3)
    py_driver.PyDriver(env, policy, [writer], max_episodes=episodes).run(env.reset())
    writer.close()
    return env


def test_items_are_two_step_transitions_within_episodes(server):
    """6-step episodes give 6 transitions each; none crosses an episode boundary."""
    _, address, params = server
    _collect(address, params, episodes=3)
    size = reverb.Client(address).server_info()[C.EXPERIENCE_TABLE].current_size
    assert size == 3 * 6
    agent = agent_of(params, params.env_ctor())
    batch = next(iter(datasets.experience_dataset(address, ReplayFormat(LAYOUT_STEPS), 64,
                                                  collect_data_spec=agent.collect_data_spec)))
    first_types = batch.step_type[:, 0].numpy()
    assert not np.any(first_types == 2), "an item starts at a LAST step: it spans two episodes"


def test_time_limit_keeps_bootstrapping_in_the_critic(server):
    """A transition cut by the time limit has discount 1 and its critic target
    depends on the target critic (bootstrapping); a real terminal would not."""
    _, address, params = server
    _collect(address, params, episodes=2)
    agent = agent_of(params, params.env_ctor())
    batch = next(iter(datasets.experience_dataset(address, ReplayFormat(LAYOUT_STEPS), 256,
                                                  collect_data_spec=agent.collect_data_spec)))
    time_steps, policy_steps, next_time_steps = trajectory.to_transition(batch)
    truncated = next_time_steps.step_type.numpy() == 2
    assert truncated.any(), "no time-limit transition sampled"
    np.testing.assert_array_equal(next_time_steps.discount.numpy()[truncated], 1.0)

    def critic_loss(discount):
        nts = next_time_steps._replace(discount=tf.fill(tf.shape(next_time_steps.discount),
                                                        discount))
        return float(agent.critic_loss(time_steps, policy_steps.action, nts,
                                       td_errors_loss_fn=tf.math.squared_difference,
                                       gamma=params.discount, training=False))

    before = critic_loss(1.0)
    terminal_before = critic_loss(0.0)
    for var in agent._target_critic_network_1.variables:
        var.assign(var + 0.5)
    for var in agent._target_critic_network_2.variables:
        var.assign(var + 0.5)
    assert critic_loss(1.0) != pytest.approx(before), "discount 1: target must bootstrap"
    assert critic_loss(0.0) == pytest.approx(terminal_before), "discount 0 ignores the target"


def test_weights_exchange_roundtrip(server):
    _, address, _ = server
    client = reverb.Client(address)
    exchange = replay_client.WeightsExchange(client, Signer(b"k" * 32))
    assign = replay_client.WeightsExchange.assign

    def fetch_into(variable_lists):
        arrays, train_step, _ = exchange.fetch()
        assign(arrays, variable_lists)
        return train_step

    assert client.server_info()[C.WEIGHTS_TABLE].current_size == 0
    src = [tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)), tf.Variable([1.5])]
    dst = [tf.Variable(tf.zeros((2, 3))), tf.Variable([0.0])]
    exchange.publish(src, 1234)
    exchange.wait_until_available(lambda: False)  # returns at once: published
    assert fetch_into([dst]) == 1234
    np.testing.assert_array_equal(dst[0].numpy(), src[0].numpy())
    exchange.publish([v * 2 for v in src], 2000)  # the newest item replaces the old
    assert fetch_into([dst]) == 2000
    assert client.server_info()[C.WEIGHTS_TABLE].current_size == 1
    with pytest.raises(ValueError, match="different networks"):
        fetch_into([[tf.Variable([0.0])]])


def test_samples_per_insert_blocks_writer_and_stop_is_honoured():
    """With a replay ratio the writer blocks once it is ahead; a stop request
    releases it within seconds instead of hanging the worker."""

    class RatioParams(PendulumParams):
        samples_per_insert = 4.0
        samples_per_insert_error_buffer = 8.0
        min_replay_size = 2

    params = RatioParams()
    srv = reverb.Server(tables_of(params, 1000), port=None)
    stop = threading.Event()
    outcome = {}

    def collect():
        try:
            _collect(f"localhost:{srv.port}", params, episodes=5, should_stop=stop.is_set)
            outcome["result"] = "finished"
        except errors.StopRequested:
            outcome["result"] = "stopped"

    try:
        thread = threading.Thread(target=collect, daemon=True)
        thread.start()
        thread.join(timeout=8)
        assert thread.is_alive(), "writer should be held back by the rate limiter"
        size = reverb.Client(f"localhost:{srv.port}").server_info()[C.EXPERIENCE_TABLE]
        assert size.current_size < 5 * 6
        stopped_at = time.monotonic()
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert outcome["result"] == "stopped"
        assert time.monotonic() - stopped_at < 5
    finally:
        srv.stop()


def test_min_size_rate_limiter_without_ratio():
    limiter = tables.experience_rate_limiter(PendulumParams().replay_settings(1000),
                                             ReplayFormat(LAYOUT_STEPS))
    assert isinstance(limiter, reverb.rate_limiters.MinSize)
