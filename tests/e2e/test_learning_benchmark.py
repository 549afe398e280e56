"""`./benchmarks/run.sh learning` on a tiny budget, as a user runs it: it trains the
locomotion preset through the real run_script.sh, writes the report with every column
and the PNG, and a second invocation reuses the finished run instead of training again.
No return is asserted (a few thousand env steps learn nothing); that it runs and reports
is."""

from __future__ import annotations

import json
import subprocess
import time

import psutil
import pytest
from launch_helpers import REPO, launch_env

pytestmark = pytest.mark.e2e

TASK = "HalfCheetahBulletEnv-v0"
# A tiny budget: 1000 random warm-up steps, 2000 train steps, an evaluation of one
# episode every 500 train steps.
TINY = ["--override", "n_buffer_init_steps=1000", "--override", "min_replay_size=1000",
        "--override", "num_steps_per_iter=500", "--override", "eval_period_itrs=1",
        "--override", "n_eval_episodes=1", "--override", "checkpoint_period_itrs=2"]
COLUMNS = ["env steps", "zoo reference", "ours: mean ± sd (seeds)", "ours per seed",
           "ours wall clock, min", "SB3 here: return", "SB3 wall clock, min (training only)",
           "wall clock ours / SB3"]


def _left_behind(work, since: float) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["create_time"] >= since and (str(work) in cmdline
                                                  or "benchmarks.learning" in cmdline):
            found.append(proc)
    return found


def _benchmark(work, *extra, timeout=600):
    started = time.time()
    try:
        return subprocess.run(
            [str(REPO / "benchmarks" / "run.sh"), "learning", "--tasks", TASK, "--env_steps",
             "3000", "--seeds", "1", "--work", str(work), "--output",
             str(work / "learning.md"), *TINY, *extra],
            capture_output=True, text=True, timeout=timeout, env=launch_env(), cwd=work)
    finally:
        time.sleep(2)
        leftovers = _left_behind(work, started)
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"


def test_tiny_learning_benchmark_reports_every_column_and_resumes(tmp_path):
    result = _benchmark(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exp = tmp_path / "logs" / f"{TASK}_3k_task_0"
    assert (exp / "TRAINING_COMPLETE.json").is_file()
    settings = json.loads((exp / "settings.json").read_text())
    hp = settings["hyperparameters"]
    assert hp["time_feature"] is True and hp["seed"] == 0
    assert hp["samples_per_insert"] == hp["batch_size"]  # the replay ratio held
    assert settings["total_train_steps"] == 2000
    report = (tmp_path / "learning.md").read_text()
    for column in COLUMNS:
        assert f"| {column} |" in report or f"| {column} |\n" in report, column
    row = next(line for line in report.splitlines() if line.startswith("| 3k |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == len(COLUMNS)
    assert cells[2].endswith("(1)") and "(s0)" in cells[3]  # one seed reached the mark
    assert float(cells[4]) > 0  # minutes to the mark
    assert f"| {TASK} | 1174 |" in report  # the 300k target row, with the zoo value
    assert "| complete |" in report
    png = tmp_path / "learning.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"

    # Again: the finished run is read, not trained again; the report is rewritten.
    png.unlink()
    again = _benchmark(tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished earlier, read as it is" in again.stderr
    assert png.is_file()
    launches = (exp / "launches.jsonl").read_text().splitlines()
    assert len(launches) == 1


def test_bad_override_is_one_line_and_trains_nothing(tmp_path):
    result = subprocess.run(
        [str(REPO / "benchmarks" / "run.sh"), "learning", "--work", str(tmp_path),
         "--override", "actor_learning_rate=-1"],
        capture_output=True, text=True, timeout=120, env=launch_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ")
    assert "actor_learning_rate=-1" in result.stderr
    assert not (tmp_path / "logs").exists()
