"""Small environments for tests and examples, with no simulator dependency.

`PointMassReach`: a point mass on a plane pushed towards a goal. Its observation
is a dict (position, velocity, goal) or, with `flat=True`, the same six numbers
in one vector, so a structured observation's learning can be compared with the
flat one on the same task (tests/learning/test_dict_observation_learns.py).
"""

from __future__ import annotations

import numpy as np
from tf_agents.environments import py_environment, wrappers
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tfagents_system.actors import RandomActor


class PointMassReach(py_environment.PyEnvironment):
    """Push a 2-D point mass (force in [-1, 1]^2) to a random goal in [-1, 1]^2.

    Reward: minus the distance to the goal after the step. The episode never ends
    by itself: `point_mass_reach` wraps it in a time limit of `episode_steps`. With `counter_dtype`
    (e.g. "int32") the dict observation also has `steps_left` of that dtype and a
    bool `near_goal` flag (within 0.1 of the goal): integer and boolean leaves.
    """

    DT = 0.1
    DAMPING = 0.9

    def __init__(self, seed: int | None = None, flat: bool = False, episode_steps: int = 50,
                 counter_dtype: str | None = None):
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._flat = flat
        self._episode_steps = int(episode_steps)
        self._counter = None if counter_dtype is None else np.dtype(counter_dtype)
        self._action_spec = array_spec.BoundedArraySpec((2,), np.float32, -1.0, 1.0, "force")
        vector = array_spec.ArraySpec((2,), np.float32)
        if flat:
            self._observation_spec = array_spec.ArraySpec((6,), np.float32, "observation")
        else:
            self._observation_spec = {"position": vector, "velocity": vector, "goal": vector}
            if self._counter is not None:
                self._observation_spec["steps_left"] = array_spec.ArraySpec((), self._counter)
                self._observation_spec["near_goal"] = array_spec.ArraySpec((), np.bool_)
        self._position = np.zeros(2, np.float32)
        self._velocity = np.zeros(2, np.float32)
        self._goal = np.zeros(2, np.float32)
        self._t = 0

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def _distance(self) -> float:
        return float(np.linalg.norm(self._position - self._goal))

    def _observation(self):
        if self._flat:
            return np.concatenate([self._position, self._velocity, self._goal])
        obs = {"position": self._position.copy(), "velocity": self._velocity.copy(),
               "goal": self._goal.copy()}
        if self._counter is not None:
            obs["steps_left"] = np.asarray(self._episode_steps - self._t, self._counter)
            obs["near_goal"] = np.asarray(self._distance() < 0.1)
        return obs

    def render(self, mode: str = "rgb_array") -> np.ndarray:
        """A 96x96 top view (the final video): the goal green, the mass red."""
        if mode != "rgb_array":
            raise NotImplementedError(f"PointMassReach renders rgb_array frames, not {mode}")
        frame = np.full((96, 96, 3), 255, np.uint8)
        for point, colour in ((self._goal, (0, 160, 0)), (self._position, (200, 0, 0))):
            col, row = np.clip(((point + 1.5) / 3.0 * 95).astype(int), 2, 93)
            frame[95 - row - 2:95 - row + 3, col - 2:col + 3] = colour
        return frame

    def _reset(self):
        self._position = self._rng.uniform(-1, 1, 2).astype(np.float32)
        self._goal = self._rng.uniform(-1, 1, 2).astype(np.float32)
        self._velocity = np.zeros(2, np.float32)
        self._t = 0
        return ts.restart(self._observation())

    def _step(self, action):
        force = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._velocity = (self.DAMPING * self._velocity + self.DT * 4.0 * force).astype(
            np.float32)
        self._position = np.clip(self._position + self.DT * self._velocity, -1.5, 1.5).astype(
            np.float32)
        self._t += 1
        return ts.transition(self._observation(), np.float32(-self._distance()))


def point_mass_reach(seed: int | None = None, flat: bool = False, episode_steps: int = 50,
                     counter_dtype: str | None = None):
    """A `PointMassReach` ending after `episode_steps` steps (a TF-Agents TimeLimit,
    which the framework reads as the env's step limit)."""
    env = PointMassReach(seed, flat, episode_steps, counter_dtype)
    return wrappers.TimeLimit(env, episode_steps)


class SplitObservation(wrappers.PyEnvironmentBaseWrapper):
    """A flat-observation env whose observation is given as a dict of its slices:
    the same numbers as a structured observation (the benchmarks' dict rows).
    `split` is ((key, size), ...) covering the flat observation in order."""

    def __init__(self, env, split: tuple[tuple[str, int], ...]):
        super().__init__(env)
        flat = env.observation_spec()
        if sum(size for _, size in split) != int(np.prod(flat.shape)):
            raise ValueError(f"split {split} does not cover the observation {flat}")
        self._split = tuple(split)
        self._spec = {key: array_spec.ArraySpec((size,), flat.dtype, key)
                      for key, size in split}

    def observation_spec(self):
        return self._spec

    def _to_dict(self, time_step):
        flat, out, at = time_step.observation.reshape(-1), {}, 0
        for key, size in self._split:
            out[key] = flat[at:at + size]
            at += size
        return time_step._replace(observation=out)

    def _reset(self):
        return self._to_dict(self._env.reset())

    def _step(self, action):
        return self._to_dict(self._env.step(action))


def random_rows(env, packer, steps: int, seed: int) -> np.ndarray:
    """The packed rows (`replay.packing`: transitions, or replay windows) a worker
    would write for `steps` env steps of uniform random actions, new episodes started
    as episodes end: replay data for tests and benchmarks without a replay server."""
    builder, actor, rows = packer.builder(), RandomActor(env.action_spec(), seed), []
    step = env.reset()
    for _ in range(steps):
        action = actor([step])[0].action
        nxt = env.step(action)
        out = np.zeros((builder.max_rows, packer.size), np.float32)
        rows.extend(out[:builder.write(step, action, nxt, out)])
        step = env.reset() if nxt.is_last() else nxt
    return np.stack(rows) if rows else np.zeros((0, packer.size), np.float32)


class _SmallGymnasiumEnv:
    """What gymnasium asks of an env beyond reset, step and render."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def close(self):
        pass

    @property
    def unwrapped(self):
        return self


class PointGoal(_SmallGymnasiumEnv):
    """A goal-conditioned gymnasium env small enough for CI: move a point in space
    (velocity command in [-1, 1]^dims, 0.1 per step) to a goal within `threshold`.

    Observation: {"observation": position, "achieved_goal": position, "desired_goal":
    goal}, start and goal uniform in [-spread, spread]^dims. Sparse reward as
    panda-gym's and gymnasium-robotics': 0 within the threshold of the goal, -1
    otherwise (vectorized `compute_reward`); `info["is_success"]` says whether the
    point is within it. The episode never terminates; gymnasium's TimeLimit truncates
    it after 25 steps (registered as "PointGoal-v0":
    `tfagents_system.testing_envs:PointGoal-v0`). With the defaults (3 dimensions,
    spread 1) a uniform random policy never came within the threshold in 300 episodes;
    HER (her_strategy "future") learns it in 4000 env steps, plain SAC does not
    (tests/learning/test_her_learns.py). In 2 dimensions with spread 0.5 plain SAC
    learns it too.
    """

    STEP = 0.1

    def __init__(self, threshold: float = 0.05, dims: int = 3, spread: float = 1.0,
                 render_mode: str | None = None):
        import gymnasium

        box = gymnasium.spaces.Box(-1.0, 1.0, (dims,), np.float32)
        self.observation_space = gymnasium.spaces.Dict(
            {"achieved_goal": box, "desired_goal": box, "observation": box})
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (dims,), np.float32)
        self.threshold = float(threshold)
        self.dims, self.spread = int(dims), float(spread)
        self.render_mode = render_mode
        self._rng = np.random.default_rng()
        self._position = np.zeros(self.dims, np.float32)
        self._goal = np.zeros(self.dims, np.float32)

    def compute_reward(self, achieved_goal, desired_goal, info):
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > self.threshold).astype(np.float32)

    def _observation(self):
        return {"achieved_goal": self._position.copy(), "desired_goal": self._goal.copy(),
                "observation": self._position.copy()}

    def _info(self):
        return {"is_success": bool(self.compute_reward(self._position, self._goal, {}) == 0)}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._position = self._rng.uniform(-self.spread, self.spread, self.dims).astype(
            np.float32)
        self._goal = self._rng.uniform(-self.spread, self.spread, self.dims).astype(np.float32)
        return self._observation(), self._info()

    def step(self, action):
        move = self.STEP * np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._position = np.clip(self._position + move, -1.0, 1.0).astype(np.float32)
        reward = float(self.compute_reward(self._position, self._goal, {}))
        return self._observation(), reward, False, False, self._info()

    def render(self):
        frame = np.full((64, 64, 3), 255, np.uint8)
        for point, colour in ((self._goal, (0, 160, 0)), (self._position, (200, 0, 0))):
            col, row = np.clip(((point[:2] + 1.0) / 2.0 * 63).astype(int), 2, 61)
            frame[63 - row - 2:63 - row + 3, col - 2:col + 3] = colour
        return frame


class DotToCentre(_SmallGymnasiumEnv):
    """A pixel task small enough for CI: move a dot to the centre of the picture.

    The state is the dot's position in [-1, 1]^2 (uniform at the start); an action in
    [-1, 1]^2 moves it by up to 0.25 per step; the reward is minus its distance from
    the centre after the step. Its observation is the state, but it is meant to be
    seen through `render()` (config `"pixels"`): a 32 x 32 black picture with the dot
    as a 4 x 4 white square, so the policy must find the dot in the image. gymnasium's
    TimeLimit ends it after 15 steps (registered as "DotToCentre-v0":
    `tfagents_system.testing_envs:DotToCentre-v0`). Measured over 50 episodes: a
    policy that stays put returns -11.6, a uniform random one -11.5, one that heads
    straight for the centre -1.2.
    """

    STEP = 0.25
    SIZE = 32
    DOT = 4

    def __init__(self, render_mode: str | None = None):
        import gymnasium

        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = render_mode
        self._rng = np.random.default_rng()
        self._position = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._position = self._rng.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self._position.copy(), {}

    def step(self, action):
        move = self.STEP * np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._position = np.clip(self._position + move, -1.0, 1.0).astype(np.float32)
        reward = -float(np.linalg.norm(self._position))
        return self._position.copy(), reward, False, False, {}

    def render(self):
        frame = np.zeros((self.SIZE, self.SIZE, 3), np.uint8)
        top_left = np.round((self._position + 1.0) / 2.0 * (self.SIZE - self.DOT)).astype(int)
        col, row = top_left
        frame[row:row + self.DOT, col:col + self.DOT] = 255
        return frame


def _register() -> None:
    try:
        import gymnasium
    except ImportError:
        return
    for env_id, entry_point, steps in (("PointGoal-v0", PointGoal, 25),
                                       ("DotToCentre-v0", DotToCentre, 15)):
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=entry_point, max_episode_steps=steps)


_register()
