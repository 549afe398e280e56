"""Unit tests for the learner's replay-memory log and its rate limits (numpy
only: no TF, no Reverb)."""

import numpy as np
import pytest

from tfagents_system.core import constants as C
from tfagents_system.replay import packing
from tfagents_system.replay.auth import BLOCK_TAG, BlockCheck, Signer
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat, Window
from tfagents_system.replay.limits import QUEUE_MAX_BLOCKS, RatioLimit, ReplaySettings
from tfagents_system.replay.memory import ReplayLog


def _rows(start, n, size=3):
    return np.arange(start * size, (start + n) * size, dtype=np.float32).reshape(n, size)


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setattr(ReplayLog, "SEGMENT_ROWS", 5)


def test_log_keeps_the_newest_capacity_rows_across_segments(tmp_path, small_segments):
    log = ReplayLog(tmp_path, row_size=3, capacity=7)
    assert log.load()[1] == 0
    total = 0
    for n in (2, 4, 1, 6, 3):  # 16 rows in uneven appends
        log.append(_rows(total, n), total)
        total += n
    log.close()
    rows, count = ReplayLog(tmp_path, row_size=3, capacity=7).load()
    assert count == 16
    np.testing.assert_array_equal(rows, _rows(9, 7))
    # Segments: rows 0-5, 6-12, 13-15 (a segment is continued until it holds 5
    # rows). Rows 0-5 are all older than the last 7 rows: that file was deleted.
    starts = sorted(int(p.stem.split("_")[1]) for p in tmp_path.glob("rows_*.f32"))
    assert starts == [6, 13]


def test_log_continues_after_a_reload_and_cuts_a_torn_row(tmp_path):
    log = ReplayLog(tmp_path, row_size=3, capacity=100)
    log.append(_rows(0, 4), 0)
    log.close()
    segment = next(tmp_path.glob("rows_*.f32"))
    with open(segment, "ab") as f:  # a crash in the middle of a write
        f.write(b"\x00" * 5)
    again = ReplayLog(tmp_path, row_size=3, capacity=100)
    rows, count = again.load()
    assert count == 4
    np.testing.assert_array_equal(rows, _rows(0, 4))
    again.append(_rows(4, 2), 4)
    again.close()
    rows, count = ReplayLog(tmp_path, row_size=3, capacity=100).load()
    assert count == 6
    np.testing.assert_array_equal(rows, _rows(0, 6))


def test_log_refuses_rows_of_another_size(tmp_path):
    ReplayLog(tmp_path, row_size=3, capacity=10)
    with pytest.raises(ValueError, match=r"meta.json: transitions of 3 floats.*give 5"):
        ReplayLog(tmp_path, row_size=5, capacity=10)


TRANSITIONS = ReplayFormat(LAYOUT_BLOCKS)


def _settings(spi=None, error_buffer=None, min_size=8, batch=4) -> ReplaySettings:
    return ReplaySettings(1000, min_size, batch, spi, error_buffer)


def test_with_replay_windows_min_size_counts_windows_of_transitions():
    limit = RatioLimit(_settings(min_size=100), ReplayFormat(LAYOUT_BLOCKS, window=Window(20, 5)))
    assert limit.min_size == 5  # 100 transitions in windows of 20 trained steps
    assert limit.steps_allowed(size=4, inserted=4, train_step=0, wanted=50) == 0
    assert limit.steps_allowed(size=5, inserted=5, train_step=0, wanted=50) == 50


def test_without_a_ratio_the_learner_waits_only_for_min_size():
    limit = RatioLimit(_settings(), TRANSITIONS)
    assert limit.steps_allowed(size=7, inserted=7, train_step=0, wanted=50) == 0
    assert limit.steps_allowed(size=8, inserted=8, train_step=0, wanted=50) == 50
    assert limit.may_take_in(inserted=10**9, train_step=0)


def test_samples_per_insert_bounds_both_sides():
    """spi 1, batch 4, min size 8: Reverb's default error buffer 8 + 40 = 48."""
    limit = RatioLimit(_settings(spi=1.0), TRANSITIONS)
    assert limit.error_buffer == 48
    # (1 * 8 - (8 - 48)) / 4 = 12 gradient steps after the first 8 transitions.
    assert limit.steps_allowed(size=8, inserted=8, train_step=0, wanted=50) == 12
    assert limit.steps_allowed(size=8, inserted=8, train_step=12, wanted=50) == 0
    assert limit.steps_allowed(size=12, inserted=12, train_step=12, wanted=50) == 1
    # Inserts may run ahead of samples by at most 8 + 48.
    assert limit.may_take_in(inserted=56, train_step=0)
    assert not limit.may_take_in(inserted=57, train_step=0)
    assert limit.may_take_in(inserted=57, train_step=1)


def test_padding_rows_are_dropped():
    block = _rows(0, 4, size=5)
    block[:, :2] = 1.0  # MID transitions
    block[2:, 0] = packing.PAD_STEP_TYPE
    signer = Signer(b"k" * 32)
    meta = np.array([7, 0], np.int64)
    signature = signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])
    rows = BlockCheck(signer, 5).rows([block, meta, signature])
    np.testing.assert_array_equal(rows, block[:2])


def test_queue_holds_about_the_ratio_slack():
    """Without a ratio the queue is large; with one it holds about error_buffer /
    samples_per_insert transitions, as Reverb's limiter would let workers run ahead."""

    assert _settings().queue_blocks(TRANSITIONS) == QUEUE_MAX_BLOCKS
    # spi 32, min size 64, batch 32: slack 32 * 64 + 320 = 2368 samples = 74 transitions.
    assert _settings(spi=32.0, min_size=64, batch=32).queue_blocks(TRANSITIONS) == 2
    # spi 1, error buffer 1280: 1280 transitions = 10 blocks of 128.
    assert _settings(spi=1.0, error_buffer=1280.0).queue_blocks(TRANSITIONS) == 10


def test_a_torn_meta_file_is_rewritten_when_the_log_is_empty(tmp_path):
    """A power cut can leave meta.json empty: with no rows logged it is simply written
    again; with rows, the error names the file and the fix, not a JSON traceback."""
    (tmp_path / "meta.json").write_text("")
    ReplayLog(tmp_path, 3, 10)
    assert (tmp_path / "meta.json").read_text().strip() == '{\n  "row_size": 3\n}'
    log = ReplayLog(tmp_path, 3, 10)
    log.append(_rows(0, 2), 0)
    log.close()
    (tmp_path / "meta.json").write_text('{"row_si')
    with pytest.raises(ValueError, match="meta.json is damaged and the log holds rows"):
        ReplayLog(tmp_path, 3, 10)


def test_durable_json_writes_leave_no_temporary_file(tmp_path):
    from tfagents_system.core.files import read_json_or_none, write_json_atomic

    write_json_atomic(tmp_path / "a.json", {"x": 1}, durable=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert read_json_or_none(tmp_path / "a.json") == {"x": 1}
    (tmp_path / "torn.json").write_text('{"env_st')
    assert read_json_or_none(tmp_path / "torn.json") is None
    assert read_json_or_none(tmp_path / "missing.json") is None
