"""Pixel envs (tfagents_system.pixels): the config's "pixels" object, frames rendered
once per repeated action, frame stacking, dm_control tasks whose time limit stays a
truncation, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tfagents_system.envs import EnvError
from tfagents_system.params import GymTrainParams
from tfagents_system.pixels import PixelSettings

DOT = "tfagents_system.testing_envs:DotToCentre-v0"


class Params(GymTrainParams):
    pass


def test_the_pixels_object_is_read_with_its_defaults():
    assert PixelSettings.from_config({}) is None
    assert PixelSettings.from_config({"pixels": True}) == PixelSettings()
    settings = PixelSettings.from_config({"pixels": {"size": [48, 64], "action_repeat": 4}})
    assert (settings.height, settings.width, settings.action_repeat, settings.frame_stack) == (
        48, 64, 4, 3)


@pytest.mark.parametrize("value, expected", [
    ({"frames": 3}, "unknown key(s) frames"),
    ({"size": 0}, '"size": 0 must be a positive integer'),
    ({"frame_stack": 1.5}, '"frame_stack": 1.5 must be a positive integer'),
    ({"camera": -1}, '"camera": -1 must be a positive integer or 0'),
    ("84", "must be an object"),
])
def test_a_bad_pixels_object_is_one_line_naming_the_key(value, expected):
    with pytest.raises(EnvError, match="config \"pixels\"") as raised:
        PixelSettings.from_config({"pixels": value})
    assert expected in str(raised.value)


def test_a_rendered_env_repeats_actions_and_stacks_its_frames():
    plain = Params({"env_id": DOT}).env_ctor(seed=3)
    env = Params({"env_id": DOT, "pixels": {"size": 16, "frame_stack": 2,
                                             "action_repeat": 2}}).env_ctor(seed=3)
    assert env.observation_spec().shape == (16, 16, 6)
    assert env.observation_spec().dtype == np.uint8
    assert env.action_spec().dtype == np.float32
    first = env.reset()
    plain.reset()
    np.testing.assert_array_equal(first.observation[..., :3], first.observation[..., 3:])
    action = np.array([0.5, -0.5], np.float32)
    step = env.step(action)
    rewards = [plain.step(action).reward for _ in range(2)]
    assert step.reward == pytest.approx(sum(rewards), rel=1e-6)  # two env steps summed
    # oldest first: the first frame, then the new one
    np.testing.assert_array_equal(step.observation[..., :3], first.observation[..., 3:])
    assert not np.array_equal(step.observation[..., 3:], first.observation[..., 3:])
    steps = 1
    while not step.is_last():
        step = env.step(action)
        steps += 1
    assert steps == 8  # 15 env steps, two per action
    assert step.discount == 1.0  # the time limit is no terminal state


def test_a_dm_control_task_from_pixels_keeps_its_time_limit_a_truncation():
    env = Params({"env_id": "dm_control/cartpole-swingup",
                  "pixels": {"size": 32, "action_repeat": 8}}).env_ctor(seed=0)
    assert env.observation_spec().shape == (32, 32, 9)
    step, steps = env.reset(), 0
    while not step.is_last():
        step = env.step(np.zeros(1, np.float32))
        steps += 1
    assert steps == 125  # 1000 control steps, 8 per action
    assert step.discount == 1.0
    assert step.observation.dtype == np.uint8 and step.observation.max() > 0


def test_dm_control_ids_are_checked_and_need_pixels():
    with pytest.raises(EnvError, match="cartpole has: dm_control/cartpole-balance"):
        Params({"env_id": "dm_control/cartpole-swing", "pixels": {}}).env_ctor(seed=0)
    with pytest.raises(EnvError, match='add "pixels"'):
        Params({"env_id": "dm_control/cartpole-swingup"}).env_ctor(seed=0)


def test_an_env_that_cannot_render_says_how_to_fix_it():
    from tfagents_system.envs import load_gym_env
    from tfagents_system.pixels import with_pixels

    def broken(env):
        raise RuntimeError("gladLoadGL error")

    with pytest.raises(EnvError, match="apt-get install libosmesa6"):
        with_pixels(load_gym_env(DOT, seed=0), PixelSettings(), broken).reset()


def test_time_feature_and_pixels_do_not_mix():
    params = Params({"env_id": DOT, "pixels": {}})
    params.time_feature = True
    with pytest.raises(EnvError, match="set time_feature = False"):
        params.env_ctor(seed=0)
