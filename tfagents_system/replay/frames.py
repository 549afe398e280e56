"""Image observations in the learner's replay memory, each frame stored once.

A pixel observation is a stack of the env's last k frames (`pixel_wrappers.FrameStack`:
uint8 [H, W, C x k], oldest first). Packed as plain transitions it would cost
2 x k frames per transition, as float32: 8k times the bytes of one frame. The frame
layout stores each frame once, as its bytes:

- A row is a transition's small fields (`FramePacker`: step types, reward,
  discount, the row's position in its block, the other observation leaves and the
  action) and one frame: the newest of its next observation. The frame's bytes fill
  float32 slots as they are (4 bytes a slot); those slots are never read as numbers
  (`value_columns` says which are).
- A block (the packed_blocks layout's unit: consecutive steps of one episode of one
  env) starts with k context rows holding the frames of its first observation, so
  the rows at positions p - k ... p - 1 of a block hold the frames of the observation
  of the transition at position p, and p - k + 1 ... p those of its next observation.
- The learner samples a transition row and the k rows before it
  (`memory.ReplayMemory.sample` with `history`), never a context row and never one
  whose context the ring buffer has overwritten, and `unpack` stacks the frames
  back into the observations inside the compiled train step.

A transition then costs one frame and the small fields, plus k context rows per
block (k / 128 of a frame per transition when episodes fill whole blocks).
"""

from __future__ import annotations

import numpy as np

from tfagents_system.core.specs import leaves

POSITION = 4  # the row's position in its block
HEAD = 5


def frame_leaf_index(observation_spec) -> int | None:
    """The index (tf.nest order) of the observation's only image leaf (uint8
    [H, W, C]), or None if it has none or several."""
    found = [i for i, leaf in enumerate(leaves(observation_spec))
             if len(leaf.shape) == 3 and leaf.dtype == "uint8"]
    return found[0] if len(found) == 1 else None


class FramePacker:
    """Rows of the frame layout (module docstring) <-> transitions with stacked image
    observations of `stack` frames."""

    def __init__(self, observation_spec, action_spec, stack: int):
        import tensorflow as tf

        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self.stack = int(stack)
        self.history = self.stack  # rows before a sampled row that `unpack` needs
        flat = tf.nest.flatten(observation_spec)
        self._image = frame_leaf_index(observation_spec)
        height, width, channels = (int(d) for d in flat[self._image].shape)
        if channels % self.stack:
            raise ValueError(f"an image of {channels} channels is no stack of {self.stack} "
                             "frames")
        self.frame_shape = (height, width, channels // self.stack)
        self.frame_bytes = int(np.prod(self.frame_shape))
        self._small_shapes = [tuple(s.shape) for i, s in enumerate(flat) if i != self._image]
        self._small_dtypes = [tf.as_dtype(s.dtype) for i, s in enumerate(flat)
                              if i != self._image]
        self._small_sizes = [int(np.prod(shape)) for shape in self._small_shapes]
        self._act_shapes = [tuple(s.shape) for s in tf.nest.flatten(action_spec)]
        self._act_sizes = [int(np.prod(shape)) for shape in self._act_shapes]
        small = sum(self._small_sizes)
        self._obs_at = HEAD
        self._act_at = HEAD + small
        self._next_obs_at = self._act_at + sum(self._act_sizes)
        self.frame_at = self._next_obs_at + small
        self.size = self.frame_at + -(-self.frame_bytes // 4)

    @property
    def value_columns(self) -> slice:
        """The columns that hold numbers (the rest are a frame's bytes)."""
        return slice(0, self.frame_at)

    def row_bytes(self) -> int:
        """Bytes one row takes in memory."""
        return 4 * self.size

    def builder(self) -> FrameBuilder:
        """A worker env's row writer."""
        return FrameBuilder(self)

    # --- writing (workers, numpy) ---

    def _small(self, observation) -> list:
        import tensorflow as tf

        return [leaf for i, leaf in enumerate(tf.nest.flatten(observation)) if i != self._image]

    def _fill(self, row, at: int, values, sizes) -> None:
        for value, size in zip(values, sizes):
            row[at:at + size] = np.reshape(value, -1)
            at += size

    def put_frame(self, row, frame) -> None:
        """Write one frame's bytes into the row's frame slots."""
        slots = row[self.frame_at:].view(np.uint8)
        slots[:self.frame_bytes] = np.reshape(frame, -1)

    def frames(self, observation) -> np.ndarray:
        """The observation's stacked image as [stack, H, W, C] frames, oldest first."""
        import tensorflow as tf

        image = np.asarray(tf.nest.flatten(observation)[self._image])
        height, width, channels = self.frame_shape
        return image.reshape(height, width, self.stack, channels).transpose(2, 0, 1, 3)

    def write_context(self, observation, out) -> None:
        """The k context rows of a block whose first observation this is."""
        out[:self.stack] = 0.0
        for position, frame in enumerate(self.frames(observation)):
            out[position, POSITION] = position
            self.put_frame(out[position], frame)

    def write_transition(self, time_step, action, next_time_step, position: int, row) -> None:
        """A transition row at this position of its block."""
        import tensorflow as tf

        row[0] = time_step.step_type
        row[1] = next_time_step.step_type
        row[2] = next_time_step.reward
        row[3] = next_time_step.discount
        row[POSITION] = position
        self._fill(row, self._obs_at, self._small(time_step.observation), self._small_sizes)
        self._fill(row, self._act_at, tf.nest.flatten(action), self._act_sizes)
        self._fill(row, self._next_obs_at, self._small(next_time_step.observation),
                   self._small_sizes)
        # The newest frame is the stack's last channels: no reshaping of the whole stack.
        image = tf.nest.flatten(next_time_step.observation)[self._image]
        self.put_frame(row, np.asarray(image)[..., -self.frame_shape[2]:])

    # --- reading (learner, TensorFlow) ---

    def valid(self, positions, ages):
        """Which sampled rows are transitions whose context is still stored: their
        position in the block and their age (rows stored before them) are >= k."""
        return (positions >= self.stack) & (ages >= self.stack)

    def unpack(self, rows):
        """[B, k + 1, size] rows (a transition row and the k before it) -> a Transition
        with [B, ...] tensors, the stacked images rebuilt."""
        import tensorflow as tf
        from tf_agents.trajectories import policy_step, trajectory
        from tf_agents.trajectories import time_step as ts

        row = rows[:, -1]
        frames = tf.reshape(tf.bitcast(rows[:, :, self.frame_at:], tf.uint8),
                            [tf.shape(rows)[0], self.stack + 1, -1])[:, :, :self.frame_bytes]
        height, width, channels = self.frame_shape
        frames = tf.reshape(frames, [-1, self.stack + 1, height, width, channels])

        def stacked(part):  # [B, k, H, W, C] -> [B, H, W, k * C], oldest first
            part = tf.transpose(part, [0, 2, 3, 1, 4])
            return tf.reshape(part, [-1, height, width, self.stack * channels])

        observation = self._observation(row, self._obs_at, stacked(frames[:, :-1]))
        next_observation = self._observation(row, self._next_obs_at, stacked(frames[:, 1:]))
        action = self._split(row, self._act_at, self._act_shapes, self._act_sizes,
                             [tf.float32] * len(self._act_sizes))
        reward, discount = row[:, 2], row[:, 3]
        return trajectory.Transition(
            time_step=ts.TimeStep(tf.cast(row[:, 0], tf.int32), tf.zeros_like(reward),
                                  tf.zeros_like(discount), observation),
            action_step=policy_step.PolicyStep(
                tf.nest.pack_sequence_as(self.action_spec, action), (), ()),
            next_time_step=ts.TimeStep(tf.cast(row[:, 1], tf.int32), reward, discount,
                                       next_observation))

    def _split(self, row, at, shapes, sizes, dtypes) -> list:
        import tensorflow as tf

        parts = []
        for shape, size, dtype in zip(shapes, sizes, dtypes):
            leaf = tf.reshape(row[:, at:at + size], [-1, *shape])
            parts.append(leaf if dtype == tf.float32 else tf.cast(leaf, dtype))
            at += size
        return parts

    def _observation(self, row, at, image):
        import tensorflow as tf

        small = self._split(row, at, self._small_shapes, self._small_sizes, self._small_dtypes)
        flat = small[:self._image] + [image] + small[self._image:]
        return tf.nest.pack_sequence_as(self.observation_spec, flat)


class FrameBuilder:
    """One env's rows of the frame layout: the k context rows at each block's start,
    then a row per transition. The block writer says when a block starts
    (`block_started`); an episode's start also starts one (the writer sends a block at
    each episode's end)."""

    def __init__(self, packer: FramePacker):
        self._packer = packer
        self._position = 0

    @property
    def max_rows(self) -> int:
        """Rows the next write may put out: the context and a transition at a block's
        start, else one (so a block is only cut short when it is full)."""
        return 1 if self._position else self._packer.stack + 1

    def block_started(self) -> None:
        """The next row is the first of a new block."""
        self._position = 0

    def write(self, time_step, action, next_time_step, out) -> int:
        """Add a transition; returns the rows written into `out`."""
        written = 0
        if time_step.step_type == 0:  # StepType.FIRST: a new episode, a new block
            self._position = 0
        if self._position == 0:
            self._packer.write_context(time_step.observation, out)
            written = self._position = self._packer.stack
        self._packer.write_transition(time_step, action, next_time_step, self._position,
                                      out[written])
        self._position += 1
        return written + 1
