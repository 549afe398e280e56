"""A worker that refuses every weights item for `C.STALE_WEIGHTS_S` (forged or removed
weights) says so: in the status report, and once in the monitor's log."""

from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.progress import refusal_lines
from tfagents_system.core.records import LearnerStatus, WorkerStatus
from tfagents_system.supervision import Monitor


def _exp(tmp_path, refusing_s):
    paths = ExperimentPaths(tmp_path)
    paths.status.mkdir(parents=True)
    (tmp_path / C.RUN_DIR).mkdir()
    WorkerStatus(1, train_step_seen=400, weights_refused={"bad signature": 7},
                 weights_refused_s=refusing_s).write(paths.status_file("worker_0"))
    LearnerStatus(500, 1000, 5, 10.0, 100, 0.0, 2, {"already taken": 1}).write(
        paths.status_file(C.LEARNER))
    return paths


def test_the_status_report_lists_refusals_and_stale_workers(tmp_path):
    lines = refusal_lines(_exp(tmp_path, C.STALE_WEIGHTS_S + 5), 2)
    assert lines[0] == "learner refused 1 already taken"
    assert lines[1].startswith("worker_0 refused weights: 7 bad signature; STALE")
    assert "train step 400" in lines[1]
    assert "STALE" not in refusal_lines(_exp(tmp_path / "b", 3.0), 1)[1]


def test_the_monitor_warns_once_per_stale_episode(tmp_path):
    paths = _exp(tmp_path, C.STALE_WEIGHTS_S + 5)
    said = []
    clock = [0.0]
    monitor = Monitor(tmp_path, ["learner", "worker_0"], 600, 5, rpc_factory=lambda: None,
                      clock=lambda: clock[0], log=said.append)
    for _ in range(3):
        clock[0] += 20
        monitor.on_tick()
    stale = [line for line in said if "refused every weights item" in line]
    assert len(stale) == 1 and "worker_0" in stale[0] and "train step 400" in stale[0]
    WorkerStatus(1, weights_refused_s=0.0).write(paths.status_file("worker_0"))
    clock[0] += 20
    monitor.on_tick()
    WorkerStatus(1, weights_refused_s=C.STALE_WEIGHTS_S).write(paths.status_file("worker_0"))
    clock[0] += 20
    monitor.on_tick()
    assert len([line for line in said if "refused every weights item" in line]) == 2
