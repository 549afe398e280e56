"""`./benchmarks/run.sh --quick`, as a user runs it: every figure of the throughput
issue and its baseline land in the table and the document. Speed is not asserted
here (the benchmark is the record); that the command measures and reports is."""

from __future__ import annotations

import re
import subprocess
import time

import psutil
import pytest
from launch_helpers import REPO, launch_env

pytestmark = pytest.mark.e2e

FIGURES = {"learner grad steps/s: ours vs in-memory",
           "learner grad steps/s: ours vs stock TF-Agents",
           "worker env steps/s: ours vs raw env stepping",
           "worker env steps/s: all perturbations on vs none",
           "learner grad steps/s: dict observation vs flat",
           "worker env steps/s: dict observation vs flat",
           "learner grad steps/s: recurrent (LSTM, windows of 20) vs flat",
           "worker env steps/s: recurrent (LSTM, windows of 20) vs flat",
           "N workers vs 1 worker, env steps/s"}
NUMBER = r"\d+\.\d+"
ROW = re.compile(rf"^\| (?P<figure>[^|]+) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| >= {NUMBER} "
                 r"\| (pass|FAIL) \|$", re.MULTILINE)


def _figures(text: str) -> set[str]:
    return {re.sub(r"^\d+ workers", "N workers", m["figure"]) for m in ROW.finditer(text)}


def _benchmark_processes(since: float) -> list[psutil.Process]:
    """Benchmark parts and the workers they start, begun since `since`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["create_time"] >= since and ("benchmarks." in cmdline
                                                  or "tfagents_system.collect_worker" in cmdline):
            found.append(proc)
    return found


def test_quick_benchmark_writes_every_figure(tmp_path):
    started = time.time()
    output = tmp_path / "performance.md"
    try:
        result = subprocess.run([str(REPO / "benchmarks" / "run.sh"), "--quick",
                                 "--output", str(output)],
                                capture_output=True, text=True, timeout=840, env=launch_env(),
                                cwd=tmp_path)
    finally:
        time.sleep(2)
        leftovers = _benchmark_processes(started)
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"

    assert _figures(result.stdout) == FIGURES, result.stdout
    text = output.read_text()
    assert _figures(text) == FIGURES, text
    assert re.search(rf"median {NUMBER} s, max {NUMBER} s over 3 publications, \d+ worker\(s\)",
                     text), text
    assert "Quick run" in text and "tensorflow 2.15.1" in text and "- CPU: " in text
    # The alternatives ran in their own processes, each with its reference there.
    assert re.search(rf"^\| learner: XLA-compiled train step[^|]*\| {NUMBER} \| in_memory "
                     rf"{NUMBER} \| {NUMBER} \|", text, re.MULTILINE), text
    assert re.search(rf"^\| worker: numpy policy, 4 lockstep envs[^|]*\| {NUMBER} \| raw "
                     rf"{NUMBER} \| {NUMBER} \|", text, re.MULTILINE), text
