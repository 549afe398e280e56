"""Loading gym/pybullet and gymnasium environments as TF-Agents PyEnvironments.

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
    env_api: str | None = None,
):
    """A gym/pybullet or gymnasium env as a PyEnvironment whose time limit is not
    terminal (gymnasium envs through `gymnasium_bridge`).

    `max_episode_steps` None keeps the registered limit; 0 means no limit. `env_api`
    ("gym" or "gymnasium") says which registry the id belongs to; None: gym's if it
    has the id, else gymnasium's.
    """
    from tf_agents.environments import suite_gym

    api, spec = resolve_env_id(env_id, env_api)
    if api == "gym":
        gym_env = spec.make(**(gym_kwargs or {}))
        registered_limit = spec.max_episode_steps
        gym_env = strip_gym_time_limit(gym_env)
    else:
        from tfagents_system import gymnasium_bridge

        gym_env, registered_limit = gymnasium_bridge.make(env_id, gym_kwargs or {})
    if max_episode_steps is None:
        max_episode_steps = registered_limit or 0
    for wrapper in gym_env_wrappers:  # before seeding, so wrappers get the seed too
        gym_env = wrapper(gym_env)
    if seed is not None:
        gym_env.seed(int(seed))
        gym_env.action_space.seed(int(seed))
    py_env = suite_gym.wrap_env(gym_env, max_episode_steps=max_episode_steps,
                                env_wrappers=env_wrappers)
    if api == "gymnasium":
        from tfagents_system.gymnasium_bridge import keep_truncation_discount

        py_env = keep_truncation_discount(py_env)
    return py_env


ENV_APIS = ("gym", "gymnasium")


def resolve_env_id(env_id: str, env_api: str | None = None):
    """("gym", gym's spec) or ("gymnasium", gymnasium's spec) of an id; EnvError with
    one line that says which registry has it (or a near id) when it cannot be made."""
    from tfagents_system import gymnasium_bridge

    if env_api is not None and env_api not in ENV_APIS:
        raise EnvError(f'config "env_api": {env_api!r} must be "gym" or "gymnasium" (or '
                       "left out: gym's id if gym has it, else gymnasium's)")
    gym = _import_gym()
    try:
        gym_spec = None if ":" in env_id else gym.spec(env_id)
    except gym.error.Error:
        gym_spec = None
    if gym_spec is not None and env_api != "gymnasium":
        _check_gym_entry_point(gym_spec, env_id)
        return "gym", gym_spec
    gymnasium_spec = gymnasium_bridge.gymnasium_spec(env_id)
    if gymnasium_spec is not None and env_api != "gym":
        return "gymnasium", gymnasium_spec
    if gym_spec is not None:
        raise EnvError(f'{env_id!r} is a gym (0.23) id, not a gymnasium id: set "env_api" to '
                       '"gym" or remove it')
    if gymnasium_spec is not None:
        raise EnvError(f'{env_id!r} is a gymnasium id, not a gym (0.23) id: set "env_api" to '
                       '"gymnasium" or remove it')
    raise EnvError(f"unknown env id {env_id!r}: neither gym 0.23 nor gymnasium has it"
                   f"{_near_ids(env_id)}. Check the id (pybullet: e.g. "
                   "'InvertedPendulumBulletEnv-v0' on gym; MuJoCo and panda-gym 3: e.g. "
                   "'HalfCheetah-v4', 'PandaReach-v3' on gymnasium; another package's "
                   "gymnasium env: 'package.module:EnvId')")


def _check_gym_entry_point(spec, env_id: str) -> None:
    """gym 0.23's MuJoCo ids need mujoco-py, which this stack does not install: say
    which gymnasium id serves the task instead."""
    entry = str(getattr(spec, "entry_point", ""))
    if "gym.envs.mujoco" not in entry:
        return
    try:
        import mujoco_py  # noqa: F401
    except Exception:  # missing, or unable to build: gym cannot make the env
        name = env_id.rsplit("-v", 1)[0]
        raise EnvError(f"{env_id!r} is a gym 0.23 MuJoCo id, which needs mujoco-py (not "
                       f"installed); gymnasium serves the task on the mujoco bindings as "
                       f"'{name}-v4': use that id") from None


def _near_ids(env_id: str) -> str:
    """'; did you mean ...' naming ids of either registry with the same name."""
    from tfagents_system import gymnasium_bridge

    gym = _import_gym()
    name = env_id.rpartition(":")[2].rsplit("-v", 1)[0].lower()
    found = [f"{i} (gym)" for i in sorted(gym.envs.registry.env_specs)
             if i.rsplit("-v", 1)[0].lower() == name]
    found += [f"{i} (gymnasium)" for i in gymnasium_bridge.gymnasium_ids()
              if i.rsplit("-v", 1)[0].lower() == name]
    return f"; these exist: {', '.join(found)}" if found else ""


def strip_gym_time_limit(gym_env):
    """Remove every gym TimeLimit wrapper from a wrapper chain."""
    from tfagents_system.gymnasium_bridge import remove_wrappers

    gym = _import_gym()
    return remove_wrappers(gym_env, gym.Wrapper, gym.wrappers.TimeLimit)


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
