"""A stranger who reaches the replay port during a real run (a second Reverb client on
the same host; the run's private network namespace is turned off for it, as on a
multi-node run). The attacks are the security review's, each seen on the revision
before the canonical signatures:

- the genuine weights item re-inserted with an array reshaped (the same bytes), split
  in two, or relabelled as int32: it verified, and the workers crash-looped until the
  monitor ended the run;
- a genuine weights item captured early and inserted again later (a rollback);
- the weights item removed: the workers' sampling waited forever;
- queue blocks whose signature column is text: the learner's drain raised and was
  lost at every one; a genuine block captured from the queue and inserted twice;
- with `learner_keeps_replay = False`, genuine rows re-inserted with NaN floats (the
  legacy insert adds a time axis: the learner's input pipeline failed and the learner
  crash-looped) and unsigned rows of the right shape.

Now every one is refused and counted by reason in the logs and status files, the
run completes with no program restarted and no lost drain, and the replay log holds
whole, finite transitions only."""

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

EXPOSED = {"SAC_PRIVATE_NETWORK": 0, "SAC_ALLOW_PUBLIC_REPLAY": 1}


def _sample(client, table: str) -> list[np.ndarray]:
    return [np.asarray(x) for x in next(iter(client.sample(
        table, num_samples=1, emit_timesteps=False))).data]


def _forged_weights(item: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The genuine item's arrays reshaped, split and relabelled: the same bytes."""
    *arrays, header, signature = [a[0] for a in item]
    big = max(range(len(arrays)), key=lambda i: arrays[i].size)
    reshaped = list(arrays)
    reshaped[big] = arrays[big].reshape(-1)
    split = arrays[:big] + np.array_split(arrays[big].reshape(-1), 2) + arrays[big + 1:]
    relabelled = [a.view(np.int32) if a.dtype == np.float32 else a for a in arrays]
    return [forged + [header, signature] for forged in (reshaped, split, relabelled)]


def _insert(client, table: str, columns) -> None:
    """One item written as the workers' block writer writes them (no time axis,
    unchecked), by a writer of its own (a writer keeps its columns' dtypes)."""
    import reverb

    writer = client._client.NewTrajectoryWriter(
        reverb.pybind.ConstantChunkerOptions(max_chunk_length=1, num_keep_alive_refs=1), False)
    refs = writer.Append(list(columns))
    writer.CreateItem(table, 1.0, [[ref] for ref in refs], [True] * len(refs))
    writer.Flush(0, 5000)


def _attack_blocks_and_weights(address: str, row_size: int, seconds: float) -> dict:
    import reverb

    client = reverb.Client(address)
    captured = _sample(client, C.WEIGHTS_TABLE)
    forged = _forged_weights(captured)
    block = _sample(client, C.QUEUE_TABLE)  # a genuine block, taken out of the queue
    meta = np.array([1, 99], np.int64)
    for text in (np.array([b"x" * 32]), np.array([b"not a signature"])):
        _insert(client, C.QUEUE_TABLE, [np.ones((128, row_size), np.float32), meta, text])
    for _ in range(2):
        _insert(client, C.QUEUE_TABLE, block)
    # The learner republishes every iteration: keep replacing its item.
    until, count = time.time() + seconds, 0
    while time.time() < until:
        for item in [*forged, [a[0] for a in captured]]:  # the last one: a rollback
            client.insert(item, {C.WEIGHTS_TABLE: 1.0})
            time.sleep(0.02)
        count += 1
        if count == 20:
            client.reset(C.WEIGHTS_TABLE)  # the weights removed
    return {"rounds": count}


def _attack_sampled_rows(address: str, row_size: int, seconds: float) -> dict:
    import reverb

    client = reverb.Client(address)
    signed = _sample(client, C.EXPERIENCE_TABLE)[0].reshape(-1)  # the row, its signature
    row, signature = signed[:-8], signed[-8:]
    nan_row = np.concatenate([np.full_like(row, np.nan), signature])
    until, count = time.time() + seconds, 0
    while time.time() < until:
        client.insert([nan_row], {C.EXPERIENCE_TABLE: 1.0})  # legacy: a time axis added
        for forged in (nan_row, np.concatenate([row + 1.0, signature]),
                       np.concatenate([row, np.zeros_like(signature)])):  # right shape
            _insert(client, C.EXPERIENCE_TABLE, [forged])
        count += 1
        time.sleep(0.5)
    return {"rounds": count}


def _run_under_attack(workdir, attack, seconds: float, extra: str = "",
                      num_iter: int = 300) -> tuple:
    write_params(workdir / "params.py", num_iter=num_iter, steps=100, ckpt=100,
                 extra="samples_per_insert = 32.0\n" + extra)  # paced: outlasts the attack
    variables = write_variables(workdir / "vars.sh", **EXPOSED)
    exp = workdir / "logs" / "tiny"
    proc = start_script(variables, workdir / "run.log")
    result = {}
    try:
        assert wait_for(lambda: (exp / "status" / "learner.json").is_file(), 240)
        address = json.loads((exp / "launches.jsonl").read_text().splitlines()[-1])["address"]
        meta = exp / "replay_memory" / "meta.json"  # absent where Reverb keeps the buffer
        row_size = json.loads(meta.read_text())["row_size"] if meta.is_file() else 0

        def attacker():
            result.update(attack(address, row_size, seconds))

        # A daemon: a Reverb insert into a stopped server would wait for it forever.
        thread = threading.Thread(target=attacker, daemon=True)
        thread.start()
        thread.join(timeout=seconds + 60)
        assert result, "the attack did not run to its end"
        assert not (exp / "TRAINING_COMPLETE.json").exists()  # the attack hit a live run
        assert proc.wait(timeout=400) == 0, (workdir / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    restarts = json.loads((exp / "run" / "restarts.json").read_text()).get("restarts", {}) \
        if (exp / "run" / "restarts.json").is_file() else {}
    assert not any(restarts.values()), restarts
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert "replay server unreachable" not in learner_log  # no reconnect, no lost drain
    return exp, learner_log


def test_forged_replayed_and_removed_weights_and_blocks_are_refused(workdir):
    exp, learner_log = _run_under_attack(workdir, _attack_blocks_and_weights, 12)
    assert "from the experience queue so far, never stored: " in learner_log, \
        learner_log[-3000:]
    # The text signatures, and the captured block's second copy at least (its first is
    # refused too when the worker's next block came first: a writer's sequence advances).
    learner = json.loads((exp / "status" / "learner.json").read_text())
    assert learner["rejected"]["bad signature"] == 2, learner
    assert learner["rejected"]["already taken"] in (1, 2), learner
    assert set(learner["rejected"]) == {"bad signature", "already taken"}, learner
    worker = json.loads((exp / "status" / "worker_0.json").read_text())
    refused = worker["weights_refused"]
    assert refused.get("wrong structure", 0) >= 3, refused  # reshaped, split, relabelled
    assert refused.get("older than the weights acted with", 0) >= 1, refused  # the rollback
    worker_log = (exp / "process_logs" / "worker_0.log").read_text()
    assert "refused weights from the replay server" in worker_log
    # The memory's log holds whole, finite transitions only.
    row_size = json.loads((exp / "replay_memory" / "meta.json").read_text())["row_size"]
    rows = np.concatenate([np.fromfile(p, np.float32) for p in
                           sorted((exp / "replay_memory").glob("rows_*.f32"))])
    assert rows.size % row_size == 0
    rows = rows.reshape(-1, row_size)
    assert np.isfinite(rows).all() and np.isin(rows[:, :2], (0.0, 1.0, 2.0)).all()
    # A captured block stays refused after a learner restart: its writer's sequence is kept.
    with np.load(exp / C.REPLAY_AUTH_DIR / C.BLOCK_SEQUENCES_FILE) as state:
        assert len(state["writers"]) >= 1 and (state["seqs"] >= 0).all()


def test_forged_rows_sampled_from_reverb_are_refused(workdir):
    exp, learner_log = _run_under_attack(workdir, _attack_sampled_rows, 10,
                                         extra="learner_keeps_replay = False", num_iter=120)
    assert "packed_transition" in learner_log
    assert "dropped a batch holding an item of another structure" in learner_log, \
        learner_log[-3000:]
    assert "sampled row(s) of the experience table so far" in learner_log
    assert learner_log.count("dropped") < 20  # counted, not one line per item
    learner = json.loads((exp / "status" / "learner.json").read_text())
    assert learner["rejected"].get("malformed item", 0) >= 1, learner
    assert learner["rejected"].get("bad signature", 0) >= 1, learner


def test_the_experiment_and_its_key_are_its_owners_only(tiny_finished):
    exp = tiny_finished.exp
    assert stat.S_IMODE(os.stat(exp).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(exp / C.REPLAY_KEY_FILE).st_mode) == 0o600
    key = (exp / C.REPLAY_KEY_FILE).read_bytes()
    logs = "".join(p.read_text(errors="replace") for p in (exp / "process_logs").iterdir())
    assert key.hex() not in logs and repr(key) not in logs
