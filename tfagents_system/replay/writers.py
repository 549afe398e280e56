"""The workers' side of the replay data path: one experience writer per layout.

Every writer takes `add(time_step, action_step, next_time_step)` per env step and
waits on the replay server (its rate limiter, a full queue) in bounded slices, so a
stop request is seen within a second.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.errors import StopRequested
from tfagents_system.replay.auth import BLOCK_TAG, RowSigning, Signer
from tfagents_system.replay.format import LAYOUT_BLOCKS, LAYOUT_PACKED, LAYOUT_STEPS, ReplayFormat
from tfagents_system.replay.packing import (
    BLOCK_ROWS,
    PAD_STEP_TYPE,
    SequencePacker,
    TransitionPacker,
)

_LAST = 2  # tf_agents.trajectories.time_step.StepType.LAST


class _BlockingWrites:
    """Bounded waits on a Reverb writer so that a stop request is seen within a second."""

    # Items a writer may have in flight before it waits for the server: holds a
    # samples-per-insert ratio within an episode and keeps client memory bounded.
    MAX_PENDING_ITEMS = 64
    CLOSE_WAIT_MS = 1000

    def _wait(self, call) -> None:
        """Retry a blocking writer call in 1 s slices so a stop request is seen."""
        import reverb

        while True:
            try:
                call(1000)
                return
            except reverb.errors.DeadlineExceededError:
                if self._should_stop():
                    raise StopRequested() from None

    def _end_episode(self) -> None:
        self._wait(lambda timeout: self._writer.end_episode(clear_buffers=True,
                                                            timeout_ms=timeout))
        self._items_since_flush = 0

    def _maybe_flush(self) -> None:
        if self._items_since_flush >= 2 * self.MAX_PENDING_ITEMS:
            self._wait(lambda timeout: self._writer.flush(
                block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))
            self._items_since_flush = self.MAX_PENDING_ITEMS

    def close(self) -> None:
        """Wait (about a second at most) for the server to confirm the items in flight,
        then close: Reverb's Close drops items not yet confirmed."""
        try:
            self._writer.flush(block_until_num_items=0, timeout_ms=self.CLOSE_WAIT_MS)
        except Exception:  # a server gone or too slow: the items in flight are lost
            pass
        self._writer.close()


class ExperienceWriter(_BlockingWrites):
    """Writes 2-step trajectory items (LAYOUT_STEPS) to the experience table.

    Usable as a driver observer (`writer(traj)`) or with transitions
    (`writer.add(time_step, action_step, next_time_step)`). Blocking on the rate
    limiter happens at episode ends and every few dozen items, in bounded waits.
    """

    layout = LAYOUT_STEPS

    def __init__(self, client, should_stop: Callable[[], bool]):
        self._writer = client.trajectory_writer(num_keep_alive_refs=C.SEQUENCE_LENGTH)
        self._should_stop = should_stop
        self._steps_in_episode = 0
        self._items_since_flush = 0

    def __call__(self, traj) -> None:
        import tree

        self._writer.append(traj)
        self._steps_in_episode += 1
        if self._steps_in_episode >= C.SEQUENCE_LENGTH:
            item = tree.map_structure(lambda column: column[-C.SEQUENCE_LENGTH:],
                                      self._writer.history)
            self._writer.create_item(C.EXPERIENCE_TABLE, priority=1.0, trajectory=item)
            self._items_since_flush += 1
        if traj.is_boundary():
            self._end_episode()
            self._steps_in_episode = 0
        else:
            self._maybe_flush()

    def add(self, time_step, action_step, next_time_step) -> None:
        """One env step. At an episode end also writes the LAST -> FIRST boundary
        step a PyDriver would have produced (its observation is s' of the last item)."""
        from tf_agents.trajectories import time_step as ts
        from tf_agents.trajectories import trajectory

        self(trajectory.from_transition(time_step, action_step, next_time_step))
        if next_time_step.step_type == _LAST:
            self(trajectory.Trajectory(
                step_type=next_time_step.step_type,
                observation=next_time_step.observation,
                action=action_step.action,
                policy_info=action_step.info,
                next_step_type=np.asarray(ts.StepType.FIRST, dtype=np.int32),
                reward=np.zeros_like(next_time_step.reward),
                discount=np.ones_like(next_time_step.discount),
            ))


class PackedExperienceWriter(_BlockingWrites):
    """Writes one-step packed-transition items (LAYOUT_PACKED) to the experience table.

    Calls the C++ writer of the pinned dm-reverb 0.14 directly (Append and
    CreateItem): the Python TrajectoryWriter spends most of a step rebuilding
    column histories. Steps go to Reverb in chunks of `CHUNK_LENGTH` steps.
    Each chunk costs the writer about 0.2 ms of CPU (compression, a gRPC
    message), each item about 0.05 ms; but a sampled item brings its whole
    chunk to the learner, and the learner is the bottleneck of every layout the
    launcher makes. The benchmark measures chunks of 1 and 16 beside this one
    (docs/performance.md, "Alternatives measured"): longer chunks speed the
    worker up and slow the learner down; 4 keeps nearly all of the learner's
    speed with 1 and most of the worker's gain with 16.
    """

    layout = LAYOUT_PACKED
    CHUNK_LENGTH = 4
    # Flushing at 48 pending items down to 16 stays below the count at which the
    # C++ writer logs "pending items is alarmingly high".
    MAX_PENDING_ITEMS = 16

    def __init__(self, client, packer: TransitionPacker | SequencePacker,
                 should_stop: Callable[[], bool], chunk_length: int | None = None,
                 signer: Signer | None = None):
        import reverb
        from reverb import pybind

        # rows that carry their signature (ReplayFormat.signed_rows)
        self._signing = None if signer is None else RowSigning(signer, packer.size)
        chunk_length = chunk_length or self.CHUNK_LENGTH
        self._cpp = client._client.NewTrajectoryWriter(  # private API (see above)
            pybind.ConstantChunkerOptions(max_chunk_length=chunk_length,
                                          num_keep_alive_refs=chunk_length),
            False)  # validate_items: every item has the same single-step shape
        self._writer = reverb.TrajectoryWriter(self._cpp)
        self._rows = packer.builder()
        self._size = packer.size
        self._should_stop = should_stop
        self._items_since_flush = 0

    def add(self, time_step, action_step, next_time_step, episode_end: bool | None = None
            ) -> None:
        """One transition; `episode_end` False: not the end of the writing of an episode
        even if next_time_step is LAST (a relabeled copy, `hindsight`)."""
        rows = np.empty((self._rows.max_rows, self._size), np.float32)  # Reverb keeps them
        for row in rows[:self._rows.write(time_step, action_step.action, next_time_step, rows)]:
            refs = self._cpp.Append([row if self._signing is None
                                     else self._signing.signed(row)])
            self._cpp.CreateItem(C.EXPERIENCE_TABLE, 1.0, [[refs[0]]], [True])
            self._items_since_flush += 1
        if episode_end is None:
            episode_end = next_time_step.step_type == _LAST  # is_last() costs ~20 us
        if episode_end:
            self._end_episode()
        elif self._items_since_flush >= 3 * self.MAX_PENDING_ITEMS:
            self._wait(lambda timeout: self._writer.flush(
                block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))
            self._items_since_flush = self.MAX_PENDING_ITEMS


class BlockExperienceWriter(_BlockingWrites):
    """Writes packed transitions in blocks of `BLOCK_ROWS` to the experience queue
    (LAYOUT_BLOCKS): one Reverb item per block, sent when the block is full or an
    episode ends (a short block is padded with rows of step type -1, which the
    learner drops). A worker's CPU then goes to its envs, not to Reverb: one
    gRPC item per 128 steps instead of one per step. Uses the same private C++
    writer calls as PackedExperienceWriter (dm-reverb 0.14)."""

    layout = LAYOUT_BLOCKS
    MAX_PENDING_ITEMS = 2

    def __init__(self, client, packer: TransitionPacker | SequencePacker,
                 should_stop: Callable[[], bool], signer: Signer, block_rows: int | None = None):
        import reverb
        from reverb import pybind

        self._cpp = client._client.NewTrajectoryWriter(  # private API (see above)
            pybind.ConstantChunkerOptions(max_chunk_length=1, num_keep_alive_refs=1), False)
        self._writer = reverb.TrajectoryWriter(self._cpp)
        self._rows = packer.builder()
        self._should_stop = should_stop
        self._signer = signer
        self._writer_id = int.from_bytes(os.urandom(7), "big")
        self._seq = 0
        self._block = np.zeros((block_rows or BLOCK_ROWS, packer.size), np.float32)
        self._count = 0

    def add(self, time_step, action_step, next_time_step, episode_end: bool | None = None
            ) -> None:
        """One transition; the block goes out when full or at an episode's end
        (`episode_end` None: when next_time_step is LAST; False: a relabeled copy of
        `hindsight`, whose episode's last original follows)."""
        frames_restart = (time_step.step_type == 0 and self._count
                          and hasattr(self._rows, "block_started"))  # a torn episode's
        if frames_restart or self._count + self._rows.max_rows > len(self._block):
            self.send()  # n-step rows: room for all that an episode's end writes
        self._count += self._rows.write(time_step, action_step.action, next_time_step,
                                        self._block[self._count:])
        if episode_end is None:
            episode_end = next_time_step.step_type == _LAST
        if self._count == len(self._block) or episode_end:
            self.send()

    def send(self) -> None:
        """Queue the block (padded if short) and wait while the queue is full."""
        if not self._count:
            return
        block, self._block = self._block, np.zeros_like(self._block)  # Reverb may keep it
        block[self._count:, 0] = PAD_STEP_TYPE
        self._count = 0
        if hasattr(self._rows, "block_started"):  # frames: the next block's context
            self._rows.block_started()
        meta = np.array([self._writer_id, self._seq], np.int64)
        self._seq += 1
        refs = self._cpp.Append([block, meta,
                                 self._signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])])
        self._cpp.CreateItem(C.QUEUE_TABLE, 1.0, [[ref] for ref in refs], [True] * 3)
        self._wait(lambda timeout: self._writer.flush(
            block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))

    def close(self) -> None:
        """Send a partly filled block and wait for the blocks in flight (best effort,
        about two seconds at most), then close."""
        try:
            self.send()
        except Exception:  # a stop request or a server gone: the partial block is lost
            pass
        super().close()


def make_experience_writer(client, replay_format: ReplayFormat,
                           should_stop: Callable[[], bool], signer: Signer):
    """The writer of a replay format (bound to the env's specs); `add(time_step,
    action_step, next_time_step)` per env step."""
    if replay_format.layout == LAYOUT_STEPS:
        return ExperienceWriter(client, should_stop)
    if replay_format.layout == LAYOUT_PACKED:
        return PackedExperienceWriter(client, replay_format.packer(), should_stop,
                                      signer=signer if replay_format.signed_rows else None)
    return BlockExperienceWriter(client, replay_format.packer(), should_stop, signer)
