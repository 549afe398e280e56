"""The pixels preset: its variables files name files that exist, its params validate
on both shipped dm_control configs, and its budget is DrQ's 100k env steps at each
config's action repeat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfagents_system.envs import EnvError
from tfagents_system.params import load_params

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def assigned(variables: Path) -> dict[str, str]:
    return dict(line.split("=", 1)[0:2] for line in variables.read_text().splitlines()
                if "=" in line and not line.lstrip().startswith("#"))


@pytest.mark.parametrize("task, repeat, num_iter", [("dmc_cartpole_swingup", 8, 10),
                                                    ("dmc_cheetah_run", 4, 20)])
def test_the_preset_trains_100k_env_steps_of_its_task(task, repeat, num_iter):
    variables = assigned(EXAMPLES / f"{task}_variables.sh")
    params_file = EXAMPLES / variables["SAC_PARAMS"].split()[0]
    config_file = (EXAMPLES / variables["SAC_CONFIG"].split()[0]).resolve()
    assert params_file.name == "pixels.py"
    config = json.loads(config_file.read_text())
    assert config["pixels"]["action_repeat"] == repeat
    params = load_params(params_file, config)
    assert params.validate() == []
    assert params.num_iter == num_iter
    assert params.num_iter * params.num_steps_per_iter * repeat == 100_000


def test_a_sweep_override_of_the_budget_wins():
    config = json.loads((REPO / "config/dmc_cheetah_run.json").read_text())
    params = load_params(EXAMPLES / "pixels.py", config, overrides={"num_iter": 3})
    assert params.num_iter == 3


def test_a_bad_pixels_object_loads_and_the_env_check_names_it():
    # the budget does not crash on a malformed "pixels"; building the env (which the
    # launch does before any program starts) names it in one line
    params = load_params(EXAMPLES / "pixels.py",
                         {"env_id": "dm_control/cheetah-run", "pixels": ["size", 84]})
    with pytest.raises(EnvError, match='config "pixels"'):
        params.env_ctor(seed=0)


def test_a_subclass_keeps_its_own_budget(tmp_path):
    """A params file that subclasses the preset and sets num_iter (the e2e pixel test's
    does) trains that many iterations, not the preset's 100k env steps."""
    params_file = tmp_path / "params.py"
    params_file.write_text(f"import sys\nsys.path.insert(0, {str(EXAMPLES)!r})\n"
                           "from pixels import TrainParams as Base\n\n\n"
                           "class TrainParams(Base):\n    num_iter = 6\n")
    config = json.loads((REPO / "config/dmc_cheetah_run.json").read_text())
    assert load_params(params_file, config).num_iter == 6
