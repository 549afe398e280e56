"""The default observation combiner: leaf paths and order, what it computes, when
it is used (never for a flat float32 observation), and its normalization's checks."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tf_agents.agents.ddpg import critic_network

from tfagents_system.agents import encoders, networks
from tfagents_system.core.specs import leaves
from tfagents_system.params import ParamsError, TrainParamsBase

SPEC = {
    "velocity": tf.TensorSpec((2,), tf.float32),
    "arm": {"joints": tf.TensorSpec((2, 2), tf.float32), "gripper_closed": tf.TensorSpec(
        (), tf.bool)},
    "steps_left": tf.TensorSpec((), tf.int32),
}
ACTION = tf.TensorSpec((2,), tf.float32)


class Params(TrainParamsBase):
    actor_fc_layers = (8,)
    critic_joint_fc_layers = (8,)

    def env_ctor(self, seed=None):
        raise NotImplementedError


def test_leaves_follow_tf_nest_order_with_joined_paths():
    assert [(leaf.path, leaf.shape, leaf.dtype) for leaf in leaves(SPEC)] == [
        ("arm/gripper_closed", (), "bool"), ("arm/joints", (2, 2), "float32"),
        ("steps_left", (), "int32"), ("velocity", (2,), "float32")]
    assert leaves(ACTION)[0].path == "observation"


def test_the_combiner_flattens_casts_normalizes_and_concatenates():
    combiner = encoders.ObservationCombiner.for_spec(
        SPEC, {"steps_left": (10.0, 5.0), "velocity": ([1.0, -1.0], 2.0)})
    assert combiner.size == 1 + 4 + 1 + 2
    batch = {"velocity": tf.constant([[3.0, 1.0]] * 3),
             "arm": {"joints": tf.reshape(tf.range(12, dtype=tf.float32), (3, 2, 2)),
                     "gripper_closed": tf.constant([True, False, True])},
             "steps_left": tf.constant([20, 10, 0])}
    out = combiner(batch).numpy()
    np.testing.assert_array_equal(out[1], [0, 4, 5, 6, 7, 0, 1, 1])
    np.testing.assert_array_equal(out[:, 5], [2, 0, -2])
    # Outer dims are kept ([batch, time, ...]); numpy computes the same.
    two = tf.nest.map_structure(lambda x: tf.stack([x, x], axis=1), batch)
    assert combiner(two).shape == (3, 2, 8)
    numpy_batch = tf.nest.map_structure(lambda x: x.numpy(), batch)
    np.testing.assert_array_equal(combiner.numpy_combiner()(numpy_batch), out)
    # TF-Agents copies it from its config (the critic's and target networks' copies).
    copy = type(combiner).from_config(combiner.get_config())
    np.testing.assert_array_equal(copy(batch).numpy(), out)


def test_flat_float32_observations_build_todays_networks():
    flat = tf.TensorSpec((3,), tf.float32)
    params = Params()
    assert not encoders.needs_combiner(flat, None)
    actor = params.actor_net_ctor(flat, ACTION)
    assert actor._encoder._preprocessing_combiner is None
    assert type(params.critic_net_ctor(flat, ACTION)) is critic_network.CriticNetwork
    # Nested, integer, or normalized: the combiner.
    assert encoders.needs_combiner(SPEC, None)
    assert encoders.needs_combiner(tf.TensorSpec((3,), tf.int32), None)
    assert encoders.needs_combiner(flat, {"observation": (0.0, 1.0)})
    assert type(params.critic_net_ctor(SPEC, ACTION)) is networks.CombinedCriticNetwork
    assert type(params.actor_net_ctor(SPEC, ACTION)._encoder._preprocessing_combiner) is (
        encoders.ObservationCombiner)


@pytest.mark.parametrize("normalization,message", [
    ({"veloctiy": (0.0, 1.0)}, "names 'veloctiy', which is no leaf of the env's observation "
     "(leaves: arm/gripper_closed, arm/joints, steps_left, velocity)"),
    ({"arm/joints": ([0.0, 1.0], 1.0)}, "observation_normalization['arm/joints'] mean has 2 "
     "values, the leaf has 4 (shape (2, 2)); give one number or 4"),
])
def test_normalization_that_does_not_fit_the_spec_is_named(normalization, message):
    with pytest.raises(ParamsError) as error:
        encoders.ObservationCombiner.for_spec(SPEC, normalization)
    assert message in str(error.value)


@pytest.mark.parametrize("value", [
    {"velocity": (0.0, 0.0)}, {"velocity": (0.0, [1.0, -1.0])}, {"velocity": 1.0},
    {"velocity": ("0", 1.0)}, [("velocity", (0.0, 1.0))], {1: (0.0, 1.0)},
    {"velocity": (0.0, float("nan"))}, {"velocity": ([], 1.0)}])
def test_bad_normalization_is_one_problem_naming_the_field(value):
    params = Params()
    params.observation_normalization = value
    problems = params.validate()
    assert len(problems) == 1
    assert problems[0].startswith("observation_normalization=") and "std > 0" in problems[0]


def test_good_normalization_passes():
    params = Params()
    params.observation_normalization = {"velocity": ([0.0, 1.0], 2.0), "steps_left": (5, 5)}
    assert params.validate() == []
