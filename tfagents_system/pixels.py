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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tfagents_system.envs import EnvError

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

    from tfagents_system.pixel_wrappers import FrameStack, RenderedObservation

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
