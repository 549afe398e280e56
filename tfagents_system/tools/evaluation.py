"""Evaluating a trained policy: its checkpoints, the eval env built as training built
it, greedy episodes (rendered to MP4 videos on request) and their summary record
(`core.records.EvalSummary`). `python -m tfagents_system.run` is its command
(`tfagents_system.run`); `ensemble` and `condition_sweep` build on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfagents_system import settings
from tfagents_system.builder import EVAL, make_env
from tfagents_system.cli import progress_bar
from tfagents_system.collection import TaskMetrics, play_episode
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import EvalSummary, ExperimentSettings
from tfagents_system.core.specs import spec_shapes
from tfagents_system.experiment import load_params_of
from tfagents_system.sweep import apply_config_overrides


class EvalError(Exception):
    """Bad input to the evaluation CLI; the message is the one line shown."""


@dataclass(frozen=True)
class PolicyCheckpoint:
    """A saved greedy policy's weights: its name, train step and directory."""

    name: str
    train_step: int
    path: Path


def list_checkpoints(exp_dir: Path) -> list[PolicyCheckpoint]:
    """The experiment's policy checkpoints, oldest first."""
    root = ExperimentPaths(exp_dir).policy_checkpoints
    found = []
    if root.is_dir():
        for child in root.iterdir():
            step = C.policy_checkpoint_step(child.name)
            if step is not None and (child / "variables" / "variables.index").is_file():
                found.append(PolicyCheckpoint(child.name, step, child))
    return sorted(found, key=lambda c: c.train_step)


def choose_checkpoint(exp_dir: Path, name: str | None) -> PolicyCheckpoint:
    """The checkpoint named (its name, its train step, or latest); EvalError if none."""
    checkpoints = list_checkpoints(exp_dir)
    if not checkpoints:
        raise EvalError(f"experiment {exp_dir}: no policy checkpoints in "
                        f"{ExperimentPaths(exp_dir).policy_checkpoints}; train it first")
    if name in (None, "latest"):
        return checkpoints[-1]
    for ckpt in checkpoints:
        if name in (ckpt.name, str(ckpt.train_step)):
            return ckpt
    raise EvalError(f"unknown checkpoint {name!r} in {exp_dir}; available: "
                    + ", ".join(c.name for c in checkpoints) + " (or their train steps, or latest)")


def load_eval_setup(exp_dir: Path, params_path: str | None, config_path: str | None, seed: int,
                    config_overrides: dict | None = None):
    """(params, eval env) built as training built its eval envs; `config_overrides` (dotted
    keys, as a training sweep's) change the config first (an evaluation condition)."""
    paths = ExperimentPaths(exp_dir)
    config = apply_config_overrides(settings.load_config(config_path or paths.config),
                                    config_overrides or {})
    # A sweep task's hyperparameters apply to the experiment's own params file.
    params = load_params_of(paths, config, ExperimentSettings.read(paths.settings),
                            Path(params_path) if params_path else None)
    try:
        env = make_env(params, EVAL, seed=seed)
    except Exception as exc:  # the user's env_ctor: report whatever it raised
        raise EvalError(f"TrainParams.env_ctor raised {type(exc).__name__} building the eval "
                        f"env: {exc}") from exc
    return params, env


def check_specs(env, policy) -> None:
    """The env must produce what the policy was trained on."""
    pairs = [("observation", env.time_step_spec().observation,
              policy.time_step_spec.observation),
             ("action", env.action_spec(), policy.action_spec)]
    for what, env_spec, policy_spec in pairs:
        if spec_shapes(env_spec) != spec_shapes(policy_spec):
            raise EvalError(f"the environment's {what} spec {spec_shapes(env_spec)} does not "
                            f"match the policy's {spec_shapes(policy_spec)}: use the params and "
                            "config the experiment was trained with")


def render_frame(env, frame_size: tuple[int, int]):
    """One RGB frame of the env at `frame_size`; EvalError if the env cannot render."""
    import numpy as np
    from PIL import Image

    try:
        frame = env.render("rgb_array")
    except Exception as exc:  # any env: rendering is optional for it
        raise EvalError(f"the environment cannot render rgb_array frames ({type(exc).__name__}: "
                        f"{exc}); use --no_video") from exc
    frame = None if frame is None else np.asarray(frame)
    if frame is None or frame.ndim != 3 or frame.shape[-1] not in (3, 4):
        raise EvalError("the environment's render('rgb_array') returned no RGB image; "
                        "use --no_video")
    image = Image.fromarray(frame[..., :3].astype(np.uint8))
    if image.size != frame_size:
        image = image.resize(frame_size, Image.BILINEAR)
    return np.asarray(image)


def run_episode(env, policy, video_path: Path | None, fps: int, frame_size) -> tuple[float, int]:
    """Play one greedy episode; write its frames to video_path if given."""
    writer = None
    if video_path is not None:
        import imageio

        writer = imageio.get_writer(str(video_path), fps=fps, codec="libx264", quality=7,
                                    macro_block_size=2, ffmpeg_log_level="error")
    try:
        return play_episode(env, policy, on_step=None if writer is None else (
            lambda: writer.append_data(render_frame(env, frame_size))))
    finally:
        if writer is not None:
            writer.close()


@dataclass(frozen=True)
class EvalPolicy:
    """A loaded policy to evaluate: a single experiment's or an ensemble's.

    `exp_dir` is the experiment whose params and config build the eval env and
    whose evaluations directory takes the output; `name` names that output
    (a checkpoint, or an ensemble); `title` and `description` say in the printed
    lines and in summary.json what was evaluated.
    """

    policy: Any
    exp_dir: Path
    name: str
    title: str
    description: dict


def check_experiment(exp_dir: Path) -> None:
    """EvalError unless exp_dir is an experiment directory."""
    if not (exp_dir / C.SETTINGS_FILE).is_file():
        raise EvalError(f"{exp_dir}: not an experiment directory (no {C.SETTINGS_FILE})")


def find_checkpoint(exp_dir: Path, checkpoint: str | None) -> PolicyCheckpoint:
    """The checkpoint to evaluate; EvalError unless the experiment has an exported greedy
    policy and that checkpoint (files only: bad input is reported before TF loads)."""
    greedy_dir = ExperimentPaths(exp_dir).policy(C.GREEDY_POLICY)
    if not (greedy_dir / C.POLICY_READY).is_file():
        raise EvalError(f"experiment {exp_dir}: no exported policy in {greedy_dir}; "
                        "is this an experiment directory that has started training?")
    return choose_checkpoint(exp_dir, checkpoint)


def load_greedy_policy(exp_dir: Path, ckpt: PolicyCheckpoint):
    """The experiment's exported greedy policy (a py policy) with the checkpoint's weights."""
    from tf_agents.policies import py_tf_eager_policy

    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(ExperimentPaths(exp_dir).policy(C.GREEDY_POLICY)), load_specs_from_pbtxt=True)
    policy.update_from_checkpoint(str(ckpt.path))
    return policy


def single_policy(exp_dir: Path, ckpt: PolicyCheckpoint) -> EvalPolicy:
    """One experiment's greedy policy at a checkpoint."""
    return EvalPolicy(load_greedy_policy(exp_dir, ckpt), exp_dir, ckpt.name,
                      f"{ckpt.name}, train step {ckpt.train_step}",
                      {"experiment": str(exp_dir), "checkpoint": ckpt.name,
                       "train_step": ckpt.train_step})


def evaluate(source: EvalPolicy, num_episodes: int, seed: int, output: Path | None,
             video: bool, fps: int, frame_size: tuple[int, int],
             params_path: str | None = None, config_path: str | None = None,
             progress: bool = True, wrap_env: Callable | None = None) -> EvalSummary:
    """Run the evaluation and write the summary; return it. `wrap_env` wraps the eval
    env first (a demonstrations recorder)."""
    import numpy as np
    from tqdm import tqdm

    params, env = load_eval_setup(source.exp_dir, params_path, config_path, seed)
    env = env if wrap_env is None else wrap_env(env)

    import tensorflow as tf

    tf.random.set_seed(seed)
    check_specs(env, source.policy)

    output = output or ExperimentPaths(source.exp_dir).evaluation(source.name, seed)
    output.mkdir(parents=True, exist_ok=True)
    returns, lengths, videos = [], [], []
    task_metrics = TaskMetrics(params)
    try:
        bar = progress_bar(iterable=range(num_episodes), desc="episodes", unit="episode",
                           disable=not progress, file=sys.stderr)
        for episode in bar:
            video_path = output / f"episode_{episode:03d}.mp4" if video else None
            episode_return, length = run_episode(env, source.policy, video_path, fps,
                                                 frame_size)
            task_metrics.record(env)
            returns.append(episode_return)
            lengths.append(length)
            if video_path is not None:
                videos.append(str(video_path))
            tqdm.write(f"episode {episode}: return {episode_return:.2f}, length {length}"
                       + (f", video {video_path}" if video_path else ""), file=sys.stdout)
    finally:
        env.close()
    metrics = task_metrics.means()
    summary = EvalSummary(
        seed, num_episodes, returns, lengths, float(np.mean(returns)), float(np.std(returns)),
        metrics.pop(C.SUCCESS_RATE, None), metrics, videos, **source.description)
    summary.write(output / C.EVAL_SUMMARY_FILE)
    print(f"mean return {summary.mean_return:.2f} ± {summary.std_return:.2f} over "
          f"{num_episodes} episodes ({source.title}, seed {seed})")
    if summary.success_rate is not None:
        print(f"success rate {100 * summary.success_rate:.0f}%")
    if metrics:
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    print(f"summary: {output / C.EVAL_SUMMARY_FILE}")
    return summary


