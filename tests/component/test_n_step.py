"""n-step returns: the rows the workers write through both packed data paths (an
in-process Reverb server) give SAC's target r + gamma * discount * V(s') the value of
a hand computation on a countdown env, at a terminal state and at a time-limit
truncation inside the n-step window; and the layout record keeps n."""

from __future__ import annotations

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")

from parts import agent_of, bound, format_of, memory_source, tables_of
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tfagents_system import actors, collection, process
from tfagents_system.builder import Builder
from tfagents_system.core import files
from tfagents_system.core import paths as paths_module
from tfagents_system.core.errors import FatalError
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import datasets
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.format import (
    LAYOUT_BLOCKS,
    LAYOUT_PACKED,
    FormatError,
    NStep,
    ReplayFormat,
    choose,
)

SIGNER = Signer(b"a test key of the right length!!")
GAMMA = 0.9
N = 3
# (start count, time limit): the first episode counts down to a terminal 0, the second
# is cut by its time limit after 4 steps, inside the 3-step window of its steps 2 and 3.
EPISODES = ((5, 10), (9, 4))


class Countdown(py_environment.PyEnvironment):
    """Observation (episode, count); each step lowers the count by one and pays the
    count it leaves; count 0 is a terminal state, the time limit a truncation."""

    def __init__(self):
        super().__init__()
        self._episode = -1
        self._count = self._steps = 0

    def observation_spec(self):
        return array_spec.ArraySpec((2,), np.float32)

    def action_spec(self):
        return array_spec.BoundedArraySpec((1,), np.float32, -1.0, 1.0)

    def _observation(self):
        return np.array([self._episode, self._count], np.float32)

    def _reset(self):
        self._episode = (self._episode + 1) % len(EPISODES)
        self._count, self._steps = EPISODES[self._episode][0], 0
        return ts.restart(self._observation())

    def _step(self, action):
        if self.current_time_step().is_last():
            return self.reset()
        reward = float(self._count)
        self._count -= 1
        self._steps += 1
        if self._count == 0:
            return ts.termination(self._observation(), reward)
        if self._steps == EPISODES[self._episode][1]:
            return ts.truncation(self._observation(), reward)
        return ts.transition(self._observation(), reward)


def value(observation):
    """A stand-in critic for the next state: its count plus 100 (nonzero at 0)."""
    return observation[..., 1] + 100.0


def hand_targets() -> dict[tuple[float, float], float]:
    """{(episode, count at the row's start): n-step target}, computed from the episodes."""
    targets = {}
    for episode, (start, limit) in enumerate(EPISODES):
        steps = min(start, limit)  # rewards start, start-1, ...; counts start..start-steps
        rewards = [float(start - k) for k in range(steps)]
        terminal = start <= limit
        for t in range(steps):
            m = min(N, steps - t)
            ret = sum(GAMMA ** k * rewards[t + k] for k in range(m))
            end_count = start - t - m
            boot = 0.0 if (terminal and t + m == steps) else GAMMA ** m * (end_count + 100.0)
            targets[(float(episode), float(start - t))] = ret + boot
    return targets


def sac_targets(transition) -> dict[tuple[float, float], float]:
    """SAC's target (reward scale 1, the stand-in critic) of each row of a batch."""
    obs = transition.time_step.observation.numpy()
    nxt = transition.next_time_step
    target = (nxt.reward.numpy() + GAMMA * nxt.discount.numpy()
              * value(nxt.observation.numpy()))
    return {(float(o[0]), float(o[1])): float(t) for o, t in zip(obs, target)}


class Params(TrainParamsBase):
    n_step = N
    discount = GAMMA
    batch_size = 8
    min_replay_size = 1
    actor_fc_layers = (8,)
    critic_joint_fc_layers = (8,)

    def env_ctor(self, seed=None, *args, **kwargs):
        return Countdown()


@pytest.fixture
def server():
    srv = reverb.Server(tables_of(Params(), 1000), port=None)
    yield f"localhost:{srv.port}"
    srv.stop()


def collect(writer) -> collection.EpisodeStats:
    env = Countdown()
    stats = collection.EpisodeStats(1)
    collector = collection.Collector([env], stats, lambda: None, lambda: False)
    collector.writers = [writer]
    collector.run(actors.RandomActor(env.action_spec(), seed=3), len(EPISODES))
    writer.close()
    return stats


def written_both_ways(server, params, tmp_path):
    """The Countdown's two episodes written by a worker's writer in each packed layout
    of `params`: (the packed-rows format, the learner's memory taken in from the
    blocks table)."""
    env, client = Countdown(), reverb.Client(server)
    blocks, packed = (bound(env, layout, window=params.window, n_step=params.n_step_returns)
                      for layout in (LAYOUT_BLOCKS, LAYOUT_PACKED))
    for fmt in (blocks, packed):
        writer = replay_writers.make_experience_writer(client, fmt, lambda: False, SIGNER)
        assert collect(writer).env_steps == 9
    log = process.setup_logging("test")
    memory = memory_source(params, blocks, tmp_path / "memory", 1000,
                           ServerLink(server, lambda: False, log, SIGNER), log)
    memory.take_in(0)
    return packed, memory


def test_n_step_rows_give_the_hand_computed_targets_on_both_packed_paths(server, tmp_path):
    expected = hand_targets()
    assert len(expected) == 9  # 5 + 4 transitions: a row each
    packed, memory = written_both_ways(server, Params(), tmp_path)
    assert memory.size() == 9  # one row per env step, as with one-step transitions
    rows = memory.memory.rows[:9]
    got = sac_targets(memory.packer.unpack(rows))
    assert got.keys() == expected.keys()
    for key, target in expected.items():
        assert got[key] == pytest.approx(target, rel=1e-6), key
    memory.close()
    batch = next(iter(datasets.experience_dataset(server, packed, 30)))
    for key, target in sac_targets(batch).items():  # rows sampled from Reverb's table
        assert target == pytest.approx(expected[key], rel=1e-6), key


class Windows(Params):
    """Recurrent training on windows of n-step rows: 1 burn-in + 2 trained steps."""

    recurrent = True
    recurrent_sequence_length = 2
    recurrent_burn_in = 1
    lstm_size = (8,)
    recurrent_output_fc_layers = (8,)


def test_windows_of_n_step_rows_train_every_row_once_on_its_hand_computed_target(
        server, tmp_path):
    """Recurrence composes with n-step returns: the workers cut the n-step rows into
    replay windows, and the steps the mask trains on are every row once, each with
    the target of the hand computation (through both packed paths)."""
    params, expected = Windows(), hand_targets()
    packed, memory = written_both_ways(server, params, tmp_path)
    windows = memory.packer.unpack(memory.memory.rows[:memory.size()])
    assert memory.size() == 3 + 2  # 5 and 4 rows in windows of 2 trained steps
    batch = next(iter(datasets.experience_dataset(server, packed, 20)))
    for sampled in (windows, batch):
        trained = sampled.mask.numpy() == 1.0
        steps = tf.nest.map_structure(lambda x, k=trained: tf.boolean_mask(x, k),
                                      sampled.experience)
        got = sac_targets(steps)
        assert got.keys() == expected.keys()
        for key, target in got.items():
            assert target == pytest.approx(expected[key], rel=1e-6), key
    counts = windows.experience.time_step.observation.numpy()[windows.mask.numpy() == 1.0]
    assert len(counts) == len(expected)  # every row trained in exactly one window
    agent = agent_of(params, Countdown())
    info = agent.train(windows.experience, weights=windows.mask)
    assert np.isfinite(float(info.loss))
    memory.close()


def test_the_format_records_n_and_a_resumed_learner_refuses_another(tmp_path):
    params, env = Params(), Countdown()
    agent = agent_of(params, env)
    paths = paths_module.ExperimentPaths(tmp_path)
    format_of(params, agent, 1000).write(paths.layout)
    record = files.read_json(paths.layout)
    assert record["n_step"] == {"n": 3, "discount": GAMMA}
    assert "3-step returns" in record["reason"]
    assert ReplayFormat.read(paths.layout).n_step == NStep(3, GAMMA)
    assert Builder(params, paths).replay_format().n_step == NStep(3, GAMMA)
    for n_step, discount in ((1, GAMMA), (5, GAMMA), (3, 0.99)):
        other = Params()
        other.n_step, other.discount = n_step, discount
        with pytest.raises(FatalError, match="holds rows of 3-step returns with discount 0.9"):
            Builder(other, paths).replay_format()


def test_n_step_is_refused_where_rows_cannot_hold_it():
    params = Params()
    params.recurrent = True
    assert params.validate() == []  # windows of n-step rows: see the test above
    # An agent the packed layouts cannot take (not a SacAgent): TF-Agents' 2-step items.
    spec = agent_of(Params(), Countdown()).collect_data_spec
    with pytest.raises(FormatError, match="n_step=3 needs the packed replay layouts"):
        choose(spec, 1000, True, None, NStep(3, GAMMA), "the agent is a DqnAgent")
    assert choose(spec, 1000, True, None, None, "the agent is a DqnAgent").layout == "steps2"
