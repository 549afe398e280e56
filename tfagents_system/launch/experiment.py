"""The experiment directory at launch: a new one written whole (under a temporary name,
then renamed into place, so a failed launch leaves nothing), an existing one checked
(no one else could have planted or changed what its programs trust) and reopened (its
records checked, its replay format derived once if it has none), and the lock a launch
holds on it (holding it, an old experiment gets its replay key)."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tfagents_system import finetune
from tfagents_system.core import constants as C
from tfagents_system.core.files import write_json_atomic
from tfagents_system.core.paths import ExperimentPaths, check_trusted
from tfagents_system.core.records import ExperimentSettings, LaunchRecord, VariantRecord
from tfagents_system.launch.errors import LaunchError
from tfagents_system.replay import auth, demo_store
from tfagents_system.replay.format import ReplayFormat

REPO_ROOT = Path(__file__).resolve().parents[2]


def hyperparameters(params) -> dict:
    """Every public, non-callable attribute of the params object, JSON-safe."""
    out = {}
    for name in sorted(dir(params)):
        if name.startswith("_") or name == "env_config":
            continue
        value = getattr(type(params), name, None)
        if callable(value) or isinstance(value, property):
            continue
        value = getattr(params, name)
        out[name] = value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
    return out


@dataclass
class NewExperiment:
    """Everything a new experiment is created with: its files (the config as trained,
    a sweep variant's overrides applied), its settings record, and what it starts
    from (a fine-tuning checkpoint, a prior policy, the demonstrations' rows), with
    its replay format."""

    paths: ExperimentPaths
    config_file: Path
    params_file: Path
    config: dict
    settings: ExperimentSettings
    replay_format: ReplayFormat
    variant: VariantRecord | None = None
    init: finetune.InitFrom | None = None
    prior_source: Path | None = None
    demonstrations: tuple | None = None


def _write(new: NewExperiment, tmp: Path) -> None:
    """The new experiment's files, in the temporary directory `tmp`."""
    if new.variant is None or not new.variant.config_overrides:
        shutil.copyfile(new.config_file, tmp / C.CONFIG_COPY)
    else:
        write_json_atomic(tmp / C.CONFIG_COPY, new.config)
    shutil.copyfile(new.params_file, tmp / C.PARAMS_COPY)
    auth.create_key(tmp / C.REPLAY_KEY_FILE)
    if new.variant is not None:
        new.variant.write(tmp / C.VARIANT_FILE, durable=True)
    if new.init is not None:
        finetune.copy_into(new.init, tmp)
    if new.prior_source is not None:
        shutil.copytree(new.prior_source, tmp / C.PRIOR_POLICY_DIR)
    if new.demonstrations is not None:
        demo_store.store(tmp / C.DEMONSTRATIONS_DIR, *new.demonstrations)
    new.replay_format.write(tmp / C.LAYOUT_FILE)
    new.settings.write(tmp / C.SETTINGS_FILE, durable=True)  # last: it marks an experiment


def create_experiment(new: NewExperiment) -> None:
    """Write the experiment directory under a temporary name, then rename it into place."""
    root = new.paths.root
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    except OSError as exc:
        raise LaunchError(f"cannot create experiment directory {root}: {exc}; set "
                          "SAC_LOGS_DIR to a directory you can write") from exc
    try:
        _write(new, tmp)
        if root.exists():  # an empty directory left by the user
            root.rmdir()
        os.rename(tmp, root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and new.paths.settings.is_file():
            raise LaunchError(f"experiment {root} was just created by another launch, "
                              "which runs it; rerun later to resume it, or choose another "
                              "SAC_EXP_NAME") from None
        raise LaunchError(f"cannot create experiment directory {root}: {exc}") from exc


def check_resumable(paths: ExperimentPaths) -> list[str]:
    """Before anything of a resumed experiment is read: refuse (CheckError) a directory
    or file someone else could have planted or changed (`core.paths.check_trusted`), and
    a damaged key (LaunchError, here rather than in every program's restarts). The notes
    to show."""
    notes = check_trusted(paths)
    if paths.replay_key.exists():  # else the launch makes it, holding the lock
        try:
            auth.read_key(paths.replay_key)
        except ValueError as exc:
            raise LaunchError(str(exc)) from exc
    return notes


def reopen(paths: ExperimentPaths) -> ExperimentSettings:
    """A resumed experiment's settings record. LaunchError if the record is damaged."""
    try:
        return ExperimentSettings.read(paths.settings)
    except (OSError, ValueError) as exc:
        raise LaunchError(f"{paths.settings} is damaged ({exc}): the experiment cannot "
                          "resume; restore the file from a backup, or start a new "
                          "experiment") from exc


def recorded_format(paths: ExperimentPaths, choose) -> tuple[ReplayFormat, bool]:
    """(a resumed experiment's replay format, whether it was derived now). An experiment
    from before formats were recorded gets its format derived here, in one place: the
    2-step TF-Agents layout if it has trained (its replay data are such items), else
    `choose()`, as for a new experiment. The launch writes a derived format once it holds
    the experiment's lock (`Plan.derived_format`). A damaged record is a LaunchError."""
    if paths.layout.is_file():
        try:
            return ReplayFormat.read(paths.layout), False
        except ValueError as exc:
            raise LaunchError(str(exc)) from exc
    started = paths.has_checkpoint or (
        paths.replay_checkpoints.is_dir() and any(paths.replay_checkpoints.iterdir()))
    return (ReplayFormat.legacy() if started else choose()), True


def _create_key(paths: ExperimentPaths) -> None:
    """The key of an experiment from before keys existed, made by the launch that holds
    its lock (so no other launch's programs read it half made)."""
    try:
        auth.create_key(paths.replay_key)
    except OSError as exc:
        raise LaunchError(f"cannot create the replay key {paths.replay_key}: {exc}; free "
                          "space on its disk or fix the directory's permissions, then "
                          "rerun") from exc


def lock_experiment(paths: ExperimentPaths):
    """Hold an exclusive lock on the experiment for this launch's lifetime; holding it,
    give an experiment from before keys existed its replay key."""
    try:  # never through a symlink: the launch truncates the file
        handle = os.fdopen(os.open(paths.launch_lock, os.O_RDWR | os.O_CREAT | os.O_APPEND
                                   | os.O_NOFOLLOW, 0o600), "a+")
    except OSError as exc:
        raise LaunchError(f"cannot open {paths.launch_lock} to run experiment {paths.root}: "
                          f"{exc}; run it as its owner, or fix the directory's permissions"
                          ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another launch"
        raise LaunchError(
            f"experiment {paths.root} is already running (launched by {owner}; its programs "
            "may still be stopping); wait for it or stop it, then rerun"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    try:
        _create_key(paths)
    except LaunchError:
        handle.close()
        raise
    return handle


def git_revision() -> str | None:
    """The repository's commit, recorded with every launch (None outside git)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=False, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def record_launch(plan, mode: str = "supervised", **overrides) -> None:
    """One line per launch in launches.jsonl: when, where, how, what."""
    record = LaunchRecord(
        time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), pid=os.getpid(), host=socket.gethostname(),
        port=plan.port, address=plan.address, resumed=plan.resuming,
        cpu_layout=plan.layout.as_dict(), num_workers=plan.num_workers,
        workers_here=plan.worker_indices,
        other_nodes=[dataclasses.asdict(node) for node in plan.remote],
        slurm_job=os.environ.get("SLURM_JOB_ID"),
        slurm_restart_count=os.environ.get("SLURM_RESTART_COUNT"),
        variant=(None if plan.inputs.variant_record is None
                 else plan.inputs.variant_record.to_json()),
        git_revision=git_revision(), command=sys.argv,
        training_variables=plan.variables.as_dict(), mode=mode,
        replay_port_private=plan.placement.exposure.private)
    dataclasses.replace(record, **overrides).append(plan.paths.launches)
