"""The dict-observation example through ./run_script.sh: a tiny run finishes on the
packed layout the launcher printed and recorded (with the observation's structure),
the workers run the numpy policy; an int64 leaf is refused at launch in one line."""

from __future__ import annotations

import json

import pytest
from launch_helpers import (
    REPO,
    kill_leftovers,
    programs_of,
    run_script,
    write_params,
    write_variables,
)

pytestmark = pytest.mark.e2e

def _experiment(tmp_path, config: dict):
    write_params(tmp_path / "params.py", num_iter=2, steps=100, ckpt=1, base="dict_observation",
                 extra="eval_period_itrs = 1\n")
    (tmp_path / "config.json").write_text(json.dumps(config))
    return write_variables(tmp_path / "vars.sh", SAC_CONFIG=str(tmp_path / "config.json"),
                           SAC_NUM_COLLECT_WORKERS=1)


def test_the_dict_example_trains_on_the_packed_layout_it_printed(tmp_path):
    shipped = json.loads((REPO / "config" / "dict_observation.json").read_text())
    assert shipped["counter_dtype"] == "int32"
    variables = _experiment(tmp_path, shipped)
    try:
        result = run_script(variables, timeout=600)
    finally:
        leftovers = kill_leftovers(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not leftovers
    exp = tmp_path / "logs" / "tiny"
    printed = [line for line in result.stdout.splitlines()
               if line.startswith("experience items: ")]
    assert len(printed) == 1, result.stdout
    assert printed[0].startswith("experience items: packed_blocks (SacAgent on float32 "
                                 "transitions; the learner keeps the buffer (")
    assert "chosen now; building the agent took" in printed[0]
    record = json.loads((exp / "replay_layout.json").read_text())
    assert record["layout"] == "packed_blocks" and record["reason"] in printed[0]
    assert record["observation"] == [
        {"path": "goal", "shape": [2], "dtype": "float32"},
        {"path": "near_goal", "shape": [], "dtype": "bool"},
        {"path": "position", "shape": [2], "dtype": "float32"},
        {"path": "steps_left", "shape": [], "dtype": "int32"},
        {"path": "velocity", "shape": [2], "dtype": "float32"},
    ]
    assert (exp / "TRAINING_COMPLETE.json").is_file()
    worker_log = (exp / "process_logs" / "worker_0.log").read_text()
    assert "collect policy: the SAC actor network in numpy" in worker_log
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert "experience items: packed_blocks layout" in learner_log
    meta = json.loads((exp / "replay_memory" / "meta.json").read_text())
    assert meta["row_size"] == 4 + 2 * (2 + 1 + 2 + 1 + 2) + 2


def test_an_int64_leaf_is_refused_at_launch_in_one_line(tmp_path):
    variables = _experiment(tmp_path, {"episode_steps": 50, "counter_dtype": "int64"})
    result = run_script(variables, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith("error: params file ")
    assert "observation leaf 'steps_left' is int64" in errors[0]
    assert "cast that leaf in env_ctor to float32, or to int32" in errors[0]
    assert not (tmp_path / "logs" / "tiny").exists()
    assert not programs_of(tmp_path / "logs" / "tiny")
