"""Demonstrations in the learner's batches (an in-process Reverb server): a fixed,
scheduled or proportional share of every batch, on the learner's own memory and on
Reverb-sampled batches, still drawn after the FIFO buffer has evicted everything
older; and the behaviour-cloning warm start."""

from __future__ import annotations

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")


from parts import agent_of, bound, memory_source, tables_of

from tfagents_system import actors, collection, process
from tfagents_system.agents import behaviour_cloning
from tfagents_system.builder import Builder
from tfagents_system.core.batches import SequenceBatch
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import demo_store, packing, sources
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.format import LAYOUT_BLOCKS, LAYOUT_PACKED, Window
from tfagents_system.testing_envs import point_mass_reach

SIGNER = Signer(b"a test key of the right length!!")
MARK = 777.0  # the reward of every demonstration row: tells them apart in a batch
DEMO_ACTION = np.array([0.5, -0.3], np.float32)


class Params(TrainParamsBase):
    batch_size = 8
    min_replay_size = 1
    actor_fc_layers = (32,)
    critic_joint_fc_layers = (16,)
    demonstrations = ("stand-in.npz",)

    def env_ctor(self, seed=None, *args, **kwargs):
        return point_mass_reach(seed=seed, flat=True, episode_steps=10)


def make_agent(params):
    env = params.env_ctor(0)
    return agent_of(params, env), env


def demo_rows(env, count: int) -> np.ndarray:
    """Rows of random observations, the demonstrator's action and the MARK reward."""
    packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
    rng = np.random.default_rng(0)
    rows = np.zeros((count, packer.size), np.float32)
    rows[:, 1], rows[:, 2], rows[:, 3] = 1, MARK, 1  # FIRST -> MID, reward, discount
    rows[:, packer._obs_at:packer._act_at] = rng.normal(size=(count, packer.obs_size))
    rows[:, packer._act_at:packer._next_obs_at] = DEMO_ACTION
    rows[:, packer._next_obs_at:] = rng.normal(size=(count, packer.obs_size))
    rows[:, packer._next_obs_at] = np.arange(count)  # the row's index: see them all drawn
    return rows


@pytest.fixture
def server():
    srv = reverb.Server(tables_of(Params(), 1000), port=None)
    yield f"localhost:{srv.port}"
    srv.stop()


def fill(server, layout: str, env, episodes: int) -> None:
    writer = replay_writers.make_experience_writer(reverb.Client(server), bound(env, layout),
                                                   lambda: False, SIGNER)
    collector = collection.Collector([env], collection.EpisodeStats(1), lambda: None,
                                     lambda: False)
    collector.writers = [writer]
    collector.run(actors.RandomActor(env.action_spec(), seed=1), episodes)
    writer.close()


def demo_counts(mix, batches: int, *loop_args):
    """Demonstration rows per batch, and which demonstration rows were drawn."""
    step = tf.function(mix.next_batch)
    counts, drawn = [], set()
    for _ in range(batches):
        batch = step(*loop_args)
        is_demo = batch.next_time_step.reward.numpy() == MARK
        counts.append(int(is_demo.sum()))
        drawn |= set(batch.next_time_step.observation.numpy()[is_demo, 0].astype(int))
    return counts, drawn


def test_demonstrations_survive_fifo_eviction_in_the_learners_memory(server, tmp_path):
    params = Params()
    agent, env = make_agent(params)
    fill(server, LAYOUT_BLOCKS, env, episodes=10)  # 100 rows into a ring of 30
    log = process.setup_logging("test")
    link = ServerLink(server, lambda: False, log, SIGNER)
    memory = memory_source(params, bound(env, LAYOUT_BLOCKS), tmp_path / "memory", 30, link,
                           log)
    rows = demo_rows(env, 20)
    mix = demo_store.DemoMixSource(memory, demo_store.Demonstrations(rows, memory.packer),
                                   params.batch_size, demo_store.DemoShare(0.25, len(rows)))
    mix.take_in(0)
    assert memory.memory.inserted == 100 and memory.size() == 30  # 70 evicted
    counts, drawn = demo_counts(mix, 60)
    assert set(counts) == {2}  # round(0.25 x 8) of every batch
    assert drawn == set(range(20))  # every demonstration is still drawn
    assert mix.summaries()[demo_store.C.M_DEMO_SHARE] == 0.25
    # Proportional (no demo_ratio): 20 of 20 + 30 rows, 40% of a batch of 8 -> 3.
    mix._share_at = demo_store.DemoShare(None, len(rows))
    mix.take_in(0)
    assert set(demo_counts(mix, 5)[0]) == {3}
    # A schedule: at train step 1000 of ((0, 1), (2000, 0)): half of each batch.
    mix._share_at = demo_store.DemoShare(((0, 1.0), (2000, 0.0)), len(rows))
    mix.take_in(1000)
    assert set(demo_counts(mix, 5)[0]) == {4}
    train = Builder.train_loop(agent, mix)
    assert np.isfinite(float(train(tf.constant(3, tf.int64)).loss))
    memory.close()


def test_demonstrations_mix_into_reverb_sampled_batches(server):
    params = Params()
    agent, env = make_agent(params)
    fill(server, LAYOUT_PACKED, env, episodes=3)
    link = ServerLink(server, lambda: False, process.setup_logging("test"), SIGNER)
    reverb_source = sources.ReverbSource(bound(env, LAYOUT_PACKED),
                                         params.replay_settings(1000), link,
                                         agent.collect_data_spec)
    rows = demo_rows(env, 20)
    packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
    mix = demo_store.DemoMixSource(reverb_source, demo_store.Demonstrations(rows, packer),
                                   params.batch_size, demo_store.DemoShare(0.5, len(rows)))
    mix.take_in(0)
    counts, _ = demo_counts(mix, 10, *mix.loop_args())
    assert set(counts) == {4}
    train = Builder.train_loop(agent, mix)
    assert np.isfinite(float(train(tf.constant(2, tf.int64), *mix.loop_args()).loss))


def test_behaviour_cloning_moves_the_actor_to_the_demonstrated_actions(tmp_path):
    params = Params()
    agent, env = make_agent(params)
    rows = demo_rows(env, 256)
    packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
    demonstrations = demo_store.Demonstrations(rows, packer)
    observations = packer.unpack(tf.constant(rows[:64])).time_step.observation

    def greedy_actions():
        distribution, _ = agent._actor_network(observations, step_type=(), network_state=(),
                                               training=False)
        return distribution.mode().numpy()

    before = np.abs(greedy_actions() - DEMO_ACTION).mean()
    writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
    loss = behaviour_cloning.warm_start(agent, lambda: demonstrations.batch(64), 300, 3e-3,
                                        writer, process.setup_logging("test"))
    after = np.abs(greedy_actions() - DEMO_ACTION).mean()
    assert np.isfinite(loss)
    assert after < 0.05 < before, (before, after)
    assert list((tmp_path / "tb").iterdir())  # losses/bc_loss was written


class FixedSource(sources.DataSource):
    """A stand-in replay source: always the same batch (unpacked rows)."""

    def __init__(self, packer, rows):
        self._batch = packer.unpack(tf.constant(rows))

    def next_batch(self):
        return self._batch

    def sample(self):
        return self._batch

    def size(self) -> int:
        return len(self._batch.mask)


def test_demonstration_windows_mix_into_batches_of_windows():
    from tfagents_system.testing_envs import random_rows

    env = point_mass_reach(seed=0, flat=True, episode_steps=10)
    packer = packing.make_packer(env.observation_spec(), env.action_spec(), Window(4, 2))
    replay = np.zeros((6, packer.size), np.float32)  # 6 windows of zeros: masks all 0
    demos = random_rows(env, packer, 40, seed=2)  # 4 episodes: 3 windows each (4+4+2)
    assert len(demos) == 12
    mix = demo_store.DemoMixSource(FixedSource(packer, replay),
                                   demo_store.Demonstrations(demos, packer), 6,
                                   demo_store.DemoShare(0.5, len(demos)))
    mix.take_in(0)
    batch = tf.function(mix.next_batch)()
    assert isinstance(batch, SequenceBatch)
    kept = batch.mask.numpy().sum(1)
    assert (kept[:3] > 0).all() and (kept[3:] == 0).all()  # 3 windows of demonstrations
    assert batch.experience.time_step.observation.shape == (6, 6, 6)
