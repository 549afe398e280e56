"""What the command-line tools share: importing the TensorFlow stack without its
banners, and a progress bar sized to the terminal."""

from __future__ import annotations

import os
import shutil

from tfagents_system import envs


def import_quietly() -> None:
    """Import TF, TF-Agents, gym and pybullet with their banners and warnings muted.

    For the command-line tools, whose output is read by people; the programs
    keep everything in their logs.
    """
    import contextlib
    import io
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import tf_agents.environments  # noqa: F401

        envs._import_gym()


def progress_bar(**kwargs):
    """A tqdm bar sized from the terminal, falling back to 120x24 where the
    terminal reports no size (tqdm would hide the bar on a 0-row pty)."""

    from tqdm import tqdm

    size = shutil.get_terminal_size((120, 24))
    return tqdm(ncols=size.columns, nrows=size.lines, **kwargs)
