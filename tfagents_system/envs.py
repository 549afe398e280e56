"""Loading gym and pybullet environments as TF-Agents PyEnvironments.

gym's `TimeLimit` wrapper ends a truncated episode like a terminal one, and
TF-Agents' `GymWrapper` then gives that last step discount 0: SAC would stop
bootstrapping at a time limit, which biases the critic. `load_gym_env` removes
gym's TimeLimit and lets TF-Agents' own `TimeLimit` wrapper cut the episode;
that wrapper marks the step LAST but keeps its discount at 1.
"""

from __future__ import annotations

import warnings
from typing import Any


class EnvError(ValueError):
    """An environment cannot be built; the message says the fix."""


def _import_gym():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gym

        try:  # registers the *Bullet* environments with gym
            import pybullet_envs  # noqa: F401
        except ImportError:
            pass
    return gym


def load_gym_env(
    env_id: str,
    seed: int | None = None,
    max_episode_steps: int | None = None,
    gym_kwargs: dict[str, Any] | None = None,
    gym_env_wrappers: tuple = (),
    env_wrappers: tuple = (),
):
    """A gym/pybullet env as a PyEnvironment whose time limit is not terminal.

    `max_episode_steps` None keeps the registered limit; 0 means no limit.
    """
    gym = _import_gym()
    from tf_agents.environments import suite_gym

    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise EnvError(
            f"unknown gym id {env_id!r}: {exc}. Check the id (for pybullet, e.g. "
            "'InvertedPendulumBulletEnv-v0')"
        ) from exc
    gym_env = spec.make(**(gym_kwargs or {}))
    if max_episode_steps is None:
        max_episode_steps = spec.max_episode_steps or 0
    gym_env = strip_gym_time_limit(gym_env)
    for wrapper in gym_env_wrappers:  # before seeding, so wrappers get the seed too
        gym_env = wrapper(gym_env)
    if seed is not None:
        gym_env.seed(int(seed))
        gym_env.action_space.seed(int(seed))
    return suite_gym.wrap_env(gym_env, max_episode_steps=max_episode_steps,
                              env_wrappers=env_wrappers)


def strip_gym_time_limit(gym_env):
    """Remove every gym TimeLimit wrapper from a wrapper chain."""
    gym = _import_gym()
    outer = None
    node = gym_env
    head = gym_env
    while isinstance(node, gym.Wrapper):
        if isinstance(node, gym.wrappers.TimeLimit):
            if outer is None:
                head = node.env
            else:
                outer.env = node.env
            node = node.env
            continue
        outer = node
        node = node.env
    return head


def max_episode_steps(py_env) -> int | None:
    """The step limit of a PyEnvironment's TF-Agents TimeLimit wrapper, if any."""
    from tf_agents.environments import wrappers

    node = py_env
    while node is not None:
        if isinstance(node, wrappers.TimeLimit):
            return int(node._duration)  # pylint: disable=protected-access
        node = getattr(node, "_env", None)
    return None


def keep_observation_entries(indices):
    """A gym wrapper class (for `GymTrainParams.gym_wrappers`) whose env observes only
    the entries `indices` of a flat Box observation, in that order: hiding velocities
    makes a task partially observed (config `"observation_indices"`)."""
    gym = _import_gym()
    import numpy as np

    chosen = list(indices) if isinstance(indices, (list, tuple)) else [None]

    class KeepObservationEntries(gym.ObservationWrapper):
        def __init__(self, env):
            super().__init__(env)
            space = env.observation_space
            if len(space.shape) != 1 or not all(
                    isinstance(i, int) and not isinstance(i, bool) and 0 <= i < space.shape[0]
                    for i in chosen) or not chosen:
                raise EnvError(f'config "observation_indices": {indices!r} must be a non-empty '
                               f"list of indices into the env's flat observation of "
                               f"{space.shape[0] if len(space.shape) == 1 else space.shape} "
                               "entries")
            self.observation_space = gym.spaces.Box(
                space.low[chosen], space.high[chosen], dtype=space.dtype)

        def observation(self, observation):
            return np.asarray(observation)[chosen]

    return KeepObservationEntries
