"""What a launch refuses with."""

from __future__ import annotations

from pathlib import Path


class LaunchError(Exception):
    """A launch cannot go ahead; the message is the one line the user sees."""


class AlreadyFinished(Exception):
    """The experiment holds TRAINING_COMPLETE.json: nothing to run."""

    def __init__(self, exp_dir: Path):
        super().__init__(str(exp_dir))
        self.exp_dir = exp_dir
