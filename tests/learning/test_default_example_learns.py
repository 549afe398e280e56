"""Slow: the default example, launched exactly as a user would, learns.

It runs ./run_script.sh with the shipped params and config (only the logs
directory differs) and reads the final greedy evaluation of every worker from
TensorBoard. Target: mean return >= 900 of 1000, within 15 minutes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import REPO, eval_returns, kill_leftovers, run_script  # noqa: E402

pytestmark = pytest.mark.slow


def test_default_example_reaches_900(tmp_path):
    variables = tmp_path / "vars.sh"
    text = (REPO / "training_variables.sh").read_text()
    text = text.replace("SAC_PARAMS=examples/", f"SAC_PARAMS={REPO}/examples/")
    text = text.replace("SAC_CONFIG=config/", f"SAC_CONFIG={REPO}/config/")
    text = text.replace("SAC_LOGS_DIR=logs", f"SAC_LOGS_DIR={tmp_path}/logs")
    variables.write_text(text)
    start = time.monotonic()
    try:
        result = run_script(variables, timeout=15 * 60)
    finally:
        leftovers = kill_leftovers(tmp_path)
    minutes = (time.monotonic() - start) / 60
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not leftovers
    evals = eval_returns(tmp_path / "logs" / "default")
    final = [curve[-1][1] for curve in evals.values()]
    mean_final = sum(final) / len(final)
    print(f"\ndefault example: final greedy eval return {mean_final:.1f} "
          f"(per worker {final}) in {minutes:.1f} min; curves {evals}")
    assert mean_final >= 900, evals
    assert minutes < 15
