"""gymnasium environments behind gym 0.23's API, so everything built for gym ids
(TF-Agents' GymWrapper, the perturbation and randomization wrappers, observation
selection, seeding, rendering, set_state for the curriculum) serves them unchanged.

gymnasium says how an episode ended in two flags: `terminated` (a terminal state:
no bootstrapping) and `truncated` (cut short: bootstrap). gym 0.23 and TF-Agents'
GymWrapper know only `done`, which GymWrapper turns into discount 0. The bridge
therefore:

- removes gymnasium's own `TimeLimit` (`envs.load_gym_env` lets TF-Agents'
  `TimeLimit` cut the episode with its discount kept, as it does for gym ids);
- reports `done = terminated or truncated` and, for a truncation that is not a
  termination, `info["TimeLimit.truncated"] = True`, which `KeepTruncationDiscount`
  (outermost TF-Agents wrapper) reads to give that last step discount 1;
- seeds through `reset(seed=...)` (the first reset after `seed()`);
- casts float64 observation boxes to float32 (MuJoCo's), so observations stay on
  the packed fast path; a dict observation stays a dict;
- renders through `render_mode="rgb_array"`.
"""

from __future__ import annotations

import importlib
import os
import warnings

import numpy as np

with warnings.catch_warnings():  # gym 0.23 warns about numpy on import
    warnings.simplefilter("ignore")
    import gym

TRUNCATED_KEY = "TimeLimit.truncated"

# Packages that register gymnasium ids when imported; imported (when installed)
# before an id is looked up. `module:EnvId` ids import any other package.
GYMNASIUM_PACKAGES = ("panda_gym", "gymnasium_robotics")


def headless_rendering_default() -> None:
    """MuJoCo renders off screen through OSMesa (software, any machine; Debian package
    libosmesa6) unless the user chose a backend (MUJOCO_GL=egl for a GPU) or has a
    display. Set before mujoco is imported: it reads MUJOCO_GL then."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "osmesa"
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


def import_gymnasium():
    """gymnasium with the known env packages' ids registered (None if not installed)."""
    headless_rendering_default()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import gymnasium
    except ImportError:
        return None
    for package in GYMNASIUM_PACKAGES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(package)
        except ImportError:
            pass
    return gymnasium


def gymnasium_spec(env_id: str):
    """gymnasium's spec of `env_id` (a `module:EnvId` id imports its module first), or
    None when gymnasium does not know it."""
    gymnasium = import_gymnasium()
    if gymnasium is None:
        return None
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            return None
    try:
        return gymnasium.spec(name)
    except gymnasium.error.Error:
        return None


def gymnasium_ids() -> list[str]:
    """Every id gymnasium has registered (known packages imported)."""
    gymnasium = import_gymnasium()
    return [] if gymnasium is None else sorted(gymnasium.registry)


def _gym_space(space):
    """A gym 0.23 space equal to a gymnasium space (float64 boxes become float32)."""
    import gymnasium

    if isinstance(space, gymnasium.spaces.Box):
        dtype = np.float32 if space.dtype == np.float64 else space.dtype
        return gym.spaces.Box(space.low.astype(dtype), space.high.astype(dtype), dtype=dtype)
    if isinstance(space, gymnasium.spaces.Dict):
        return gym.spaces.Dict({key: _gym_space(sub) for key, sub in space.spaces.items()})
    if isinstance(space, gymnasium.spaces.Discrete):
        return gym.spaces.Discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.MultiBinary):
        return gym.spaces.MultiBinary(space.n)
    raise TypeError(f"a gymnasium {type(space).__name__} space has no gym counterpart here "
                    "(Box, Dict, Discrete and MultiBinary do)")


def _cast(observation, space):
    """An observation as `_gym_space(space)` describes it."""
    if isinstance(observation, dict):
        return {key: _cast(observation[key], space.spaces[key]) for key in space.spaces}
    return np.asarray(observation, dtype=space.dtype)


def remove_wrappers(env, wrapper_class, removed_class):
    """A wrapper chain (`wrapper_class` links, each holding `.env`) without its
    `removed_class` wrappers; the others keep their order."""
    outer, node, head = None, env, env
    while isinstance(node, wrapper_class):
        if isinstance(node, removed_class):
            if outer is None:
                head = node.env
            else:
                outer.env = node.env
            node = node.env
            continue
        outer, node = node, node.env
    return head


def strip_time_limit(env):
    """A gymnasium wrapper chain without its TimeLimit wrappers (the order enforcing
    and passive checker ones stay)."""
    import gymnasium

    return remove_wrappers(env, gymnasium.Wrapper, gymnasium.wrappers.TimeLimit)


class GymnasiumAsGym(gym.Env):
    """A gymnasium env with gym 0.23's interface (see the module's docstring)."""

    metadata = {"render.modes": ["rgb_array"]}

    def __init__(self, env):
        self.env = env
        self.observation_space = _gym_space(env.observation_space)
        self.action_space = _gym_space(env.action_space)
        self._seed = None
        self.last_info: dict = {}

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def seed(self, seed=None):
        self._seed = None if seed is None else int(seed)
        if seed is not None:
            self.env.action_space.seed(int(seed))
        return [seed]

    def reset(self, **kwargs):
        seed, self._seed = self._seed, None
        observation, self.last_info = self.env.reset(seed=seed)
        return _cast(observation, self.observation_space)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        if truncated and not terminated:
            info[TRUNCATED_KEY] = True
        self.last_info = info
        return (_cast(observation, self.observation_space), float(reward),
                bool(terminated or truncated), info)

    def render(self, mode="rgb_array"):
        if mode != "rgb_array":
            raise NotImplementedError(f"gymnasium envs render rgb_array frames, not {mode}")
        try:
            return self.env.render()
        except Exception as exc:  # mujoco raises its own FatalError without OpenGL
            if "OpenGL" not in str(exc) and "osmesa" not in str(exc).lower():
                raise
            raise RuntimeError(
                f"MuJoCo cannot render ({exc}); off screen it needs OSMesa (apt-get "
                "install libosmesa6, MUJOCO_GL=osmesa) or EGL with a GPU "
                "(MUJOCO_GL=egl)") from exc

    def close(self):
        self.env.close()


class GymnasiumWithStateAsGym(GymnasiumAsGym):
    """A bridged gymnasium env whose own env takes `set_state(dict)` (the curriculum's
    values): only then does the bridge offer it, so an env without one is told apart
    at launch (`curriculum.supports_set_state`)."""

    def set_state(self, state):
        return self.env.unwrapped.set_state(state)

    def get_state(self) -> dict:
        inner = getattr(self.env.unwrapped, "get_state", None)
        return dict(inner()) if callable(inner) else {}


def bridge(env):
    """A gymnasium env (its TimeLimit removed by the caller) as a gym 0.23 env."""
    if callable(getattr(env.unwrapped, "set_state", None)):
        return GymnasiumWithStateAsGym(env)
    return GymnasiumAsGym(env)


def make(env_id: str, gym_kwargs: dict):
    """(the gymnasium env of `env_id` bridged to gym's API without its time limit,
    gymnasium's registered step limit)."""
    gymnasium = import_gymnasium()
    kwargs = {"render_mode": "rgb_array", **gym_kwargs}
    env = gymnasium.make(env_id, **kwargs)
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return bridge(strip_time_limit(env)), limit


def goal_env(py_env):
    """The goal-conditioned env under a PyEnvironment's wrappers (the first object
    with a `compute_reward`), or None."""
    node, seen = py_env, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        for candidate in (node, getattr(node, "unwrapped", None)):
            own = getattr(candidate, "__dict__", {}).get("compute_reward")  # panda-gym's
            if candidate is not None and (callable(own) or callable(
                    getattr(type(candidate), "compute_reward", None))):
                return candidate
        node = next((node.__dict__[name] for name in ("_env", "_gym_env", "env")
                     if name in getattr(node, "__dict__", {})
                     and node.__dict__[name] is not node), None)
    return None


def keep_truncation_discount(py_env):
    """`py_env` (a TF-Agents env over a bridged gymnasium env) wrapped so that a step
    the env truncated keeps discount 1."""
    from tf_agents.environments import wrappers

    class KeepTruncationDiscount(wrappers.PyEnvironmentBaseWrapper):
        """GymWrapper gives every `done` discount 0; a gymnasium truncation is not
        terminal: its last step bootstraps (discount 1)."""

        def _step(self, action):
            time_step = self._env.step(action)
            if time_step.is_last():
                info = self._env.get_info()
                if isinstance(info, dict) and info.get(TRUNCATED_KEY):
                    time_step = time_step._replace(
                        discount=np.ones_like(time_step.discount))
            return time_step

        def _reset(self):
            return self._env.reset()

    return KeepTruncationDiscount(py_env)
