"""Recurrent SAC end to end: the partially observed pendulum example, shrunk, trained by
the real scripts on replay windows, then evaluated by the evaluation CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from launch_helpers import REPO, run_script, write_params, write_variables

pytestmark = pytest.mark.e2e


def test_recurrent_example_trains_on_windows_and_evaluates(workdir):
    write_params(workdir / "params.py", num_iter=2, steps=60, ckpt=1, base="pendulum_recurrent",
                 extra="""
                 recurrent_sequence_length = 8
                 recurrent_burn_in = 2
                 batch_size = 8
                 """)  # the example's recurrent networks, with their defaults
    variables = write_variables(workdir / "vars.sh", SAC_NUM_COLLECT_WORKERS=1,
                                SAC_CONFIG=str(REPO / "config" / "pendulum_po.json"))
    result = run_script(variables)
    assert result.returncode == 0, result.stdout + result.stderr
    exp = workdir / "logs" / "tiny"
    record = json.loads((exp / "replay_layout.json").read_text())
    assert record["layout"] == "packed_blocks"
    assert record["sequence"] == {"length": 8, "burn_in": 2}
    logs = exp / "process_logs"
    learner = (logs / "learner.log").read_text()
    assert "windows of 2+8 steps" in learner and "training complete at train step 120" in learner
    worker = (logs / "worker_0.log").read_text()
    assert "windows of 2+8 steps (burn-in + trained)" in worker
    assert "collect policy: the exported TF policy" in worker  # an LSTM: not the numpy MLP
    # The evaluation CLI plays the LSTM policy (3 observed entries, state carried).
    out = workdir / "evaluation"
    evaluation = subprocess.run(
        [sys.executable, "-m", "tfagents_system.run", "--exp_dir", str(exp), "--no_video",
         "--num_episodes", "2", "--seed", "5", "--output", str(out)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert evaluation.returncode == 0, evaluation.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_step"] == 120 and len(summary["returns"]) == 2
    assert all(r >= 1 for r in summary["returns"])
