"""Reverb's table checkpoints, kept safe from kills and from two saves at once.

Reverb 0.14 writes a checkpoint into `replay_checkpoints/<UTC timestamp>/`, marks it
complete with a `DONE` file, then deletes every other directory there but the newest
by name, complete or not. Two hazards follow, both seen with a real server:

- a save killed half-way leaves a directory without `DONE`; a later one that sorts
  after it is kept by the next save, which deletes the complete checkpoint it has just
  written: nothing loadable is left;
- the learner's save and the server's own save on stop (a preempted SLURM job signals
  every program at once) run together, and the first to finish deletes the other's
  directory, or its own, while the other is still writing.

So here:

- saves are serialized by a lock file that the learner and the server share (they
  always run on the same node), with a deadline: a save that cannot get the lock in
  time is skipped with a warning, the previous checkpoint standing;
- every complete checkpoint is also kept, as hard links (no copy, no extra disk for
  files Reverb still has), under `replay_checkpoints_kept/`; the newest
  `C.REPLAY_CHECKPOINTS_TO_KEEP` are kept, and an older one is deleted only after the
  newer one is complete there;
- before the server starts, `prepare_restore` removes incomplete directories from
  `replay_checkpoints/` and, when it holds no complete checkpoint, links the newest
  kept one back;
- a checkpoint Reverb fails to load (a damaged file) is moved to
  `replay_checkpoints_damaged/` and the previous kept one is tried.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tfagents_system.core import constants as C

DONE = "DONE"  # Reverb's marker of a complete checkpoint directory
LOCK_TIMEOUT_S = 300.0


class LockTimeout(RuntimeError):
    """Another save held the checkpoint lock for longer than the deadline."""


def is_complete(directory: Path) -> bool:
    """Whether Reverb finished writing this checkpoint directory."""
    return (directory / DONE).is_file()


def _checkpoint_dirs(root: Path) -> list[Path]:
    """The checkpoint directories under root, oldest first (Reverb's order: by name)."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


class ReplayCheckpoints:
    """The replay server's checkpoints of one experiment (see the module docstring)."""

    def __init__(self, paths, keep: int = C.REPLAY_CHECKPOINTS_TO_KEEP,
                 lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.root = paths.replay_checkpoints
        self.kept = paths.replay_checkpoints_kept
        self.damaged = paths.replay_checkpoints_damaged
        self.lock_file = paths.replay_checkpoint_lock
        self.keep = keep
        self.lock_timeout_s = lock_timeout_s

    @contextlib.contextmanager
    def locked(self, on_wait: Callable[[], None] | None = None):
        """Hold the save lock; `on_wait` is called while waiting (e.g. a heartbeat)."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(f"another replay checkpoint held {self.lock_file} "
                                          f"for more than {self.lock_timeout_s:.0f}s") from None
                    if on_wait is not None:
                        on_wait()
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self, checkpoint: Callable[[], str], on_wait=None) -> Path:
        """Run Reverb's `checkpoint` call under the lock, keep the result; its path.

        Anyone who reaches the server can call its Checkpoint method, outside this
        lock; Reverb then deletes every other directory, ours too if it finished first.
        A save whose directory went that way is made once more; the kept copies
        (hard links elsewhere) are out of Reverb's reach either way."""
        with self.locked(on_wait):
            self._remove_incomplete(self.root)  # no save runs now: left by a killed one
            path = Path(checkpoint())
            if not is_complete(path):  # deleted by a Checkpoint call from outside
                path = Path(checkpoint())
            self._keep(path)
        return path

    def _keep(self, path: Path) -> None:
        """Hard-link a complete checkpoint under `kept`, then prune older kept ones."""
        if not is_complete(path):
            raise RuntimeError(f"Reverb reported checkpoint {path} but it has no {DONE} file "
                               "(deleted by a checkpoint call from outside the run?); the "
                               "previous kept checkpoint stands")
        self.kept.mkdir(parents=True, exist_ok=True)
        target = self.kept / path.name
        if not target.is_dir():
            _link_tree(path, target)
        complete = [p for p in _checkpoint_dirs(self.kept) if is_complete(p)]
        for stale in complete[:-self.keep]:
            shutil.rmtree(stale, ignore_errors=True)

    def prepare_restore(self) -> Path | None:
        """Leave `root` with only complete checkpoints, the newest kept one at least;
        the checkpoint the server will load (None: it starts empty)."""
        with self.locked():
            self._remove_incomplete(self.root)
            self._remove_incomplete(self.kept)
            present = _checkpoint_dirs(self.root)
            kept = _checkpoint_dirs(self.kept)
            if kept and (not present or kept[-1].name > present[-1].name):
                self.root.mkdir(parents=True, exist_ok=True)
                _link_tree(kept[-1], self.root / kept[-1].name)
                return self.root / kept[-1].name
            return present[-1] if present else None

    @staticmethod
    def _remove_incomplete(root: Path) -> None:
        """Delete what killed saves left: Reverb would keep it over complete ones."""
        for stale in _checkpoint_dirs(root):
            if not is_complete(stale):
                shutil.rmtree(stale, ignore_errors=True)
        for tmp in root.glob(".*.tmp") if root.is_dir() else []:
            shutil.rmtree(tmp, ignore_errors=True)

    def set_aside(self, checkpoint: Path) -> Path:
        """Move a checkpoint Reverb could not load out of the way (its kept copy too),
        so the previous one is loaded next; where it went."""
        self.damaged.mkdir(parents=True, exist_ok=True)
        target = self.damaged / checkpoint.name
        shutil.rmtree(target, ignore_errors=True)
        os.rename(checkpoint, target)
        shutil.rmtree(self.kept / checkpoint.name, ignore_errors=True)
        return target


def _link_tree(source: Path, target: Path) -> None:
    """`target` as hard links to the files of `source`, complete (DONE last) or absent."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = sorted((p for p in source.iterdir() if p.is_file()), key=lambda p: p.name == DONE)
    for file in files:
        os.link(file, tmp / file.name)
    os.rename(tmp, target)
