"""Pixel observations: an env seen through its camera, as uint8 images.

A config's `"pixels"` object (`PixelSettings`) turns any env the framework loads into
a pixel env: the env's own steps are repeated `action_repeat` times per action
(rewards summed), one frame is rendered per action at `size`, and the last
`frame_stack` frames are stacked along the channels (uint8 [H, W, 3 x frame_stack];
an episode's first frame fills the stack at its start). dm_control suite tasks are
named `"dm_control/<domain>-<task>"` (TF-Agents' `suite_dm_control`), gym, pybullet
and gymnasium envs by their usual ids.

The frame is rendered after the repeated steps, once per action: TF-Agents'
`suite_dm_control.load_pixels` renders on every physics-control step, which with
cartpole's action repeat of 8 is 8 renders (about 20 ms each with OSMesa) per action.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tfagents_system.envs import EnvError
from tfagents_system.replay.frames import frame_leaf_index

DM_CONTROL_PREFIX = "dm_control/"


@dataclass(frozen=True)
class PixelSettings:
    """How an env is turned into a pixel env (module docstring)."""

    height: int = 84
    width: int = 84
    camera: int = 0
    frame_stack: int = 3
    action_repeat: int = 1

    KEYS = ("size", "camera", "frame_stack", "action_repeat")

    @classmethod
    def from_config(cls, config: Mapping) -> PixelSettings | None:
        """The config's `"pixels"` object (None without one); EnvError naming the key."""
        value = config.get("pixels")
        if value is None or value is False:
            return None
        value = {} if value is True else value
        if not isinstance(value, Mapping):
            raise EnvError(f'config "pixels": {value!r} must be an object such as '
                           '{"size": 84, "frame_stack": 3, "action_repeat": 8}, or true')
        unknown = sorted(set(value) - set(cls.KEYS))
        if unknown:
            raise EnvError(f'config "pixels": unknown key(s) {", ".join(unknown)}; known: '
                           f'{", ".join(cls.KEYS)}')
        size = value.get("size", 84)
        size = [size, size] if isinstance(size, int) else size
        numbers = {"camera": value.get("camera", 0),
                   "frame_stack": value.get("frame_stack", 3),
                   "action_repeat": value.get("action_repeat", 1)}
        if not (isinstance(size, list) and len(size) == 2 and all(_positive(n) for n in size)):
            raise EnvError(f'config "pixels" "size": {value.get("size")!r} must be a positive '
                           "integer (square images) or [height, width]")
        for key, number in numbers.items():
            if not (_positive(number) or (key == "camera" and number == 0)):
                raise EnvError(f'config "pixels" "{key}": {number!r} must be a positive '
                               "integer" + (" or 0" if key == "camera" else ""))
        return cls(int(size[0]), int(size[1]), **numbers)


def _positive(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGB frame at height x width (bilinear, PIL), uint8."""
    frame = np.asarray(frame)
    if frame.shape[:2] == (height, width):
        return frame.astype(np.uint8, copy=False)
    from PIL import Image

    return np.asarray(Image.fromarray(frame.astype(np.uint8)).resize(
        (width, height), Image.BILINEAR))


def load_dm_control(env_id: str, seed: int | None):
    """A dm_control suite task (`"dm_control/<domain>-<task>"`) as a TF-Agents
    PyEnvironment, seeded; EnvError naming the known tasks for an unknown one."""
    from tfagents_system.gymnasium_bridge import headless_rendering_default

    headless_rendering_default()
    try:
        from dm_control import suite
        from tf_agents.environments import suite_dm_control
    except ImportError as exc:
        raise EnvError(f"env_id {env_id!r} needs dm_control ({exc}); install the pinned "
                       "requirements.txt") from exc
    name = env_id[len(DM_CONTROL_PREFIX):]
    domain, _, task = name.partition("-")
    if (domain, task) not in suite.ALL_TASKS:
        near = [f"{DM_CONTROL_PREFIX}{d}-{t}" for d, t in suite.ALL_TASKS if d == domain]
        raise EnvError(f"env_id {env_id!r}: no dm_control suite task {domain!r} {task!r}; "
                       + (f"{domain} has: {', '.join(near)}" if near else
                          "name it dm_control/<domain>-<task>, e.g. "
                          "dm_control/cartpole-swingup"))
    return suite_dm_control.load(domain, task, task_kwargs={"random": seed})


def dm_control_env(env_config: Mapping, seed: int | None):
    """The config's dm_control task (`env_id`) from pixels (its `"pixels"` object)."""
    settings = PixelSettings.from_config(env_config)
    env_id = env_config["env_id"]
    if settings is None:
        raise EnvError(f'env_id {env_id!r}: dm_control tasks train from pixels here; add '
                       '"pixels": {"size": 84, "action_repeat": 8} to the config')
    return with_pixels(load_dm_control(env_id, seed), settings, render_dm_control(settings))


def rendered_env(env, env_config: Mapping, time_feature: bool = False):
    """A loaded gym, pybullet or gymnasium env (a PyEnvironment) seen through the
    config's `"pixels"` object."""
    if time_feature:
        raise EnvError('time_feature appends to a vector observation, and a "pixels" env '
                       "observes images: set time_feature = False")
    settings = PixelSettings.from_config(env_config)
    return with_pixels(env, settings, render_gym(settings))


def with_pixels(env, settings: PixelSettings, render):
    """`env` (a PyEnvironment) seen as a pixel env: action repeat, one frame rendered by
    `render(env) -> RGB array` per action, frame stacking (module docstring)."""
    from tf_agents.environments import wrappers

    if settings.action_repeat > 1:
        env = wrappers.ActionRepeat(env, settings.action_repeat)
    return FrameStack(RenderedObservation(env, settings, render), settings.frame_stack)


def render_dm_control(settings: PixelSettings):
    """The dm_control env's frame at the settings' size and camera."""
    def render(env):
        return env.physics.render(settings.height, settings.width, camera_id=settings.camera)

    return render


def render_gym(settings: PixelSettings):
    """A gym, pybullet or gymnasium env's rgb_array frame, resized to the settings'."""
    def render(env):
        return resize(env.render("rgb_array"), settings.height, settings.width)

    return render


def _base_wrapper():
    from tf_agents.environments import wrappers

    return wrappers.PyEnvironmentBaseWrapper


class RenderedObservation(_base_wrapper()):
    """The observation is the env's rendered frame (uint8 [H, W, 3]); the action spec
    is float32 (cast back to the env's dtype), reward and discount float32."""

    def __init__(self, env, settings: PixelSettings, render):
        from tf_agents.specs import array_spec

        super().__init__(env)
        self._render = render
        self._settings = settings
        self._inner_action = env.action_spec()
        inner = self._inner_action
        self._action_spec = array_spec.BoundedArraySpec(
            inner.shape, np.float32, np.asarray(inner.minimum, np.float32),
            np.asarray(inner.maximum, np.float32), name="action")
        self._observation_spec = array_spec.ArraySpec(
            (settings.height, settings.width, 3), np.uint8, name="pixels")
        self._rendered = False

    def _frame(self) -> np.ndarray:
        """The frame now; the first render's failure is one EnvError naming the fix
        (the launch steps every env before training)."""
        try:
            frame = np.asarray(self._render(self._env))
        except Exception as exc:
            if self._rendered:
                raise
            raise EnvError(
                f"the env cannot render its pixels ({type(exc).__name__}: {exc}); off "
                "screen MuJoCo needs OSMesa (apt-get install libosmesa6; MUJOCO_GL=osmesa) "
                "or EGL with a GPU (MUJOCO_GL=egl)") from exc
        if not self._rendered:
            self._rendered = True
            _free_render_contexts_at_exit(self._env)
        expected = (self._settings.height, self._settings.width, 3)
        if frame.shape != expected:
            raise EnvError(f"the env rendered a {frame.shape} frame, not {expected}")
        return frame.astype(np.uint8, copy=False)

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def get_info(self):
        """The env's info (None where it has none: dm_control's)."""
        try:
            return self._env.get_info()
        except (AttributeError, NotImplementedError):
            return None

    def time_step_spec(self):
        from tf_agents.specs import array_spec
        from tf_agents.trajectories import time_step as ts

        spec = ts.time_step_spec(self._observation_spec)
        return spec._replace(reward=array_spec.ArraySpec((), np.float32, "reward"))

    def _convert(self, time_step):
        return time_step._replace(observation=self._frame(),
                                  reward=np.float32(time_step.reward),
                                  discount=np.float32(time_step.discount))

    def _reset(self):
        return self._convert(self._env.reset())

    def _step(self, action):
        return self._convert(self._env.step(
            np.asarray(action, dtype=self._inner_action.dtype)))


def _free_render_contexts_at_exit(env) -> None:
    """Free a dm_control env's rendering contexts when the interpreter exits, before
    its render thread pool stops: dm_control's own exit hook runs after that (Python
    3.11 stops thread pools first) and prints tracebacks instead."""
    import threading
    import weakref

    physics = getattr(getattr(env, "_env", None), "physics", None)
    if physics is None:
        return
    alive = weakref.ref(physics)  # an env closed and dropped before exit is not kept

    def free():
        if alive() is not None:
            alive().free()

    threading._register_atexit(free)  # runs before the thread pools' shutdown


class FrameStack(_base_wrapper()):
    """The last `frames` images (the observation's uint8 [H, W, C] leaf, alone or in a
    dict beside other leaves, which stay the newest) stacked along the channels,
    oldest first; at an episode's start its first image fills the stack."""

    def __init__(self, env, frames: int):
        import tensorflow as tf
        from tf_agents.specs import array_spec

        super().__init__(env)
        self._frames = int(frames)
        self._stack: deque = deque(maxlen=self._frames)
        inner = env.observation_spec()
        self._image = frame_leaf_index(inner)
        if self._image is None:
            raise EnvError("frame_stack needs an observation with one image (uint8 "
                           f"[H, W, C]) leaf; the env's is {inner}")
        leaves = tf.nest.flatten(inner)
        image = leaves[self._image]
        leaves[self._image] = array_spec.ArraySpec(
            tuple(image.shape[:-1]) + (image.shape[-1] * self._frames,), image.dtype,
            name=image.name)
        self._spec = tf.nest.pack_sequence_as(inner, leaves)

    @property
    def frames(self) -> int:
        """Frames in one observation."""
        return self._frames

    def observation_spec(self):
        return self._spec

    def time_step_spec(self):
        return self._env.time_step_spec()._replace(observation=self._spec)

    def _stacked(self, time_step, first: bool):
        import tensorflow as tf

        leaves = tf.nest.flatten(time_step.observation)
        if first:
            self._stack.extend([leaves[self._image]] * self._frames)
        else:
            self._stack.append(leaves[self._image])
        leaves[self._image] = np.concatenate(self._stack, axis=-1)
        return time_step._replace(observation=tf.nest.pack_sequence_as(
            time_step.observation, leaves))

    def _reset(self):
        return self._stacked(self._env.reset(), first=True)

    def _step(self, action):
        time_step = self._env.step(action)
        return self._stacked(time_step, first=bool(time_step.is_first()))
