"""Fine-tuning's pure parts (tfagents_system.finetune): where the source comes from, the
parts asked for, the new hyperparameters' validation, the launch's messages for a
source that is no experiment or has no such checkpoint, and reading another
experiment's replay log without changing it. No agent is built here."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tfagents_system import finetune
from tfagents_system.core.errors import CheckError
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay.memory import ReplayLog, read_rows
from tfagents_system.settings import load_training_variables


class _Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return None


def _params(**values) -> _Params:
    params = _Params()
    for name, value in values.items():
        setattr(params, name, value)
    return params


def test_the_variable_wins_and_a_params_path_is_relative_to_the_params_file(tmp_path):
    params_file = tmp_path / "conf" / "params.py"
    params = _params(init_from="../logs/src")
    assert finetune.requested_source(params, None, params_file) == (tmp_path / "logs/src")
    assert finetune.requested_source(params, tmp_path / "other", params_file) == (
        tmp_path / "other")
    assert finetune.requested_source(_params(), None, params_file) is None


def test_sac_init_from_is_relative_to_the_variables_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "vars.sh"
    path.write_text("SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\n"
                    "SAC_INIT_FROM=../logs/pendulum\n")
    assert load_training_variables(path).init_from == tmp_path / "sub" / "../logs/pendulum"
    path.write_text("SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\n")
    assert load_training_variables(path).init_from is None


def test_the_networks_always_come_and_the_rest_on_request():
    assert finetune.requested_parts(_params()) == ("networks",)
    assert finetune.requested_parts(_params(init_from_alpha=True, init_from_replay=True)) == (
        "networks", "alpha", "replay")


def test_bad_fine_tuning_hyperparameters_are_named():
    problems = " ".join(_params(init_from="", init_from_step=-1, init_from_optimizers=1,
                                init_from_replay="yes").validate())
    for named in ("init_from=''", "init_from_step=-1", "init_from_optimizers=1",
                  "init_from_replay='yes'"):
        assert named in problems
    assert not _params(init_from="logs/a", init_from_step=0).validate()


def _experiment(root: Path, steps=()) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    (root / "settings.json").write_text("{}")
    for step in steps:
        (root / "checkpoints" / f"ckpt-{step}.index").write_text("")
    return root


@pytest.mark.parametrize("make, step, message", [
    (lambda root: root, None, "does not exist: it is not an experiment directory"),
    (lambda root: root.mkdir() or root, None, "holds no settings.json: it is not an experiment"),
    (lambda root: _experiment(root), None, "has no learner checkpoint in"),
    (lambda root: _experiment(root, (100, 200)), 150,
     "has no checkpoint at train step 150 (init_from_step); available: 100, 200"),
    (lambda root: _experiment(root, (100,)), None,
     "its checkpoint at train step 100 cannot be read"),
])
def test_a_source_without_that_checkpoint_is_named_with_the_fix(tmp_path, make, step, message):
    source = make(tmp_path / "src")
    with pytest.raises(CheckError) as info:
        finetune.choose_step(source, step, "params file p.py: init_from")
    text = str(info.value)
    assert text.startswith(f"params file p.py: init_from {source}") and message in text
    assert "\n" not in text


def _digest(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_another_experiments_log_is_read_without_changing_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ReplayLog, "SEGMENT_ROWS", 4)
    log = ReplayLog(tmp_path, row_size=3, capacity=100)
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    log.append(rows[:5], 0)  # segments of rows 0-4 and 5-9
    log.append(rows[5:], 5)
    log.close()
    last = max(tmp_path.glob("rows_*.f32"))
    with open(last, "ab") as fh:
        fh.write(b"\x00" * 5)  # a torn last row, as after a kill mid-write
    before = _digest(tmp_path)
    got, total = read_rows(tmp_path, row_size=3, limit=7)
    np.testing.assert_array_equal(got, rows[3:])
    assert total == 10
    np.testing.assert_array_equal(read_rows(tmp_path, 3, 100)[0], rows)
    assert _digest(tmp_path) == before  # the torn row is left out, not cut from the file
    assert json.loads((tmp_path / "meta.json").read_text()) == {"row_size": 3}


@pytest.mark.parametrize("source_window,recurrent", [((20, 0), False), (None, True),
                                                      ((10, 5), True)])
def test_replay_rows_import_only_between_the_same_windows(tmp_path, source_window, recurrent):
    from tfagents_system.core.paths import ExperimentPaths
    from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat

    record = {"layout": "packed_blocks", "reason": "test"}
    if source_window is not None:
        record["sequence"] = {"length": source_window[0], "burn_in": source_window[1]}
    ExperimentPaths(tmp_path).layout.write_text(json.dumps(record))
    params = _params(recurrent=recurrent, recurrent_sequence_length=20, recurrent_burn_in=0)
    ours = ReplayFormat(LAYOUT_BLOCKS, window=params.window, n_step=params.n_step_returns)
    theirs = ReplayFormat.read(ExperimentPaths(tmp_path).layout)
    held, asked = (re.escape(f.rows() or " of one-step") for f in (theirs, ours))
    with pytest.raises(CheckError, match=f"holds rows{held}.*ask for rows{asked}"):
        finetune.replay_rows(tmp_path, ours, 1000, "init_from")
