"""Hindsight relabeling (tfagents_system.hindsight): goals, rewards by hand, the writer's
order, the settings' checks and the replay sizes per env step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfagents_system import hindsight
from tfagents_system.hindsight import (
    GoalFunctions,
    HerSettings,
    HindsightWriter,
    choose_goals,
    relabel_episode,
)
from tfagents_system.params import TrainParamsBase
from tfagents_system.testing_envs import PointGoal

THRESHOLD = 0.05


def episode_along_x(xs, truncated_end=True):
    """An episode of PointGoal-like steps whose achieved goal moves along x through
    `xs` (after each step); desired goal (9, 9); the env's reward -1 throughout."""
    goal = np.array([9.0, 9.0], np.float32)
    steps, previous = [], np.zeros(2, np.float32)
    for i, x in enumerate(xs):
        now = np.array([x, 0.0], np.float32)
        obs = {"achieved_goal": previous, "desired_goal": goal, "observation": previous}
        nxt = {"achieved_goal": now, "desired_goal": goal, "observation": now}
        first = ts.restart(obs) if i == 0 else ts.transition(obs, np.float32(-1.0))
        if i == len(xs) - 1:
            last = (ts.truncation(nxt, np.float32(-1.0)) if truncated_end
                    else ts.termination(nxt, np.float32(-1.0)))
        else:
            last = ts.transition(nxt, np.float32(-1.0))
        steps.append((first, SimpleNamespace(action=np.full(2, i, np.float32)), last))
        previous = now
    return steps


def test_future_goals_come_from_the_same_or_later_steps():
    achieved = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    source, goals = choose_goals(achieved, HerSettings("future", 4), np.random.default_rng(0))
    assert source.tolist() == np.repeat(np.arange(10), 4).tolist()
    picked = goals[:, 0].astype(int)
    assert (picked >= source).all() and (picked <= 9).all()
    assert len(set(picked[source == 0])) > 1  # drawn, not always the same step


def test_final_and_episode_goals():
    achieved = np.arange(6, dtype=np.float32)[:, None]
    _, final = choose_goals(achieved, HerSettings("final", 1), np.random.default_rng(0))
    assert final[:, 0].tolist() == [5.0] * 6
    source, anywhere = choose_goals(achieved, HerSettings("episode", 8),
                                    np.random.default_rng(0))
    assert (anywhere[source == 5, 0] < 5).any()  # earlier steps too


def test_relabeled_rewards_match_a_hand_computation():
    """Positions after each step x = 0.1, 0.2, 0.3; the final goal is (0.3, 0): the
    distances 0.2, 0.1, 0.0 give rewards -1, -1, 0 (threshold 0.05)."""
    episode = episode_along_x([0.1, 0.2, 0.3])
    copies = relabel_episode(episode, HerSettings("final", 1),
                             GoalFunctions(PointGoal(THRESHOLD)), np.random.default_rng(0))
    assert [float(n.reward) for _, _, n in copies] == [-1.0, -1.0, 0.0]
    for (t, a, n), (t0, a0, n0) in zip(copies, episode):
        np.testing.assert_allclose(t.observation["desired_goal"], [0.3, 0.0])
        np.testing.assert_allclose(n.observation["desired_goal"], [0.3, 0.0])
        np.testing.assert_array_equal(t.observation["observation"], t0.observation["observation"])
        np.testing.assert_array_equal(n.observation["achieved_goal"],
                                      n0.observation["achieved_goal"])
        assert a is a0 and t.step_type == t0.step_type and n.step_type == n0.step_type
        assert float(n.discount) == float(n0.discount) == 1.0  # truncation bootstraps
    # the original episode is untouched
    assert [float(n.reward) for _, _, n in episode] == [-1.0, -1.0, -1.0]
    np.testing.assert_array_equal(episode[0][0].observation["desired_goal"], [9.0, 9.0])


def test_future_rewards_by_hand():
    """Each copy's reward is 0 exactly when its goal is within the threshold of the
    position reached by its own step."""
    xs = [0.1, 0.2, 0.3, 0.4, 0.5]
    episode = episode_along_x(xs)
    rng = np.random.default_rng(3)
    copies = relabel_episode(episode, HerSettings("future", 4), GoalFunctions(PointGoal()), rng)
    assert len(copies) == 20
    for i, (_, _, n) in enumerate(copies):
        t = i // 4
        goal_x = float(n.observation["desired_goal"][0])
        assert goal_x >= xs[t] - 1e-6  # a future goal
        expected = 0.0 if abs(goal_x - xs[t]) <= THRESHOLD else -1.0
        assert float(n.reward) == expected


def test_a_termination_keeps_its_discount_unless_the_env_says():
    episode = episode_along_x([0.1, 0.2], truncated_end=False)
    copies = relabel_episode(episode, HerSettings("final", 1), GoalFunctions(PointGoal()),
                             np.random.default_rng(0))
    assert [float(n.discount) for _, _, n in copies] == [1.0, 0.0]

    class Terminating(PointGoal):
        def compute_terminated(self, achieved_goal, desired_goal, info):
            return self.compute_reward(achieved_goal, desired_goal, info) == 0

    copies = relabel_episode(episode_along_x([0.1, 0.2]), HerSettings("final", 1),
                             GoalFunctions(Terminating()), np.random.default_rng(0))
    assert [float(n.discount) for _, _, n in copies] == [1.0, 0.0]
    copies = relabel_episode(episode_along_x([0.1, 0.2, 0.2]), HerSettings("final", 1),
                             GoalFunctions(Terminating()), np.random.default_rng(0))
    assert [float(n.discount) for _, _, n in copies] == [1.0, 0.0, 0.0]


def test_a_per_transition_compute_reward_is_called_per_copy():
    class Scalar:
        calls = 0

        def compute_reward(self, achieved_goal, desired_goal, info):
            assert np.asarray(achieved_goal).ndim == 1 and isinstance(info, dict)
            Scalar.calls += 1
            return -float(np.linalg.norm(achieved_goal - desired_goal) > THRESHOLD)

    copies = relabel_episode(episode_along_x([0.1, 0.2, 0.3]), HerSettings("final", 1),
                             GoalFunctions(Scalar()), np.random.default_rng(0))
    assert [float(n.reward) for _, _, n in copies] == [-1.0, -1.0, 0.0]
    assert Scalar.calls >= 3


class Recorder:
    def __init__(self):
        self.calls = []
        self.closed = False

    def add(self, time_step, action_step, next_time_step, episode_end=None):
        self.calls.append((next_time_step, episode_end))

    def close(self):
        self.closed = True


def test_writer_sends_the_episode_last_original_after_its_copies():
    inner = Recorder()
    writer = HindsightWriter(inner, HerSettings("future", 2), GoalFunctions(PointGoal()),
                             np.random.default_rng(0))
    episode = episode_along_x([0.1, 0.2, 0.3])
    for i, step in enumerate(episode[:-1]):
        writer.add(*step)
        assert len(inner.calls) == i + 1 and inner.calls[-1][1] is None  # at once
    writer.add(*episode[-1])
    assert len(inner.calls) == 3 + 6 and writer.relabeled == 6
    assert [end for _, end in inner.calls[2:8]] == [False] * 6
    last, end = inner.calls[-1]
    assert end is None and last is episode[-1][2]  # the original LAST: the episode's end
    writer.add(*episode_along_x([0.5])[0])  # a new one-step episode
    assert len(inner.calls) == 9 + 2 + 1
    writer.close()
    assert inner.closed


def test_settings_problems_name_the_field():
    def params(**changes):
        base = dict(her_strategy="future", her_goals_per_transition=4, recurrent=False,
                    n_step=1)
        return SimpleNamespace(**{**base, **changes})

    assert hindsight.settings_problems(params()) == []
    assert hindsight.settings_problems(params(her_strategy=None, n_step=3)) == []
    assert "her_strategy='later'" in hindsight.settings_problems(params(her_strategy="later"))[0]
    assert "positive integer" in hindsight.settings_problems(
        params(her_goals_per_transition=0))[0]
    assert "set it to 1" in hindsight.settings_problems(params(her_strategy="final"))[0]
    assert "n_step = 1" in hindsight.settings_problems(params(n_step=3))[0]


def test_env_problem():
    from tf_agents.specs import array_spec

    vector = array_spec.ArraySpec((3,), np.float32)
    goal_spec = {"observation": vector, "achieved_goal": vector, "desired_goal": vector}
    assert hindsight.env_problem(goal_spec, PointGoal()) is None
    assert "dict observation" in hindsight.env_problem(vector, PointGoal())
    assert "compute_reward" in hindsight.env_problem(goal_spec, None)
    other = {**goal_spec, "desired_goal": array_spec.ArraySpec((2,), np.float32)}
    assert "one shape" in hindsight.env_problem(other, PointGoal())


class Params(TrainParamsBase):
    def env_ctor(self, seed=None):
        raise AssertionError("these tests build no env")


def test_replay_sizes_count_env_steps():
    plain = Params()
    plain.samples_per_insert, plain.min_replay_size = 256.0, 1000
    assert plain.rows_per_env_step == 1
    assert plain.replay_settings(10_000).samples_per_insert == 256.0
    her = Params()
    her.samples_per_insert, her.min_replay_size = 256.0, 1000
    her.her_strategy, her.her_goals_per_transition = "future", 4
    settings = her.replay_settings(50_000)
    assert her.rows_per_env_step == 5
    assert settings.samples_per_insert == pytest.approx(256.0 / 5)
    assert settings.min_size == 5000 and settings.capacity == 50_000
    assert her.validate() == []
    her.her_strategy = "final"
    assert any("her_goals_per_transition=4" in p for p in her.validate())


def test_the_launch_sizes_the_buffer_in_rows():
    from tfagents_system.launch import checks

    params = Params()
    params.replay_capacity, params.min_replay_size = 10_000, 1000
    assert checks.check_capacity(params, 50, "here") == 10_000
    params.her_strategy = "future"
    assert checks.check_capacity(params, 50, "here") == 50_000
    params.n_episodes_in_buffer = 100
    assert checks.replay_capacity(params, 50) == 100 * 50 * 5
    params.n_episodes_in_buffer, params.replay_capacity = None, 900
    with pytest.raises(checks.CheckError, match="min_replay_size=1000"):
        checks.check_capacity(params, 50, "here")
