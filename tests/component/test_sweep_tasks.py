"""Array tasks and sweep variants as the launcher prepares them (no training).

The same code path runs for a SLURM array task (SLURM_ARRAY_TASK_ID) and on a
workstation (SAC_TASK_ID): each task gets its own experiment directory, seed
and recorded variant, and a resumed task keeps the variant it started with.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables

from tfagents_system.core import files
from tfagents_system.experiment import load_experiment
from tfagents_system.launch import plan as launch
from tfagents_system.params import ParamsError
from tfagents_system.sweep import SweepError


@pytest.fixture
def sweep_vars(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    write_params(tmp_path / "params.py", extra="seed = 10")
    (tmp_path / "sweep.json").write_text(json.dumps({
        "grid": {"params.target_update_tau": [0.01, 0.03],
                 "config.max_episode_steps": [50, 80]},
        "seeds": [1, 2]}))
    return write_variables(tmp_path / "vars.sh", SAC_SWEEP="sweep.json")


def test_array_task_gets_its_directory_variant_and_seed(sweep_vars, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    plan = launch.prepare(str(sweep_vars))
    exp = tmp_path / "logs" / "tiny_task_3"
    assert plan.paths.root == exp
    variant = files.read_json(exp / "variant.json")
    assert variant["task_id"] == 3
    assert variant["params_overrides"] == {"target_update_tau": 0.01, "seed": 2}
    assert variant["config_overrides"] == {"max_episode_steps": 80}
    assert variant["sweep_file"] == str(tmp_path / "sweep.json")
    assert files.read_json(exp / "config.json")["max_episode_steps"] == 80
    loaded = load_experiment(exp)
    assert (loaded.params.seed, loaded.params.target_update_tau) == (2, 0.01)
    assert loaded.settings.max_episode_steps == 80 and loaded.settings.exp_name == "tiny_task_3"

    # SAC_TASK_ID (a workstation) picks a variant the same way.
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    monkeypatch.setenv("SAC_TASK_ID", "4")
    other = launch.prepare(str(sweep_vars))
    assert other.paths.root.name == "tiny_task_4"
    assert load_experiment(other.paths.root).params.target_update_tau == 0.03


def test_resumed_task_keeps_its_recorded_variant(sweep_vars, tmp_path, monkeypatch):
    monkeypatch.setenv("SAC_TASK_ID", "0")
    launch.prepare(str(sweep_vars))
    # The sweep file changes between submissions: the experiment keeps its own copy.
    (tmp_path / "sweep.json").write_text(json.dumps({"grid": {"params.target_update_tau": [
        0.5]}, "seeds": [1]}))
    plan = launch.prepare(str(sweep_vars))
    assert plan.resuming and plan.params.target_update_tau == 0.01 and plan.params.seed == 1
    assert plan.params.env_config["max_episode_steps"] == 50
    assert not plan.inputs.notes  # the config file itself did not change
    # Even without the sweep file (deleted, or a shorter grid) the task resumes.
    (tmp_path / "sweep.json").unlink()
    assert launch.prepare(str(sweep_vars)).params.target_update_tau == 0.01


def test_task_without_sweep_changes_only_the_seed(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SAC_TASK_ID", "5")
    write_params(tmp_path / "params.py", extra="seed = 10")
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh")))
    assert plan.paths.root.name == "tiny_task_5" and plan.params.seed == 15
    assert files.read_json(plan.paths.variant)["params_overrides"] == {"seed": 15}
    assert (plan.paths.config.read_bytes()
            == Path(files.read_json(plan.paths.settings)["source_config"]).read_bytes())


def test_bad_override_names_the_sweep_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SAC_TASK_ID", "0")
    write_params(tmp_path / "params.py")
    (tmp_path / "s.json").write_text('{"grid": {"params.learning_rate": [0.1]}}')
    with pytest.raises(ParamsError, match=r"sweep file .*s.json: params.learning_rate is not"):
        launch.prepare(str(write_variables(tmp_path / "vars.sh", SAC_SWEEP="s.json")))
    assert not (tmp_path / "logs" / "tiny_task_0").exists()


@pytest.mark.parametrize("key", ["config.horizen", "config.domain_randomisation",
                                 "config.curriculum_x.iters"])
def test_a_sweep_key_naming_no_config_key_is_refused(tmp_path, monkeypatch, key):
    """A typo in a sweep's config key used to train the base config silently."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SAC_TASK_ID", "0")
    write_params(tmp_path / "params.py")
    (tmp_path / "sweep.json").write_text(json.dumps({"grid": {key: [1, 2]}}))
    variables = write_variables(tmp_path / "vars.sh", SAC_SWEEP="sweep.json")
    with pytest.raises(SweepError) as err:
        launch.prepare(str(variables))
    message = str(err.value)
    assert str(tmp_path / "sweep.json") in message and f"{key} names no key" in message
    assert "env_id" in message  # the keys it could have meant
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


def test_sweep_keys_the_framework_reads_need_not_be_in_the_config(tmp_path, monkeypatch):
    """config.domain_randomization, config.gym_kwargs.<anything>: known to the framework."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SAC_TASK_ID", "1")
    write_params(tmp_path / "params.py")
    (tmp_path / "sweep.json").write_text(json.dumps({"grid": {
        "config.domain_randomization": [False, True], "config.max_episode_steps": [40]}}))
    plan = launch.prepare(str(write_variables(tmp_path / "vars.sh", SAC_SWEEP="sweep.json")))
    assert plan.params.env_config["domain_randomization"] is True
