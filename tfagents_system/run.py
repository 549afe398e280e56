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
`--export` writes it as one SavedModel (`tfagents_system.tools.ensemble`); the eval
env is the first member's. `--sweep_config` evaluates across environment
conditions instead (`tfagents_system.tools.condition_sweep`). `--record FILE` also
writes every step of the episodes to FILE as demonstrations
(`tfagents_system.demonstrations`), without videos unless `--output` is given.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from tfagents_system.cli import import_quietly
from tfagents_system.core import constants as C
from tfagents_system.core.errors import ParamsError
from tfagents_system.core.records import EvalSummary, ExperimentSettings
from tfagents_system.demonstrations import DemonstrationError, Recorder, check_new_file
from tfagents_system.settings import SettingsError
from tfagents_system.tools import condition_sweep, ensemble
from tfagents_system.tools.evaluation import (
    EvalError,
    EvalPolicy,
    check_experiment,
    evaluate,
    find_checkpoint,
    list_checkpoints,
    single_policy,
)


def parse_frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, rounded down to even sizes (H.264)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) < 16 or int(match.group(2)) < 16:
        raise argparse.ArgumentTypeError(f"--frame_size {text!r}: use WIDTHxHEIGHT, e.g. 320x240")
    # H.264 needs even sizes.
    return int(match.group(1)) // 2 * 2, int(match.group(2)) // 2 * 2


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
    total = ExperimentSettings.read(exp_dir / C.SETTINGS_FILE).total_train_steps
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


def record_demonstrations(source: EvalPolicy, args) -> EvalSummary:
    """Evaluate with every step written to `--record` (videos only with `--output`);
    print the recording's line; return the evaluation summary."""
    recorder = Recorder(args.record)
    video = args.output is not None and not args.no_video
    summary = evaluate(source, args.num_episodes, args.seed, args.output, video, args.fps,
                       args.frame_size, args.params, args.config, wrap_env=recorder.wrap)
    path = recorder.save()
    print(f"recorded {recorder.num_episodes} episodes, {recorder.num_steps} steps, mean "
          f"return {summary.mean_return:.2f}: {path}")
    return summary


def policy_to_evaluate(args) -> Callable[[], EvalPolicy]:
    """What the flags name, checked on disk (before TF loads); call the result to load it."""
    if args.ensemble:
        members = ensemble.resolve_members(args.ensemble, args.checkpoint)
        return lambda: ensemble.load_ensemble(members).eval_policy()
    exp_dir = Path(args.exp_dir)
    ckpt = find_checkpoint(exp_dir, args.checkpoint)
    return lambda: single_policy(exp_dir, ckpt)


def run_command(args) -> int:
    """What the flags ask for: a list, an export, a condition sweep or an evaluation."""
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
    except (EvalError, ParamsError, SettingsError, DemonstrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # each carries its own clear message
        return C.EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
