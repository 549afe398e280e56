"""Records an experiment cannot lose, torn by a power cut: named with the fix, never a
traceback or a silent fresh start."""

from __future__ import annotations

import pytest

from tfagents_system.core.files import read_json_or_none
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.replay.format import ReplayFormat


@pytest.mark.parametrize("text", ["", '{"layout": "packed_bl', "[]"])
def test_a_damaged_layout_record_is_named_with_the_fix(tmp_path, text):
    paths = ExperimentPaths(tmp_path)
    paths.layout.write_text(text)
    with pytest.raises(ValueError, match=r"replay_layout.json is damaged .*write the "
                                         r"experiment's layout back"):
        ReplayFormat.read(paths.layout)


@pytest.mark.parametrize("text", ["", '{"train_st', "\0\0\0"])
def test_a_torn_status_file_reads_as_absent(tmp_path, text):
    status = tmp_path / "worker_0.json"
    status.write_text(text)
    assert read_json_or_none(status) is None
