"""Evaluate a trained policy and render each episode to an MP4 video.

    python -m tfagents_system.run --exp_dir logs/default [--num_episodes 3]
        [--checkpoint latest|STEP|policy_checkpoint_...] [--seed 0]
        [--params P --config C] [--output DIR] [--no_video] [--fps 30]
        [--frame_size 320x240] [--list]

It loads the experiment's exported greedy policy, restores the chosen
checkpoint's weights into it, builds the eval environment exactly as training
did (`TrainParams.eval_env_args_kwargs()` and the config; by default the
experiment's own copies of the params and config), and renders frames
headless through `render('rgb_array')`.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tfagents_system import constants as C
from tfagents_system.collection import TaskMetrics, play_episode
from tfagents_system.paths import ExperimentPaths
from tfagents_system.runtime import (
    import_quietly,
    progress_bar,
    read_json,
    write_json_atomic,
)


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


def parse_frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, rounded down to even sizes (H.264)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) < 16 or int(match.group(2)) < 16:
        raise argparse.ArgumentTypeError(f"--frame_size {text!r}: use WIDTHxHEIGHT, e.g. 320x240")
    # H.264 needs even sizes.
    return int(match.group(1)) // 2 * 2, int(match.group(2)) // 2 * 2


def load_eval_setup(exp_dir: Path, params_path: str | None, config_path: str | None, seed: int):
    """(params, eval env) built as training built its eval envs."""
    from tfagents_system import builders, settings
    from tfagents_system.params import load_params
    from tfagents_system.runtime import params_overrides

    paths = ExperimentPaths(exp_dir)
    config = settings.load_config(config_path or paths.config)
    # A sweep task's hyperparameters apply to the experiment's own params file.
    overrides = {} if params_path else params_overrides(paths)
    params = load_params(params_path or paths.params, config, overrides, str(paths.variant))
    try:
        env = builders.make_env(params, builders.EVAL, seed=seed)
    except Exception as exc:  # the user's env_ctor: report whatever it raised
        raise EvalError(f"TrainParams.env_ctor raised {type(exc).__name__} building the eval "
                        f"env: {exc}") from exc
    return params, env


def check_specs(env, policy) -> None:
    """The env must produce what the policy was trained on."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    def shapes(spec):
        return [(tuple(s.shape), tf.as_dtype(s.dtype).name)
                for s in tf.nest.flatten(tensor_spec.from_spec(spec))]

    pairs = [("observation", env.time_step_spec().observation,
              policy.time_step_spec.observation),
             ("action", env.action_spec(), policy.action_spec)]
    for what, env_spec, policy_spec in pairs:
        if shapes(env_spec) != shapes(policy_spec):
            raise EvalError(f"the environment's {what} spec {shapes(env_spec)} does not match "
                            f"the policy's {shapes(policy_spec)}: use the params and config the "
                            "experiment was trained with")


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


def evaluate(exp_dir: Path, num_episodes: int, checkpoint: str | None, seed: int,
             output: Path | None, video: bool, fps: int, frame_size: tuple[int, int],
             params_path: str | None = None, config_path: str | None = None,
             progress: bool = True) -> dict:
    """Run the evaluation and write the summary; return the summary dict."""
    import numpy as np
    from tqdm import tqdm

    paths = ExperimentPaths(exp_dir)
    greedy_dir = paths.policy(C.GREEDY_POLICY)
    if not (greedy_dir / C.POLICY_READY).is_file():
        raise EvalError(f"experiment {exp_dir}: no exported policy in {greedy_dir}; "
                        "is this an experiment directory that has started training?")
    ckpt = choose_checkpoint(exp_dir, checkpoint)
    params, env = load_eval_setup(exp_dir, params_path, config_path, seed)

    import tensorflow as tf
    from tf_agents.policies import py_tf_eager_policy

    tf.random.set_seed(seed)
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(str(greedy_dir),
                                                          load_specs_from_pbtxt=True)
    check_specs(env, policy)
    policy.update_from_checkpoint(str(ckpt.path))

    output = output or paths.evaluation(ckpt.name, seed)
    output.mkdir(parents=True, exist_ok=True)
    returns, lengths, videos = [], [], []
    task_metrics = TaskMetrics(params)
    try:
        bar = progress_bar(iterable=range(num_episodes), desc="episodes", unit="episode",
                           disable=not progress, file=sys.stderr)
        for episode in bar:
            video_path = output / f"episode_{episode:03d}.mp4" if video else None
            episode_return, length = run_episode(env, policy, video_path, fps, frame_size)
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
    summary = {
        "experiment": str(exp_dir), "checkpoint": ckpt.name, "train_step": ckpt.train_step,
        "seed": seed, "num_episodes": num_episodes, "returns": returns, "lengths": lengths,
        "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
        "success_rate": metrics.pop(C.SUCCESS_RATE, None), "metrics": metrics,
        "videos": videos,
    }
    write_json_atomic(output / C.EVAL_SUMMARY_FILE, summary)
    print(f"mean return {summary['mean_return']:.2f} ± {summary['std_return']:.2f} over "
          f"{num_episodes} episodes ({ckpt.name}, train step {ckpt.train_step}, seed {seed})")
    if summary["success_rate"] is not None:
        print(f"success rate {100 * summary['success_rate']:.0f}%")
    if metrics:
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    print(f"summary: {output / C.EVAL_SUMMARY_FILE}")
    return summary


def main(argv=None) -> int:
    """The evaluation command."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, help="experiment directory (logs/<name>)")
    parser.add_argument("--params", help="params file (default: the experiment's copy)")
    parser.add_argument("--config", help="JSON config (default: the experiment's copy)")
    parser.add_argument("--num_episodes", type=int, default=1)
    parser.add_argument("--checkpoint", default="latest",
                        help="policy checkpoint name or train step (default: latest)")
    parser.add_argument("--seed", type=int, default=0, help="eval env and policy seed")
    parser.add_argument("--output", type=Path,
                        help="output dir (default: <exp_dir>/evaluations/<checkpoint>_seed<S>)")
    parser.add_argument("--no_video", action="store_true", help="returns only, no MP4s")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frame_size", type=parse_frame_size, default=(320, 240),
                        help="WIDTHxHEIGHT of the videos (default 320x240)")
    parser.add_argument("--list", action="store_true", help="list checkpoints and exit")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    try:
        if not (exp_dir / C.SETTINGS_FILE).is_file():
            raise EvalError(f"{exp_dir}: not an experiment directory (no {C.SETTINGS_FILE})")
        if args.num_episodes <= 0:
            raise EvalError(f"--num_episodes {args.num_episodes}: must be a positive integer")
        if args.fps <= 0:
            raise EvalError(f"--fps {args.fps}: must be a positive integer")
        if args.list:
            checkpoints = list_checkpoints(exp_dir)
            if not checkpoints:
                raise EvalError(f"experiment {exp_dir}: no policy checkpoints yet")
            total = read_json(exp_dir / C.SETTINGS_FILE).get("total_train_steps")
            print(f"{'checkpoint':<30} train step (of {total})")
            for ckpt in checkpoints:
                print(f"{ckpt.name:<30} {ckpt.train_step}")
            return 0
        import_quietly()
        evaluate(exp_dir, args.num_episodes, args.checkpoint, args.seed, args.output,
                 not args.no_video, args.fps, args.frame_size, args.params, args.config)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    except Exception as exc:  # settings/params errors carry their own clear message
        from tfagents_system.params import ParamsError
        from tfagents_system.settings import SettingsError

        if isinstance(exc, (ParamsError, SettingsError)):
            print(f"error: {exc}", file=sys.stderr)
            return C.EXIT_BAD_INPUT
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
