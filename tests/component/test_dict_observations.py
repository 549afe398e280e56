"""Structured (dict) observations on the fast data path: exact packing of float,
integer and bool leaves, the workers' numpy actor against the TF policy, the
block writer -> learner memory -> train step path, and the layout record."""

from __future__ import annotations

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")
tf = pytest.importorskip("tensorflow")

from parts import agent_of, bound, format_of, memory_source, tables_of
from tf_agents.policies import greedy_policy
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common, nest_utils

from tfagents_system import actors, collection, process
from tfagents_system.agents.export import export_policy
from tfagents_system.builder import Builder
from tfagents_system.core import errors, files
from tfagents_system.core import paths as paths_module
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import packing
from tfagents_system.replay import writers as replay_writers
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat
from tfagents_system.testing_envs import point_mass_reach

SIGNER = Signer(b"a test key of the right length!!")


class DictParams(TrainParamsBase):
    actor_fc_layers = (16, 8)
    critic_joint_fc_layers = (16,)
    batch_size = 32
    observation_normalization = {"steps_left": (25.0, 25.0), "velocity": ([0.0, 1.0], 2.0)}

    def env_ctor(self, seed=None):
        return point_mass_reach(seed, episode_steps=20, counter_dtype="int32")


def test_every_exact_dtype_round_trips_through_the_packer():
    """Each leaf comes back with its dtype and its values, bit for bit, including
    int32's extremes that float32 holds (+-2**24) and the bool flags."""
    obs_spec = {
        "flags": array_spec.ArraySpec((3,), np.bool_),
        "grid": array_spec.ArraySpec((2, 3), np.uint8),
        "nested": {"count": array_spec.ArraySpec((), np.int32),
                   "small": array_spec.ArraySpec((2,), np.int8)},
        "pose": array_spec.ArraySpec((4,), np.float32),
        "wide": array_spec.ArraySpec((2,), np.uint16),
        "level": array_spec.ArraySpec((), np.int16),
    }
    act_spec = array_spec.BoundedArraySpec((2,), np.float32, -1, 1)
    assert packing.observation_problem(obs_spec) is None
    packer = packing.TransitionPacker(obs_spec, act_spec)
    rng = np.random.default_rng(0)

    def observation(count):
        return {"flags": rng.integers(0, 2, 3).astype(bool),
                "grid": rng.integers(0, 256, (2, 3)).astype(np.uint8),
                "nested": {"count": np.int32(count), "small": np.array([-128, 127], np.int8)},
                "pose": rng.normal(size=4).astype(np.float32),
                "wide": np.array([0, 65535], np.uint16), "level": np.int16(-32768)}

    steps = [(observation(2**24), observation(-(2**24))), (observation(7), observation(0))]
    rows = []
    for before, after in steps:
        first, second = ts.restart(before), ts.transition(after, np.float32(0.5))
        rows.append(packer.pack(first, np.array([0.25, -1.0], np.float32), second))
    batch = packer.unpack(tf.constant(np.stack(rows)))
    for i, (before, after) in enumerate(steps):
        for packed, given in ((batch.time_step.observation, before),
                              (batch.next_time_step.observation, after)):
            for got, want in zip(tf.nest.flatten(packed), tf.nest.flatten(given)):
                assert got.dtype.as_numpy_dtype == np.asarray(want).dtype
                np.testing.assert_array_equal(got.numpy()[i], want)


def test_inexact_leaves_are_named_with_their_dtype():
    for dtype in (np.int64, np.uint32, np.float64):
        spec = {"ok": array_spec.ArraySpec((2,), np.float32),
                "bad": {"leaf": array_spec.ArraySpec((), dtype)}}
        assert packing.observation_problem(spec) == (
            f"observation leaf 'bad/leaf' is {np.dtype(dtype).name}, which float32 vectors "
            "cannot hold exactly")


def test_numpy_actor_matches_the_tf_policies_on_a_dict_observation():
    """With the combiner (int and bool leaves, per-key normalization), the workers'
    numpy actor gives the TF actor's loc and std, the TF greedy policy's actions
    (in-process and exported), and its evaluation policy the same one by one."""
    params = DictParams()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    for var in agent.collect_policy.variables():
        var.assign(tf.random.normal(var.shape, stddev=0.3, seed=1))
    net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                tensor_spec.from_spec(env.action_spec()))
    actor, reason = actors.NumpyActor.from_network(net, env.action_spec(), seed=3)
    assert reason is None
    actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
    time_steps = [env.reset()]
    rng = np.random.default_rng(0)
    for _ in range(40):
        time_steps.append(env.step(rng.uniform(-1, 1, 2).astype(np.float32)))
    observations = actor.batch([t.observation for t in time_steps])
    assert observations["steps_left"].dtype == np.int32
    assert observations["near_goal"].dtype == np.bool_
    dist, _ = agent._actor_network(tf.nest.map_structure(tf.constant, observations),
                                   step_type=(), network_state=(), training=False)
    loc, std = actor.loc_and_std(observations)
    np.testing.assert_allclose(loc, dist.input_distribution.loc.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, dist.input_distribution.stddev().numpy(), rtol=1e-5,
                               atol=1e-6)
    batched = nest_utils.stack_nested_arrays(time_steps)
    tf_greedy = greedy_policy.GreedyPolicy(agent.policy).action(
        tf.nest.map_structure(tf.constant, batched)).action.numpy()
    np.testing.assert_allclose(actor.greedy(observations), tf_greedy, rtol=1e-5, atol=1e-6)
    evaluator = actors.NumpyGreedyPolicy(actor)
    for i in (0, 17, 40):
        np.testing.assert_allclose(evaluator.action(time_steps[i]).action, tf_greedy[i],
                                   rtol=1e-5, atol=1e-6)
    samples = np.stack([a.action for a in actor(time_steps)])
    assert samples.shape == (41, 2) and np.abs(samples).max() <= 1.0


def test_exported_policy_and_checkpoint_of_the_combined_networks(tmp_path):
    """The SavedModel policy the learner exports takes the dict time steps the
    workers' TF path feeds it; the agent (both combined critics and their targets,
    each with its own variables) checkpoints and restores."""
    from tf_agents.policies import py_tf_eager_policy

    params = DictParams()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    critics = [agent._critic_network_1, agent._critic_network_2,
               agent._target_critic_network_1]
    assert len({id(v) for c in critics for v in c.variables}) == sum(
        len(c.variables) for c in critics)
    train_step = common.create_variable("export_step", 0, dtype=tf.int64)
    export_policy(greedy_policy.GreedyPolicy(agent.policy), train_step, tmp_path / "greedy")
    loaded = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(tmp_path / "greedy"), load_specs_from_pbtxt=True, batch_time_steps=False)
    steps = [env.reset(), env.step(np.array([0.5, 0.5], np.float32))]
    batched = nest_utils.stack_nested_arrays(steps)
    expected = greedy_policy.GreedyPolicy(agent.policy).action(
        tf.nest.map_structure(tf.constant, batched)).action.numpy()
    np.testing.assert_allclose(loaded.action(batched).action, expected, rtol=1e-6)
    checkpointer = common.Checkpointer(str(tmp_path / "ckpt"), agent=agent)
    checkpointer.save(0)
    before = [v.numpy() for v in agent._critic_network_2.variables]
    fresh = agent_of(params, env)
    common.Checkpointer(str(tmp_path / "ckpt"), agent=fresh).initialize_or_restore(
    ).assert_existing_objects_matched()
    for got, want in zip(fresh._critic_network_2.variables, before):
        np.testing.assert_array_equal(got.numpy(), want)


def test_blocks_of_dict_transitions_reach_the_learner_and_train(tmp_path):
    """The workers' block writer, the queue, the learner's memory, a batch with the
    leaves' own dtypes and a few gradient steps."""
    params = DictParams()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    assert format_of(params, agent, 1000).layout == LAYOUT_BLOCKS
    srv = reverb.Server(tables_of(params, 1000), port=None)
    try:
        client = reverb.Client(f"localhost:{srv.port}")
        fmt = bound(env, LAYOUT_BLOCKS)
        writer = replay_writers.make_experience_writer(client, fmt, lambda: False, SIGNER)
        stats = collection.EpisodeStats(1)
        collector = collection.Collector([env], stats, lambda: None, lambda: False)
        collector.writers = [writer]
        collector.run(actors.RandomActor(env.action_spec(), seed=1), 3)
        writer.close()
        log = process.setup_logging("test")
        link = ServerLink(f"localhost:{srv.port}", lambda: False, log, SIGNER)
        source = memory_source(params, fmt, tmp_path / "memory", 1000, link, log)
        source.take_in(0)
        assert source.size() == stats.env_steps == 60
        batch = source.sample()
        observation = batch.time_step.observation
        assert observation["steps_left"].dtype == tf.int32
        assert observation["near_goal"].dtype == tf.bool
        assert set(observation["steps_left"].numpy()) <= set(range(1, 21))
        train_steps = Builder.train_loop(agent, source)
        loss = train_steps(tf.constant(3, dtype=tf.int64))
        assert np.isfinite(float(loss.loss)) and int(agent.train_step_counter.numpy()) == 3
        source.close()
    finally:
        srv.stop()


def test_the_format_record_keeps_the_structure_and_refuses_another(tmp_path):
    params = DictParams()
    env = params.env_ctor(0)
    agent = agent_of(params, env)
    paths = paths_module.ExperimentPaths(tmp_path / "exp")
    paths.root.mkdir()
    format_of(params, agent, 1000).write(paths.layout)
    record = files.read_json(paths.layout)
    assert [leaf["path"] for leaf in record["observation"]] == [
        "goal", "near_goal", "position", "steps_left", "velocity"]
    assert record["observation"][3] == {"path": "steps_left", "shape": [], "dtype": "int32"}
    assert Builder(params, paths).replay_format().layout == LAYOUT_BLOCKS  # it matches

    class Flat(TrainParamsBase):
        def env_ctor(self, seed=None):
            return point_mass_reach(seed, flat=True)

    with pytest.raises(errors.FatalError, match=r"observation is now \[float32\[6\]\], "
                       r"the experiment was created with \[goal float32"):
        Builder(Flat(), paths).replay_format()
    # A record from before structures were recorded is taken as it is.
    files.write_json_atomic(paths.layout, {"layout": "packed_blocks", "reason": "old"})
    assert Builder(Flat(), paths).replay_format() == ReplayFormat(LAYOUT_BLOCKS, "old")


def test_split_observation_gives_the_flat_numbers_as_a_dict():
    """The benchmarks' dict rows: a flat env's observation as a dict of its slices is
    exactly the structured env's observation (PointMassReach orders both alike)."""
    from tfagents_system import envs
    from tfagents_system.testing_envs import SplitObservation

    split = SplitObservation(point_mass_reach(4, flat=True),
                             (("position", 2), ("velocity", 2), ("goal", 2)))
    structured = point_mass_reach(4)
    assert split.observation_spec() == structured.observation_spec()
    assert envs.max_episode_steps(split) == 50
    steps = [(split.reset(), structured.reset())]
    for _ in range(5):
        action = np.array([0.3, -0.7], np.float32)
        steps.append((split.step(action), structured.step(action)))
    for got, want in steps:
        for key in want.observation:
            np.testing.assert_array_equal(got.observation[key], want.observation[key])
    with pytest.raises(ValueError, match="does not cover"):
        SplitObservation(point_mass_reach(0, flat=True), (("a", 5),))
