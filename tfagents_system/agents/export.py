"""Exported policies: TF-Agents SavedModels written atomically, which workers, the
evaluation command and other experiments (a prior policy) load."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tfagents_system.core import constants as C


def policy_saver(policy, train_step):
    """A SavedModel saver of `policy` that records `train_step`."""
    from tf_agents.policies import policy_saver as saver

    return saver.PolicySaver(policy, batch_size=None, train_step=train_step)


def export_policy(policy, train_step, directory: Path) -> None:
    """Save a SavedModel policy atomically: temp dir, READY sentinel, rename. A policy
    already exported there (READY written) is kept."""
    if (directory / C.POLICY_READY).exists():
        return
    tmp = directory.with_name(f".{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    policy_saver(policy, train_step).save(str(tmp))
    (tmp / C.POLICY_READY).write_text(str(int(train_step.numpy())))
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, directory)
