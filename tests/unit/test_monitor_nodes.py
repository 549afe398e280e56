"""The supervision state machine on a workers-only node of a multi-node job."""

from tfagents_system import supervision, supervisord
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths


class FakeSupervisor:
    def __init__(self):
        self.calls = []

    def shutdown(self):
        self.calls.append("shutdown")


class FakeRpc:
    def __init__(self):
        self.supervisor = FakeSupervisor()


def make(tmp_path, programs, node):
    rpc = FakeRpc()
    monitor = supervision.Monitor(tmp_path, programs, 600, 5, rpc_factory=lambda: rpc,
                                  log=lambda msg: None, node=node)
    return monitor, rpc


def test_workers_only_node_finishes_without_a_learner(tmp_path):
    monitor, rpc = make(tmp_path, ["worker_1", "worker_3"], "n2")
    (tmp_path / "TRAINING_COMPLETE.json").write_text("{}")
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "worker_1", "expected": "1"})
    assert monitor.outcome is None
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "worker_3", "expected": "1"})
    assert monitor.outcome.result == "complete" and rpc.supervisor.calls == ["shutdown"]
    # The node's outcome goes to its own run dir, not the head node's.
    assert (tmp_path / "run" / "node-n2" / C.OUTCOME_FILE).is_file()
    assert not (tmp_path / "run" / C.OUTCOME_FILE).exists()


def test_head_node_still_waits_for_the_learner(tmp_path):
    monitor, _ = make(tmp_path, ["replay_server", "learner", "worker_0"], None)
    (tmp_path / "TRAINING_COMPLETE.json").write_text("{}")
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "worker_0", "expected": "1"})
    assert monitor.outcome is None
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "1"})
    assert monitor.outcome.result == "complete"


def test_node_sockets_and_run_dirs_are_distinct(tmp_path):
    assert supervisord.socket_path(tmp_path) != supervisord.socket_path(tmp_path, "n2")
    assert ExperimentPaths(tmp_path).run_dir("n2") == tmp_path / "run" / "node-n2"


def test_worker_restarted_after_completion_finishes_within_startsecs(tmp_path):
    """A worker restarted just as training completes runs its last evaluation and exits
    within supervisord's startsecs: a 'failed start' that is really the end."""
    monitor, rpc = make(tmp_path, ["replay_server", "learner", "worker_0"], None)
    monitor.on_event("PROCESS_STATE_BACKOFF", {"processname": "worker_0"})
    assert monitor.restarts["worker_0"] == 1 and monitor.outcome is None  # before: a crash
    (tmp_path / "TRAINING_COMPLETE.json").write_text("{}")
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "1"})
    monitor.on_event("PROCESS_STATE_BACKOFF", {"processname": "worker_0"})
    assert monitor.outcome.result == "complete" and rpc.supervisor.calls == ["shutdown"]


def test_fatal_start_before_completion_still_fails_the_run(tmp_path):
    monitor, _ = make(tmp_path, ["replay_server", "learner", "worker_0"], None)
    monitor.on_event("PROCESS_STATE_FATAL", {"processname": "worker_0"})
    assert monitor.outcome.result == "failed"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class KillingRpc(FakeRpc):
    def __init__(self):
        super().__init__()
        self.supervisor.signalProcess = lambda name, sig: self.supervisor.calls.append(
            (name, sig))


def test_a_program_that_hangs_at_every_start_ends_the_run(tmp_path):
    """With a hang timeout of 600 s a hung start is killed every ~10 minutes, so the
    crash-loop window of 600 s never held more than one restart and the run went on
    forever; hang kills are counted over a window that fits max_restarts + 1 of them."""
    clock, rpc = Clock(), KillingRpc()
    monitor = supervision.Monitor(tmp_path, ["learner"], 600, 2, rpc_factory=lambda: rpc,
                                  clock=clock, log=lambda msg: None)
    for kill in range(2):  # max_restarts = 2 hangs are restarted
        monitor.on_event("PROCESS_STATE_RUNNING", {"processname": "learner"})
        clock.now += 601  # no heartbeat file: no progress since the start
        monitor.on_tick()
        assert rpc.supervisor.calls[-1] == ("learner", "KILL")
        monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "0"})
        assert monitor.outcome is None, kill
        clock.now += 5
    monitor.on_event("PROCESS_STATE_RUNNING", {"processname": "learner"})
    clock.now += 601
    monitor.on_tick()
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "0"})
    assert monitor.outcome.result == "failed"
    assert "hung 3 times within 1815s" in monitor.outcome.reason


def test_hangs_hours_apart_are_restarted(tmp_path):
    clock, rpc = Clock(), KillingRpc()
    monitor = supervision.Monitor(tmp_path, ["learner"], 600, 2, rpc_factory=lambda: rpc,
                                  clock=clock, log=lambda msg: None)
    for _ in range(5):
        monitor.on_event("PROCESS_STATE_RUNNING", {"processname": "learner"})
        clock.now += 601
        monitor.on_tick()
        monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "0"})
        clock.now += 3 * 3600  # hours of progress before the next hang
    assert monitor.outcome is None and monitor.restarts["learner"] == 5
