"""Perturbations for sim-to-real training, each a gym wrapper whose strength the
curriculum ramps through `set_state`.

Every wrapper here is a `StrengthWrapper`: `set_state` takes the wrapper's own
parameters (validated against their ranges) and hands every other key to the env
it wraps, so a chain of wrappers takes one dict, as the curriculum gives it. New
strengths take effect at the next reset, as `DynamicsRandomizer`'s spreads do;
each wrapper draws from its own generator, seeded from the env's seed.

- `ObservationNoise` `obs_noise_std` s: obs + s * scale * N(0, 1), per dimension
  (`scale` a vector, default ones);
- `ObservationDelay` `obs_delay_steps` k: the observation of k steps ago (the reset
  observation until k steps have passed);
- `ActionNoise` `action_noise_std` s: action + s * (high - low) / 2 * N(0, 1),
  clipped to the action bounds;
- `ActionLatency` `action_latency_steps` k: the env applies the action given k
  steps ago (zero, clipped to the bounds, until then);
- `ActionRepeat` `action_repeat` n: each action is applied n times, rewards summed,
  stopping early when the episode ends;
- `RandomPushes` `push_force` f (newtons), `push_duration_steps` d,
  `push_probability` p: at each step that no push is under way, a push starts with
  probability p: a horizontal force of magnitude f in a uniformly random direction
  on the robot's root link (pybullet's `applyExternalForce`, world frame, at the
  link's centre of mass), applied for d steps.

`perturb(env, seed, **strengths)` stacks them all in the order a real robot meets
them (inner to outer): pushes act on the physics; action noise, then latency,
shape what the motors get; observation noise, then delay, shape what the policy
sees; action repeat is outermost, so one policy step is n steps of everything
inside (latency and delay count those inner steps).
"""

from __future__ import annotations

import math
from collections import deque

import gym
import numpy as np


class UnknownParameter(KeyError):
    """A set_state key that no wrapper in the chain takes."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        super().__init__(f"set_state: unknown parameter {name!r}; known through this env's "
                         f"wrappers: {', '.join(known) or 'none'}")

    def __str__(self) -> str:
        return str(self.args[0])


class StrengthWrapper(gym.Wrapper):
    """A gym wrapper with named strengths set through `set_state`.

    Subclasses declare `PARAMETERS` {name: (low, high, default)} (an int default
    makes the parameter an integer) and a distinct `SALT` for their generator.
    """

    PARAMETERS: dict[str, tuple[float, float, float]] = {}
    SALT = 0

    def __init__(self, env, seed: int | None = None, **strengths):
        super().__init__(env)
        self.strength = {name: spec[2] for name, spec in self.PARAMETERS.items()}
        self._pending: dict = {}
        self._rng = self._make_rng(seed)
        own = {k: v for k, v in strengths.items() if k in self.PARAMETERS}
        if len(own) != len(strengths):
            unknown = sorted(set(strengths) - set(own))
            raise TypeError(f"{type(self).__name__}: unknown parameter(s) {', '.join(unknown)}; "
                            f"known: {', '.join(self.PARAMETERS)}")
        self.set_state(own)
        self._take_pending()

    def _make_rng(self, seed):
        return np.random.default_rng(None if seed is None else [int(seed), self.SALT])

    def seed(self, seed=None):
        self._rng = self._make_rng(seed)
        return self.env.seed(seed)

    def set_state(self, state: dict) -> None:
        """Take this wrapper's parameters (from the next reset on); pass the rest inward."""
        rest = {}
        for name, value in state.items():
            if name in self.PARAMETERS:
                self._pending[name] = self._checked(name, value)
            else:
                rest[name] = value
        if rest:
            inner = getattr(self.env, "set_state", None)
            try:
                if inner is None:
                    raise UnknownParameter(next(iter(rest)), [])
                inner(rest)
            except UnknownParameter as exc:  # named again with every wrapper's parameters
                raise UnknownParameter(exc.name, known_parameters(self)) from None

    def _checked(self, name: str, value):
        low, high, default = self.PARAMETERS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{type(self).__name__}.set_state: {name}={value!r} is not a number")
        if isinstance(default, int) and float(value) != int(value):
            raise ValueError(f"{type(self).__name__}.set_state: {name}={value} must be a whole "
                             "number")
        if not low <= float(value) <= high:
            raise ValueError(f"{type(self).__name__}.set_state: {name}={value} outside "
                             f"[{low}, {high}]")
        return int(value) if isinstance(default, int) else float(value)

    def get_state(self) -> dict:
        inner = getattr(self.env, "get_state", None)
        state = dict(inner()) if inner is not None else {}
        state.update(self.strength)
        state.update(self._pending)
        return state

    def _take_pending(self) -> None:
        self.strength.update(self._pending)
        self._pending = {}

    def reset(self, **kwargs):
        self._take_pending()
        self.on_reset()
        return self.observe_reset(self.env.reset(**kwargs))

    def on_reset(self) -> None:
        """Before the wrapped env resets, with the new strengths in place."""

    def observe_reset(self, observation):
        return observation


def known_parameters(env) -> list[str]:
    """Every parameter that `set_state` reaches through a chain of gym wrappers."""
    names, node = [], env
    while isinstance(node, gym.Wrapper):
        names.extend(getattr(node, "PARAMETERS", {}))
        node = node.env
    return names


class ObservationNoise(StrengthWrapper):
    """Gaussian sensor noise, per dimension."""

    PARAMETERS = {"obs_noise_std": (0.0, 1e6, 0.0)}
    SALT = 101

    def __init__(self, env, seed=None, scale=None, **strengths):
        shape = env.observation_space.shape
        self._scale = np.ones(shape, np.float64) if scale is None else np.asarray(scale, float)
        if self._scale.shape != shape:
            raise ValueError(f"ObservationNoise: scale has shape {self._scale.shape}, the "
                             f"observation {shape}; give one factor per observation dimension")
        self._dtype = env.observation_space.dtype
        super().__init__(env, seed, **strengths)

    def on_reset(self) -> None:
        std = self.strength["obs_noise_std"]
        self._std = None if std == 0.0 else (std * self._scale).astype(self._dtype)

    def _noisy(self, observation):
        if self._std is None:
            return observation
        noise = self._rng.standard_normal(self._std.shape, dtype=self._dtype)
        return observation + self._std * noise

    def observe_reset(self, observation):
        return self._noisy(observation)

    def step(self, action):
        observation, reward, done, info = self.env.step(action)
        return self._noisy(observation), reward, done, info


class ObservationDelay(StrengthWrapper):
    """The observation of k steps ago."""

    PARAMETERS = {"obs_delay_steps": (0, 1000, 0)}
    SALT = 102

    def observe_reset(self, observation):
        k = self.strength["obs_delay_steps"]
        self._queue = deque([observation] * (k + 1), maxlen=k + 1)
        return observation

    def step(self, action):
        observation, reward, done, info = self.env.step(action)
        self._queue.append(observation)
        return self._queue[0], reward, done, info


class ActionNoise(StrengthWrapper):
    """Gaussian motor noise, in units of half the action range, clipped to the bounds."""

    PARAMETERS = {"action_noise_std": (0.0, 1e6, 0.0)}
    SALT = 103

    def __init__(self, env, seed=None, **strengths):
        space = env.action_space
        self._low, self._high, self._dtype = space.low, space.high, space.dtype
        self._half_range = (space.high - space.low) / 2.0
        super().__init__(env, seed, **strengths)

    def on_reset(self) -> None:
        std = self.strength["action_noise_std"]
        self._std = None if std == 0.0 else (std * self._half_range).astype(self._dtype)

    def step(self, action):
        if self._std is not None:
            noise = self._rng.standard_normal(self._std.shape, dtype=self._dtype)
            action = np.minimum(np.maximum(action + self._std * noise, self._low), self._high)
        return self.env.step(action)


class ActionLatency(StrengthWrapper):
    """The env applies the action given k steps ago."""

    PARAMETERS = {"action_latency_steps": (0, 1000, 0)}
    SALT = 104

    def on_reset(self) -> None:
        space = self.env.action_space
        neutral = np.clip(np.zeros(space.shape, space.dtype), space.low, space.high)
        k = self.strength["action_latency_steps"]
        self._queue = deque([neutral] * k, maxlen=k + 1)

    def step(self, action):
        self._queue.append(np.asarray(action))
        return self.env.step(self._queue.popleft())


class ActionRepeat(StrengthWrapper):
    """Each action applied n times; rewards summed; the last step's observation and info."""

    PARAMETERS = {"action_repeat": (1, 1000, 1)}
    SALT = 105

    def step(self, action):
        total = 0.0
        for _ in range(self.strength["action_repeat"]):
            observation, reward, done, info = self.env.step(action)
            total += reward
            if done:
                break
        return observation, total, done, info


class RandomPushes(StrengthWrapper):
    """Random horizontal pushes on the robot's root link."""

    PARAMETERS = {"push_force": (0.0, 1e6, 0.0),
                  "push_duration_steps": (1, 1000, 1),
                  "push_probability": (0.0, 1.0, 0.0)}
    SALT = 106
    _left, _force, pushes = 0, None, 0

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        unwrapped = self.env.unwrapped  # (pybullet_envs make their client at the first reset)
        if self._pending.get("push_force", 0.0) > 0 and not (
                any(hasattr(unwrapped, attribute) for attribute in BULLET_CLIENTS)
                or type(unwrapped).__module__.startswith("pybullet")):
            raise TypeError(f"RandomPushes: push_force needs a pybullet environment, and "
                            f"{type(unwrapped).__name__} is not one (no _p or _pybullet_client)")

    def on_reset(self) -> None:
        self._left = 0  # steps of the current push still to apply
        self._force = None
        self.pushes = 0  # pushes started this episode

    def step(self, action):
        s = self.strength
        if self._left == 0 and s["push_force"] > 0 and self._rng.random() < s["push_probability"]:
            angle = self._rng.uniform(0.0, 2.0 * math.pi)
            force = s["push_force"]
            self._force = [force * math.cos(angle), force * math.sin(angle), 0.0]
            self._left = s["push_duration_steps"]
            self.pushes += 1
        if self._left > 0:
            self._push()
            self._left -= 1
        return self.env.step(action)

    def _push(self) -> None:
        p = bullet_client(self.env)
        body, link = root_link(p)
        if link == -1:
            position = p.getBasePositionAndOrientation(body)[0]
        else:
            position = p.getLinkState(body, link)[0]
        p.applyExternalForce(body, link, self._force, position, p.WORLD_FRAME)


BULLET_CLIENTS = ("_p", "_pybullet_client")  # where pybullet envs keep their client


def bullet_client(env):
    """A pybullet env's client (pybullet_envs keep it in `_p` or `_pybullet_client`)."""
    unwrapped = env.unwrapped
    for attribute in BULLET_CLIENTS:
        client = getattr(unwrapped, attribute, None)
        if client is not None:
            return client
    raise TypeError(f"{type(unwrapped).__name__} is not a pybullet environment (no _p or "
                    "_pybullet_client); this wrapper needs one")


def root_link(p) -> tuple[int, int]:
    """(body, link) of the robot's root: in the body with the most joints, the first
    link (base first) with mass; pybullet_envs' planar robots hang their torso from
    massless slider links, and a pendulum's cart rides on a fixed rail."""
    bodies = [p.getBodyUniqueId(i) for i in range(p.getNumBodies())]
    if not bodies:
        raise TypeError("the pybullet simulation holds no bodies to push")
    robot = max(bodies, key=p.getNumJoints)
    for link in range(-1, p.getNumJoints(robot)):
        if p.getDynamicsInfo(robot, link)[0] > 0:
            return robot, link
    return robot, -1


# Inner to outer: the order a real robot meets them.
WRAPPERS = (RandomPushes, ActionNoise, ActionLatency, ObservationNoise, ObservationDelay,
            ActionRepeat)
PARAMETERS = {name: spec for w in WRAPPERS for name, spec in w.PARAMETERS.items()}
OPTIONS = {"obs_noise_scale"}  # set once, not ramped


def perturb(env, seed: int | None = None, obs_noise_scale=None, **strengths):
    """Wrap a gym env in every perturbation, at the given initial strengths (default:
    none); seed them with `env.seed(seed)` as usual, or here."""
    for wrapper in WRAPPERS:
        own = {k: v for k, v in strengths.items() if k in wrapper.PARAMETERS}
        extra = {"scale": obs_noise_scale} if wrapper is ObservationNoise else {}
        env = wrapper(env, seed, **extra, **own)
    unknown = sorted(set(strengths) - set(PARAMETERS))
    if unknown:
        raise TypeError(f"perturb: unknown parameter(s) {', '.join(unknown)}; known: "
                        f"{', '.join(PARAMETERS)}")
    return env
