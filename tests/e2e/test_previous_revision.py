"""Experiments created by the revision before the architecture change
(tests/fixtures/previous_revision.tar.gz, described in previous_revision.md there)
resume under the current code with the real scripts: the evaluation command gives
that revision's returns for their latest checkpoint, and each launch resumes at its
checkpoint's train step, restores its replay memory (and demonstrations, prior
policy and n-step rows; the recurrent one its replay windows and the network
defaults it was created with), keeps its replay format record as it was, and
trains to completion."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from launch_helpers import REPO, launch_env, run_script, write_variables

from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.replay.memory import ReplayLog, read_rows

ARCHIVE = REPO / "tests" / "fixtures" / "previous_revision.tar.gz"
# name: (train step it was stopped at, target, learner log lines it must print)
CASES = {
    "ff": (300, 400, ("demonstrations: 96 rows from", "prior divergence")),
    "rnn": (346, 600, ("windows of 0+10 steps (burn-in + trained)",)),
}


def _unpack(workdir: Path) -> Path:
    """The archive's experiments and evaluations, unpacked under `workdir`."""
    fixtures = workdir / "fixtures"
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(fixtures, filter="data")
    return fixtures


def _copy(name: str, fixtures: Path, workdir: Path) -> ExperimentPaths:
    paths = ExperimentPaths(workdir / "logs" / name)
    shutil.copytree(fixtures / name, paths.root)
    return paths


def _evaluate(exp: Path, output: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tfagents_system.run", "--exp_dir", str(exp), "--no_video",
         "--num_episodes", "2", "--seed", "3", "--output", str(output)],
        capture_output=True, text=True, env=launch_env(), cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((output / C.EVAL_SUMMARY_FILE).read_text())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(CASES))
def test_an_experiment_of_the_previous_revision_resumes_and_completes(name, workdir):
    stopped_at, target, lines = CASES[name]
    fixtures = _unpack(workdir)
    paths = _copy(name, fixtures, workdir)
    expected = json.loads((fixtures / f"{name}_evaluation.json").read_text())
    got = _evaluate(paths.root, workdir / "evaluation")
    assert (got["checkpoint"], got["train_step"]) == (expected["checkpoint"], stopped_at)
    assert got["returns"] == pytest.approx(expected["returns"], rel=1e-6)
    record = paths.layout.read_text()
    row_size = ReplayLog.row_size_of(paths.replay_memory)
    logged = read_rows(paths.replay_memory, row_size, 10**9)[1]

    variables = write_variables(workdir / "vars.sh", SAC_PARAMS=str(paths.params),
                                SAC_CONFIG=str(paths.config), SAC_EXP_NAME=name,
                                SAC_NUM_COLLECT_WORKERS=1)
    result = run_script(variables, timeout=800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"resuming experiment {paths.root}" in result.stdout
    assert f"recorded in {paths.layout})" in result.stdout
    assert paths.layout.read_text() == record  # the record is read, never rewritten
    learner = paths.process_log(C.LEARNER).read_text()
    assert f"resumed at train step {stopped_at} of {target}" in learner
    restored = re.search(r"replay memory: (\d+) transitions restored \((\d+) stored", learner)
    assert restored and int(restored.group(2)) == logged > 0
    for line in lines:
        assert line in learner, line
    assert json.loads(paths.complete.read_text())["train_step"] == target
