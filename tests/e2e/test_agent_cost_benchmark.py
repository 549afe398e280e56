"""`./benchmarks/run.sh agent_cost`, as a user runs it (tiny budget): every variant asked
for is built from the locomotion preset as the learning benchmark launches it, trained
on the same transitions, and gets a row of the table. Speed is not asserted."""

from __future__ import annotations

import re
import subprocess

import pytest
from launch_helpers import REPO, launch_env

pytestmark = pytest.mark.e2e

ROW = re.compile(r"^\| (?P<variant>\w+) \| (?P<rate>\d+\.\d) \| (?P<cost>\d+\.\d)x \|$",
                 re.MULTILINE)


def _agent_cost(tmp_path, *args):
    return subprocess.run([str(REPO / "benchmarks" / "run.sh"), "agent_cost", "--rows", "300",
                           "--steps", "2", "--rounds", "1", "--threads", "1", *args],
                          capture_output=True, text=True, timeout=300, env=launch_env(),
                          cwd=tmp_path)


def test_every_variant_gets_a_row_against_the_first(tmp_path):
    output = tmp_path / "cost.md"
    result = _agent_cost(tmp_path, "--variants", "sac", "crossq_w256", "sac_gsde",
                         "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {m["variant"]: m for m in ROW.finditer(output.read_text())}
    assert list(rows) == ["sac", "crossq_w256", "sac_gsde"]
    assert rows["sac"]["cost"] == "1.0"
    assert all(float(m["rate"]) > 0 for m in rows.values())
    assert "HalfCheetahBulletEnv-v0" in output.read_text()


def test_an_unknown_variant_is_named_in_one_line(tmp_path):
    result = _agent_cost(tmp_path, "--variants", "sac", "crossq_w2048")
    assert result.returncode == 2
    assert "--variants crossq_w2048: one of sac, sac_gsde, crossq" in result.stderr
