"""The frame layout (tfagents_system.replay.frames): transitions of stacked image
observations go through the worker's rows, the learner's block check and its ring
buffer, each frame stored once, and come back bit for bit, frames whose bytes read as
NaN included; a sampled transition never mixes blocks or episodes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from tfagents_system.core import constants as C
from tfagents_system.pixel_wrappers import FrameStack
from tfagents_system.replay import format as replay_format
from tfagents_system.replay.auth import BLOCK_TAG, BlockCheck, Signer
from tfagents_system.replay.frames import FramePacker
from tfagents_system.replay.memory import ReplayMemory
from tfagents_system.replay.packing import PAD_STEP_TYPE

KEY = b"k" * 32
FRAME = (5, 4, 3)
STACK = 3


class RandomFrames(py_environment.PyEnvironment):
    """Random uint8 frames (every byte pattern, NaN ones too), episodes of 3 to 11
    steps; the reward is a running step id, so each transition can be found again."""

    def __init__(self, seed: int):
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._left = 0
        self.step_id = 0

    def observation_spec(self):
        return array_spec.ArraySpec(FRAME, np.uint8)

    def action_spec(self):
        return array_spec.BoundedArraySpec((2,), np.float32, -1.0, 1.0)

    def _frame(self):
        return self._rng.integers(0, 256, FRAME, dtype=np.uint8)

    def _reset(self):
        self._left = int(self._rng.integers(3, 12))
        return ts.restart(self._frame())

    def _step(self, action):
        self._left -= 1
        self.step_id += 1
        reward = np.float32(self.step_id)
        if self._left == 0:
            return ts.termination(self._frame(), reward)
        return ts.transition(self._frame(), reward)


def collect(steps: int, block_rows: int, seed: int = 0):
    """(blocks as the block writer sends them, {step id: (obs, action, next obs,
    discount)}) of `steps` transitions."""
    env = FrameStack(RandomFrames(seed), STACK)
    packer = FramePacker(env.observation_spec(), env.action_spec(), STACK)
    builder = packer.builder()
    rng = np.random.default_rng(seed + 1)
    blocks, block, count, truth = [], np.zeros((block_rows, packer.size), np.float32), 0, {}

    def send():
        nonlocal block, count
        block[count:, 0] = PAD_STEP_TYPE
        blocks.append(block)
        block, count = np.zeros_like(block), 0
        builder.block_started()

    time_step = env.reset()
    for _ in range(steps):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        next_time_step = env.step(action)
        if count + builder.max_rows > block_rows:
            send()
        count += builder.write(time_step, action, next_time_step, block[count:])
        truth[int(next_time_step.reward)] = (time_step.observation, action,
                                             next_time_step.observation,
                                             float(next_time_step.discount))
        if next_time_step.is_last():
            send()
            next_time_step = env.reset()
        time_step = next_time_step
    if count:
        send()
    return packer, blocks, truth


def signed(signer, block, seq):
    meta = np.array([7, seq], np.int64)
    return [block, meta, signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])]


@pytest.mark.parametrize("block_rows", [8, 128])
def test_sampled_transitions_are_the_collected_ones_bit_for_bit(block_rows):
    packer, blocks, truth = collect(400, block_rows)
    signer = Signer(KEY)
    check = BlockCheck(signer, packer.size, value_columns=packer.value_columns)
    memory = ReplayMemory(150, packer.size, None)  # the ring wraps: context rows get lost
    for seq, block in enumerate(blocks):
        rows = check.rows(signed(signer, block, seq))
        assert rows is not None, check.rejected.describe()
        memory.add(rows)
    assert any(np.isnan(block[:, packer.frame_at:]).any() for block in blocks)
    sample = tf.function(lambda: packer.unpack(memory.sample_with_history(
        256, packer.history, 4, packer.valid)))
    oldest = memory.inserted - memory.capacity
    for _ in range(4):
        batch = sample()
        for i, step_id in enumerate(batch.next_time_step.reward.numpy().astype(int)):
            observation, action, next_observation, discount = truth[step_id]
            np.testing.assert_array_equal(batch.time_step.observation[i], observation)
            np.testing.assert_array_equal(batch.next_time_step.observation[i], next_observation)
            np.testing.assert_array_equal(batch.action_step.action[i], action)
            assert batch.next_time_step.discount[i] == discount
        assert batch.time_step.observation.dtype == tf.uint8
    # Only the rows the ring still holds, with their context, were drawn from.
    assert oldest > 0


def test_a_transition_costs_one_frame_and_its_small_fields():
    packer, blocks, truth = collect(2000, 128)
    stored = sum(int((block[:, 0] != PAD_STEP_TYPE).sum()) for block in blocks)
    frame_bytes = int(np.prod(FRAME))
    small = 4 * packer.frame_at
    per_transition = stored * packer.row_bytes() / len(truth)
    # Episodes of 3-11 steps: each block (an episode) adds 3 context rows.
    episodes = len(blocks)
    assert per_transition == pytest.approx(
        (len(truth) + STACK * episodes) * (small + 4 * -(-frame_bytes // 4)) / len(truth))
    assert packer.row_bytes() <= small + frame_bytes + 3


def test_a_block_with_a_non_finite_number_is_refused_but_frame_bytes_are_not_checked():
    packer, blocks, _ = collect(30, 128)
    signer = Signer(KEY)
    check = BlockCheck(signer, packer.size, value_columns=packer.value_columns)
    block = blocks[0].copy()
    block[packer.stack, 2] = np.inf  # the first transition's reward
    assert check.rows(signed(signer, block, 0)) is None
    assert "non-finite" in check.rejected.describe()


def test_the_format_picks_frames_for_an_image_observation_and_records_them():
    env = FrameStack(RandomFrames(0), STACK)
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import trajectory

    spec = trajectory.Trajectory(
        ts.StepType, tensor_spec.from_spec(env.observation_spec()),
        tensor_spec.from_spec(env.action_spec()), (), ts.StepType,
        tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.float32))
    spec = spec._replace(step_type=tf.TensorSpec((), tf.int32),
                         next_step_type=tf.TensorSpec((), tf.int32))
    chosen = replay_format.choose(spec, 1000, True, frame_stack=STACK)
    assert chosen.layout == replay_format.LAYOUT_BLOCKS and chosen.frames == STACK
    assert "B per transition" in chosen.reason
    again = replay_format.ReplayFormat.from_json(chosen.to_json())
    assert again == chosen
    with pytest.raises(replay_format.FormatError, match="learner_keeps_replay = True"):
        replay_format.choose(spec, 1000, False, frame_stack=STACK)
    with pytest.raises(replay_format.FormatError, match="n_step = 1"):
        replay_format.choose(spec, 1000, True, n_step=replay_format.NStep(3, 0.99),
                             frame_stack=STACK)


def test_unused_policy_step_fields_stay_empty():
    packer, blocks, _ = collect(20, 128)
    memory = ReplayMemory(100, packer.size, None)
    memory.add(np.concatenate([b[b[:, 0] != PAD_STEP_TYPE] for b in blocks]))
    batch = packer.unpack(memory.sample_with_history(8, packer.history, 4, packer.valid))
    assert isinstance(batch.action_step, policy_step.PolicyStep)
    assert batch.time_step.observation.shape == (8, 5, 4, 9)


class DictFrames(RandomFrames):
    """RandomFrames beside a joint vector, in a dict."""

    def observation_spec(self):
        return {"camera": super().observation_spec(),
                "joints": array_spec.ArraySpec((3,), np.float32)}

    def _joints(self, time_step):
        return time_step._replace(observation={
            "camera": time_step.observation,
            "joints": np.full(3, float(self.step_id), np.float32)})

    def _reset(self):
        return self._joints(super()._reset())

    def _step(self, action):
        return self._joints(super()._step(action))


def test_a_dict_observation_keeps_its_vector_leaves_beside_the_stacked_image():
    env = FrameStack(DictFrames(3), STACK)
    assert env.observation_spec()["camera"].shape == (5, 4, 3 * STACK)
    packer = FramePacker(env.observation_spec(), env.action_spec(), STACK)
    builder = packer.builder()
    block = np.zeros((64, packer.size), np.float32)
    count, truth = 0, []
    time_step = env.reset()
    while count + builder.max_rows <= len(block):
        next_time_step = env.step(np.zeros(2, np.float32))
        count += builder.write(time_step, np.zeros(2, np.float32), next_time_step,
                               block[count:])
        truth.append((time_step.observation, next_time_step.observation))
        if next_time_step.is_last():
            break
        time_step = next_time_step
    memory = ReplayMemory(64, packer.size, None)
    memory.add(block[:count])
    batch = packer.unpack(memory.sample_with_history(16, packer.history, 4, packer.valid))
    for i, step_id in enumerate(batch.next_time_step.reward.numpy().astype(int)):
        observation, next_observation = truth[step_id - 1]
        for key in ("camera", "joints"):
            np.testing.assert_array_equal(batch.time_step.observation[key][i], observation[key])
            np.testing.assert_array_equal(batch.next_time_step.observation[key][i],
                                          next_observation[key])
