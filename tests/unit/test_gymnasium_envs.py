"""gymnasium ids (tfagents_system.gymnasium_bridge through envs.load_gym_env):
terminated vs truncated, seeding, dtypes, rendering, ids of the wrong registry."""

from __future__ import annotations

import numpy as np
import pytest

from tfagents_system import gymnasium_bridge
from tfagents_system.envs import EnvError, load_gym_env, max_episode_steps

POINT_GOAL = "tfagents_system.testing_envs:PointGoal-v0"


class Scripted:
    """A gymnasium env that ends its episode as told: ("terminated" | "truncated" |
    "both") after `length` steps; float64 observations."""

    def __init__(self, end="terminated", length=3, render_mode=None):
        import gymnasium

        self.observation_space = gymnasium.spaces.Box(-5.0, 5.0, (2,), np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.end, self.length, self.render_mode, self.t = end, length, render_mode, 0
        self.metadata = {"render_modes": ["rgb_array"]}
        self.unwrapped = self
        self.seeds = []

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        over = self.t >= self.length
        return (np.full(2, self.t, np.float64), 1.0,
                over and self.end in ("terminated", "both"),
                over and self.end in ("truncated", "both"), {"t": self.t})

    def render(self):
        return np.zeros((4, 4, 3), np.uint8)

    def close(self):
        pass


@pytest.fixture(scope="module", autouse=True)
def scripted_ids():
    import gymnasium

    for end in ("terminated", "truncated", "both"):
        gymnasium.register(f"Scripted{end.title()}-v0", entry_point=Scripted,
                           kwargs={"end": end}, max_episode_steps=100)
    yield
    for end in ("terminated", "truncated", "both"):
        gymnasium.registry.pop(f"Scripted{end.title()}-v0", None)


def run_episode(env):
    time_step, steps = env.reset(), 0
    while not time_step.is_last():
        time_step = env.step(np.zeros(1, np.float32))
        steps += 1
    return steps, time_step


@pytest.mark.parametrize("end, discount", [("terminated", 0.0), ("truncated", 1.0),
                                           ("both", 0.0)])
def test_termination_stops_bootstrapping_and_truncation_does_not(end, discount):
    env = load_gym_env(f"Scripted{end.title()}-v0")
    steps, last = run_episode(env)
    assert steps == 3 and float(last.discount) == discount
    assert last.observation.dtype == np.float32  # float64 boxes: float32 (the packed path)
    assert env.observation_spec().dtype == np.float32


def test_gymnasium_time_limit_is_tf_agents_and_not_terminal():
    env = load_gym_env(POINT_GOAL)
    assert max_episode_steps(env) == 25
    steps, last = run_episode(env)
    assert steps == 25 and float(last.discount) == 1.0 and last.is_last()
    assert load_gym_env(POINT_GOAL, max_episode_steps=7) is not None
    assert run_episode(load_gym_env(POINT_GOAL, max_episode_steps=7))[0] == 7


def test_seed_reaches_reset_once_and_reproduces():
    first = [load_gym_env(POINT_GOAL, seed=s).reset().observation["desired_goal"]
             for s in (4, 4, 5)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])
    env = load_gym_env("ScriptedTerminated-v0", seed=11)
    run_episode(env)
    run_episode(env)
    assert gymnasium_bridge.goal_env(env) is None
    seeds = env.gym.env.unwrapped.seeds
    assert seeds == [11, None]  # seeded once: later episodes continue the generator


def test_dict_observation_info_and_render():
    env = load_gym_env(POINT_GOAL, seed=0)
    assert sorted(env.observation_spec()) == ["achieved_goal", "desired_goal", "observation"]
    run_episode(env)
    assert set(env.get_info()) >= {"is_success"}
    assert env.render("rgb_array").shape == (64, 64, 3)
    assert gymnasium_bridge.goal_env(env).compute_reward(
        np.zeros(3), np.zeros(3), {}) == 0.0


def test_panda_gym_ids_resolve_and_their_compute_reward_is_found():
    env = load_gym_env("PandaReach-v3", seed=0)
    try:
        assert max_episode_steps(env) == 50
        assert gymnasium_bridge.goal_env(env) is not None
    finally:
        env.close()


@pytest.mark.parametrize("env_id, api, message", [
    ("PandaReach-v3", "gym", "is a gymnasium id, not a gym"),
    ("InvertedPendulumBulletEnv-v0", "gymnasium", "is a gym (0.23) id, not a gymnasium"),
    ("HalfCheetah-v3", None, "'HalfCheetah-v4'"),
    ("PandaReach-v2", None, "PandaReach-v3 (gymnasium)"),
    ("Pendulum-v1", "both", 'must be "gym" or "gymnasium"'),
])
def test_ids_of_the_wrong_registry_say_which_is_which(env_id, api, message):
    with pytest.raises(EnvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_gym_env(env_id, env_api=api)


def test_an_id_in_both_registries_is_gyms_unless_told():
    assert "gym.envs" in type(load_gym_env("Pendulum-v1").gym.unwrapped).__module__
    env = load_gym_env("Pendulum-v1", env_api="gymnasium")
    assert "gymnasium" in type(env.gym.unwrapped).__module__


def test_mujoco_steps_as_float32_and_renders_off_screen():
    env = load_gym_env("HalfCheetah-v4", seed=0)
    try:
        assert max_episode_steps(env) == 1000
        assert env.observation_spec().dtype == np.float32
        time_step = env.step(np.zeros(6, np.float32)) if env.reset() else None
        assert time_step.observation.dtype == np.float32
        frame = env.render("rgb_array")
        assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8 and frame.std() > 1
    finally:
        env.close()


class WithParameters(Scripted):
    """A gymnasium env with a parameter the curriculum sets."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.friction = 1.0

    def set_state(self, state):
        for name, value in state.items():
            if name != "friction":
                raise KeyError(name)
            self.friction = float(value)

    def get_state(self):
        return {"friction": self.friction}


def test_the_curriculum_reaches_a_gymnasium_envs_set_state_through_perturbations():
    import gymnasium

    from tfagents_system import curriculum
    from tfagents_system.params import GymTrainParams

    gymnasium.register("WithParameters-v0", entry_point=WithParameters, max_episode_steps=50)
    try:
        params = GymTrainParams({"env_id": "WithParameters-v0",
                                 "perturbations": {"obs_noise_std": 0.1}})
        env = params.env_ctor(seed=0)
        assert curriculum.supports_set_state(env)
        env.set_state({"friction": 0.3, "obs_noise_std": 0.5})
        inner = env.gym.env.unwrapped
        while not isinstance(inner, WithParameters):
            inner = inner.env
        assert inner.friction == 0.3
        first = env.reset().observation
        assert first.dtype == np.float32 and np.abs(first).max() > 0  # noise on zeros
        with pytest.raises(KeyError):
            env.set_state({"grip": 2.0})
        # an env without set_state is told apart at launch
        assert not curriculum.supports_set_state(load_gym_env("ScriptedTruncated-v0"))
    finally:
        gymnasium.registry.pop("WithParameters-v0", None)
