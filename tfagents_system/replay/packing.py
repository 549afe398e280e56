"""One (s, a, r, s') transition <-> one float32 vector, and blocks of them.

The packed layouts (`layouts.LAYOUT_PACKED`, `layouts.LAYOUT_BLOCKS`) move and
store transitions as these vectors; `unpack` turns a batch of them back into the
Transition that SacAgent.train takes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Rows per block of the packed_blocks layout, and the step type of the unused rows
# at the end of a short block (an episode ended before the block was full).
BLOCK_ROWS = 128
PAD_STEP_TYPE = -1.0

# Observation leaf dtypes a float32 vector holds exactly: every value of these (and
# int32's up to 2**24 in magnitude, float32's 24-bit significand) round-trips.
EXACT_OBSERVATION_DTYPES = ("float32", "bool", "int8", "int16", "int32", "uint8", "uint16")


def observation_problem(observation_spec) -> str | None:
    """Why an observation cannot be packed exactly (naming the first such leaf), or
    None if it can."""
    from tfagents_system.observations import leaves

    for leaf in leaves(observation_spec):
        if leaf.dtype not in EXACT_OBSERVATION_DTYPES:
            return (f"observation leaf {leaf.path!r} is {leaf.dtype}, which float32 vectors "
                    "cannot hold exactly")
    return None


class TransitionPacker:
    """One (s, a, r, s') transition <-> one float32 vector.

    Vector: [step_type, next_step_type, reward, discount, observation...,
    action..., next observation...] (nested observations and actions are
    flattened leaf by leaf, in tf.nest order). Step types 0-2 are exact in
    float32, and so are the integer and bool observation leaves of
    EXACT_OBSERVATION_DTYPES, which `unpack` casts back to their dtype. `unpack`
    rebuilds exactly what `trajectory.to_transition` gives for the 2-step item of
    the TF-Agents layout (zero reward and discount in the first time step).
    """

    HEAD = 4
    # Rows one `write` may fill (the builder interface of the workers' row writers).
    max_rows = 1

    @classmethod
    def for_spec(cls, collect_data_spec) -> TransitionPacker:
        """The packer of an agent's collect data spec (its observation and action)."""
        return cls(collect_data_spec.observation, collect_data_spec.action)

    def __init__(self, observation_spec, action_spec):
        import tensorflow as tf

        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self._obs_shapes = [tuple(s.shape) for s in tf.nest.flatten(observation_spec)]
        self._obs_dtypes = [tf.as_dtype(s.dtype) for s in tf.nest.flatten(observation_spec)]
        self._act_shapes = [tuple(s.shape) for s in tf.nest.flatten(action_spec)]
        self._obs_sizes = [int(np.prod(shape)) for shape in self._obs_shapes]
        self._act_sizes = [int(np.prod(shape)) for shape in self._act_shapes]
        self.obs_size = sum(self._obs_sizes)
        self.act_size = sum(self._act_sizes)
        self.size = self.HEAD + 2 * self.obs_size + self.act_size
        self._obs_at = self.HEAD
        self._act_at = self.HEAD + self.obs_size
        self._next_obs_at = self._act_at + self.act_size
        self._single_obs = len(self._obs_sizes) == 1
        self._single_act = len(self._act_sizes) == 1

    @staticmethod
    def unsupported_reason(collect_data_spec) -> str | None:
        """Why a Trajectory spec cannot be packed, or None if it can."""
        import tensorflow as tf

        spec = collect_data_spec
        if tf.nest.flatten(spec.policy_info):
            return "the collect policy emits info"
        problem = observation_problem(spec.observation)
        if problem:
            return problem
        for leaf in tf.nest.flatten(spec.action):
            if tf.as_dtype(leaf.dtype) != tf.float32:
                return f"an action leaf is {tf.as_dtype(leaf.dtype).name}, not float32"
        for name in ("reward", "discount"):
            leaf = getattr(spec, name)
            if tf.nest.flatten(leaf) != [leaf] or tuple(leaf.shape) != ():
                return f"{name} is not a scalar"
        return None

    def _fill(self, out, at, value, single, sizes):
        import tensorflow as tf

        if single:
            out[at:at + sizes[0]] = np.reshape(value, -1)
            return
        for leaf, size in zip(tf.nest.flatten(value), sizes):
            out[at:at + size] = np.reshape(leaf, -1)
            at += size

    def write(self, time_step, action, next_time_step, out: np.ndarray) -> int:
        """Pack the transition into `out[0]` (`out`: float32 [max_rows, size]); the rows
        written, always 1 (the builder interface, as SequenceBuilder)."""
        self.pack(time_step, action, next_time_step, out[0])
        return 1

    def builder(self) -> TransitionPacker:
        """A worker env's row writer: the packer itself (it keeps no state)."""
        return self

    def pack(self, time_step, action, next_time_step, out=None) -> np.ndarray:
        """The transition's vector, written into `out` (a float32 row) if given."""
        if out is None:
            out = np.empty(self.size, np.float32)
        out[0] = time_step.step_type
        self._fill(out, self._obs_at, time_step.observation, self._single_obs, self._obs_sizes)
        self._fill(out, self._act_at, action, self._single_act, self._act_sizes)
        self.pack_next(next_time_step, out)
        return out

    def pack_next(self, next_time_step, out) -> None:
        """Write only the transition's next time step (step type, reward, discount,
        observation) into the row `out`."""
        out[1] = next_time_step.step_type
        out[2] = next_time_step.reward
        out[3] = next_time_step.discount
        self._fill(out, self._next_obs_at, next_time_step.observation, self._single_obs,
                   self._obs_sizes)

    def _split(self, packed, at, spec, shapes, sizes, dtypes=None):
        import tensorflow as tf

        leaves = []
        for i, (shape, size) in enumerate(zip(shapes, sizes)):
            leaf = tf.reshape(packed[:, at:at + size], [-1, *shape])
            if dtypes is not None and dtypes[i] != tf.float32:
                leaf = tf.cast(leaf, dtypes[i])  # an integer or bool leaf, stored exactly
            leaves.append(leaf)
            at += size
        return tf.nest.pack_sequence_as(spec, leaves)

    def unpack(self, packed):
        """A [B, size] float32 batch -> a Transition with [B, ...] tensors."""
        import tensorflow as tf
        from tf_agents.trajectories import policy_step, trajectory
        from tf_agents.trajectories import time_step as ts

        step_type = tf.cast(packed[:, 0], tf.int32)
        next_step_type = tf.cast(packed[:, 1], tf.int32)
        reward, discount = packed[:, 2], packed[:, 3]
        observation = self._split(packed, self._obs_at, self.observation_spec,
                                  self._obs_shapes, self._obs_sizes, self._obs_dtypes)
        action = self._split(packed, self._act_at, self.action_spec, self._act_shapes,
                             self._act_sizes)
        next_observation = self._split(packed, self._next_obs_at, self.observation_spec,
                                       self._obs_shapes, self._obs_sizes, self._obs_dtypes)
        return trajectory.Transition(
            time_step=ts.TimeStep(step_type, tf.zeros_like(reward), tf.zeros_like(discount),
                                  observation),
            action_step=policy_step.PolicyStep(action, (), ()),
            next_time_step=ts.TimeStep(next_step_type, reward, discount, next_observation),
        )


class SequenceBatch(NamedTuple):
    """A batch of replay windows: a Transition of [B, T, ...] tensors and the [B, T]
    mask of the steps to train on (`SequenceSacAgent` takes it as `weights`)."""

    experience: object
    mask: object


class SequencePacker:
    """A window of `burn_in + length` consecutive transitions of one episode <-> one
    float32 vector: the transitions' vectors (`TransitionPacker`), then the mask.

    The row's first values are its first transition's step types, so rows pass the
    same checks (`auth.BlockCheck`) and block padding (`PAD_STEP_TYPE`) as
    single transitions.
    """

    def __init__(self, transitions: TransitionPacker, length: int, burn_in: int = 0):
        self.transitions = transitions
        self.length = int(length)
        self.burn_in = int(burn_in)
        self.steps = self.length + self.burn_in
        self.size = self.steps * transitions.size + self.steps
        self._mask_at = self.steps * transitions.size

    def unpack(self, packed) -> SequenceBatch:
        """A [B, size] float32 batch -> a SequenceBatch of [B, steps, ...] tensors."""
        import tensorflow as tf

        batch = tf.shape(packed)[0]
        steps = tf.reshape(packed[:, :self._mask_at], [-1, self.transitions.size])
        flat = self.transitions.unpack(steps)
        experience = tf.nest.map_structure(
            lambda t: tf.reshape(t, tf.concat([[batch, self.steps], tf.shape(t)[1:]], 0)), flat)
        return SequenceBatch(experience, packed[:, self._mask_at:])

    def builder(self) -> SequenceBuilder:
        """A worker env's window builder."""
        return SequenceBuilder(self)


class SequenceBuilder:
    """Cuts one env's episodes into replay windows (`SequencePacker` rows).

    A window is written every `length` steps, and at the episode's end for the steps
    left: it holds the last `burn_in + length` transitions of the episode, the new
    ones masked 1 and the older ones 0. So every transition is trained on in exactly
    one window and never shares a window with another episode. A window of the first
    steps is padded at its start with mask-0 steps FIRST -> FIRST (zeros otherwise),
    the last of them leading to the episode's first observation: the networks reset
    at every pad, so the online pass over the observations and the target pass over
    the next observations both start the episode from the initial state, at its
    first observation.
    """

    # Rows one `write` may fill: a window at most.
    max_rows = 1

    def __init__(self, packer: SequencePacker):
        self._packer = packer
        size = packer.transitions.size
        self._pad = np.zeros(size, np.float32)  # FIRST -> FIRST, reward 0, discount 1
        self._pad[3] = 1.0
        self._window = np.tile(self._pad, (packer.steps, 1))
        self._new = 0

    def write(self, time_step, action, next_time_step, out: np.ndarray) -> int:
        """Add a transition; the rows written into `out` (float32 [max_rows, size]):
        1 when a window was written into `out[0]`, else 0."""
        window = self._window
        if time_step.step_type == 0:  # StepType.FIRST: a new episode
            window[:] = self._pad
            self._new = 0
            self._packer.transitions.pack_next(time_step, window[-1])
        window[:-1] = window[1:]
        self._packer.transitions.pack(time_step, action, next_time_step, out=window[-1])
        self._new += 1
        last = next_time_step.step_type == 2  # StepType.LAST
        if self._new < self._packer.length and not last:
            return 0
        steps, row = self._packer.steps, out[0]
        row[:steps * len(self._pad)] = window.reshape(-1)
        mask = row[steps * len(self._pad):]
        mask[:] = 0.0
        mask[steps - self._new:] = 1.0
        self._new = 0
        return 1


def item_capacity(transitions: int, sequence: tuple[int, int] | None) -> int:
    """Replay items (rows) holding `transitions` transitions: one each, or one window
    of `sequence[0]` trained steps each (rounded up)."""
    return int(transitions) if sequence is None else -(-int(transitions) // sequence[0])


def make_packer(observation_spec, action_spec, sequence: tuple[int, int] | None = None):
    """The row packer of the packed layouts: a transition per row, or with `sequence`
    (trained steps, burn-in) a replay window per row."""
    packer = TransitionPacker(observation_spec, action_spec)
    return packer if sequence is None else SequencePacker(packer, *sequence)
