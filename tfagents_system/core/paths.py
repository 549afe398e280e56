"""Where everything of an experiment lives: one attribute or method per file or
directory that two processes share, built from the names in `constants`, so no
program builds a path another one writes by itself; and whether those paths can be
trusted (`check_trusted`, `check_private_dir`): every program imports the
experiment's params file, so no one else may be able to change what it finds there."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError

GROUP_OTHER = 0o077  # the permission bits of the group and of others
GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _under_root(name: str, doc: str) -> property:
    """A path directly in the experiment directory."""
    return property(lambda self: self.root / name, doc=doc)


@dataclass(frozen=True)
class ExperimentPaths:
    """The paths of the experiment directory `root` (logs/<SAC_EXP_NAME>)."""

    root: Path

    config = _under_root(C.CONFIG_COPY, "the config it trains with (a copy)")
    params = _under_root(C.PARAMS_COPY, "the params file it trains with (a copy)")
    settings = _under_root(C.SETTINGS_FILE, "its settings record")
    variant = _under_root(C.VARIANT_FILE, "a sweep task's variant (absent otherwise)")
    launches = _under_root(C.LAUNCHES_FILE, "one JSON line per launch")
    launch_lock = _under_root(C.LAUNCH_LOCK_FILE, "held by the launch that runs it")
    layout = _under_root(C.LAYOUT_FILE, "the replay format record")
    replay_key = _under_root(C.REPLAY_KEY_FILE, "the key signing experience and weights")
    complete = _under_root(C.COMPLETE_FILE, "written when training is complete")
    checkpoints = _under_root(C.CHECKPOINT_DIR, "the learner's checkpoints")
    checkpoints_damaged = _under_root(C.DAMAGED_CHECKPOINT_DIR, "unreadable ones, set aside")
    replay_checkpoints = _under_root(C.REPLAY_CHECKPOINT_DIR, "Reverb's table checkpoints")
    replay_checkpoints_kept = _under_root(C.REPLAY_CHECKPOINTS_KEPT_DIR, "hard links to them")
    replay_checkpoints_damaged = _under_root(C.REPLAY_CHECKPOINTS_DAMAGED_DIR, "set aside")
    replay_checkpoint_lock = _under_root(C.REPLAY_CHECKPOINT_LOCK, "held while one saves")
    replay_memory = _under_root(C.REPLAY_MEMORY_DIR, "the learner's replay memory log")
    replay_auth = _under_root(C.REPLAY_AUTH_DIR, "the state that refuses replayed items")
    demonstrations = _under_root(C.DEMONSTRATIONS_DIR, "the demonstrations' replay rows")
    init_from = _under_root(C.INIT_FROM_FILE, "what a fine-tuned experiment started from")
    init_from_checkpoint = _under_root(C.INIT_FROM_CHECKPOINT_DIR, "its copy of that checkpoint")
    prior_policy = _under_root(C.PRIOR_POLICY_DIR, "its copy of the prior policy (SavedModel)")
    policies = _under_root(C.POLICY_DIR, "exported policies and policy checkpoints")
    process_logs = _under_root(C.PROCESS_LOG_DIR, "one log per program")
    status = _under_root(C.STATUS_DIR, "the programs' status and heartbeat files")
    evaluations = _under_root(C.EVALUATIONS_DIR, "tfagents_system.run's outputs")
    learning_curves = _under_root(C.LEARNING_CURVES_FILE, "the curves drawn at the end")

    @property
    def trusted(self) -> tuple[Path, ...]:
        """The files every program trusts: the params file it imports, the config and
        records it trains with, the lock a launch writes, and the replay key."""
        return (self.params, self.config, self.settings, self.variant, self.layout,
                self.init_from, self.launch_lock, self.replay_key)

    @property
    def has_checkpoint(self) -> bool:
        """Whether the learner has written a checkpoint (the experiment has trained)."""
        return (self.checkpoints / C.TF_CHECKPOINT_INDEX).is_file()

    def policy(self, name: str) -> Path:
        """An exported policy the workers load (C.COLLECT_POLICY or C.GREEDY_POLICY)."""
        return self.policies / name

    def final_policy(self, name: str) -> Path:
        """A policy exported with the final weights."""
        return self.policies / C.FINAL_POLICY_DIR / name

    @property
    def replay_imported(self) -> Path:
        """How many of the replay memory's first rows fine-tuning imported."""
        return self.replay_memory / C.REPLAY_IMPORTED_FILE

    @property
    def policy_checkpoints(self) -> Path:
        """The greedy policy's weights at every checkpoint."""
        return self.policies / C.POLICY_CHECKPOINT_DIR

    def policy_checkpoint(self, train_step: int) -> Path:
        """The greedy policy's weights saved with the checkpoint at `train_step`."""
        return self.policy_checkpoints / C.policy_checkpoint_name(train_step)

    def process_log(self, program: str) -> Path:
        """A program's log, appended by every launch and restart."""
        return self.process_logs / f"{program}{C.LOG_SUFFIX}"

    def status_file(self, program: str) -> Path:
        """A program's latest progress (JSON), for the progress line and --status."""
        return self.status / f"{program}{C.STATUS_SUFFIX}"

    @property
    def publications(self) -> Path:
        """The ceiling of the learner's weights publication numbers."""
        return self.replay_auth / C.PUBLICATIONS_FILE

    @property
    def block_sequences(self) -> Path:
        """The last sequence number the learner took from each experience writer."""
        return self.replay_auth / C.BLOCK_SEQUENCES_FILE

    def weights_seen(self, worker: str) -> Path:
        """The newest weights publication a worker acted with."""
        return self.replay_auth / f"{worker}{C.WEIGHTS_SEEN_SUFFIX}"

    def heartbeat(self, program: str) -> Path:
        """Touched as the program makes progress (hang detection)."""
        return self.status / f"{program}{C.HEARTBEAT_SUFFIX}"

    def tensorboard(self, kind: str, worker: str | None = None) -> Path:
        """TensorBoard events of `kind` (train/collect/eval), per worker where given."""
        return self.root / kind if worker is None else self.root / kind / worker

    def evaluation(self, checkpoint: str, seed: int) -> Path:
        """tfagents_system.run's output for one checkpoint and seed."""
        return self.evaluations / C.evaluation_name(checkpoint, seed)

    def condition_sweep(self, sweep: str, policy: str, seed: int) -> Path:
        """tfagents_system.run --sweep_config's output for a sweep file (its stem), a policy
        (a checkpoint or an ensemble) and a seed."""
        return self.evaluations / (f"{C.CONDITION_SWEEP_PREFIX}{sweep}_"
                                   f"{C.evaluation_name(policy, seed)}")

    def fatal(self, program: str) -> Path:
        """A program's report of an error that a restart cannot fix: the run stops."""
        return self.run_dir() / f"{program}{C.FATAL_SUFFIX}"

    def run_dir(self, node: str | None = None) -> Path:
        """This launch's supervision files; another node's in its own subdirectory."""
        run = self.root / C.RUN_DIR
        return run if node is None else run / f"{C.RUN_NODE_PREFIX}{node}"


def _who(bits: int) -> str:
    """Whom permission bits grant something: "group", "others" or both."""
    group, other = bits & 0o070, bits & 0o007
    return "group and others" if group and other else "group" if group else "others"


def _lstat(path: Path) -> os.stat_result | None:
    """The path's own status (a symlink's, not its target's); None if it is absent."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_own(path: Path, status: os.stat_result, what: str, uid: int, fix: str) -> None:
    """Refuse (CheckError) `path` if it is a symlink or belongs to another user than
    `uid`: `what` names it, `fix` says what to do."""
    if stat.S_ISLNK(status.st_mode):
        raise CheckError(f"{what}{path} is a symlink (to {os.readlink(path)}): {fix}")
    if status.st_uid != uid:
        raise CheckError(f"{what}{path} belongs to uid {status.st_uid}, not you (uid {uid}): "
                         f"{fix}")


def _check_root(root: Path, uid: int) -> int:
    """The experiment directory's permission bits; CheckError if it is a symlink, not
    yours, or writable by anyone else."""
    status = os.lstat(root)
    check_own(root, status, "experiment directory ", uid,
              "a resume runs the params file found there; copy the experiment you trust "
              "into a directory of your own and resume that")
    mode = stat.S_IMODE(status.st_mode)
    if mode & GROUP_OTHER_WRITE:
        raise CheckError(f"experiment directory {root} is writable by "
                         f"{_who(mode & GROUP_OTHER_WRITE)} (mode {mode:04o}): any of them "
                         "could plant the params file its programs import; check its files, "
                         f"then chmod 700 {root}")
    return mode


def _check_file(path: Path, root_mode: int, uid: int) -> None:
    """Refuse (CheckError) a trusted file that is a symlink, not yours, not a regular
    file, or writable by anyone the experiment directory lets in."""
    status = _lstat(path)
    if status is None:
        return
    check_own(path, status, "", uid, "the experiment's programs trust this file; copy the "
              "experiment you trust into a directory of your own and resume that")
    if not stat.S_ISREG(status.st_mode):
        raise CheckError(f"{path} is not a regular file: the experiment's programs read it; "
                         "restore it from a backup, or start a new experiment")
    mode = stat.S_IMODE(status.st_mode)
    # Group or others write the file only if the directory lets them search it.
    exposed = (mode & stat.S_IWGRP if root_mode & stat.S_IXGRP else 0) | (
        mode & stat.S_IWOTH if root_mode & stat.S_IXOTH else 0)
    if exposed:
        raise CheckError(f"{path} is writable by {_who(exposed)} (mode {mode:04o}), whom "
                         f"{path.parent} lets in: any of them could change what the "
                         f"experiment's programs run; check it, then chmod go-w {path}")


def _check_key(key: Path) -> None:
    """Refuse (CheckError) a replay key anyone but its owner can read or write."""
    status = _lstat(key)
    mode = 0 if status is None else stat.S_IMODE(status.st_mode)
    if mode & GROUP_OTHER:
        raise CheckError(f"replay key {key} is open to {_who(mode & GROUP_OTHER)} (mode "
                         f"{mode:04o}): any of them may hold the key that signs experience "
                         f"and weights; delete it (the relaunch makes a new one) or "
                         f"chmod 600 {key}")


def check_trusted(paths: ExperimentPaths, uid: int | None = None) -> list[str]:
    """Before a resume: refuse (CheckError, nothing changed) an experiment directory, or
    a file every program trusts in it, that someone else could have planted or changed
    (a symlink, another user's, writable by others), and a replay key others can read.
    The notes to show: a directory made before experiments were owner-only (0755)."""
    uid = os.geteuid() if uid is None else uid
    root_mode = _check_root(paths.root, uid)
    for path in paths.trusted:
        _check_file(path, root_mode, uid)
    _check_key(paths.replay_key)
    if not root_mode & GROUP_OTHER:
        return []
    return [f"experiment directory {paths.root} is readable by "
            f"{_who(root_mode & GROUP_OTHER)} (mode {root_mode:04o}, made before experiments "
            f"were owner-only); it holds the replay key: chmod 700 {paths.root}"]


def check_private_dir(path: Path, what: str, fix: str, uid: int | None = None) -> Path:
    """`path`, a directory only its owner may enter, made (mode 0700) if absent. CheckError
    if it is there but is not a real directory of this user's with mode 0700 (someone
    else made it first, to catch what is put in it): `what` names it, `fix` says what to
    do then."""
    uid = os.geteuid() if uid is None else uid
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    status = os.lstat(path)
    check_own(path, status, what, uid, fix)
    if not stat.S_ISDIR(status.st_mode):
        raise CheckError(f"{what}{path} is not a directory: {fix}")
    mode = stat.S_IMODE(status.st_mode)
    if mode != 0o700:
        raise CheckError(f"{what}{path} has mode {mode:04o}, not 0700: others could reach "
                         f"what is put in it; chmod 700 {path}")
    return path
