"""The pixel env wrappers (`pixels.with_pixels` builds them): the rendered frame as the
observation, and frame stacking."""

from __future__ import annotations

from collections import deque

import numpy as np
from tf_agents.environments import wrappers

from tfagents_system.envs import EnvError
from tfagents_system.replay.frames import frame_leaf_index


class RenderedObservation(wrappers.PyEnvironmentBaseWrapper):
    """The observation is the env's rendered frame (uint8 [H, W, 3]); the action spec
    is float32 (cast back to the env's dtype), reward and discount float32."""

    def __init__(self, env, settings, render):
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


class FrameStack(wrappers.PyEnvironmentBaseWrapper):
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
