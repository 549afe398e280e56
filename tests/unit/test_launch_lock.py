"""The experiment's launch lock and the race between two launches of a new experiment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings
from tfagents_system.launch.errors import LaunchError
from tfagents_system.launch.experiment import NewExperiment, create_experiment, lock_experiment
from tfagents_system.replay.format import ReplayFormat


def test_a_second_lock_is_refused_naming_the_holder(tmp_path):
    paths = ExperimentPaths(tmp_path)
    first = lock_experiment(paths)
    try:
        with pytest.raises(LaunchError, match=r"already running \(launched by pid \d+ on "):
            lock_experiment(paths)
    finally:
        first.close()
    lock_experiment(paths).close()  # free again once the holder let go


def test_a_child_holding_the_inherited_lock_keeps_the_experiment_locked(tmp_path):
    """What supervisord does for a launcher killed by SIGKILL: the lock lives on in it."""
    paths = ExperimentPaths(tmp_path)
    lock = lock_experiment(paths)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, pass_fds=(lock.fileno(),))
    try:
        lock.close()  # the launcher is gone
        with pytest.raises(LaunchError, match="already running"):
            lock_experiment(paths)
    finally:
        child.communicate(b"", timeout=30)
    lock_experiment(paths).close()


def test_a_new_experiment_created_meanwhile_by_another_launch_is_left_alone(tmp_path):
    paths = ExperimentPaths(tmp_path / "logs" / "exp")
    paths.root.mkdir(parents=True)  # the other launch renamed its directory into place
    paths.settings.write_text(json.dumps({"exp_name": "exp"}))
    config = tmp_path / "config.json"
    config.write_text("{}")
    params_file = tmp_path / "params.py"
    params_file.write_text("")
    settings = ExperimentSettings("exp", "now", str(config), str(params_file), 10, {}, {}, None,
                                  1000)
    new = NewExperiment(paths, config, params_file, {}, settings, ReplayFormat.legacy())
    with pytest.raises(LaunchError, match="just created by another launch, which runs it"):
        create_experiment(new)
    assert json.loads(paths.settings.read_text()) == {"exp_name": "exp"}
    assert sorted(p.name for p in paths.root.iterdir()) == [C.SETTINGS_FILE]
    assert [p.name for p in paths.root.parent.iterdir()] == ["exp"]  # no temporary left
