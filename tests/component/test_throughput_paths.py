"""The fast data paths keep SAC's data exact: packed transition items, lockstep
multi-env collection, the numpy collect policy, the learner's layout record.
Real Reverb servers on free ports, real environments."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")

from parts import agent_of, bound, format_of, memory_source, tables_of
from tf_agents.environments import py_environment, wrappers
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfagents_system import actors, collection, process
from tfagents_system.agents.export import export_policy
from tfagents_system.builder import Builder
from tfagents_system.core import constants as C
from tfagents_system.core import errors, files
from tfagents_system.core import paths as paths_module
from tfagents_system.envs import load_gym_env
from tfagents_system.launch.experiment import recorded_format
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import datasets, limits, packing
from tfagents_system.replay import format as replay_format
from tfagents_system.replay import memory as replay_memory
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import BlockCheck, Signer
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.format import LAYOUT_BLOCKS, LAYOUT_PACKED, LAYOUT_STEPS, ReplayFormat

SIGNER = Signer(b"a test key of the right length!!")


class CountdownEnv(py_environment.PyEnvironment):
    """Episodes of odd index terminate (discount 0) after 3 steps; the others run
    into the 5-step time limit (TF-Agents' TimeLimit: discount stays 1)."""

    def __init__(self, seed=0):
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._episode = -1
        self._t = 0

    def observation_spec(self):
        return array_spec.ArraySpec((3,), np.float32, "obs")

    def action_spec(self):
        return array_spec.BoundedArraySpec((2,), np.float32, -2.0, 2.0, "action")

    def _obs(self):
        return np.array([self._episode, self._t, self._rng.normal()], np.float32)

    def _reset(self):
        self._episode += 1
        self._t = 0
        return ts.restart(self._obs())

    def _step(self, action):
        self._t += 1
        reward = float(np.sum(action)) + self._t
        if self._episode % 2 == 1 and self._t == 3:
            return ts.termination(self._obs(), reward)
        return ts.transition(self._obs(), reward, discount=1.0)


def countdown_env(seed=0):
    return wrappers.TimeLimit(CountdownEnv(seed), duration=5)


class CountdownParams(TrainParamsBase):
    batch_size = 8
    min_replay_size = 1
    actor_fc_layers = (16,)
    critic_joint_fc_layers = (16,)

    def env_ctor(self, seed=None, *args, **kwargs):
        return countdown_env(seed or 0)


@pytest.fixture
def server():
    srv = reverb.Server(tables_of(CountdownParams(), 10_000), port=None)
    yield f"localhost:{srv.port}"
    srv.stop()


class _Recorder:
    """A writer that keeps what it was given."""

    def __init__(self):
        self.calls = []

    def add(self, time_step, action_step, next_time_step):
        self.calls.append((time_step, action_step, next_time_step))


class _Tee:
    def __init__(self, *writers):
        self._writers = writers

    def add(self, *args):
        for writer in self._writers:
            writer.add(*args)


def _collect(envs, writers, episodes, actor=None, should_stop=lambda: False, beat=lambda: None):
    stats = collection.EpisodeStats(len(envs))
    collector = collection.Collector(envs, stats, beat, should_stop)
    collector.writers = writers
    actor = actor or actors.RandomActor(envs[0].action_spec(), seed=7)
    collector.run(actor, episodes)
    return stats


def _sample_all(address, spec, fmt, size):
    """Every distinct transition in the table (uniform sampling, many draws)."""
    batch = next(iter(datasets.experience_dataset(address, fmt, 40 * size,
                                                  collect_data_spec=spec)))
    if fmt.layout == LAYOUT_STEPS:
        batch = tf.nest.map_structure(lambda x: tf.squeeze(x, 1), trajectory.to_transition(batch))
    flat = [np.asarray(x).reshape(40 * size, -1).astype(np.float64)
            for x in tf.nest.flatten(batch)]
    rows = np.concatenate(flat, axis=1)
    return {tuple(np.round(row, 5)) for row in rows}


def test_packed_items_equal_tf_agents_transitions(server):
    """The same episodes written in both layouts sample to the same transitions,
    one item per env step, none starting at a LAST step."""
    params = CountdownParams()
    env = countdown_env()
    agent = agent_of(params, env)
    srv2 = reverb.Server(tables_of(params, 10_000), port=None)
    try:
        steps_address = f"localhost:{srv2.port}"
        packed_format, steps_format = bound(env, LAYOUT_PACKED), bound(env, LAYOUT_STEPS)
        packed = replay_writers.make_experience_writer(
            reverb.Client(server), packed_format, lambda: False, SIGNER)
        steps = replay_writers.make_experience_writer(
            reverb.Client(steps_address), steps_format, lambda: False, SIGNER)
        stats = _collect([env], [_Tee(packed, steps)], episodes=4)
        packed.close()
        steps.close()
        assert stats.env_steps == 5 + 3 + 5 + 3
        for address in (server, steps_address):
            size = reverb.Client(address).server_info()[C.EXPERIENCE_TABLE].current_size
            assert size == stats.env_steps
        spec = agent.collect_data_spec
        from_packed = _sample_all(server, spec, packed_format, stats.env_steps)
        from_steps = _sample_all(steps_address, spec, steps_format, stats.env_steps)
        assert len(from_packed) == stats.env_steps
        assert from_packed == from_steps
    finally:
        srv2.stop()


def _assert_countdown_transitions(batch):
    """A 512-transition CountdownEnv batch has SAC's transition semantics: time-limit
    ends keep discount 1, terminations get 0; s' is the true next observation (also
    at episode ends); reward and discount of s are zero, as in
    trajectory.to_transition."""
    assert isinstance(batch, trajectory.Transition)
    first, nxt = batch.time_step, batch.next_time_step
    assert not np.any(first.step_type.numpy() == ts.StepType.LAST)
    assert np.all(first.reward.numpy() == 0) and np.all(first.discount.numpy() == 0)
    last = nxt.step_type.numpy() == ts.StepType.LAST
    episode = first.observation.numpy()[:, 0]
    truncated = last & (episode % 2 == 0)
    terminated = last & (episode % 2 == 1)
    assert truncated.any() and terminated.any()
    np.testing.assert_array_equal(nxt.discount.numpy()[truncated], 1.0)
    np.testing.assert_array_equal(nxt.discount.numpy()[terminated], 0.0)
    np.testing.assert_array_equal(nxt.discount.numpy()[~last], 1.0)
    # s' follows s within the episode: same episode, one step later.
    np.testing.assert_array_equal(nxt.observation.numpy()[:, 0], episode)
    np.testing.assert_array_equal(nxt.observation.numpy()[:, 1],
                                  first.observation.numpy()[:, 1] + 1)
    np.testing.assert_array_equal(nxt.reward.numpy(),
                                  batch.action_step.action.numpy().sum(1)
                                  + nxt.observation.numpy()[:, 1])
    assert batch.action_step.action.shape == (512, 2)


def test_packed_transitions_keep_truncation_bootstrapping(server):
    """Time-limit ends keep discount 1, terminations get 0; the next observation is
    the true s' (also at episode ends); reward and discount of s are zero, as in
    trajectory.to_transition."""
    params = CountdownParams()
    env = countdown_env()
    agent = agent_of(params, env)
    fmt = bound(env, LAYOUT_PACKED)
    writer = replay_writers.make_experience_writer(reverb.Client(server), fmt, lambda: False,
                                                   SIGNER)
    _collect([env], [writer], episodes=6)
    writer.close()
    batch = next(iter(datasets.experience_dataset(server, fmt, 512,
                                                  collect_data_spec=agent.collect_data_spec)))
    _assert_countdown_transitions(batch)


def test_packed_batch_gives_the_same_sac_losses_as_the_two_step_batch(server):
    params = CountdownParams()
    env = countdown_env()
    agent = agent_of(params, env)
    recorder = _Recorder()
    _collect([env], [recorder], episodes=4)
    spec = agent.collect_data_spec
    packer = packing.TransitionPacker(spec.observation, spec.action)
    packed = np.stack([packer.pack(t, a.action, n) for t, a, n in recorder.calls])
    transition = packer.unpack(tf.constant(packed))
    trajs = [(trajectory.from_transition(t, a, n), trajectory.from_transition(
        n, a, ts.restart(n.observation) if n.is_last() else n)) for t, a, n in recorder.calls]
    two_step = tf.nest.map_structure(lambda *xs: tf.constant(np.stack(xs)), *[
        tf.nest.map_structure(lambda x, y: np.stack([x, y]), first, second)
        for first, second in trajs])
    tf.random.set_seed(3)
    loss_packed = agent.loss(transition)
    tf.random.set_seed(3)
    loss_steps = agent.loss(two_step)
    for a, b in zip(tf.nest.flatten(loss_packed), tf.nest.flatten(loss_steps)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    loss_info = agent.train(transition)  # SacAgent trains on the packed form
    assert np.isfinite(loss_info.loss.numpy())


def test_lockstep_envs_write_whole_episodes_per_env(server):
    """Three envs stepped together: each env's writer gets its own episodes in
    order (FIRST ... LAST, s' of one step is s of the next), and every env step
    becomes exactly one item."""
    envs = [countdown_env(seed) for seed in (1, 2, 3)]
    recorders = [_Recorder() for _ in envs]
    stats = _collect(envs, recorders, episodes=7)
    assert stats.env_steps == sum(len(r.calls) for r in recorders)
    assert sum(len(r.calls) for r in recorders) == 3 * len(recorders[0].calls)
    ended = 0
    for recorder in recorders:
        for (_, _, n), (t2, _, _) in zip(recorder.calls, recorder.calls[1:]):
            if n.is_last():
                ended += 1
                assert t2.is_first()
            else:
                np.testing.assert_array_equal(n.observation, t2.observation)
                assert not t2.is_first()
        assert recorder.calls[0][0].is_first()
    ended += sum(r.calls[-1][2].is_last() for r in recorders)
    assert ended >= 7
    assert len(stats.pop_finished()) == ended
    # The same with real writers: one item per env step.
    client = reverb.Client(server)
    writers = [replay_writers.make_experience_writer(client, bound(envs[0], LAYOUT_PACKED),
                                                     lambda: False, SIGNER)
               for _ in envs]
    stats = _collect([countdown_env(s) for s in (4, 5, 6)], writers, episodes=6)
    for writer in writers:
        writer.close()
    assert client.server_info()[C.EXPERIENCE_TABLE].current_size == stats.env_steps


def test_warmup_by_steps_leaves_the_episode_open_for_the_policy():
    """Collector.run(steps=n) stops after n env steps in the middle of an episode; the
    next run continues that episode (no reset), as the zoo's warm-up hands over."""
    env = load_gym_env("Pendulum-v1", seed=0)  # 200-step episodes, never terminal
    recorder = _Recorder()
    stats = collection.EpisodeStats(1)
    collector = collection.Collector([env], stats, lambda: None, lambda: False)
    collector.writers = [recorder]
    collector.run(actors.RandomActor(env.action_spec(), seed=1), steps=250)
    assert stats.env_steps == 250 and len(recorder.calls) == 250
    assert len(stats.pop_finished()) == 1  # one whole episode, the second one open
    collector.run(actors.RandomActor(env.action_spec(), seed=2), episodes=1)
    assert stats.env_steps == 400  # the open episode's remaining 150 steps, no reset
    assert not any(t.is_first() for t, _, _ in recorder.calls[201:])
    assert stats.pop_finished() == [(pytest.approx(sum(
        float(n.reward) for _, _, n in recorder.calls[200:])), 200)]


def test_collector_serves_heartbeats_and_stop_requests():
    env = load_gym_env("Pendulum-v1", seed=0, max_episode_steps=1_000_000)  # never ends here
    env.reset()
    env.step(np.zeros(1, np.float32))  # first steps import modules (pygame): not timed
    beats, stopped_at = [], []
    stop = threading.Event()

    def request_stop():
        stopped_at.append(time.monotonic())
        stop.set()

    threading.Timer(0.5, request_stop).start()
    with pytest.raises(errors.StopRequested):
        _collect([env], [_Recorder()], episodes=1, should_stop=stop.is_set,
                 beat=lambda: beats.append(time.monotonic()))
    # Seen within a check period (0.5 s) of the request, or of collection's start if
    # the request came first: a stall of the machine before then does not count.
    assert time.monotonic() - max(stopped_at[0], beats[0]) < 2
    assert len(beats) > 100


def test_numpy_actor_matches_the_tf_collect_policy():
    """Same loc and std as the TF actor network, same greedy action as the TF
    distribution's mode, weights taken in the published order, samples within
    bounds and reproducible from the seed."""

    class Params(TrainParamsBase):
        actor_fc_layers = (32, 16)

        def env_ctor(self, seed=None, *args, **kwargs):
            return load_gym_env("Pendulum-v1", seed=seed)

    params = Params()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    for var in agent.collect_policy.variables():  # non-trivial weights, biases included
        var.assign(tf.random.normal(var.shape, stddev=0.3, seed=1))
    published = [v.numpy() for v in agent.collect_policy.variables()]
    net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                tensor_spec.from_spec(env.action_spec()))
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed=5)
    assert reason is None
    actor.set_weights(published)
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    dist, _ = agent._actor_network(obs, step_type=(), network_state=(),
                                   training=False)
    loc, std = actor.loc_and_std(obs)
    np.testing.assert_allclose(loc, dist.input_distribution.loc.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, dist.input_distribution.stddev().numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(actor.squash(loc), dist.mode().numpy(), rtol=1e-4, atol=1e-5)
    # The workers' evaluation: the numpy greedy action is the TF greedy policy's action.
    from tf_agents.policies import greedy_policy

    tf_greedy = greedy_policy.GreedyPolicy(agent.policy).action(
        ts.restart(tf.constant(obs), batch_size=64)).action.numpy()
    np.testing.assert_allclose(actor.greedy(obs), tf_greedy, rtol=1e-4, atol=1e-5)
    evaluator = actors.NumpyGreedyPolicy(actor)
    step = evaluator.action(ts.restart(obs[3]), evaluator.get_initial_state())
    np.testing.assert_allclose(step.action, tf_greedy[3], rtol=1e-4, atol=1e-5)
    samples = np.stack([actor.sample(obs) for _ in range(200)])
    spec = env.action_spec()
    assert samples.min() >= spec.minimum and samples.max() <= spec.maximum
    tf_samples = agent.collect_policy.action(
        ts.restart(tf.constant(obs), batch_size=64)).action.numpy()
    assert tf_samples.shape == samples.shape[1:]
    # Mean of the pre-tanh samples ~ loc (the TF policy samples the same law).
    pre = np.arctanh(np.clip(samples / spec.maximum, -0.999999, 0.999999))
    assert np.abs(pre.mean(0) - loc).max() < 4 * std.max() / np.sqrt(200) + 0.05
    again, _ = actors.NumpyActor.from_network(net, env.action_spec(), seed=5)
    again.set_weights(published)
    first = actors.NumpyActor.from_network(net, env.action_spec(), seed=5)[0]
    first.set_weights(published)
    np.testing.assert_array_equal(first.sample(obs), again.sample(obs))
    with pytest.raises(ValueError, match="different networks"):
        actor.set_weights(published[:-1])


def test_numpy_actor_declines_other_networks():
    from tf_agents.networks import actor_distribution_network, normal_projection_network

    env = load_gym_env("Pendulum-v1", seed=0)
    obs_spec = tensor_spec.from_spec(env.observation_spec())
    act_spec = tensor_spec.from_spec(env.action_spec())
    net = actor_distribution_network.ActorDistributionNetwork(
        obs_spec, act_spec, fc_layer_params=(8,),
        continuous_projection_net=normal_projection_network.NormalProjectionNetwork)
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed=0)
    assert actor is None and "NormalProjectionNetwork" in reason


def test_replay_format_choice_and_record(tmp_path, monkeypatch):
    env = countdown_env()
    params = CountdownParams()
    agent = agent_of(params, env)
    assert format_of(params, agent).layout == LAYOUT_PACKED
    chosen = format_of(params, agent, 1000)
    assert chosen.layout == LAYOUT_BLOCKS
    paths = paths_module.ExperimentPaths(tmp_path / "new")
    paths.root.mkdir()
    chosen.write(paths.layout)
    assert files.read_json(paths.root / C.LAYOUT_FILE)["layout"] == "packed_blocks"
    assert ReplayFormat.read(paths.layout) == chosen  # the record, read back as it was
    # learner_keeps_replay = False: Reverb keeps the buffer, and the record says why.
    params.learner_keeps_replay = False
    in_reverb = format_of(params, agent, 1000)
    assert in_reverb.layout == LAYOUT_PACKED
    assert "learner_keeps_replay = False" in in_reverb.reason
    # A buffer too big for the learner's RAM stays in Reverb (rows of 4 + 3 + 2 + 3
    # floats: 1000 of them take 48000 bytes).
    params.learner_keeps_replay = True
    monkeypatch.setattr(replay_format, "memory_budget_bytes", lambda: 47_999)
    big = format_of(params, agent, 1000)
    assert big.layout == LAYOUT_PACKED and "exceeds a quarter" in big.reason
    # An experiment checkpointed before formats were recorded keeps 2-step items; the
    # launch derives that once, and reads the record afterwards.
    old = paths_module.ExperimentPaths(tmp_path / "old")
    old.checkpoints.mkdir(parents=True)
    (old.checkpoints / "checkpoint").write_text("")
    never = lambda: pytest.fail("an experiment that has trained is not given a new format")  # noqa: E731
    derived, now = recorded_format(old, never)
    assert (derived, now) == (ReplayFormat.legacy(), True)
    derived.write(old.layout)  # as the launch does once it holds the experiment's lock
    assert recorded_format(old, never) == (ReplayFormat.legacy(), False)
    assert recorded_format(paths_module.ExperimentPaths(tmp_path / "new"), never)[0] == chosen
    # One that never trained gets the format a new experiment would.
    fresh = paths_module.ExperimentPaths(tmp_path / "fresh")
    fresh.root.mkdir()
    assert recorded_format(fresh, lambda: chosen) == (chosen, True)
    # int32 observations pack exactly; int64 ones cannot, and the reason names the leaf.
    int_spec = agent.collect_data_spec._replace(
        observation=tf.TensorSpec((3,), tf.int32))
    assert packing.TransitionPacker.unsupported_reason(int_spec) is None
    int_spec = agent.collect_data_spec._replace(
        observation={"count": tf.TensorSpec((3,), tf.int64)})
    assert "'count' is int64" in packing.TransitionPacker.unsupported_reason(int_spec)


def test_custom_actor_network_runs_the_exported_tf_policy_in_lockstep(server, tmp_path):
    """An actor network the numpy path does not know (here: elu) is run through the
    exported SavedModel policy, one call for all lockstep envs; its variables are
    the ones a weight refresh assigns."""
    from tf_agents.networks import actor_distribution_network

    class Params(CountdownParams):
        num_envs_per_worker = 3

        def actor_net_ctor(self, observation_spec, action_spec):
            return actor_distribution_network.ActorDistributionNetwork(
                observation_spec, action_spec, fc_layer_params=(8,),
                activation_fn=tf.keras.activations.elu)

    params = Params()
    env = countdown_env()
    agent = agent_of(params, env)
    paths = paths_module.ExperimentPaths(tmp_path)
    export_policy(agent.collect_policy, agent.train_step_counter,
                  paths.policy(C.COLLECT_POLICY))
    actor, variables = Builder(params, paths).collect_actor(env, 0,
                                                            process.setup_logging("test"))
    assert isinstance(actor, actors.TFPolicyActor)
    assert [v.shape for v in variables] == [
        v.shape for v in agent.collect_policy.variables()]
    envs = [countdown_env(seed) for seed in (1, 2, 3)]
    recorders = [_Recorder() for _ in envs]
    stats = _collect(envs, recorders, episodes=6, actor=actor)
    actions = np.stack([a.action for r in recorders for _, a, _ in r.calls])
    assert actions.shape == (stats.env_steps, 2)
    assert actions.min() >= -2.0 and actions.max() <= 2.0 and actions.std() > 0.01


# --- packed_blocks: blocks through the queue into the learner's replay memory ---

def _memory_rows(memory):
    return memory.rows.numpy()[:int(memory.size.numpy())]


def test_blocks_bring_every_transition_in_order_into_the_replay_memory(server, tmp_path):
    """Full and short (episode-end) blocks, padding dropped: the memory holds
    exactly the packed transitions, in collection order; a new memory on the same
    directory restores them; a small capacity keeps the newest."""
    env = countdown_env()
    packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
    client = reverb.Client(server)
    writer = replay_writers.BlockExperienceWriter(client, packer, lambda: False, SIGNER,
                                                  block_rows=4)
    recorder = _Recorder()
    stats = _collect([env], [_Tee(writer, recorder)], episodes=4)
    writer.close()
    assert stats.env_steps == 5 + 3 + 5 + 3
    # blocks: 4 + 1 (episode end), 3, 4 + 1, 3
    assert client.server_info()[C.QUEUE_TABLE].current_size == 6
    expected = np.stack([packer.pack(t, a.action, n) for t, a, n in recorder.calls])
    memory = replay_memory.ReplayMemory(100, packer.size, tmp_path / "memory")
    memory.add(replay_memory.drain_queue(client, BlockCheck(SIGNER, packer.size)))
    assert client.server_info()[C.QUEUE_TABLE].current_size == 0
    assert replay_memory.drain_queue(client, BlockCheck(SIGNER, packer.size)) is None
    assert memory.inserted == 16
    np.testing.assert_array_equal(_memory_rows(memory), expected)
    memory.close()

    restored = replay_memory.ReplayMemory(100, packer.size, tmp_path / "memory")
    assert restored.restore() == 16
    np.testing.assert_array_equal(_memory_rows(restored), expected)
    small = replay_memory.ReplayMemory(10, packer.size, tmp_path / "memory")
    assert small.restore() == 10 and small.inserted == 16
    assert {tuple(r) for r in _memory_rows(small)} == {tuple(r) for r in expected[-10:]}
    small.add(expected[:3])  # overwrites the 3 oldest
    kept = {tuple(r) for r in _memory_rows(small)}
    assert kept == {tuple(r) for r in np.concatenate([expected[-7:], expected[:3]])}


def test_memory_batches_keep_truncation_bootstrapping(server, tmp_path):
    """Batches sampled in the learner's memory: the same Transition semantics as
    Reverb-sampled packed items, and every stored transition comes up."""
    params = CountdownParams()
    env = countdown_env()
    agent = agent_of(params, env)
    client = reverb.Client(server)
    fmt = bound(env, LAYOUT_BLOCKS)
    writer = replay_writers.make_experience_writer(client, fmt, lambda: False, SIGNER)
    stats = _collect([env], [writer], episodes=6)
    writer.close()
    params.batch_size = 512
    log = process.setup_logging("test")
    link = ServerLink(server, lambda: False, log, SIGNER)
    source = memory_source(params, fmt, tmp_path / "memory", 1000, link, log)
    source.take_in(0)  # the learner's take-in: the queue's blocks into its memory
    assert source.size() == stats.env_steps
    train_steps = Builder.train_loop(agent, source)
    batch = source.sample()
    _assert_countdown_transitions(batch)
    seen = {tuple(o) for o in batch.time_step.observation.numpy()[:, :2]}
    assert len(seen) == stats.env_steps  # (episode, t) of every transition
    loss = train_steps(tf.constant(3, dtype=tf.int64))
    assert np.isfinite(float(loss.loss)) and int(agent.train_step_counter.numpy()) == 3


def test_a_full_queue_makes_writers_wait_and_see_stop_requests(monkeypatch):
    monkeypatch.setattr(limits, "QUEUE_MAX_BLOCKS", 2)
    srv = reverb.Server(tables_of(CountdownParams(), 100), port=None)
    try:
        client = reverb.Client(f"localhost:{srv.port}")
        env = countdown_env()
        packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
        stop = threading.Event()
        writer = replay_writers.BlockExperienceWriter(client, packer, stop.is_set, SIGNER,
                                                      block_rows=1)
        threading.Timer(1.5, stop.set).start()
        start = time.monotonic()
        with pytest.raises(errors.StopRequested):
            _collect([env], [writer], episodes=10)
        assert 1.5 <= time.monotonic() - start < 5
        assert client.server_info()[C.QUEUE_TABLE].current_size == 2
        check = BlockCheck(SIGNER, packer.size)
        assert replay_memory.drain_queue(client, check).shape == (2, packer.size)
    finally:
        srv.stop()
