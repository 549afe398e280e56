"""A worker finishes only when the learner has marked training complete: weights at the
target train step can come from an earlier run of the learner (the weights table is
restored from a replay checkpoint) while this run's learner resumed from an older
checkpoint, and a worker that stopped on them would end the run as a crash."""

from __future__ import annotations

import logging
import time

import pytest

from tfagents_system import collect_worker
from tfagents_system.collect_worker import Worker
from tfagents_system.core.errors import StopRequested
from tfagents_system.core.paths import ExperimentPaths


def make_worker(tmp_path, published: list[int], stop=lambda: False) -> tuple[Worker, list]:
    """A Worker whose weights, evaluation and collection are stand-ins."""
    worker = Worker.__new__(Worker)
    evaluated: list = []
    worker.paths = ExperimentPaths(tmp_path)
    worker.target = 400
    worker.log = logging.getLogger("test-worker")
    worker._waiting_logged = False
    worker.should_stop = stop
    worker.refresh_weights = lambda: (published.pop(0), time.time())
    worker.evaluate = evaluated.append
    return worker, evaluated


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(collect_worker.time, "sleep", lambda s: None)


def test_target_weights_without_the_complete_mark_do_not_end_the_worker(tmp_path):
    worker, evaluated = make_worker(tmp_path, [400, 400])
    assert worker.one_round() is False
    assert evaluated == [] and worker._waiting_logged
    worker.paths.complete.parent.mkdir(parents=True, exist_ok=True)
    worker.paths.complete.write_text('{"train_step": 400}')
    assert worker.one_round() is True
    assert evaluated == [400]


def test_a_stop_request_while_waiting_for_the_learner_stops_the_worker(tmp_path):
    worker, evaluated = make_worker(tmp_path, [400], stop=lambda: True)
    with pytest.raises(StopRequested):
        worker.one_round()
    assert evaluated == []
