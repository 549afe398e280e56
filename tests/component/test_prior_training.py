"""Prior-regularized SAC end to end in serial mode: a tiny pendulum experiment
regularized toward the final collect policy of another (conftest.py's tiny_experiment)
holds its own copy of the prior, its learner loads that copy and logs the divergence;
a prior that does not exist stops the launch in one line and creates nothing."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from tfagents_system import process, serial
from tfagents_system.agents import prior
from tfagents_system.core import constants as C
from tfagents_system.core import files
from tfagents_system.core.paths import ExperimentPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import one_error_line, tensorboard_tags
from parts import serial_experiment

pytestmark = pytest.mark.usefixtures("serial_launch")


@pytest.mark.timeout(300)
def test_a_prior_regularized_experiment_trains_on_its_copy(tiny_experiment, tmp_path,
                                                           monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    source = ExperimentPaths(tiny_experiment).final_policy(C.COLLECT_POLICY)
    relative = os.path.relpath(source, tmp_path)  # relative to the params file
    variables, paths = serial_experiment(tmp_path, "with_prior", f"prior_policy = {relative!r}\n")
    loaded = []
    real_load = prior.load
    monkeypatch.setattr(prior, "load", lambda directory, *args: (
        loaded.append(Path(directory)), real_load(directory, *args))[1])

    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0

    assert (paths.prior_policy / "saved_model.pb").is_file()
    settings = files.read_json(paths.settings)
    assert settings["hyperparameters"]["prior_policy"] == str(source.resolve())
    # The launch's agent (replay layout) loads the source; the learner, the copy.
    assert loaded == [source.resolve(), paths.prior_policy]
    assert C.M_PRIOR_DIVERGENCE in tensorboard_tags(paths.tensorboard(C.TRAIN_TB_DIR))
    lines = [r.getMessage() for r in caplog.records if r.name == C.LEARNER]
    assert any("train step 100/100" in m and ", prior divergence " in m for m in lines)


def test_a_missing_prior_stops_the_launch(tmp_path, capsys):
    variables, paths = serial_experiment(tmp_path, "with_prior",
                                         "prior_policy = 'no/such/policy'\n")
    line = one_error_line(capsys, serial.run_serial(str(variables), stop=process.StopFlag()))
    assert line == (f"error: params file {tmp_path / 'params.py'}: prior_policy "
                    f"{tmp_path / 'no/such/policy'} does not exist: point it at a SavedModel "
                    "policy, e.g. another experiment's policies/final/collect_policy")
    assert not paths.root.exists()
