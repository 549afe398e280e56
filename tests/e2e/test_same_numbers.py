"""`./benchmarks/run.sh same_numbers --before <checkout>`, as a user runs it: against an
unchanged copy of the code the default path's numbers are equal to the last bit (the
probe is deterministic), and a changed default (the discount) is found and fails."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from launch_helpers import REPO, launch_env

pytestmark = pytest.mark.e2e


def _same_numbers(before, cwd):
    return subprocess.run([str(REPO / "benchmarks" / "run.sh"), "same_numbers", "--before",
                           str(before), "--steps", "3"], capture_output=True, text=True,
                          timeout=300, env=launch_env(), cwd=cwd)


def test_an_unchanged_copy_is_equal_and_a_changed_default_is_found(tmp_path):
    before = tmp_path / "before"
    shutil.copytree(REPO / "tfagents_system", before / "tfagents_system",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = _same_numbers(before, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    for part in ("losses", "variables", "sampled", "greedy"):
        assert f"{part}: equal to the last bit" in result.stdout
    params = before / "tfagents_system" / "params.py"
    text = params.read_text()
    assert "    discount: float = 0.99\n" in text
    params.write_text(text.replace("    discount: float = 0.99\n", "    discount: float = 0.9\n"))
    result = _same_numbers(before, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "losses: largest difference" in result.stdout
    assert "the default path's numbers changed" in result.stdout


def test_a_directory_that_is_not_a_checkout_is_one_line(tmp_path):
    result = _same_numbers(tmp_path, tmp_path)
    assert result.returncode == 2
    assert "not a checkout of this project" in result.stderr.strip().splitlines()[-1]
