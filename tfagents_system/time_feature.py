"""A remaining-time observation feature for time-limited tasks.

An episode cut by a time limit is not a terminal state (`envs.load_gym_env`
keeps bootstrapping there), but the observation alone does not say how much
time is left: the same state is worth less near the limit. Appending the
remaining fraction of the limit, 1 - t / limit, makes the value well defined
again (Pardo et al., 2018, "Time Limits in Reinforcement Learning"; RL
Baselines3 Zoo trains its PyBullet locomotion agents with such a feature).

`TimeFeature` wraps any TF-Agents `PyEnvironment` whose observation is one flat
float vector, or a dict with one in "observation" (a goal-conditioned env's, as RL
Baselines3 Zoo's TimeFeatureWrapper extends it for panda-gym).
`GymTrainParams.time_feature = True` applies it to gym/pybullet and gymnasium ids;
in your own `env_ctor`, wrap the env you return:

    from tfagents_system.time_feature import TimeFeature
    return TimeFeature(load_gym_env("HopperBulletEnv-v0", seed=seed))
"""

from __future__ import annotations

import numpy as np
from tf_agents.environments import wrappers
from tf_agents.specs import array_spec

from tfagents_system.envs import EnvError, max_episode_steps

DICT_KEY = "observation"


class TimeFeature(wrappers.PyEnvironmentBaseWrapper):
    """Appends 1 - t / `limit` to the observation (1.0 at reset, 0.0 at the limit).

    `limit` defaults to the step limit of the env's TF-Agents `TimeLimit`
    wrapper. The count restarts at every first step, including the automatic
    reset after an episode's last step.
    """

    def __init__(self, env, limit: int | None = None):
        super().__init__(env)
        limit = max_episode_steps(env) if limit is None else limit
        if not limit or limit <= 0:
            raise EnvError("TimeFeature: the env has no step limit; pass limit=<the episode's "
                           "step limit> or set max_episode_steps, or turn time_feature off")
        spec = env.observation_spec()
        # A goal-conditioned dict observation gets the feature in its "observation" leaf.
        self._key = DICT_KEY if isinstance(spec, dict) and DICT_KEY in spec else None
        vector = spec[self._key] if self._key else spec
        if not isinstance(vector, array_spec.ArraySpec) or len(vector.shape) != 1 or \
                not np.issubdtype(vector.dtype, np.floating):
            raise EnvError(f"TimeFeature: the observation must be one flat float vector (or a "
                           f"dict with one in '{DICT_KEY}'), not {spec}; turn time_feature "
                           "off or flatten the observation")
        self._limit = float(limit)
        self._steps = 0
        low = np.broadcast_to(getattr(vector, "minimum", -np.inf), vector.shape)
        high = np.broadcast_to(getattr(vector, "maximum", np.inf), vector.shape)
        extended = array_spec.BoundedArraySpec(
            (vector.shape[0] + 1,), vector.dtype,
            minimum=np.append(low, 0.0).astype(vector.dtype),
            maximum=np.append(high, 1.0).astype(vector.dtype),
            name=vector.name)
        self._dtype = vector.dtype
        self._spec = {**spec, self._key: extended} if self._key else extended

    @property
    def limit(self) -> int:
        return int(self._limit)

    def observation_spec(self):
        return self._spec

    def _extend(self, time_step):
        remaining = max(0.0, 1.0 - self._steps / self._limit)
        observation = time_step.observation
        if self._key:
            vector = np.append(observation[self._key], remaining).astype(self._dtype)
            observation = {**observation, self._key: vector}
        else:
            observation = np.append(observation, remaining).astype(self._dtype)
        return time_step._replace(observation=observation)

    def _reset(self):
        self._steps = 0
        return self._extend(self._env.reset())

    def _step(self, action):
        time_step = self._env.step(action)
        self._steps = 0 if time_step.is_first() else self._steps + 1
        return self._extend(time_step)
