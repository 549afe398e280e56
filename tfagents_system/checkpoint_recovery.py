"""The learner's TensorFlow checkpoints after a power loss or a kill.

TensorFlow writes each checkpoint (`ckpt-<step>.index` and `.data-*`) and then its
index file `checkpoint`, which names the newest. A power loss can leave any of them
empty or torn. Restoring a torn newest checkpoint, or reading a torn index, fails the
same way at every restart (a crash loop), and a missing index makes TensorFlow see no
checkpoint at all, so the learner would start again from step 0 over a trained
experiment. Before the learner restores,
`choose_restorable` reads every candidate in full, newest first: a checkpoint that
cannot be read is moved to `checkpoints_damaged/` (logged, never deleted), the index
is rewritten to name the newest good one, and with none good the program stops with
an error instead of training from scratch.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tfagents_system.core.errors import FatalError

_INDEX = re.compile(r"^(ckpt-(\d+))\.index$")


def checkpoint_prefixes(ckpt_dir: Path) -> list[Path]:
    """Every checkpoint prefix (ckpt-N) with an .index file, oldest first."""
    found = [(int(m.group(2)), ckpt_dir / m.group(1))
             for p in ckpt_dir.iterdir() if (m := _INDEX.match(p.name))]
    return [prefix for _, prefix in sorted(found)]


def readable(prefix: Path) -> str | None:
    """None when every tensor of the checkpoint reads back; else why not."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as exc:  # DataLossError, NotFoundError, ValueError...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def choose_restorable(ckpt_dir: Path, damaged_dir: Path, log) -> Path | None:
    """Leave `ckpt_dir` naming its newest readable checkpoint; that prefix, or None
    when there was never a checkpoint. Raises FatalError when none can be read."""
    import tensorflow as tf

    if not ckpt_dir.is_dir():
        return None
    prefixes = checkpoint_prefixes(ckpt_dir)
    if not prefixes:
        return None
    try:
        state = tf.train.get_checkpoint_state(str(ckpt_dir))
        named = None if state is None else state.model_checkpoint_path
    except Exception:  # a torn index file
        named = None
    for prefix in reversed(prefixes):
        reason = readable(prefix)
        if reason is None:
            break
        moved = _set_aside(prefix, damaged_dir)
        log.error("checkpoint %s cannot be read (%s): moved to %s; using the one before it",
                  prefix.name, reason, moved)
    else:
        raise FatalError(f"no checkpoint under {ckpt_dir} can be read (the damaged ones "
                         f"are in {damaged_dir}): restore the directory from a backup, or "
                         "start a new experiment")
    good = checkpoint_prefixes(ckpt_dir)
    if named is None or Path(named).name != prefix.name:
        log.warning("the checkpoint index named %s: rewritten to name %s",
                    Path(named).name if named else "nothing", prefix.name)
        tf.compat.v1.train.update_checkpoint_state(
            str(ckpt_dir), prefix.name, all_model_checkpoint_paths=[p.name for p in good])
    return prefix


def _set_aside(prefix: Path, damaged_dir: Path) -> Path:
    damaged_dir.mkdir(parents=True, exist_ok=True)
    for file in prefix.parent.glob(f"{prefix.name}.*"):
        shutil.move(str(file), str(damaged_dir / file.name))
    return damaged_dir
