"""Helpers for end-to-end tests that run the real ./run_script.sh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

# The head of a params file whose TrainParams builds on tiny_params.TinyParams.
TINY_BASE = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from tiny_params import TinyParams
"""

# A tiny InvertedPendulum experiment: seconds of training, real everything.
TINY_PARAMS = """
import sys
sys.path.insert(0, {examples!r})
from inverted_pendulum import TrainParams as Base


class TrainParams(Base):
    num_iter = {num_iter}
    num_steps_per_iter = {steps}
    batch_size = 32
    min_replay_size = 64
    actor_fc_layers = (32, 32)
    critic_joint_fc_layers = (32, 32)
    n_buffer_init_episodes = 4
    n_eval_episodes = 1
    eval_period_itrs = 2
    checkpoint_period_itrs = {ckpt}
{extra}
"""


def write_params(path: Path, num_iter=3, steps=100, ckpt=2, extra="", base=None) -> Path:
    text = TINY_PARAMS.format(examples=str(REPO / "examples"), num_iter=num_iter, steps=steps,
                              ckpt=ckpt, extra=textwrap.indent(textwrap.dedent(extra), "    "))
    if base:
        text = text.replace("from inverted_pendulum import", f"from {base} import")
    path.write_text(text)
    return path


def write_variables(path: Path, **values) -> Path:
    defaults = {
        "SAC_PARAMS": "params.py",
        "SAC_CONFIG": str(REPO / "config" / "default.json"),
        "SAC_EXP_NAME": "tiny",
        "SAC_LOGS_DIR": "logs",
        # The final video and curves take seconds per run; tiny_finished checks them.
        "SAC_FINAL_VIDEO": 0,
    }
    defaults.update(values)
    path.write_text("".join(f"{k}={v}\n" for k, v in defaults.items() if v is not None))
    return path


def launch_env() -> dict:
    """Run the scripts with the interpreter running the tests (no venv bootstrap)."""
    return dict(os.environ, SAC_PYTHON=sys.executable, PYTHONUNBUFFERED="1")


def run_script(variables: Path | str | None, timeout=600, cwd=None) -> subprocess.CompletedProcess:
    args = [str(REPO / "run_script.sh")] + ([str(variables)] if variables is not None else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=launch_env(), cwd=cwd or REPO)


def start_script(variables: Path, log: Path) -> subprocess.Popen:
    out = open(log, "w")
    return subprocess.Popen([str(REPO / "run_script.sh"), str(variables)], stdout=out,
                            stderr=subprocess.STDOUT, env=launch_env(), cwd=REPO)


def interrupt_after_first_checkpoint(variables: Path, exp: Path, log: Path) -> int:
    """Launch, SIGINT the launcher once the learner has written a checkpoint, assert it
    stopped as resumable (exit 130); the train step of the latest checkpoint."""
    proc = start_script(variables, log)
    try:
        assert wait_for(lambda: (exp / "checkpoints" / "checkpoint").is_file(), 240), \
            log.read_text()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, log.read_text()
    assert "resumable" in log.read_text()
    return latest_checkpoint_step(exp)


def programs_of(exp_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions this experiment directory."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(exp_dir) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def program_processes(exp_dir: Path) -> dict[str, psutil.Process]:
    """The supervised programs of an experiment (not supervisord or its monitor), by name."""
    found = {}
    for proc in programs_of(exp_dir):
        try:
            cmd = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if not cmd or "taskset" in cmd[0]:
            continue
        joined = " ".join(cmd)
        if "tfagents_system.replay_server" in joined:
            found["replay_server"] = proc
        elif "tfagents_system.learner" in joined:
            found["learner"] = proc
        elif "tfagents_system.collect_worker" in joined:
            found[f"worker_{cmd[cmd.index('--worker_index') + 1]}"] = proc
    return found


def log_sections(log: Path) -> list[str]:
    """A program's log split at each start: one section per launch or restart."""
    import re

    return re.split(r"(?m)^.* pinned to CPUs .*$", log.read_text())[1:]


def launches_in_log(log: Path) -> int:
    """How many times a program started (supervisord appends to one log file)."""
    try:
        return log.read_text().count(" pinned to CPUs ")
    except OSError:
        return 0


def kill_leftovers(exp_dir: Path) -> list[str]:
    """Kill anything still running for exp_dir; return what was found (for asserts)."""
    left = programs_of(exp_dir)
    names = [" ".join(p.cmdline()[-6:]) for p in left if p.is_running()]
    for p in left:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    return names


def wait_for(predicate, timeout: float, interval=0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def latest_checkpoint_step(exp_dir: Path) -> int:
    import re

    text = (exp_dir / "checkpoints" / "checkpoint").read_text()
    return int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', text).group(1))


def eval_returns(exp_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(train step, mean return) of every evaluation, per worker, from TensorBoard files."""
    from tensorboard.backend.event_processing import event_accumulator

    out = {}
    for worker_dir in sorted((exp_dir / "eval").iterdir()):
        acc = event_accumulator.EventAccumulator(
            str(worker_dir), size_guidance={event_accumulator.TENSORS: 0})
        acc.Reload()
        import tensorflow as tf

        out[worker_dir.name] = [(e.step, float(tf.make_ndarray(e.tensor_proto)))
                                for e in acc.Tensors("eval/return")]
    return out


def one_error_line(capsys, code: int) -> str:
    """The single `error:` line a command wrote to stderr when it exited 2."""
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    return errors[0]


def tensorboard_tags(directory: Path) -> set[str]:
    """The scalar tags written to a TensorBoard run directory."""
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(directory),
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return set(acc.Tags()["tensors"])
