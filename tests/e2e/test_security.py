"""A stranger on the network during a real run: a second Reverb client inserts forged
experience blocks (another width, NaNs, a wrong signature) and replaces the weights item
with an unsigned array, as the review did on the unprotected data path (the learner
then lost whole drains and the worker crash-looped). Now the learner drops and logs
every forged block, which never reaches its replay memory's log, the workers refuse the
forged weights and act on, and the run completes without a restart."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import numpy as np
import pytest
from launch_helpers import start_script, wait_for, write_params, write_variables

from tfagents_system.core import constants as C

pytestmark = pytest.mark.e2e


def _attack(address: str, row_size: int, until: float) -> int:
    """Forged queue blocks and weights until `until`; how many items it inserted."""
    import reverb

    client = reverb.Client(address)
    blocks = [
        [np.ones((128, 7), np.float32)],                          # another width, unsigned
        [np.full((128, row_size), np.nan, np.float32)],           # NaNs, unsigned
        [np.ones((128, row_size), np.float32), np.array([1, 99], np.int64),
         np.zeros(32, np.uint8)],                                  # a wrong signature
    ]
    for block in blocks:
        client.insert(block, {C.QUEUE_TABLE: 1.0})
    inserted = len(blocks)
    while time.time() < until:  # the learner republishes every iteration: keep replacing
        client.insert([np.ones(3, np.float32)], {C.WEIGHTS_TABLE: 1.0})
        inserted += 1
        time.sleep(0.02)
    return inserted


def test_forged_blocks_and_weights_are_dropped_and_the_run_completes(workdir):
    write_params(workdir / "params.py", num_iter=300, steps=100, ckpt=100,
                 extra="samples_per_insert = 32.0")  # paced: the run outlasts the attack
    variables = write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    proc = start_script(variables, workdir / "run.log")
    try:
        assert wait_for(lambda: (exp / "status" / "learner.json").is_file(), 240)
        address = json.loads((exp / "launches.jsonl").read_text().splitlines()[-1])["address"]
        row_size = json.loads((exp / "replay_memory" / "meta.json").read_text())["row_size"]
        # A daemon: a Reverb insert into a stopped server would wait for it forever.
        attacker = threading.Thread(target=_attack, args=(address, row_size, time.time() + 8),
                                    daemon=True)
        attacker.start()
        attacker.join(timeout=60)
        assert not (exp / "TRAINING_COMPLETE.json").exists()  # the attack hit a live run
        assert proc.wait(timeout=400) == 0, (workdir / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert "dropped 3 block(s) from the experience queue" in learner_log, learner_log[-3000:]
    assert "replay server unreachable" not in learner_log  # no reconnect, no lost drain
    worker_log = (exp / "process_logs" / "worker_0.log").read_text()
    assert "refused weights from the replay server" in worker_log
    restarts = json.loads((exp / "run" / "restarts.json").read_text()).get("restarts", {}) \
        if (exp / "run" / "restarts.json").is_file() else {}
    assert not any(restarts.values()), restarts
    # The memory's log holds whole, finite transitions only.
    rows = np.concatenate([np.fromfile(p, np.float32) for p in
                           sorted((exp / "replay_memory").glob("rows_*.f32"))])
    assert rows.size % row_size == 0
    rows = rows.reshape(-1, row_size)
    assert np.isfinite(rows).all() and np.isin(rows[:, :2], (0.0, 1.0, 2.0)).all()


def test_the_experiment_and_its_key_are_its_owners_only(tiny_finished):
    exp = tiny_finished.exp
    assert stat.S_IMODE(os.stat(exp).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(exp / C.REPLAY_KEY_FILE).st_mode) == 0o600
    key = (exp / C.REPLAY_KEY_FILE).read_bytes()
    logs = "".join(p.read_text(errors="replace") for p in (exp / "process_logs").iterdir())
    assert key.hex() not in logs and repr(key) not in logs
