"""A full disk: the monitor ends the run naming the disk instead of restarting into the
same failure, and keeps room to record why; a launch onto a full disk is refused."""

from __future__ import annotations

import errno

import pytest

from tfagents_system import supervision
from tfagents_system.core import constants as C
from tfagents_system.core import files
from tfagents_system.core.errors import CheckError
from tfagents_system.launch import host


class FakeRpc:
    def __init__(self):
        self.calls = []
        self.supervisor = self

    def shutdown(self):
        self.calls.append("shutdown")


def make(tmp_path):
    rpc = FakeRpc()
    logged = []
    monitor = supervision.Monitor(tmp_path, ["replay_server", "learner", "worker_0"], 600, 5,
                                  rpc_factory=lambda: rpc, log=logged.append)
    return monitor, rpc, logged


def test_a_crash_on_a_full_disk_ends_the_run_naming_the_disk(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    monitor, rpc, _ = make(tmp_path)
    assert (tmp_path / "run" / C.DISK_RESERVE_FILE).stat().st_size == \
        supervision.DISK_RESERVE_BYTES
    monkeypatch.setattr(supervision, "disk_full", lambda path: f"the disk holding {path} is full")
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "0"})
    assert monitor.outcome.result == "failed"
    assert monitor.outcome.reason == f"learner stopped: the disk holding {tmp_path} is full"
    assert monitor.restarts["learner"] == 0 and rpc.calls == ["shutdown"]
    assert files.read_json(tmp_path / "run" / C.OUTCOME_FILE)["result"] == "failed"
    assert not (tmp_path / "run" / C.DISK_RESERVE_FILE).exists()  # released at the end


def test_a_crash_with_room_left_is_restarted(tmp_path):
    monitor, rpc, _ = make(tmp_path)
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "learner", "expected": "0"})
    assert monitor.outcome is None and monitor.restarts["learner"] == 1


def test_the_outcome_is_written_into_the_kept_room(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    monitor, _, logged = make(tmp_path)
    reserve = tmp_path / "run" / C.DISK_RESERVE_FILE
    real = files.write_json_atomic

    def full_until_the_reserve_is_freed(path, data, durable=False):
        if reserve.exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, durable)

    monkeypatch.setattr(files, "write_json_atomic", full_until_the_reserve_is_freed)
    monitor.on_event("PROCESS_STATE_EXITED", {"processname": "worker_0", "expected": "0"})
    assert "could not record the restart counts" in logged[0]  # no crash of the monitor
    monitor._fail("worker_0", "disk full")
    assert not reserve.exists()
    assert files.read_json(tmp_path / "run" / C.OUTCOME_FILE)["reason"] == "disk full"


def test_disk_full_reads_the_real_file_system(tmp_path):
    assert files.disk_full(tmp_path) is None  # the test machine has room
    assert files.mount_point(tmp_path / "not" / "yet").is_dir()


def test_a_launch_onto_a_full_disk_is_refused(tmp_path):
    with pytest.raises(CheckError, match=r"only 2\.0 MiB free on .*free space there"):
        host.check_free_space(tmp_path / "exp", free=2 << 20)
    host.check_free_space(tmp_path / "exp")  # the test machine has room
