"""Launch-time checks of the user's environment as launch.prepare runs them (no
training): a good env passes with its step limit recorded, an env without a step limit
gets a warning naming the fix, and a check failure leaves nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables

from tfagents_system import checks, launch, runtime

NO_LIMIT = """
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase


class TrainParams(TrainParamsBase):
    num_iter = 1
    num_steps_per_iter = 10

    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=0)
"""


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SAC_TASK_ID", raising=False)


def test_a_good_env_passes_and_records_its_limit(tmp_path):
    write_params(tmp_path / "params.py")
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert not plan.warnings
    settings = runtime.read_json(plan.paths.settings)
    assert settings["max_episode_steps"] == 1000 and settings["replay_capacity"] == 1_000_000


def test_an_env_without_a_step_limit_gets_a_warning(tmp_path):
    (tmp_path / "params.py").write_text(NO_LIMIT)
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert len(plan.warnings) == 1
    assert "no step limit" in plan.warnings[0] and "max_episode_steps" in plan.warnings[0]


def test_a_failed_check_creates_no_experiment(tmp_path):
    (tmp_path / "params.py").write_text(NO_LIMIT + "    n_episodes_in_buffer = 3\n")
    with pytest.raises(checks.CheckError, match="n_episodes_in_buffer=3 needs the env's step"):
        launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert not (tmp_path / "logs" / "tiny").exists()
