"""Replay checkpoints against a real Reverb server: retention, kills mid-save, two saves
at once, and a damaged newest checkpoint (tfagents_system.replay.checkpoints)."""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading

import numpy as np
import pytest

reverb = pytest.importorskip("reverb")

from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay.checkpoints import DONE, LockTimeout, ReplayCheckpoints, is_complete
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat
from tfagents_system.replay.tables import make_tables
from tfagents_system.replay_server import start_server

LOG = logging.getLogger("test_replay_checkpoints")


class Params(TrainParamsBase):
    batch_size = 4
    min_replay_size = 4

    def env_ctor(self, seed=None, *args, **kwargs):
        raise NotImplementedError("the tables need no environment")


def _weights_item(client, value: float) -> None:
    client.insert([np.full(3, value, np.float32)], {"variables": 1.0})


def _stored(client) -> float:
    sample = next(client.sample("variables", 1))[0]
    return float(np.asarray(sample.data[0])[0])


@pytest.fixture
def store(tmp_path):
    return ReplayCheckpoints(ExperimentPaths(tmp_path))


def _tables():
    return make_tables(Params().replay_settings(100), ReplayFormat(LAYOUT_BLOCKS))


def _serve(store):
    server = start_server(_tables, None, store, LOG)
    return server, reverb.Client(f"localhost:{server.port}")


def _dirs(path):
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def test_bare_reverb_deletes_its_complete_checkpoint_after_a_killed_save(tmp_path):
    """The finding: a directory left by a killed save (no DONE) that sorts last makes
    Reverb's next save delete the complete checkpoint it has just written."""
    root = tmp_path / "replay_checkpoints"
    server = reverb.Server(_tables(), port=None,
                           checkpointer=reverb.checkpointers.DefaultCheckpointer(str(root)))
    client = reverb.Client(f"localhost:{server.port}")
    _weights_item(client, 1.0)
    (root / "9999-killed-save").mkdir(parents=True)
    client.checkpoint()
    server.stop()
    assert not any(is_complete(p) for p in root.iterdir())


def test_a_killed_save_loses_nothing(store):
    server, client = _serve(store)
    _weights_item(client, 1.0)
    store.save(client.checkpoint)
    (store.root / "9999-killed-save").mkdir()  # sorts after every timestamp
    _weights_item(client, 2.0)
    newest = store.save(client.checkpoint)  # bare Reverb would delete this one
    assert _dirs(store.root) == [newest.name] and is_complete(newest)
    (store.root / "9999-killed-save").mkdir()  # a save killed after it
    server.stop()

    server, client = _serve(store)
    try:
        assert _stored(client) == 2.0
        assert _dirs(store.root) == [newest.name]
    finally:
        server.stop()


def test_a_lost_reverb_checkpoint_is_restored_from_the_kept_links(store):
    server, client = _serve(store)
    try:
        _weights_item(client, 5.0)
        store.save(client.checkpoint)
    finally:
        server.stop()
    shutil.rmtree(store.root)  # e.g. deleted by Reverb while another save was running
    server, client = _serve(store)
    try:
        assert _stored(client) == 5.0
    finally:
        server.stop()


def test_the_newest_two_complete_checkpoints_are_kept_as_links(store):
    server, client = _serve(store)
    try:
        paths = []
        for value in (1.0, 2.0, 3.0):
            _weights_item(client, value)
            paths.append(store.save(client.checkpoint))
    finally:
        server.stop()
    assert _dirs(store.root) == [paths[-1].name]  # Reverb keeps one
    assert _dirs(store.kept) == [p.name for p in paths[-2:]]
    assert all(is_complete(store.kept / p.name) for p in paths[-2:])
    newest = store.kept / paths[-1].name / DONE
    assert newest.stat().st_ino == (paths[-1] / DONE).stat().st_ino  # a link, not a copy


def test_two_saves_at_once_always_leave_a_complete_checkpoint(store):
    """The learner's save and the server's own save on stop, as on a SLURM preemption."""
    server, client = _serve(store)
    other = reverb.Client(f"localhost:{server.port}")
    try:
        for round_ in range(10):
            _weights_item(client, float(round_))
            threads = [threading.Thread(target=store.save, args=(c.checkpoint,))
                       for c in (client, other)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert any(is_complete(p) for p in store.root.iterdir()), round_
            assert len(_dirs(store.kept)) == 2
    finally:
        server.stop()
    server, client = _serve(store)
    try:
        assert _stored(client) == 9.0
    finally:
        server.stop()


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(store, caplog):
    server, client = _serve(store)
    try:
        _weights_item(client, 1.0)
        store.save(client.checkpoint)
        _weights_item(client, 2.0)
        newest = store.save(client.checkpoint)
    finally:
        server.stop()
    chunks = newest / "chunks.tfrecord"
    with open(chunks, "r+b") as handle:  # a torn write: the same inode as the kept link
        handle.truncate(chunks.stat().st_size // 2)

    with caplog.at_level(logging.ERROR, logger=LOG.name):
        server, client = _serve(store)
    try:
        info = client.server_info()
        assert info["variables"].current_size == 1
        assert _stored(client) == 1.0
    finally:
        server.stop()
    assert f"replay checkpoint {newest.name} could not be loaded" in caplog.text
    assert _dirs(store.damaged) == [newest.name]
    assert newest.name not in _dirs(store.kept)


def test_with_every_checkpoint_damaged_the_server_starts_empty_not_in_a_loop(store):
    server, client = _serve(store)
    try:
        _weights_item(client, 1.0)
        only = store.save(client.checkpoint)
    finally:
        server.stop()
    chunks = only / "chunks.tfrecord"
    chunks.write_bytes(chunks.read_bytes()[:chunks.stat().st_size // 2])
    server, client = _serve(store)  # set aside, the server starts empty
    try:
        assert client.server_info()["variables"].current_size == 0
    finally:
        server.stop()
    assert _dirs(store.damaged) == [only.name]


def test_a_save_waits_for_the_lock_with_a_deadline(tmp_path):
    store = ReplayCheckpoints(ExperimentPaths(tmp_path), lock_timeout_s=1.0)
    waited = []
    with open(store.lock_file, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(LockTimeout, match="held .* for more than 1s"):
            store.save(lambda: pytest.fail("saved without the lock"),
                       on_wait=lambda: waited.append(1))
    assert waited  # the caller's heartbeat kept beating while it waited


def test_a_checkpoint_call_from_outside_the_run_never_loses_a_save(store):
    """Anyone who reaches the port can call Checkpoint, outside the save lock; Reverb
    then deletes every other directory. A save whose directory went that way is made
    once more, and what the run kept is out of Reverb's reach."""
    server, client = _serve(store)
    stranger = reverb.Client(f"localhost:{server.port}")
    try:
        _weights_item(client, 5.0)

        def overtaken():  # our checkpoint, then the stranger's, which deletes ours
            path = client.checkpoint()
            stranger.checkpoint()
            return path

        calls = []
        path = store.save(lambda: calls.append(1) or (overtaken() if len(calls) == 1
                                                       else client.checkpoint()))
        assert len(calls) == 2 and is_complete(path)
        assert len(_dirs(store.kept)) == 1
        for _ in range(3):
            stranger.checkpoint()
        assert all(is_complete(p) for p in store.kept.iterdir())
    finally:
        server.stop()
    server, client = _serve(store)
    try:
        assert _stored(client) == 5.0
    finally:
        server.stop()
