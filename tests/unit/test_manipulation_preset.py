"""The manipulation preset: its variables files name files that exist, its params
validate on both shipped configs, and its env is one HER can relabel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfagents_system import gymnasium_bridge, hindsight
from tfagents_system.params import load_params

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def assigned(variables: Path) -> dict[str, str]:
    return dict(line.split("=", 1)[0:2] for line in variables.read_text().splitlines()
                if "=" in line and not line.lstrip().startswith("#"))


@pytest.mark.parametrize("task", ["panda_reach", "panda_push"])
def test_the_preset_trains_its_task_with_her(task):
    variables = assigned(EXAMPLES / f"{task}_variables.sh")
    params_file = EXAMPLES / variables["SAC_PARAMS"].split()[0]
    config_file = (EXAMPLES / variables["SAC_CONFIG"].split()[0]).resolve()
    assert params_file.name == "manipulation.py" and config_file.is_file()
    params = load_params(params_file, json.loads(config_file.read_text()))
    assert params.validate() == []
    assert params.her_strategy == "future" and params.rows_per_env_step == 5
    env = params.env_ctor(seed=0)
    try:
        spec = env.observation_spec()
        assert hindsight.env_problem(spec, gymnasium_bridge.goal_env(env)) is None
        # the time feature is the observation entry's last element
        assert spec["observation"].shape[0] == (7 if task == "panda_reach" else 19)
        assert float(env.reset().observation["observation"][-1]) == 1.0
    finally:
        env.close()
