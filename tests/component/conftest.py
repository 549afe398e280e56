"""A tiny trained InvertedPendulum experiment, shared by the evaluation tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tfagents_system import process, serial

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory) -> Path:
    """2 iterations of 100 train steps in serial mode (seconds), with a learner and a
    greedy policy checkpoint after each (policy_checkpoint_0000000100 and _0000000200)
    and a replay buffer of 20,000 transitions kept by the learner."""
    workdir = tmp_path_factory.mktemp("tiny_experiment")
    write_params(workdir / "params.py", num_iter=2, steps=100, ckpt=1,
                 extra="replay_capacity = 20_000\n")
    variables = write_variables(workdir / "vars.sh", SAC_EXP_NAME="tiny")
    process.setup_logging("tiny-experiment")
    assert serial.run_serial(str(variables), num_workers=1, stop=process.StopFlag()) == 0
    return workdir / "logs" / "tiny"


@pytest.fixture
def serial_launch(monkeypatch):
    """A serial-mode launch on this machine: no SLURM job or task id leaks in."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SAC_TASK_ID", raising=False)
    process.setup_logging("serial-test")
