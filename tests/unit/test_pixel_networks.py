"""The pixel parts of the agent: the image encoder, DrQ's random shift, both critics on
one encoder and the actor's untrained copy of it, and the settings' checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step, trajectory
from tf_agents.trajectories import time_step as ts

from tfagents_system.agents import networks, sac
from tfagents_system.agents.encoders import ImageEncoder, ObservationError, random_shift
from tfagents_system.agents.settings import AgentSettings, ConvSettings, NetworkSettings
from tfagents_system.params import TrainParamsBase

IMAGE = tf.TensorSpec((16, 16, 6), tf.uint8)
ACTION = tensor_spec.BoundedTensorSpec((2,), tf.float32, -1.0, 1.0)
CONV = ConvSettings((8, 8), (3, 3), (2, 2), 16)


def images(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 256, (batch, 16, 16, 6), dtype=np.uint8))


def test_random_shift_moves_each_image_by_at_most_pad_with_the_border_repeated():
    x = images(32)
    shifted = random_shift(x, 2).numpy()
    rows, cols = np.arange(16), np.arange(16)
    moves = set()
    for original, out in zip(x.numpy(), shifted):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(out, original[np.clip(rows + dy, 0, 15)][:, np.clip(
                     cols + dx, 0, 15)])]
        assert found, "not a shift of the original by up to 2 pixels"
        moves.add(found[0])
    assert len(moves) > 5  # each image is shifted on its own
    np.testing.assert_array_equal(random_shift(x, 0), x)


def test_the_encoder_joins_other_leaves_after_the_image_features():
    spec = {"camera": IMAGE, "joints": tf.TensorSpec((3,), tf.float32)}
    encoder = ImageEncoder.for_spec(spec, CONV)
    out = encoder({"camera": images(4), "joints": tf.ones((4, 3))})
    assert out.shape == (4, 16 + 3) and encoder.size == 19
    np.testing.assert_array_equal(out[:, 16:], np.ones((4, 3)))
    assert np.abs(out[:, :16]).max() <= 1.0  # tanh features
    copy = ImageEncoder.from_config(encoder.get_config())
    assert copy({"camera": images(4), "joints": tf.ones((4, 3))}).shape == (4, 19)


def test_an_image_too_small_for_the_encoder_is_one_clear_error():
    with pytest.raises(ObservationError, match="too small for conv_kernels"):
        ImageEncoder.for_spec(tf.TensorSpec((4, 4, 3), tf.uint8), ConvSettings())


def make_agent(image_shift=2):
    settings = NetworkSettings((32,), (32,), conv=CONV)
    actor = networks.actor_network(settings, IMAGE, ACTION)
    critic = networks.critic_network(settings, IMAGE, ACTION)
    agent_settings = AgentSettings(settings, 0.99, 1e-3, 1e-3, 1e-3, 0.01, 1, 0.0, None, 1.0,
                                   image_shift=image_shift)
    agent = sac.make_agent(agent_settings, ts.time_step_spec(IMAGE), ACTION, actor, critic,
                           tf.Variable(0, dtype=tf.int64))
    agent.initialize()
    return agent


def batch(size=8):
    first = ts.TimeStep(tf.zeros([size], tf.int32), tf.zeros([size]), tf.ones([size]),
                        images(size, 1))
    second = ts.TimeStep(tf.ones([size], tf.int32), tf.ones([size]), tf.ones([size]),
                         images(size, 2))
    return trajectory.Transition(first, policy_step.PolicyStep(tf.zeros([size, 2]), (), ()),
                                 second)


def test_both_critics_share_one_encoder_that_the_actors_loss_never_trains():
    agent = make_agent()
    critic = agent._critic_network_1
    actor_encoder = agent._actor_network._encoder._preprocessing_combiner
    assert isinstance(critic, networks.TwinCriticNetwork)
    assert isinstance(agent._critic_network_2, networks.NoCritic)
    assert not agent._critic_network_2.variables
    assert not actor_encoder.trainable
    encoder_refs = {v.ref() for v in actor_encoder.variables}
    assert not encoder_refs & {v.ref() for v in agent._actor_network.trainable_variables}
    # The target critic has its own encoder.
    target_refs = {v.ref() for v in agent._target_critic_network_1.variables}
    assert not target_refs & {v.ref() for v in critic.encoder.variables}

    train = tf.function(agent.train)
    before = [v.numpy() for v in critic.encoder.variables]
    train(batch())
    after = [v.numpy() for v in critic.encoder.variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    # The actor's copy was refreshed from the critics' encoder before the step.
    for copy, source in zip(actor_encoder.variables, before):
        np.testing.assert_array_equal(copy.numpy(), source)
    train(batch())
    for copy, source in zip(actor_encoder.variables, after):
        np.testing.assert_array_equal(copy.numpy(), source)


def test_shift_images_shifts_observations_and_next_observations_apart():
    experience = batch(16)
    shifted = sac.shift_images(experience, 3)
    first = shifted.time_step.observation.numpy()
    assert not np.array_equal(first, experience.time_step.observation.numpy())
    assert not np.array_equal(shifted.next_time_step.observation.numpy(),
                              experience.next_time_step.observation.numpy())
    np.testing.assert_array_equal(shifted.action_step.action, experience.action_step.action)
    vector = experience._replace(time_step=experience.time_step._replace(
        observation=tf.ones([16, 3])))
    np.testing.assert_array_equal(
        sac.shift_images(vector, 3).time_step.observation, tf.ones([16, 3]))


class Params(TrainParamsBase):
    def env_ctor(self, seed=None):
        raise AssertionError("not built in these tests")


@pytest.mark.parametrize("fields, expected", [
    ({"conv_channels": (32, 32), "conv_kernels": (3,)},
     "must be non-empty and of one length"),
    ({"conv_strides": (0, 1, 1, 1)}, "conv_strides=(0, 1, 1, 1): must be a tuple"),
    ({"encoder_features": 0}, "encoder_features=0: must be a positive integer"),
    ({"image_shift": -1}, "image_shift=-1: must be an integer >= 0"),
])
def test_bad_encoder_settings_are_named(fields, expected):
    params = Params()
    for name, value in fields.items():
        setattr(params, name, value)
    problems = params.validate()
    assert any(expected in problem for problem in problems), problems
