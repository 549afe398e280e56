"""Launch-time checks of the user's environment as launch.prepare runs them (no
training): a good env passes with its step limit recorded, an env without a step limit
gets a warning naming the fix, and a check failure leaves nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables

from tfagents_system.core import files
from tfagents_system.core.errors import CheckError
from tfagents_system.launch import console
from tfagents_system.launch import plan as launch

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
    assert not plan.inputs.warnings
    settings = files.read_json(plan.paths.settings)
    assert settings["max_episode_steps"] == 1000 and settings["replay_capacity"] == 1_000_000


def test_an_env_without_a_step_limit_gets_a_warning(tmp_path):
    (tmp_path / "params.py").write_text(NO_LIMIT)
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    (warning,) = plan.inputs.warnings
    assert "no step limit" in warning and "max_episode_steps" in warning


def test_a_failed_check_creates_no_experiment(tmp_path):
    (tmp_path / "params.py").write_text(NO_LIMIT + "    n_episodes_in_buffer = 3\n")
    with pytest.raises(CheckError, match="n_episodes_in_buffer=3 needs the env's step"):
        launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert not (tmp_path / "logs" / "tiny").exists()


def test_a_new_experiment_records_and_prints_its_layout_and_a_resume_checks_it(tmp_path):
    """The launch builds the agent, records the layout with the observation structure
    and says so; a resume whose env now gives another structure is refused at launch."""
    from launch_helpers import REPO

    (tmp_path / "config.json").write_text('{"counter_dtype": "int32"}')
    (tmp_path / "params.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / 'examples')!r})\n"
        "from dict_observation import TrainParams\n")
    variables = write_variables(tmp_path / "vars.sh", SAC_CONFIG=str(tmp_path / "config.json"))
    plan = launch.prepare(str(variables))
    assert plan.replay_line.startswith("experience items: packed_blocks (SacAgent on ")
    print(plan.replay_line)
    record = files.read_json(plan.paths.layout)
    assert {leaf["path"]: leaf["dtype"] for leaf in record["observation"]}["near_goal"] == "bool"
    again = launch.prepare(str(variables))
    assert again.replay_line == (f"experience items: packed_blocks ({record['reason']}; "
                                 f"recorded in {plan.paths.layout})")
    # The experiment's own config copy now builds the env with an int16 counter.
    plan.paths.config.write_text('{"counter_dtype": "int16"}')
    with pytest.raises(CheckError, match="the env's observation is now .*steps_left "
                       r"int16\[\].* the experiment was created with .*steps_left int32\[\]"):
        launch.prepare(str(variables))


def test_an_experiment_without_a_format_record_gets_it_once_at_its_next_launch(tmp_path):
    write_params(tmp_path / "params.py")
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    record = plan.paths.layout.read_text()
    plan.paths.layout.unlink()  # created before launches recorded it, never trained
    planned = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert planned.replay_line.endswith(f"derived now in {plan.paths.layout})")
    assert not plan.paths.layout.exists()  # written only by a launch holding the lock
    again, lock = console.prepared(str(write_variables(tmp_path / "vars.sh")))
    lock.close()
    assert again.replay_line.startswith("experience items: packed_blocks (")
    assert again.replay_line.endswith(f"derived now in {plan.paths.layout})")
    assert plan.paths.layout.read_text() == record  # what a new experiment records
    third = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert third.replay_line.endswith(f"recorded in {plan.paths.layout})")


def test_a_normalization_naming_no_leaf_stops_the_launch_in_one_line(tmp_path):
    from launch_helpers import REPO

    (tmp_path / "params.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / 'examples')!r})\n"
        "from dict_observation import TrainParams as Base\n\n\n"
        "class TrainParams(Base):\n    observation_normalization = {'speed': (0.0, 1.0)}\n")
    (tmp_path / "config.json").write_text("{}")  # no counter: the example sets no normalization
    variables = write_variables(tmp_path / "vars.sh", SAC_CONFIG=str(tmp_path / "config.json"))
    with pytest.raises(launch.BAD_INPUT) as error:
        launch.prepare(str(variables))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"params file {tmp_path / 'params.py'}")
    assert "observation_normalization names 'speed', which is no leaf" in message
    assert not (tmp_path / "logs" / "tiny").exists()
