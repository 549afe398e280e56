"""One (s, a, r, s') transition <-> one float32 vector, and the rows built of them.

The packed layouts (`format.LAYOUT_PACKED`, `format.LAYOUT_BLOCKS`) move and store
experience as these rows; `unpack` turns a batch of them back into what the agent
trains on. A row is a transition (`TransitionPacker`), an n-step transition
(`NStepPacker`), or a replay window of either (`SequencePacker`). Each worker env
writes its rows through a row builder (`builder()`), which keeps what it needs
between steps: `NStepBuilder` the last n - 1 transitions, `WindowBuilder` the
window's rows (from an inner builder, so windows of n-step rows compose).
"""

from __future__ import annotations

import numpy as np

from tfagents_system.core.batches import SequenceBatch
from tfagents_system.core.specs import leaves

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
    max_rows = 1  # rows `write` may put out per transition

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

    def write(self, time_step, action, next_time_step, out) -> int:
        """Pack the transition into `out[0]` (`out`: [max_rows, size] rows); returns the
        rows written, as every row builder does (`SequenceBuilder`, `NStepBuilder`)."""
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


class SequencePacker:
    """A window of `burn_in + length` consecutive rows of one episode <-> one float32
    vector: the rows of `transitions` (one-step or n-step transitions), then the mask.

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

    def builder(self) -> WindowBuilder:
        """A worker env's window builder, over its transitions' own row builder."""
        return WindowBuilder(self)


class WindowBuilder:
    """Cuts one env's episodes into replay windows (`SequencePacker` rows) of the rows
    an inner builder writes (a transition per step, or n-step transitions).

    A window is written every `length` new rows, and at the episode's end for the rows
    left: it holds the last `burn_in + length` rows of the episode, the new ones masked
    1 and the older ones 0. So every row is trained on in exactly one window and never
    shares a window with another episode. A window of the first steps is padded at
    its start with mask-0 steps FIRST -> FIRST (zeros otherwise), the last of them
    leading to the episode's first observation: the networks reset at every pad, so
    the online pass over the observations and the target pass over the next
    observations both start the episode from the initial state, at its first
    observation. (With n-step rows the target pass then goes on from the n-th
    observation: see README, "Recurrent networks".)
    """

    def __init__(self, packer: SequencePacker):
        self._packer = packer
        self._inner = packer.transitions.builder()
        size = packer.transitions.size
        self._pad = np.zeros(size, np.float32)  # FIRST -> FIRST, reward 0, discount 1
        self._pad[3] = 1.0
        self._window = np.tile(self._pad, (packer.steps, 1))
        self._rows = np.zeros((self._inner.max_rows, size), np.float32)
        self._new = 0
        # Windows one step can complete: those its inner rows fill, and the rest.
        self.max_rows = -(-(packer.length - 1 + self._inner.max_rows) // packer.length)

    def write(self, time_step, action, next_time_step, out) -> int:
        """Add a transition; returns the windows written into `out` ([max_rows, size])."""
        window = self._window
        if time_step.step_type == 0:  # StepType.FIRST: a new episode
            window[:] = self._pad
            self._new = 0
            self._packer.transitions.pack_next(time_step, window[-1])
        written = 0
        for row in self._rows[:self._inner.write(time_step, action, next_time_step,
                                                 self._rows)]:
            window[:-1] = window[1:]
            window[-1] = row
            self._new += 1
            if self._new == self._packer.length:
                self._emit(out[written])
                written += 1
        if next_time_step.step_type == 2 and self._new:  # StepType.LAST: the rest
            self._emit(out[written])
            written += 1
        return written

    def _emit(self, row) -> None:
        """Write the window, its newest `_new` rows masked 1, into `row`."""
        steps, size = self._packer.steps, self._packer.transitions.size
        row[:steps * size] = self._window.reshape(-1)
        mask = row[steps * size:]
        mask[:] = 0.0
        mask[steps - self._new:] = 1.0
        self._new = 0


class NStepPacker(TransitionPacker):
    """n-step transitions in the rows of `TransitionPacker` (n_step > 1).

    A row starts at step t and holds s_t, a_t, the discounted sum of the next m
    rewards, the step m steps later as its next step, and as its discount
    gamma**(m-1) times the product of the m steps' discounts; m = n, or fewer at an
    episode's end. SAC's target r + gamma * discount * V(s') then reads
    r_t + ... + gamma**(m-1) r_(t+m-1) + gamma**m V(s_(t+m)) with no change to the
    agent. A time-limit truncation (discount 1 at the LAST step) keeps bootstrapping
    from the last observation; a terminal state (discount 0) does not. The learner
    unpacks these rows as one-step ones.
    """

    def __init__(self, observation_spec, action_spec, n: int, gamma: float):
        super().__init__(observation_spec, action_spec)
        self.n = int(n)
        self.gamma = float(gamma)

    def builder(self) -> NStepBuilder:
        """A worker env's row writer: it keeps the env's last n - 1 transitions."""
        return NStepBuilder(self)


class NStepBuilder:
    """Turns one env's transitions into n-step rows (`NStepPacker`): a row per
    transition, written n - 1 transitions later, or at the episode's end for the
    transitions still waiting."""

    def __init__(self, packer: NStepPacker):
        self._packer = packer
        self.max_rows = packer.n
        self._pending = np.zeros((packer.n, packer.size), np.float32)
        self._count = 0

    def write(self, time_step, action, next_time_step, out) -> int:
        """Add a transition; returns the rows written into `out` ([n, size])."""
        if time_step.step_type == 0:  # StepType.FIRST: a new episode (drop a torn one)
            self._count = 0
        self._packer.pack(time_step, action, next_time_step, self._pending[self._count])
        self._count += 1
        if next_time_step.step_type == 2:  # StepType.LAST: every waiting row ends here
            written = self._count
            for i in range(written):
                self._combine(i, written, out[i])
            self._count = 0
            return written
        if self._count < self._packer.n:
            return 0
        self._combine(0, self._count, out[0])
        self._pending[:-1] = self._pending[1:]
        self._count -= 1
        return 1

    def _combine(self, first: int, end: int, row) -> None:
        """The row of pending transitions first..end-1 as one n-step transition."""
        steps = self._pending[first:end]
        row[:] = steps[0]
        reward, weight = 0.0, 1.0
        for step in steps:  # weight: gamma**k times the discounts passed so far
            reward += weight * float(step[2])
            weight *= self._packer.gamma * float(step[3])
        row[1] = steps[-1][1]
        row[2] = reward
        row[3] = weight / self._packer.gamma
        at = self._packer._next_obs_at
        row[at:] = steps[-1][at:]


def make_packer(observation_spec, action_spec, window=None, n_step=None):
    """The row packer of the packed layouts: a transition per row; with `n_step`
    (`format.NStep`) an n-step transition per row; with `window` (`format.Window`) a
    replay window of those per row."""
    packer = (TransitionPacker(observation_spec, action_spec) if n_step is None
              else NStepPacker(observation_spec, action_spec, n_step.n, n_step.discount))
    return packer if window is None else SequencePacker(packer, window.length, window.burn_in)
