"""The experiment directory is trusted only when no one else could have changed it: a
resume refuses a directory or a trusted file that is a symlink, another user's, or
writable by others, and a key others can read; an old 0755 directory gets a note. The
replay key is made whole or not at all, under the launch lock, and supervisord's socket
lives in a directory only its user may enter."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from tfagents_system import supervisord
from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError
from tfagents_system.core.paths import ExperimentPaths, check_private_dir, check_trusted
from tfagents_system.launch.errors import LaunchError
from tfagents_system.launch.experiment import check_resumable, lock_experiment, reopen
from tfagents_system.replay.auth import KEY_BYTES, create_key, read_key

ME = os.geteuid()
OTHER = ME + 4242  # a uid that is not this user's
AS_ROOT = pytest.mark.skipif(ME != 0, reason="giving a file to another user needs root")


@pytest.fixture
def paths(tmp_path) -> ExperimentPaths:
    """An experiment directory as a launch makes it: mode 0700, its copies and key."""
    root = tmp_path / "logs" / "tiny"
    root.mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    paths = ExperimentPaths(root)
    paths.params.write_text("# the experiment's params\n")
    paths.config.write_text("{}")
    paths.settings.write_text("{}")
    create_key(paths.replay_key)
    return paths


def _files(root) -> dict:
    return {str(p): (p.lstat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in root.rglob("*")}


def test_an_experiment_of_ones_own_is_trusted_without_a_note(paths):
    assert check_trusted(paths) == []
    assert check_resumable(paths) == []


def test_a_directory_of_another_user_is_refused(paths):
    with pytest.raises(CheckError, match=rf"experiment directory {paths.root} belongs to uid "
                                         rf"{ME}, not you \(uid {OTHER}\): .*copy the "
                                         "experiment you trust"):
        check_trusted(paths, uid=OTHER)


@AS_ROOT
def test_a_directory_given_to_another_user_is_refused(paths):
    os.chown(paths.root, OTHER, -1)
    with pytest.raises(CheckError, match=f"belongs to uid {OTHER}, not you"):
        check_trusted(paths)


@AS_ROOT
def test_a_params_copy_of_another_user_is_refused(paths):
    os.chown(paths.params, OTHER, -1)
    with pytest.raises(CheckError, match=rf"^{paths.params} belongs to uid {OTHER}"):
        check_trusted(paths)


@pytest.mark.parametrize("mode, who", [(0o770, "group"), (0o703, "others"),
                                       (0o777, "group and others")])
def test_a_directory_others_can_write_is_refused_unchanged(paths, mode, who):
    paths.root.chmod(mode)
    before = _files(paths.root)
    with pytest.raises(CheckError, match=rf"experiment directory {paths.root} is writable by "
                                         rf"{who} \(mode 0{mode:o}\).*chmod 700 {paths.root}$"):
        check_resumable(paths)
    assert _files(paths.root) == before


def test_a_symlinked_experiment_directory_is_refused(paths, tmp_path):
    link = ExperimentPaths(tmp_path / "logs" / "linked")
    link.root.symlink_to(paths.root)
    with pytest.raises(CheckError, match=rf"experiment directory {link.root} is a symlink "
                                         rf"\(to {paths.root}\)"):
        check_trusted(link)


@pytest.mark.parametrize("name", [C.PARAMS_COPY, C.CONFIG_COPY, C.SETTINGS_FILE,
                                  C.REPLAY_KEY_FILE, C.LAUNCH_LOCK_FILE])
def test_a_symlink_among_the_trusted_files_is_refused(paths, tmp_path, name):
    planted = tmp_path / "planted"
    planted.write_text("import os  # someone else's code\n")
    (paths.root / name).unlink(missing_ok=True)
    (paths.root / name).symlink_to(planted)
    with pytest.raises(CheckError, match=rf"^{paths.root / name} is a symlink \(to {planted}\)"):
        check_trusted(paths)


def test_a_trusted_file_others_can_reach_and_write_is_refused(paths):
    paths.root.chmod(0o755)
    paths.params.chmod(0o664)
    with pytest.raises(CheckError, match=rf"{paths.params} is writable by group \(mode "
                                         rf"0664\).*chmod go-w {paths.params}$"):
        check_trusted(paths)


def test_a_group_writable_file_no_one_can_reach_is_accepted(paths):
    """A copy made under umask 002 inside an owner-only directory: no one else gets in."""
    paths.params.chmod(0o664)
    assert check_trusted(paths) == []


def test_a_trusted_path_that_is_not_a_file_is_refused(paths):
    paths.config.unlink()
    paths.config.mkdir()
    with pytest.raises(CheckError, match=f"{paths.config} is not a regular file"):
        check_trusted(paths)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_others_can_read_or_write_is_refused(paths, mode):
    paths.replay_key.chmod(mode)
    with pytest.raises(CheckError, match=rf"replay key {paths.replay_key} is open to .* \(mode "
                                         rf"0{mode:o}\).*chmod 600 {paths.replay_key}$"):
        check_trusted(paths)


def test_an_old_0755_directory_is_resumed_with_one_note(paths):
    paths.root.chmod(0o755)
    assert check_resumable(paths) == [
        f"experiment directory {paths.root} is readable by group and others (mode 0755, made "
        f"before experiments were owner-only); it holds the replay key: chmod 700 {paths.root}"]


def test_a_damaged_key_is_reported_at_launch(paths):
    paths.replay_key.write_bytes(b"")  # what an older version left after a kill
    with pytest.raises(LaunchError, match=r"replay key is damaged \(0 bytes, not 32\)"):
        check_resumable(paths)


def test_the_key_of_an_old_experiment_is_made_under_the_launch_lock(paths):
    paths.replay_key.unlink()
    paths.settings.write_text('{"exp_name": "tiny"}')
    with pytest.raises(LaunchError):
        reopen(paths)  # a damaged record: nothing is made before the lock
    assert not paths.replay_key.exists()
    assert check_resumable(paths) == []  # no key yet: the launch makes it
    lock = lock_experiment(paths)
    try:
        assert len(read_key(paths.replay_key)) == KEY_BYTES
        assert stat.S_IMODE(paths.replay_key.stat().st_mode) == 0o600
    finally:
        lock.close()


def test_the_lock_is_never_taken_through_a_symlink(paths, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    paths.launch_lock.symlink_to(victim)
    with pytest.raises(LaunchError, match=f"cannot open {paths.launch_lock}"):
        lock_experiment(paths)
    assert victim.read_text() == "precious"


def _no_key_left(directory) -> None:
    assert [p.name for p in directory.iterdir()] == []


@pytest.mark.parametrize("broken", ["write", "fsync", "link"])
def test_an_interrupted_key_creation_leaves_no_key(tmp_path, monkeypatch, broken):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if broken == "write":
        monkeypatch.setattr(os, "write", lambda fd, data: 0)  # a short write
    else:
        monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OSError):
        create_key(tmp_path / C.REPLAY_KEY_FILE)
    _no_key_left(tmp_path)


def test_a_key_is_never_replaced(tmp_path, monkeypatch):
    path = tmp_path / C.REPLAY_KEY_FILE
    create_key(path)
    key = read_key(path)
    real_lexists = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: False)  # another launch made it meanwhile
    create_key(path)
    monkeypatch.setattr(os.path, "lexists", real_lexists)
    assert read_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == [C.REPLAY_KEY_FILE]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The temporary directory is tmp_path, and no XDG_RUNTIME_DIR is set."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"sac-supervisor-{ME}"


def test_the_socket_lives_in_a_private_directory_of_the_user(private_tmp, tmp_path):
    sock = supervisord.socket_path(tmp_path / "logs" / "tiny")
    assert sock.parent == private_tmp
    assert stat.S_IMODE(private_tmp.lstat().st_mode) == 0o700
    assert sock == supervisord.socket_path(tmp_path / "logs" / "tiny")  # found again
    assert sock != supervisord.socket_path(tmp_path / "logs" / "tiny", "n2")
    assert len(f"/tmp/{sock.relative_to(tmp_path)}") <= 60  # far below the 107-byte limit


def test_a_socket_directory_of_the_wrong_mode_is_refused(private_tmp, tmp_path):
    private_tmp.mkdir(mode=0o755)
    private_tmp.chmod(0o755)
    with pytest.raises(CheckError, match=rf"socket directory {private_tmp} has mode 0755, not "
                                         rf"0700: .*chmod 700 {private_tmp}$"):
        supervisord.socket_path(tmp_path)


def test_a_socket_directory_squatted_by_a_symlink_is_refused(private_tmp, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    private_tmp.symlink_to(elsewhere)
    with pytest.raises(CheckError, match=r"is a symlink .*set TMPDIR to a directory of your own"):
        supervisord.socket_path(tmp_path)


def test_a_socket_directory_of_another_user_is_refused(tmp_path):
    squatted = tmp_path / "squatted"
    squatted.mkdir(mode=0o700)
    with pytest.raises(CheckError, match=rf"{squatted} belongs to uid {ME}, not you "
                                         rf"\(uid {OTHER}\)"):
        check_private_dir(squatted, "supervisord's socket directory ", "set TMPDIR", OTHER)


@AS_ROOT
def test_a_socket_directory_given_to_another_user_is_refused(private_tmp, tmp_path):
    private_tmp.mkdir(mode=0o700)
    os.chown(private_tmp, OTHER, -1)
    with pytest.raises(CheckError, match=rf"socket directory {private_tmp} belongs to uid "
                                         rf"{OTHER}, not you"):
        supervisord.socket_path(tmp_path)


def test_an_xdg_runtime_dir_others_can_enter_is_not_used(private_tmp, tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o777)
    runtime.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert supervisord.socket_path(tmp_path).parent == private_tmp
    runtime.chmod(0o700)
    assert supervisord.socket_path(tmp_path).parent == runtime
