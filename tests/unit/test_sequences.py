"""Replay windows of recurrent training: cut per episode, each transition trained on in
exactly one window, never two episodes in a window; and their batches."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from tf_agents.specs import array_spec

from tfagents_system.replay import packing
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat, Window

Step = namedtuple("Step", "step_type reward discount observation")
OBS = array_spec.ArraySpec((2,), np.float32)
ACT = array_spec.BoundedArraySpec((1,), np.float32, -1.0, 1.0)


def episode_steps(lengths, truncated=()):
    """(time step, action, next time step) of episodes of the given lengths; the
    observation is (episode, t). Episodes in `truncated` end with discount 1."""
    for e, n in enumerate(lengths):
        step = Step(0, 0.0, 1.0, np.array([e, 0], np.float32))
        for t in range(1, n + 1):
            last = t == n
            discount = 1.0 if (not last or e in truncated) else 0.0
            nxt = Step(2 if last else 1, float(10 * e + t), discount,
                       np.array([e, t], np.float32))
            yield step, np.array([t / 100], np.float32), nxt
            step = nxt


def windows(lengths, length, burn_in, truncated=()):
    packer = packing.make_packer(OBS, ACT, Window(length, burn_in))
    builder = packer.builder()
    rows = []
    for step, action, nxt in episode_steps(lengths, truncated):
        out = np.full((1, packer.size), np.nan, np.float32)
        if builder.write(step, action, nxt, out):
            rows.append(out[0])
    return packer, np.stack(rows)


def split(packer, row):
    """(transitions [steps, size], mask [steps]) of a window row."""
    size = packer.transitions.size
    return row[:packer.steps * size].reshape(packer.steps, size), row[packer.steps * size:]


@pytest.mark.parametrize("length,burn_in", [(8, 0), (8, 3), (1, 2), (20, 0)])
def test_every_transition_is_trained_once_and_windows_never_span_episodes(length, burn_in):
    lengths = [3, 25, 8, 1, 45]
    packer, rows = windows(lengths, length, burn_in)
    trained = []
    for row in rows:
        steps, mask = split(packer, row)
        assert not np.isnan(row).any()
        assert set(np.unique(mask)) <= {0.0, 1.0}
        obs = steps[:, packer.transitions.HEAD:packer.transitions.HEAD + 2]
        next_obs = steps[:, -2:]
        pad = (steps[:, 0] == 0) & (steps[:, 2] == 0) & (obs == 0).all(1) & (next_obs == 0).all(1)
        episodes = set(next_obs[~pad, 0])
        assert len(episodes) == 1, "a window spans two episodes"
        # Pads only at the start, never trained; the trained steps are the newest ones.
        first_real = int(np.argmax(~pad))
        assert not pad[first_real:].any() and not mask[pad].any()
        kept = np.flatnonzero(mask)
        assert len(kept) and kept[-1] == packer.steps - 1
        assert (np.diff(kept) == 1).all() and len(kept) <= length
        # Consecutive transitions: t goes up by one along the window's real steps.
        assert (np.diff(next_obs[~pad, 1]) == 1).all()
        trained += [tuple(o) for o in next_obs[kept]]
    expected = [(e, t) for e, n in enumerate(lengths) for t in range(1, n + 1)]
    assert sorted(trained) == sorted(expected) and len(trained) == len(set(trained))


def test_a_window_holds_its_burn_in_before_the_trained_steps():
    packer, rows = windows([30], length=10, burn_in=4)
    assert len(rows) == 3
    steps, mask = split(packer, rows[1])  # the second window: t = 7..20, trains 11..20
    assert list(steps[:, -1]) == list(range(7, 21))
    assert list(mask) == [0.0] * 4 + [1.0] * 10


def test_truncation_keeps_its_discount_and_termination_zeroes_it():
    packer, rows = windows([4, 4], length=4, burn_in=0, truncated=(0,))
    discounts = [split(packer, row)[0][-1, 3] for row in rows]
    assert discounts == [1.0, 0.0]  # time limit bootstraps, termination does not


def test_window_batches_unpack_to_sequences_and_their_mask():
    packer, rows = windows([12, 5], length=6, burn_in=2)
    batch = packer.unpack(tf.constant(rows))
    experience, mask = batch.experience, batch.mask.numpy()
    assert experience.time_step.observation.shape == (len(rows), 8, 2)
    assert experience.action_step.action.shape == (len(rows), 8, 1)
    assert experience.next_time_step.reward.shape == (len(rows), 8)
    assert mask.shape == (len(rows), 8)
    # The first window of episode 0: t = 1..6 trained after two pads.
    first = experience.next_time_step.observation.numpy()[0]
    assert list(first[:, 1]) == [0, 0, 1, 2, 3, 4, 5, 6] and list(mask[0]) == [0, 0] + [1] * 6
    assert list(experience.time_step.step_type.numpy()[0]) == [0, 0, 0, 1, 1, 1, 1, 1]
    rewards = experience.next_time_step.reward.numpy()
    assert rewards[0, -1] == 6.0 and rewards[-1, -1] == 15.0  # episode 1's last step


def test_item_capacity_counts_windows():
    assert ReplayFormat(LAYOUT_BLOCKS).items(1000) == 1000
    assert ReplayFormat(LAYOUT_BLOCKS, window=Window(20, 5)).items(1000) == 50
    assert ReplayFormat(LAYOUT_BLOCKS, window=Window(20, 0)).items(1001) == 51


def test_pads_lead_to_the_episodes_first_observation():
    """Both passes over a window (observations, next observations) start the episode
    from a reset at its first observation: every pad is FIRST -> FIRST and the last
    one's next observation is the episode's first."""
    packer, rows = windows([12, 5], length=6, burn_in=2)
    steps, mask = split(packer, rows[-1])  # episode 1, 5 steps: 3 pads
    assert list(mask) == [0, 0, 0, 1, 1, 1, 1, 1]
    assert list(steps[:3, 0]) == [0, 0, 0] and list(steps[:3, 1]) == [0, 0, 0]
    assert list(steps[2, -2:]) == [1, 0]  # (episode 1, t = 0): the first observation
    assert list(steps[3, packer.transitions.HEAD:packer.transitions.HEAD + 2]) == [1, 0]
    assert list(steps[3, :2]) == [0, 1]  # the real FIRST -> MID transition
