"""A GPU is the learner's: every other program starts without one, and the learner's
replay memory stays in host RAM (what the layout's RAM budget counts)."""

from __future__ import annotations

from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.launch.processes import Program, worker_program
from tfagents_system.replay.memory import ReplayMemory


def test_only_the_learner_may_see_a_gpu(tmp_path):
    worker = worker_program(tmp_path, "localhost:1", 0, 2, (1,))
    assert worker.thread_env()["CUDA_VISIBLE_DEVICES"] == ""
    server = Program(C.REPLAY_SERVER, (0,), [], Path("server.log"))
    assert server.thread_env()["CUDA_VISIBLE_DEVICES"] == ""
    learner = Program(C.LEARNER, (0, 1), [], Path("learner.log"))
    assert "CUDA_VISIBLE_DEVICES" not in learner.thread_env()


def test_the_replay_memory_is_kept_on_the_cpu():
    memory = ReplayMemory(4, 3, None)
    assert "CPU" in memory.rows.device
