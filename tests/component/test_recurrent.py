"""Recurrent SAC: the masked sequence losses, the refusals, the policy state on the
workers and in evaluation, and replay windows through both packed data paths (an
in-process Reverb server)."""

from __future__ import annotations

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")

from parts import agent_of, bound, format_of, memory_source, tables_of
from tf_agents.agents.sac import sac_agent
from tf_agents.policies import greedy_policy, py_tf_eager_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfagents_system import actors, collection, process
from tfagents_system.agents import networks, sac
from tfagents_system.agents.export import export_policy, policy_saver
from tfagents_system.agents.settings import NetworkSettings
from tfagents_system.builder import Builder
from tfagents_system.core import paths as paths_module
from tfagents_system.core.batches import SequenceBatch
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import datasets, packing
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.format import LAYOUT_BLOCKS, LAYOUT_PACKED, FormatError
from tfagents_system.testing_envs import random_rows
from tfagents_system.tools import evaluation

SIGNER = Signer(b"a test key of the right length!!")


class Params(TrainParamsBase):
    recurrent = True
    recurrent_sequence_length = 6
    recurrent_burn_in = 2
    batch_size = 4
    min_replay_size = 1
    actor_fc_layers = (16,)
    critic_joint_fc_layers = (16,)
    lstm_size = (8,)
    recurrent_output_fc_layers = (8,)

    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=15)


def make_agent(params=None, env=None):
    params = params or Params()
    env = env or params.env_ctor(0)
    agent = agent_of(params, env)
    for var in agent.collect_policy.variables():  # weights that make the state matter
        var.assign(tf.random.normal(var.shape, stddev=0.5, seed=3))
    return agent, env


def test_params_files_of_the_previous_revision_build_their_agents_by_the_old_names():
    """`tfagents_system.recurrent` and `.observations` still give what a params file of
    the previous revision imported for networks and agents of its own."""
    from tfagents_system import observations, recurrent

    class OldStyle(Params):
        def actor_net_ctor(self, observation_spec, action_spec):
            return recurrent.actor_network(self, observation_spec, action_spec)

        def critic_net_ctor(self, observation_spec, action_spec):
            return recurrent.critic_network(self, observation_spec, action_spec)

        def agent_ctor(self, *args):
            return recurrent.make_agent(self, *args)

    agent, env = make_agent(OldStyle())
    assert isinstance(agent, recurrent.SequenceSacAgent)
    assert isinstance(agent._critic_network_1, recurrent.RecurrentCriticNetwork)
    spec = tensor_spec.from_spec(env.observation_spec())
    assert observations.actor_combiner_kwargs(spec, None) == {}  # a flat float observation
    assert "preprocessing_combiner" in observations.actor_combiner_kwargs(
        {"a": spec, "b": spec}, None)


def random_windows(agent, batch=4):
    """A SequenceBatch of random windows (FIRST at the start, then MID)."""
    params = Params()
    spec = agent.collect_data_spec
    packer = packing.make_packer(spec.observation, spec.action, params.window)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(batch, packer.size)).astype(np.float32)
    t = packer.transitions.size
    steps = rows[:, :packer.steps * t].reshape(batch, packer.steps, t)
    steps[:, :, 0], steps[:, :, 1], steps[:, :, 3] = 1.0, 1.0, 1.0
    steps[:, 0, 0] = 0.0
    rows[:, packer.steps * t:] = [0.0] * params.recurrent_burn_in + [1.0] * params.window.length
    return packer, rows


def test_sequence_losses_are_sac_losses_over_the_masked_steps():
    agent, _ = make_agent()
    packer, rows = random_windows(agent)

    def losses(rows, mask="windows", agent_class=sac.SacAgent):
        batch = packer.unpack(tf.constant(rows))
        time_steps, action_steps, next_time_steps = batch.experience
        weights = batch.mask if isinstance(mask, str) else mask
        tf.random.set_seed(7)  # the same sampled actions for every call
        critic = agent_class.critic_loss(agent, time_steps, action_steps.action,
                                         next_time_steps, tf.math.squared_difference,
                                         gamma=0.99, weights=weights)
        tf.random.set_seed(7)
        actor = agent_class.actor_loss(agent, time_steps, weights=weights)
        return float(critic), float(actor)

    # With every step kept: TF-Agents' losses (summed over time) over the steps.
    ones = tf.ones([4, packer.steps])
    ours = losses(rows, ones)
    theirs = losses(rows, None, sac_agent.SacAgent)
    np.testing.assert_allclose(ours, np.array(theirs) / packer.steps, rtol=1e-5)
    # A masked (burn-in) step's reward never reaches the loss; a trained step's does.
    base = losses(rows)
    reward_at = lambda step: step * packer.transitions.size + 2  # noqa: E731
    changed = rows.copy()
    changed[:, reward_at(1)] += 100.0
    assert losses(changed)[0] == pytest.approx(base[0], rel=1e-6)
    changed = rows.copy()
    changed[:, reward_at(5)] += 100.0
    assert losses(changed)[0] != pytest.approx(base[0], rel=1e-3)


class FeedForward(Params):
    recurrent = False


class LstmWithoutRecurrence(FeedForward):
    """LSTM networks of its own, but recurrent = False."""

    def actor_net_ctor(self, observation_spec, action_spec):
        return networks.actor_network(LSTM, observation_spec, action_spec)

    def critic_net_ctor(self, observation_spec, action_spec):
        return networks.critic_network(LSTM, observation_spec, action_spec)


LSTM = NetworkSettings((16,), (16,), lstm_size=(8,), output_layers=(8,))


def test_configurations_sac_cannot_train_are_refused():
    lstm_agent, env = make_agent()
    ff_agent, _ = make_agent(FeedForward(), env)
    assert "set recurrent = True" in sac.training_problem(lstm_agent, False)
    assert "feed-forward" in sac.training_problem(ff_agent, True)
    plain = sac_agent.SacAgent(
        tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()),
        actor_network=lstm_agent._actor_network,
        critic_network=lstm_agent._critic_network_1,
        actor_optimizer=tf.keras.optimizers.Adam(), critic_optimizer=tf.keras.optimizers.Adam(),
        alpha_optimizer=tf.keras.optimizers.Adam())
    assert "agent_ctor returned a tf_agents.agents.sac.sac_agent.SacAgent" in (
        sac.training_problem(plain, True))
    assert sac.training_problem(lstm_agent, True) is None
    chosen = format_of(Params(), lstm_agent, 1000)
    assert chosen.layout == LAYOUT_BLOCKS and "windows of 2+6 steps" in chosen.reason
    with pytest.raises(FormatError, match="set recurrent = True"):  # the builder refuses
        agent_of(LstmWithoutRecurrence(), env)


def export_greedy(agent, directory):
    export_policy(greedy_policy.GreedyPolicy(agent.policy), agent.train_step_counter, directory)


def test_workers_carry_the_policy_state_and_reset_it_at_episode_starts(tmp_path):
    agent, env = make_agent()
    export_greedy(agent, tmp_path / "greedy")

    def actor(num_envs):
        policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
            str(tmp_path / "greedy"), load_specs_from_pbtxt=True, batch_time_steps=False)
        return actors.TFPolicyActor(policy, num_envs)

    envs = [Params().env_ctor(seed) for seed in (1, 2)]
    two = actor(2)
    steps = [e.reset() for e in envs]
    for _ in range(8):  # into the episodes: the state is warm
        actions = two(steps)
        steps = [e.step(a.action) for e, a in zip(envs, actions)]
    # The state changes the actions: a fresh actor acts differently mid-episode.
    carried = two(steps)
    fresh = actor(2)(steps)
    assert not np.allclose(carried[0].action, fresh[0].action, atol=1e-4)
    # env 0 starts an episode, env 1 goes on: only env 0's state is reset.
    steps = [envs[0].reset(), envs[1].step(carried[1].action)]
    reference = actor(2)(steps)
    after = two(steps)
    np.testing.assert_allclose(after[0].action, reference[0].action, rtol=1e-5, atol=1e-6)
    assert not np.allclose(after[1].action, reference[1].action, atol=1e-4)


def test_evaluation_carries_the_state_as_the_workers_do(tmp_path):
    """The workers' evaluation and tfagents_system.run play an episode with the same
    greedy policy the same way (same returns for the same env seed), and that way
    carries the LSTM's state: a policy that forgets it every step scores otherwise."""
    agent, _ = make_agent()
    paths = paths_module.ExperimentPaths(tmp_path)
    export_greedy(agent, paths.policy("greedy_policy"))
    saver = policy_saver(greedy_policy.GreedyPolicy(agent.policy), agent.train_step_counter)
    saver.save_checkpoint(str(paths.policy_checkpoint(0)))
    worker_policy, _ = Builder(Params(), paths).eval_policy(actor=None)
    ckpt = evaluation.choose_checkpoint(tmp_path, None)
    cli_policy = evaluation.load_greedy_policy(tmp_path, ckpt)
    worker = collection.play_episode(Params().env_ctor(4), worker_policy)
    cli = collection.play_episode(Params().env_ctor(4), cli_policy)
    assert worker == cli and worker[1] == 15

    class Forgetful:
        def get_initial_state(self, batch_size=None):
            return ()

        def action(self, time_step, state):
            return cli_policy.action(time_step, collection.initial_state(cli_policy))

    assert collection.play_episode(Params().env_ctor(4), Forgetful())[0] != pytest.approx(
        cli[0], rel=1e-6)


@pytest.fixture
def server():
    srv = reverb.Server(tables_of(Params(), 10_000), port=None)
    yield f"localhost:{srv.port}"
    srv.stop()


def collect(env, writer, episodes):
    stats = collection.EpisodeStats(1)
    collector = collection.Collector([env], stats, lambda: None, lambda: False)
    collector.writers = [writer]
    collector.run(actors.RandomActor(env.action_spec(), seed=3), episodes)
    writer.close()
    return stats


def test_windows_reach_the_learner_through_its_memory_and_through_reverb(server, tmp_path):
    params = Params()
    agent, env = make_agent(params)
    client = reverb.Client(server)
    blocks, packed = (bound(env, layout, window=params.window)
                      for layout in (LAYOUT_BLOCKS, LAYOUT_PACKED))
    for fmt in (blocks, packed):
        writer = replay_writers.make_experience_writer(client, fmt, lambda: False, SIGNER)
        stats = collect(env, writer, episodes=3)  # 3 x 15 steps: 3 windows per episode
        assert stats.env_steps == 45
    log = process.setup_logging("test")
    link = ServerLink(server, lambda: False, log, SIGNER)
    memory = memory_source(params, blocks, tmp_path / "memory", 1000, link, log)
    memory.take_in(0)
    assert memory.size() == 9 and memory.memory.capacity == 167  # 1000 transitions / 6
    from_reverb = next(iter(datasets.experience_dataset(server, packed, 9)))
    for batch in (memory.sample(), from_reverb):
        assert isinstance(batch, SequenceBatch)
        assert batch.experience.time_step.observation.shape == (4 if batch is not from_reverb
                                                                else 9, 8, 3)
        # Every window trains on 5 or 6 new steps (15 = 6 + 6 + 3, masked 1 at the end).
        kept = batch.mask.numpy().sum(1)
        assert set(kept) <= {6.0, 3.0} and batch.mask.numpy()[:, -1].all()
    before = [v.numpy().copy() for v in agent._actor_network.variables]
    train = Builder.train_loop(agent, memory)
    assert np.isfinite(float(train(tf.constant(2, tf.int64)).loss))
    assert int(agent.train_step_counter.numpy()) == 2
    assert any(not np.allclose(a, b.numpy()) for a, b in
               zip(before, agent._actor_network.variables))
    memory.close()
    assert ts.StepType.FIRST == 0  # the windows' pads rely on it


class DictParams(Params):
    """The LSTM agent on a dict observation with int and bool leaves."""

    def env_ctor(self, seed=None, *args, **kwargs):
        from tfagents_system.testing_envs import point_mass_reach

        return point_mass_reach(seed=seed, episode_steps=10, counter_dtype="int32")


def test_recurrent_agent_on_a_dict_observation_trains_on_windows_and_acts(tmp_path):
    params = DictParams()
    agent, env = make_agent(params)
    assert isinstance(agent._critic_network_1, networks.RecurrentCriticNetwork)
    assert agent._critic_network_1._encoder._input_encoder._preprocessing_combiner is not None
    assert format_of(params, agent, 1000).layout == LAYOUT_BLOCKS
    spec = agent.collect_data_spec
    packer = packing.make_packer(spec.observation, spec.action, params.window)
    # Three 10-step episodes: windows of 6 then 4 steps each.
    rows = random_rows(env, packer, 30, seed=1)
    assert len(rows) == 6
    batch = packer.unpack(tf.constant(rows))
    assert batch.experience.time_step.observation["steps_left"].dtype == tf.int32
    assert batch.experience.time_step.observation["near_goal"].dtype == tf.bool
    info = agent.train(batch.experience, weights=batch.mask)
    assert np.isfinite(float(info.loss))
    export_greedy(agent, tmp_path / "greedy")
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(str(tmp_path / "greedy"),
                                                          load_specs_from_pbtxt=True)
    assert collection.play_episode(params.env_ctor(2), policy)[1] == 10


def test_recurrence_on_an_observation_the_windows_cannot_hold_is_refused():
    class Int64Params(DictParams):
        def env_ctor(self, seed=None, *args, **kwargs):
            from tfagents_system.testing_envs import point_mass_reach

            return point_mass_reach(seed=seed, episode_steps=10, counter_dtype="int64")

    params = Int64Params()
    agent, _ = make_agent(params)
    with pytest.raises(FormatError, match="recurrent training needs packed windows.*int64"):
        format_of(params, agent, 1000)
