"""The learner's TF checkpoints after a power loss: a torn newest checkpoint or index
falls back to the newest readable one (tfagents_system.checkpoint_recovery)."""

from __future__ import annotations

import logging

import pytest

tf = pytest.importorskip("tensorflow")

from tfagents_system.checkpoint_recovery import choose_restorable
from tfagents_system.core.errors import FatalError

LOG = logging.getLogger("test_checkpoint_recovery")


def _write(ckpt_dir, steps):
    """Checkpoints of a variable holding each step's value, as the learner writes them."""
    value = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=value), str(ckpt_dir),
                                         max_to_keep=10)
    for step in steps:
        value.assign(float(step))
        manager.save(checkpoint_number=step)


def _restored(ckpt_dir) -> float:
    value = tf.Variable(-1.0)
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    tf.train.Checkpoint(v=value).restore(latest).assert_consumed()
    return float(value.numpy())


def _tear(prefix_glob_dir, name):
    data = next(prefix_glob_dir.glob(f"{name}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def test_a_torn_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    ckpt, damaged = tmp_path / "checkpoints", tmp_path / "checkpoints_damaged"
    _write(ckpt, [10, 20, 30])
    _tear(ckpt, "ckpt-30")
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        assert choose_restorable(ckpt, damaged, LOG).name == "ckpt-20"
    assert "checkpoint ckpt-30 cannot be read" in caplog.text
    assert _restored(ckpt) == 20.0
    assert sorted(p.name.split(".")[0] for p in damaged.iterdir()) == ["ckpt-30", "ckpt-30"]


@pytest.mark.parametrize("index", ["empty", "missing"])
def test_a_torn_or_missing_index_names_the_newest_checkpoint_again(tmp_path, index):
    ckpt = tmp_path / "checkpoints"
    _write(ckpt, [10, 20])
    if index == "empty":  # TensorFlow alone fails on it at every restart
        (ckpt / "checkpoint").write_text("")
        with pytest.raises(ValueError):
            tf.train.latest_checkpoint(str(ckpt))
    else:  # TensorFlow alone would train from step 0 again
        (ckpt / "checkpoint").unlink()
        assert tf.train.latest_checkpoint(str(ckpt)) is None
    assert choose_restorable(ckpt, tmp_path / "damaged", LOG).name == "ckpt-20"
    assert _restored(ckpt) == 20.0


def test_no_readable_checkpoint_stops_the_learner_with_an_error(tmp_path):
    ckpt = tmp_path / "checkpoints"
    _write(ckpt, [10])
    _tear(ckpt, "ckpt-10")
    with pytest.raises(FatalError, match="no checkpoint under .* can be read"):
        choose_restorable(ckpt, tmp_path / "damaged", LOG)


def test_a_healthy_directory_is_left_as_it_is(tmp_path):
    ckpt = tmp_path / "checkpoints"
    _write(ckpt, [10, 20])
    index = (ckpt / "checkpoint").read_text()
    assert choose_restorable(ckpt, tmp_path / "damaged", LOG).name == "ckpt-20"
    assert (ckpt / "checkpoint").read_text() == index
    assert not (tmp_path / "damaged").exists()
    assert choose_restorable(tmp_path / "none", tmp_path / "damaged", LOG) is None
