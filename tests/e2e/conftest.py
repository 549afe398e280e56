"""A tiny finished experiment, trained once per session by the real scripts."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from launch_helpers import (
    kill_leftovers,
    run_script,
    start_script,
    write_params,
    write_variables,
)


@dataclass
class FinishedRun:
    workdir: Path
    exp: Path
    variables: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def tiny_finished(tmp_path_factory) -> FinishedRun:
    """3 iterations x 100 steps, 2 workers, on InvertedPendulumBullet."""
    workdir = tmp_path_factory.mktemp("tiny_finished")
    write_params(workdir / "params.py", num_iter=3, steps=100, ckpt=2)
    variables = write_variables(workdir / "vars.sh", SAC_NUM_COLLECT_WORKERS=2,
                                SAC_FINAL_VIDEO=1)
    try:
        result = run_script(variables)
    finally:
        leftovers = kill_leftovers(workdir)
    assert not leftovers, f"processes left behind: {leftovers}"
    assert result.returncode == 0, result.stdout + result.stderr
    return FinishedRun(workdir, workdir / "logs" / "tiny", variables, result)


@pytest.fixture
def workdir(tmp_path):
    """A test's directory; no process of its experiments may outlive the test."""
    yield tmp_path
    leftovers = kill_leftovers(tmp_path)
    assert not leftovers, f"processes left behind: {leftovers}"


@dataclass
class LongRun:
    proc: subprocess.Popen
    exp: Path
    log: Path


@pytest.fixture
def long_run(workdir):
    """A 5000-step tiny run started by the real script, to interrupt mid-way. Its learner
    is paced by collection (samples_per_insert), so it lasts minutes however fast it is."""
    write_params(workdir / "params.py", num_iter=50, steps=100, ckpt=100,
                 extra="samples_per_insert = 0.8\n")
    variables = write_variables(workdir / "vars.sh")
    proc = start_script(variables, workdir / "run.log")
    try:
        yield LongRun(proc, workdir / "logs" / "tiny", workdir / "run.log")
    finally:
        if proc.poll() is None:
            proc.kill()
