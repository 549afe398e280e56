"""Demonstrations end to end in serial mode: episodes recorded from conftest.py's
tiny_experiment (`run --record`) seed a new experiment with 3-step returns and a
behaviour-cloning warm start: the launch stores their rows in the experiment, the
learner mixes them into its batches and logs the share and the BC loss; a resumed
learner loads the stored copy, even after the source file is gone; a file that does
not fit the env stops the launch in one line and creates nothing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from tfagents_system import demonstrations, process, run, serial
from tfagents_system.agents import prior
from tfagents_system.builder import env_specs
from tfagents_system.core import constants as C
from tfagents_system.core import files
from tfagents_system.params import load_params
from tfagents_system.replay import demo_store
from tfagents_system.replay.format import NStep, ReplayFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import one_error_line, tensorboard_tags
from parts import serial_experiment

pytestmark = pytest.mark.usefixtures("serial_launch")


@pytest.mark.timeout(300)
def test_demonstrations_seed_an_experiment_and_stay_with_it(tiny_experiment, tmp_path,
                                                            caplog):
    demo = tmp_path / "demo.npz"
    assert run.main(["--exp_dir", str(tiny_experiment), "--record", str(demo),
                     "--num_episodes", "2"]) == 0
    step_types = demonstrations.read_file(demo)["step_type"]
    transitions = int((step_types != 2).sum())  # one n-step row per transition
    variables, paths = serial_experiment(tmp_path, "with_demos", "demonstrations = ('demo.npz',)\n"
                                     "demo_ratio = 0.5\nbc_warm_start_steps = 20\n"
                                     "n_step = 3\n")
    caplog.set_level(logging.INFO)

    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0

    meta = files.read_json(paths.demonstrations / demo_store.META_FILE)
    assert meta["rows"] == transitions and meta["n_step"] == [3, 0.99]
    assert meta["files"] == [str(demo.resolve())]
    assert ReplayFormat.read(paths.layout).n_step == NStep(3, 0.99)
    lines = [r.getMessage() for r in caplog.records if r.name == C.LEARNER]
    assert sum("behaviour cloning warm start: 20 steps" in m for m in lines) == 1
    assert any(m.startswith(f"demonstrations: {transitions} rows from {demo.resolve()}")
               for m in lines)
    assert {C.M_DEMO_SHARE, C.M_BC_LOSS} <= tensorboard_tags(paths.tensorboard(C.TRAIN_TB_DIR))
    # The cloned policy alone, usable as another experiment's prior.
    bc_policy = paths.policy(C.BC_POLICY)
    specs = env_specs(load_params(paths.params, files.read_json(paths.config)))
    assert prior.check_policy(bc_policy, specs, "prior_policy") is None
    demo.unlink()  # a restarted learner needs only the experiment's own copy
    rows, _ = demo_store.load(paths.demonstrations, 4 + 2 * 5 + 1)  # pendulum: 5 obs, 1 act
    assert len(rows) == transitions and np.isfinite(rows).all()


def test_demonstrations_that_do_not_fit_the_env_stop_the_launch(tmp_path, capsys):
    recorder = demonstrations.Recorder(tmp_path / "wrong.npz")
    from tf_agents.trajectories import time_step as ts

    obs = np.zeros(5, np.float32)
    for step in (ts.restart(obs), ts.transition(obs, 1.0), ts.termination(obs, 1.0)):
        recorder.add(step, None if step.is_last() else np.zeros(2, np.float32))  # env: 1-D
    recorder.save()
    variables, paths = serial_experiment(tmp_path, "with_demos",
                                         "demonstrations = ('wrong.npz',)\n")
    line = one_error_line(capsys, serial.run_serial(str(variables), stop=process.StopFlag()))
    assert line.startswith(f"error: params file {tmp_path / 'params.py'}: demonstrations: "
                           f"{(tmp_path / 'wrong.npz').resolve()}")
    assert "action" in line
    assert not paths.root.exists()
