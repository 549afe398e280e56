"""Faults that could lose or corrupt an experiment, injected into real runs: a full
disk (a small tmpfs), SIGTERM to every program at once (a SLURM preemption), and a
learner checkpoint torn by a power cut."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import time
from pathlib import Path

import launch_helpers as lh
import psutil
import pytest

pytestmark = pytest.mark.e2e

PACED = "samples_per_insert = 0.8\n"  # the learner waits for collection: minutes of run


@pytest.fixture
def small_disk(workdir):
    """A 96 MiB tmpfs for the experiment (mounting needs root, as CI has)."""
    mount = workdir / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        lh.kill_leftovers(mount)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write a file until the file system is full."""
    block = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    small = b"\0" * 4096
    with open(path, "ab", buffering=0) as filler:
        try:
            while True:
                filler.write(small)
        except OSError:
            pass


def test_a_full_disk_stops_the_run_naming_it_and_a_relaunch_resumes(workdir, small_disk):
    lh.write_params(workdir / "params.py", num_iter=8, steps=100, ckpt=1, extra=PACED)
    variables = lh.write_variables(workdir / "vars.sh", SAC_LOGS_DIR=small_disk)
    exp = small_disk / "tiny"
    proc = lh.start_script(variables, workdir / "first.log")
    try:
        assert lh.wait_for(lambda: (exp / "checkpoints" / "checkpoint").is_file(), 240), \
            (workdir / "first.log").read_text()
        _fill(small_disk / "filler")
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (workdir / "first.log").read_text()
    assert code == 1, out
    assert f"is full (0 KiB free on {small_disk})" in out or \
        f"free on {small_disk}): free space there" in out, out
    assert lh.wait_for(lambda: not lh.programs_of(exp), 30), lh.programs_of(exp)
    stopped_at = lh.latest_checkpoint_step(exp)

    relaunch = lh.run_script(variables, timeout=60)  # still full: refused at once
    assert relaunch.returncode == 2, relaunch.stdout + relaunch.stderr
    assert "MiB free on" in relaunch.stderr and "free space there" in relaunch.stderr

    (small_disk / "filler").unlink()
    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lh.latest_checkpoint_step(exp) == 800 >= stopped_at
    memory = exp / "replay_memory"
    row_bytes = 4 * json.loads((memory / "meta.json").read_text())["row_size"]
    segments = sorted(memory.glob("rows_*.f32"))
    assert segments and all(s.stat().st_size % row_bytes == 0 for s in segments)


def test_sigterm_to_every_program_at_once_keeps_loadable_checkpoints(workdir):
    """A SLURM preemption signals the launcher and every program together: the learner's
    and the server's replay saves take turns, and the relaunch restores both."""
    lh.write_params(workdir / "params.py", num_iter=8, steps=100, ckpt=100, extra=PACED)
    variables = lh.write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    proc = lh.start_script(variables, workdir / "first.log")
    try:
        assert lh.wait_for(lambda: len(lh.program_processes(exp)) == 3 and
                        (exp / "status" / "learner.json").is_file(), 240)
        time.sleep(3)
        targets = [psutil.Process(proc.pid)] + list(lh.program_processes(exp).values())
        for target in targets:
            target.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 143, (workdir / "first.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lh.wait_for(lambda: not lh.programs_of(exp), 30), lh.programs_of(exp)
    kept = exp / "replay_checkpoints_kept"
    assert [p for p in (exp / "replay_checkpoints").iterdir() if (p / "DONE").is_file()]
    assert [p for p in kept.iterdir() if (p / "DONE").is_file()]
    assert not [p for p in (exp / "replay_checkpoints").iterdir() if not (p / "DONE").exists()]
    stopped_at = lh.latest_checkpoint_step(exp)

    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    server_log = (exp / "process_logs" / "replay_server.log").read_text()
    assert "could not be loaded" not in server_log
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert f"resumed at train step {stopped_at} of 800" in learner_log


def test_a_torn_learner_checkpoint_falls_back_and_training_completes(workdir):
    lh.write_params(workdir / "params.py", num_iter=2, steps=100, ckpt=1)
    variables = lh.write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    first = lh.run_script(variables, timeout=400)
    assert first.returncode == 0, first.stdout + first.stderr
    (exp / "TRAINING_COMPLETE.json").unlink()  # as if the power went just before it
    newest = lh.latest_checkpoint_step(exp)
    data = next((exp / "checkpoints").glob(f"ckpt-{newest}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])

    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert f"checkpoint ckpt-{newest} cannot be read" in learner_log
    assert (exp / "checkpoints_damaged" / data.name).is_file()
    assert lh.latest_checkpoint_step(exp) == 200
    # The replay server restored the weights of step 200 the first run published: the
    # worker went on until training was complete again (tests/unit/test_worker_completion).
    relaunched = lh.log_sections(exp / "process_logs" / "worker_0.log")[-1]
    assert "eval at train step 200" in relaunched and "done:" in relaunched
