"""Task metrics (success rate and the user's episode scalars, read from each episode's
final step info), the worker index and role given to env_ctor, and how the status
command shows them. No TensorFlow: fake envs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tfagents_system.builder import env_ctor_context
from tfagents_system.collection import LAST, Collector, EpisodeStats, TaskMetrics
from tfagents_system.core import constants as C
from tfagents_system.core import progress
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings, WorkerStatus
from tfagents_system.params import TrainParamsBase
from tfagents_system.tools import status


class _Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return None


class _Metered(_Params):
    def episode_metrics(self, info):
        return {"energy": info["energy"], "falls": info.get("falls")}


class _InfoEnv:
    """Stands for a PyEnvironment: `get_info()` is the last step's info."""

    def __init__(self, info=None):
        self.info = info

    def get_info(self):
        return self.info


class _NoInfoEnv:
    def get_info(self):
        raise NotImplementedError("No support of get_info for this environment.")


# --- the default hooks ---

@pytest.mark.parametrize("info, expected", [
    ({"is_success": 1.0}, True), ({"is_success": False}, False),
    ({"is_success": 0}, False), ({}, None), ({"success": True}, None),
    ((1, 2), None),  # not a mapping: a user PyEnvironment's own info
])
def test_default_success_is_the_final_infos_is_success(info, expected):
    assert _Params().episode_success(info) is expected


def test_no_metrics_by_default():
    assert _Params().episode_metrics({"is_success": True, "energy": 3.0}) == {}


# --- TaskMetrics ---

def test_means_count_only_the_episodes_that_report_a_name():
    metrics = TaskMetrics(_Metered())
    for info in ({"is_success": True, "energy": 2.0, "falls": 1},
                 {"is_success": False, "energy": 4.0},  # falls None: not counted
                 {"energy": 6.0, "falls": 3}):  # no is_success: not counted
        metrics.record(_InfoEnv(info))
    assert metrics.means() == {C.SUCCESS_RATE: 0.5, "energy": 4.0, "falls": 2.0}


def test_record_returns_the_episodes_values():
    values = TaskMetrics(_Metered()).record(_InfoEnv({"is_success": 1, "energy": 1.5}))
    assert values == {"energy": 1.5, C.SUCCESS_RATE: 1.0}


def test_means_over_a_window_of_the_last_episodes():
    metrics = TaskMetrics(_Params(), window=3)
    for success in (True, True, True, False, False):
        metrics.record(_InfoEnv({"is_success": success}))
    assert metrics.means() == {C.SUCCESS_RATE: pytest.approx(1 / 3)}


@pytest.mark.parametrize("env", [_NoInfoEnv(), _InfoEnv(None)])
def test_an_env_without_info_reports_nothing(env):
    metrics = TaskMetrics(_Metered())  # its hook would raise on None
    assert metrics.record(env) == {}
    assert metrics.means() == {} and metrics.new_means() == {}


def test_new_means_only_after_new_reports():
    metrics = TaskMetrics(_Params())
    metrics.record(_InfoEnv({"is_success": True}))
    assert metrics.new_means() == {C.SUCCESS_RATE: 1.0}
    assert metrics.new_means() == {}
    metrics.record(_InfoEnv({}))  # an episode without success: nothing new
    assert metrics.new_means() == {}
    metrics.record(_InfoEnv({"is_success": False}))
    assert metrics.new_means() == {C.SUCCESS_RATE: 0.5}
    metrics.clear()
    assert metrics.means() == {} and metrics.new_means() == {}


@pytest.mark.parametrize("returned, message", [
    ({"return": 1.0}, "'return', which the framework logs itself: rename it"),
    ({C.SUCCESS_RATE: 1.0}, "TrainParams.episode_success"),
    ({"bad name": 1.0}, "the metric name 'bad name': use letters, digits"),
    ({3: 1.0}, "the metric name 3"),
    ({"energy": "high"}, "'energy': 'high', not a number"),
    ([("energy", 1.0)], "returned list: return a dict"),
])
def test_bad_episode_metrics_name_the_hook_and_the_fix(returned, message):
    class Params(_Params):
        def episode_metrics(self, info):
            return returned

    with pytest.raises((ValueError, TypeError), match="TrainParams.episode_metrics") as err:
        TaskMetrics(Params()).record(_InfoEnv({}))
    assert message in str(err.value)


def test_a_hook_that_raises_ends_the_run_as_a_fatal_error():
    from tfagents_system.core.errors import FatalError

    class Params(_Params):
        def episode_success(self, info):
            return info["reached"]  # not in this env's info

    with pytest.raises(FatalError, match="episode_success or episode_metrics.*raised "
                                         "KeyError: 'reached'"):
        TaskMetrics(Params()).record(_InfoEnv({}))

    class Listing(_Params):
        def episode_metrics(self, info):
            return [1.0]

    with pytest.raises(FatalError):  # a bad return value too: no worker restart loop
        TaskMetrics(Listing()).record(_InfoEnv({}))


# --- the Collector judges an episode at its end, before the reset ---

class _EpisodicEnv:
    """3-step episodes; its info says the step within the episode (None after reset)."""

    def __init__(self):
        self.t, self.info = 0, None

    def reset(self):
        self.t, self.info = 0, None
        return SimpleNamespace(step_type=0)

    def step(self, action):
        self.t += 1
        self.info = {"is_success": self.t == 3, "t": self.t}
        return SimpleNamespace(step_type=LAST if self.t == 3 else 1, reward=1.0)

    def get_info(self):
        return self.info


class _TimeStepParams(_Params):
    def episode_metrics(self, info):
        return {"t": info["t"]}


def test_the_collector_judges_each_episode_on_its_final_info():
    envs = [_EpisodicEnv(), _EpisodicEnv()]
    metrics = TaskMetrics(_TimeStepParams())
    collector = Collector(envs, EpisodeStats(2), lambda: None, lambda: False, metrics)
    collector.writers = [SimpleNamespace(add=lambda *a: None)] * 2
    collector.run(lambda time_steps: [SimpleNamespace(action=0)] * 2, episodes=4)
    assert metrics.means() == {C.SUCCESS_RATE: 1.0, "t": 3.0}
    assert len(metrics._values["t"]) == 4


# --- env_ctor's worker_index and env_role ---

def _context(env_ctor, args=(), worker_index=3, kind="eval"):
    return env_ctor_context(env_ctor, 7, args, kind, worker_index)


def test_env_ctor_gets_the_worker_index_and_role_it_names():
    def named(seed=None, worker_index=None, env_role=None):
        pass

    def keyword_only(seed=None, *args, env_role=None, **kwargs):
        pass

    assert _context(named) == {"worker_index": 3, "env_role": "eval"}
    assert _context(named, worker_index=None, kind="collect") == {
        "worker_index": None, "env_role": "collect"}
    assert _context(keyword_only) == {"env_role": "eval"}


def test_env_ctors_that_do_not_name_them_are_called_as_before():
    def catch_all(seed=None, *args, **kwargs):  # forwards kwargs to gym: must get nothing
        pass

    def own_role(seed=None, role="collect"):  # a user's own `role`, from *_env_args_kwargs
        pass

    def positional(seed, worker_index, env_role=None):  # filled by *_env_args_kwargs' args
        pass

    assert _context(catch_all) == {}
    assert _context(own_role) == {}
    assert _context(positional, args=(5,)) == {"env_role": "eval"}
    assert _context(_Params().env_ctor) == {}  # a bound method: self is not a parameter


# --- the status command ---

def _worker_status(paths, index, **fields):
    WorkerStatus(pid=1, env_steps=10, **fields).write(paths.status_file(C.worker_name(index)))


def _settings(paths):
    ExperimentSettings("exp", "now", "config.json", "params.py", 100, {}, {}, None,
                       1000).write(paths.settings)


def test_status_shows_the_success_rate_and_task_metrics(tmp_path):
    paths = ExperimentPaths(tmp_path)
    _settings(paths)
    _worker_status(paths, 0, eval_return=1.0, eval_train_step=50,
                   eval_metrics={C.SUCCESS_RATE: 0.5, "energy": 2.0},
                   collect_metrics={C.SUCCESS_RATE: 0.25, "energy": 1.0})
    _worker_status(paths, 1, eval_return=3.0, eval_train_step=50,
                   eval_metrics={C.SUCCESS_RATE: 1.0, "energy": 4.0},
                   collect_metrics={"energy": 3.0})
    _worker_status(paths, 2, eval_return=9.0, eval_train_step=40,  # an older evaluation
                   eval_metrics={C.SUCCESS_RATE: 0.0})
    snap = progress.progress(paths, 3)
    assert snap.eval_success_rate == 0.75 and snap.collect_success_rate == 0.25
    assert snap.eval_metrics == {"energy": 3.0}
    assert snap.collect_metrics == {"energy": 2.0}
    text = status.render(tmp_path)
    assert "train step      0 / 100" in text
    assert "success rate    75% eval / 25% collect" in text
    assert "eval metrics    energy 3" in text and "collect metrics energy 2" in text


def test_status_without_task_metrics_is_unchanged(tmp_path):
    paths = ExperimentPaths(tmp_path)
    _settings(paths)
    _worker_status(paths, 0, eval_return=1.0, eval_train_step=50)
    snap = progress.progress(paths, 1)
    assert progress.success_text(snap) is None
    assert "success" not in status.render(tmp_path) and "metrics" not in status.render(tmp_path)
