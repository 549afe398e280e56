"""Evaluate a trained policy, or an ensemble of them, and render each episode to an MP4 video.

    python -m tfagents_system.run --exp_dir logs/default [--num_episodes 3]
        [--checkpoint latest|STEP|policy_checkpoint_...] [--seed 0]
        [--params P --config C] [--output DIR] [--no_video] [--fps 30]
        [--frame_size 320x240] [--list]
    python -m tfagents_system.run --ensemble EXP_DIR[:CHECKPOINT] ... [options as above]
    python -m tfagents_system.run --ensemble EXP_DIR[:CHECKPOINT] ... --export DIR
    python -m tfagents_system.run --exp_dir EXP_DIR --sweep_config SWEEP.json [options]
    python -m tfagents_system.run --exp_dir EXP_DIR --record FILE [--num_episodes N] [options]

It loads the experiment's exported greedy policy, restores the chosen
checkpoint's weights into it, builds the eval environment exactly as training
did (`TrainParams.eval_env_args_kwargs()` and the config; by default the
experiment's own copies of the params and config), and renders frames
headless through `render('rgb_array')`.

`--ensemble` acts with the mean of several policies' greedy actions and
`--export` writes it as one SavedModel (`tfagents_system.ensemble`); the eval
env is the first member's. `--sweep_config` evaluates across environment
conditions instead (`tfagents_system.condition_sweep`). `--record FILE` also
writes every step of the episodes to FILE as demonstrations
(`tfagents_system.demonstrations`), without videos unless `--output` is given.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def load_eval_setup(exp_dir: Path, params_path: str | None, config_path: str | None, seed: int,
                    config_overrides: dict | None = None):
    """(params, eval env) built as training built its eval envs; `config_overrides` (dotted
    keys, as a training sweep's) change the config first (an evaluation condition)."""
    from tfagents_system import builders, settings
    from tfagents_system.params import load_params
    from tfagents_system.runtime import params_overrides
    from tfagents_system.sweep import apply_config_overrides

    paths = ExperimentPaths(exp_dir)
    config = apply_config_overrides(settings.load_config(config_path or paths.config),
                                    config_overrides or {})
    # A sweep task's hyperparameters apply to the experiment's own params file.
    overrides = {} if params_path else params_overrides(paths)
    params = load_params(params_path or paths.params, config, overrides, str(paths.variant))
    try:
        env = builders.make_env(params, builders.EVAL, seed=seed)
    except Exception as exc:  # the user's env_ctor: report whatever it raised
        raise EvalError(f"TrainParams.env_ctor raised {type(exc).__name__} building the eval "
                        f"env: {exc}") from exc
    return params, env


def spec_shapes(spec) -> list[tuple]:
    """(shape, dtype name) of every array in a spec nest: what two specs must share."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    return [(tuple(s.shape), tf.as_dtype(s.dtype).name)
            for s in tf.nest.flatten(tensor_spec.from_spec(spec))]


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
             progress: bool = True, wrap_env: Callable | None = None) -> dict:
    """Run the evaluation and write the summary; return the summary dict. `wrap_env`
    wraps the eval env first (a demonstrations recorder)."""
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
    summary = {
        **source.description,
        "seed": seed, "num_episodes": num_episodes, "returns": returns, "lengths": lengths,
        "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
        "success_rate": metrics.pop(C.SUCCESS_RATE, None), "metrics": metrics,
        "videos": videos,
    }
    write_json_atomic(output / C.EVAL_SUMMARY_FILE, summary)
    print(f"mean return {summary['mean_return']:.2f} ± {summary['std_return']:.2f} over "
          f"{num_episodes} episodes ({source.title}, seed {seed})")
    if summary["success_rate"] is not None:
        print(f"success rate {100 * summary['success_rate']:.0f}%")
    if metrics:
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    print(f"summary: {output / C.EVAL_SUMMARY_FILE}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The evaluation command's flags (README.md's commands are parsed with it in tests)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    policy = parser.add_mutually_exclusive_group(required=True)
    policy.add_argument("--exp_dir", help="experiment directory (logs/<name>)")
    policy.add_argument("--ensemble", nargs="+", metavar="EXP_DIR[:CHECKPOINT]",
                        help="evaluate the mean action of these experiments' greedy policies "
                             "(CHECKPOINT: as --checkpoint, which members without one use)")
    parser.add_argument("--params", help="params file (default: the experiment's copy)")
    parser.add_argument("--config", help="JSON config (default: the experiment's copy)")
    parser.add_argument("--num_episodes", type=int, default=1,
                        help="episodes (per condition with --sweep_config)")
    parser.add_argument("--checkpoint", default="latest",
                        help="policy checkpoint name or train step (default: latest)")
    parser.add_argument("--seed", type=int, default=0, help="eval env and policy seed")
    parser.add_argument("--output", type=Path,
                        help="output dir (default: <exp_dir>/evaluations/<checkpoint>_seed<S>)")
    parser.add_argument("--no_video", action="store_true", help="returns only, no MP4s")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frame_size", type=parse_frame_size, default=(320, 240),
                        help="WIDTHxHEIGHT of the videos (default 320x240)")
    task = parser.add_mutually_exclusive_group()
    task.add_argument("--list", action="store_true", help="list checkpoints and exit")
    task.add_argument("--export", type=Path, metavar="DIR",
                      help="write the --ensemble as one SavedModel in DIR and exit")
    task.add_argument("--sweep_config", "--sweep-config", type=Path, metavar="FILE",
                      help="evaluate across the environment conditions of this JSON file")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="also write every step to FILE (.npz, .h5 or .hdf5) as "
                             "demonstrations; no videos unless --output is given")
    return parser


def list_command(exp_dir: Path) -> int:
    """Print the experiment's checkpoints and their train steps."""
    checkpoints = list_checkpoints(exp_dir)
    if not checkpoints:
        raise EvalError(f"experiment {exp_dir}: no policy checkpoints yet")
    total = read_json(exp_dir / C.SETTINGS_FILE).get("total_train_steps")
    print(f"{'checkpoint':<30} train step (of {total})")
    for ckpt in checkpoints:
        print(f"{ckpt.name:<30} {ckpt.train_step}")
    return 0


def check_flags(args) -> None:
    """EvalError for flag values argparse cannot judge alone."""
    if args.num_episodes <= 0:
        raise EvalError(f"--num_episodes {args.num_episodes}: must be a positive integer")
    if args.fps <= 0:
        raise EvalError(f"--fps {args.fps}: must be a positive integer")
    if args.list and args.exp_dir is None:
        raise EvalError("--list lists one experiment's checkpoints: use --exp_dir")
    if args.export and args.ensemble is None:
        raise EvalError("--export writes an ensemble: use --ensemble EXP_DIR[:CHECKPOINT] ... "
                        "(one member exports a single policy)")
    if args.exp_dir is not None:
        check_experiment(Path(args.exp_dir))
    check_record_flags(args)


def check_record_flags(args) -> None:
    """EvalError unless --record (if given) records one experiment to a new file."""
    from tfagents_system.demonstrations import DemonstrationError, check_new_file

    if args.record is None:
        return
    for flag, given in (("--ensemble", args.ensemble), ("--list", args.list),
                        ("--export", args.export), ("--sweep_config", args.sweep_config)):
        if given:
            raise EvalError(f"--record records one experiment's greedy policy: drop {flag} "
                            "(use --exp_dir)")
    try:
        check_new_file(args.record)
    except DemonstrationError as exc:
        raise EvalError(str(exc)) from exc


def record_demonstrations(source: EvalPolicy, args) -> dict:
    """Evaluate with every step written to `--record` (videos only with `--output`);
    print the recording's line; return the evaluation summary."""
    from tfagents_system.demonstrations import Recorder

    recorder = Recorder(args.record)
    video = args.output is not None and not args.no_video
    summary = evaluate(source, args.num_episodes, args.seed, args.output, video, args.fps,
                       args.frame_size, args.params, args.config, wrap_env=recorder.wrap)
    path = recorder.save()
    print(f"recorded {recorder.num_episodes} episodes, {recorder.num_steps} steps, mean "
          f"return {summary['mean_return']:.2f}: {path}")
    return summary


def policy_to_evaluate(args) -> Callable[[], EvalPolicy]:
    """What the flags name, checked on disk (before TF loads); call the result to load it."""
    from tfagents_system import ensemble

    if args.ensemble:
        members = ensemble.resolve_members(args.ensemble, args.checkpoint)
        return lambda: ensemble.load_ensemble(members).eval_policy()
    exp_dir = Path(args.exp_dir)
    ckpt = find_checkpoint(exp_dir, args.checkpoint)
    return lambda: single_policy(exp_dir, ckpt)


def run_command(args) -> int:
    """What the flags ask for: a list, an export, a condition sweep or an evaluation."""
    # Imported here: they build on this module (and `python -m` runs it as __main__).
    from tfagents_system import condition_sweep, ensemble

    check_flags(args)
    if args.list:
        return list_command(Path(args.exp_dir))
    if args.export:
        ensemble.check_export_dir(args.export)
        members = ensemble.resolve_members(args.ensemble, args.checkpoint)
        import_quietly()
        ensemble.load_ensemble(members).export(args.export)
        return 0
    sweep = condition_sweep.load_sweep(args.sweep_config) if args.sweep_config else None
    load_policy = policy_to_evaluate(args)
    import_quietly()
    source = load_policy()
    if sweep is not None:
        condition_sweep.run_sweep(sweep, source, args.num_episodes, args.seed, args.output,
                                  args.params, args.config)
    elif args.record is not None:
        record_demonstrations(source, args)
    else:
        evaluate(source, args.num_episodes, args.seed, args.output, not args.no_video,
                 args.fps, args.frame_size, args.params, args.config)
    return 0


def main(argv=None) -> int:
    """The evaluation command."""
    args = build_parser().parse_args(argv)
    try:
        return run_command(args)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    except Exception as exc:  # settings/params/file errors carry their own clear message
        from tfagents_system.demonstrations import DemonstrationError
        from tfagents_system.params import ParamsError
        from tfagents_system.settings import SettingsError

        if isinstance(exc, (ParamsError, SettingsError, DemonstrationError)):
            print(f"error: {exc}", file=sys.stderr)
            return C.EXIT_BAD_INPUT
        raise


if __name__ == "__main__":
    # Run the importable module's main: tfagents_system.ensemble and .condition_sweep raise
    # its EvalError, which this __main__ copy of the module would not catch.
    from tfagents_system.run import main as module_main

    sys.exit(module_main())
