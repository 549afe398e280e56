"""Task metrics end to end, in serial mode (the real replay server, learner and two
workers as threads): an env reporting `is_success` and a custom scalar in its step info
gets collect/ and eval/success_rate and collect/ and eval/<name> in TensorBoard, the
workers' status files and the status command; tfagents_system.run's summary.json holds
them; the plot draws them; env_ctor is told each env's worker index and role."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tfagents_system import process, serial
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.tools import evaluation, status
from tfagents_system.tools import plots as plot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import TINY_BASE, write_variables

LIMIT = 10

PARAMS = TINY_BASE + f'''
import json

import gym

from tfagents_system.envs import load_gym_env

LIMIT = {LIMIT}


class Reporting(gym.Wrapper):
    """Every step's info has `is_success` and `steps` (so far). Success is true only at
    the episode's final step: always for a collect env, in odd episodes for an eval env."""

    def __init__(self, env, role):
        super().__init__(env)
        self.role, self.episodes, self.t = role, 0, 0

    def reset(self, **kwargs):
        self.episodes, self.t = self.episodes + 1, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, done, info = self.env.step(action)
        self.t += 1
        success = self.t == LIMIT and (self.role == "collect" or self.episodes % 2 == 1)
        return obs, reward, done, dict(info, is_success=success, steps=self.t)


class TrainParams(TinyParams):  # the learner waits for collection: collect rounds happen
    num_iter = 3
    num_steps_per_iter = 50
    n_buffer_init_episodes = 8
    n_eval_episodes = 2
    eval_period_itrs = 2
    checkpoint_period_itrs = 3

    def env_ctor(self, seed=None, worker_index=None, env_role=None):
        with open(self.env_config["record_file"], "a") as record:
            record.write(json.dumps([worker_index, env_role]) + "\\n")
        return load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=LIMIT,
                            gym_env_wrappers=(lambda env: Reporting(env, env_role),))

    def episode_metrics(self, info):
        return {{"steps": info["steps"], "absent": None}}
'''


@pytest.fixture(autouse=True)
def _logging():
    process.setup_logging("task-metrics-test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-worker serial run of the reporting env: (experiment paths, record)."""
    tmp = tmp_path_factory.mktemp("task_metrics")
    record = tmp / "env_ctor_calls.jsonl"
    (tmp / "params.py").write_text(PARAMS)
    (tmp / "config.json").write_text(json.dumps({"record_file": str(record)}))
    variables = write_variables(tmp / "vars.sh", SAC_EXP_NAME="metrics",
                                SAC_CONFIG=str(tmp / "config.json"))
    process.setup_logging("task-metrics-test")
    assert serial.run_serial(str(variables), num_workers=2, stop=process.StopFlag()) == 0
    return ExperimentPaths(tmp / "logs" / "metrics"), record


def _calls(record: Path) -> set[tuple]:
    return {tuple(json.loads(line)) for line in record.read_text().splitlines()}


@pytest.mark.timeout(300)
def test_success_rate_and_metrics_reach_tensorboard_and_status(trained):
    paths, record = trained
    # The launch checks and the learner build envs outside any worker; each worker its own.
    assert _calls(record) == {(None, "collect"), (None, "eval"), (0, "collect"), (0, "eval"),
                              (1, "collect"), (1, "eval")}
    curves = plot.load_experiment_curves(paths.root)
    for worker in ("worker_0", "worker_1"):
        evals = curves.eval[worker]
        success = evals[C.M_EVAL_SUCCESS_RATE]
        assert list(success.steps) == list(evals[C.M_EVAL_RETURN].steps)  # every evaluation
        assert len(success.values) >= 2 and set(success.values) == {0.5}
        assert set(evals[C.M_EVAL_METRIC_PREFIX + "steps"].values) == {LIMIT}
        collect = curves.collect[worker]
        assert len(collect[C.M_COLLECT_SUCCESS_RATE].values) > 0
        assert set(collect[C.M_COLLECT_SUCCESS_RATE].values) == {1.0}
        assert set(collect[C.M_COLLECT_METRIC_PREFIX + "steps"].values) == {LIMIT}
        assert C.M_COLLECT_METRIC_PREFIX + "absent" not in collect
        worker_status = json.loads(paths.status_file(worker).read_text())
        assert worker_status["eval_metrics"] == {C.SUCCESS_RATE: 0.5, "steps": LIMIT}
        assert worker_status["collect_metrics"] == {C.SUCCESS_RATE: 1.0, "steps": LIMIT}
    text = status.render(paths.root)
    assert "success rate    50% eval / 100% collect" in text
    assert "eval metrics    steps 10" in text
    assert plot.has_success(curves)
    assert plot.plot_experiments([paths.root], paths.root / "curves.png").is_file()


@pytest.mark.timeout(120)
def test_the_evaluation_cli_reports_the_success_rate(trained, capsys):
    paths, record = trained
    policy = evaluation.single_policy(paths.root, evaluation.find_checkpoint(paths.root, None))
    summary = evaluation.evaluate(policy, num_episodes=3, seed=0, output=None, video=False,
                                  fps=30, frame_size=(320, 240), progress=False)
    assert summary.success_rate == pytest.approx(2 / 3)  # episodes 1 and 3 of 3
    assert summary.metrics == {"steps": LIMIT}
    stored = json.loads((paths.evaluation(summary.checkpoint, 0)
                         / C.EVAL_SUMMARY_FILE).read_text())
    assert stored["success_rate"] == pytest.approx(2 / 3)
    assert stored["metrics"] == {"steps": LIMIT}
    assert "success rate 67%" in capsys.readouterr().out
    assert json.loads(record.read_text().splitlines()[-1]) == [None, "eval"]
