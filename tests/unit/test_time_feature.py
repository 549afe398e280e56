"""Unit tests for tfagents_system.time_feature and the params that switch it on."""

import json
from pathlib import Path

import numpy as np
import pytest

from tfagents_system.envs import EnvError, load_gym_env
from tfagents_system.params import GymTrainParams, load_params
from tfagents_system.time_feature import TimeFeature

PENDULUM_ID = "Pendulum-v1"  # 3-dim observation, 200-step limit, never terminal


def _zero(env):
    spec = env.action_spec()
    return np.zeros(spec.shape, spec.dtype)


def test_feature_counts_down_to_zero_and_restarts_each_episode():
    """1.0 at reset, 1 - t/limit after t steps, 0.0 on the last step of the limit; the
    automatic reset after LAST starts again at 1.0; the original observation is kept."""
    inner = load_gym_env(PENDULUM_ID, seed=3, max_episode_steps=20)
    env = TimeFeature(load_gym_env(PENDULUM_ID, seed=3, max_episode_steps=20))
    assert env.limit == 20
    spec = env.observation_spec()
    assert spec.shape == (4,) and spec.dtype == np.float32
    assert spec.minimum[-1] == 0.0 and spec.maximum[-1] == 1.0
    first = env.reset()
    np.testing.assert_array_equal(first.observation[:3], inner.reset().observation)
    assert first.observation[-1] == 1.0 and first.observation.dtype == np.float32
    features = []
    time_step = first
    while not time_step.is_last():
        time_step = env.step(_zero(env))
        features.append(float(time_step.observation[-1]))
    np.testing.assert_allclose(features, [1 - t / 20 for t in range(1, 21)], atol=1e-6)
    assert time_step.discount == 1.0  # the limit still bootstraps
    again = env.step(_zero(env))  # TF-Agents' automatic reset
    assert again.is_first() and again.observation[-1] == 1.0
    assert env.step(_zero(env)).observation[-1] == pytest.approx(0.95)


def test_feature_restarts_after_a_real_terminal():
    """A Hopper that falls ends early (discount 0); the next episode starts at 1.0."""
    env = TimeFeature(load_gym_env("HopperBulletEnv-v0", seed=0))
    assert env.limit == 1000
    time_step, steps = env.reset(), 0
    while not time_step.is_last():
        time_step = env.step(_zero(env))
        steps += 1
    assert steps < 1000 and time_step.discount == 0.0
    assert time_step.observation[-1] == pytest.approx(1 - steps / 1000)
    assert env.reset().observation[-1] == 1.0
    env.close()


def test_an_env_without_limit_or_with_nested_observations_is_refused():
    with pytest.raises(EnvError, match="no step limit"):
        TimeFeature(load_gym_env(PENDULUM_ID, seed=0, max_episode_steps=0))
    assert TimeFeature(load_gym_env(PENDULUM_ID, seed=0, max_episode_steps=0),
                       limit=50).limit == 50


def test_gym_params_switch_it_on_and_validate_it(tmp_path):
    """time_feature = True in a GymTrainParams file adds the feature to every env it
    builds; a non-bool value is named at load time."""
    params = type("P", (GymTrainParams,), {"time_feature": True})({"env_id": PENDULUM_ID})
    env = params.env_ctor(seed=0)
    assert isinstance(env, TimeFeature) and env.observation_spec().shape == (4,)
    path = tmp_path / "p.py"
    path.write_text("from tfagents_system.params import GymTrainParams\n"
                    "class TrainParams(GymTrainParams):\n    time_feature = 'yes'\n")
    with pytest.raises(ValueError, match="time_feature='yes': must be True or False"):
        load_params(path, {"env_id": PENDULUM_ID})


def test_locomotion_preset_builds_each_shipped_task():
    """examples/locomotion.py: one preset for every task config, with the feature on."""
    repo = Path(__file__).resolve().parents[2]
    for name, obs in (("halfcheetah", 26), ("hopper", 15), ("ant", 28)):
        config = json.loads((repo / "config" / f"{name}.json").read_text())
        params = load_params(repo / "examples" / "locomotion.py", config)
        env = params.env_ctor(seed=0)
        assert env.observation_spec().shape == (obs + 1,), name
        assert params.samples_per_insert == params.batch_size  # one grad step per env step
        env.close()
