"""Serial mode (tfagents_system.serial): the real program functions, run_replay_server,
run_learner and run_worker, as threads of this test's process on a tiny experiment: it
trains to its final train step with its checkpoints and policies, resumes after a stop
midway, and a finished experiment is left as it is."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from tfagents_system import process, serial
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables


def _experiment(tmp_path: Path, num_iter: int) -> tuple[Path, ExperimentPaths]:
    """The e2e tests' tiny InvertedPendulum experiment, paced by collection (one gradient
    step per env step), so a stop lands mid-run."""
    write_params(tmp_path / "params.py", num_iter=num_iter, steps=100, ckpt=2,
                 extra="samples_per_insert = 32.0")
    variables = write_variables(tmp_path / "vars.sh", SAC_EXP_NAME="serial")
    return variables, ExperimentPaths(tmp_path / "logs" / "serial")


def _checkpoint_steps(paths: ExperimentPaths) -> list[int]:
    return sorted(C.policy_checkpoint_step(p.name) for p in paths.policy_checkpoints.iterdir())


@pytest.fixture(autouse=True)
def _logging():
    process.setup_logging("serial-test")


@pytest.mark.timeout(300)
def test_serial_run_completes_with_checkpoints_and_policies(tmp_path):
    variables, paths = _experiment(tmp_path, num_iter=3)
    assert serial.run_serial(str(variables), num_workers=2, stop=process.StopFlag()) == 0
    complete = json.loads(paths.complete.read_text())
    assert complete["train_step"] == 300
    assert json.loads(paths.status_file(C.LEARNER).read_text())["train_step"] == 300
    assert _checkpoint_steps(paths)[-1] == 300
    for name in (C.COLLECT_POLICY, C.GREEDY_POLICY):
        assert (paths.final_policy(name) / C.POLICY_READY).is_file()
        assert (paths.policy(name) / C.POLICY_READY).is_file()
    for i in range(2):  # both worker threads collected and made the final evaluation
        status = json.loads(paths.status_file(C.worker_name(i)).read_text())
        assert status["finished"] and status["env_steps"] > 0
        assert status["eval_train_step"] == 300
    launch = json.loads(paths.launches.read_text().splitlines()[-1])
    assert launch["mode"] == "serial" and launch["num_workers"] == 2
    # A finished experiment: nothing runs, nothing changes.
    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0
    assert len(paths.launches.read_text().splitlines()) == 1


@pytest.mark.timeout(300)
def test_serial_run_stopped_midway_resumes(tmp_path):
    variables, paths = _experiment(tmp_path, num_iter=8)
    stop = process.StopFlag()

    def stop_after_a_checkpoint():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not stop():
            if paths.policy_checkpoints.is_dir() and any(paths.policy_checkpoints.iterdir()):
                stop.set()
            time.sleep(0.2)

    watcher = threading.Thread(target=stop_after_a_checkpoint, daemon=True)
    watcher.start()
    assert serial.run_serial(str(variables), stop=stop) == 130  # stopped, resumable
    watcher.join()
    assert not paths.complete.exists()
    stopped_at = _checkpoint_steps(paths)[-1]
    assert 200 <= stopped_at < 800  # the stop checkpoint, before the target
    stored = json.loads(paths.status_file(C.worker_name(0)).read_text())["env_steps"]

    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0
    assert json.loads(paths.complete.read_text())["train_step"] == 800
    launches = [json.loads(line) for line in paths.launches.read_text().splitlines()]
    assert [launch["resumed"] for launch in launches] == [False, True]
    # The worker went on counting from where it stopped, and evaluated the final policy.
    status = json.loads(paths.status_file(C.worker_name(0)).read_text())
    assert status["env_steps"] > stored and status["eval_train_step"] == 800
