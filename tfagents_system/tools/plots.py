"""Learning curves of one or more experiments, from their TensorBoard files.

    python -m tfagents_system.plot EXP_DIR [EXP_DIR ...] [--output FILE.png]

Panels: greedy eval return against total env steps and against wall-clock
time (mean over workers, shaded min-max spread), training (collect) return,
collect and train speed, actor and critic loss, alpha, and the success rate
when the env reports one (eval: mean over workers; collect: dashed, per worker).
Several experiments (seeds, variants, array tasks) are overlaid, one colour each,
with a legend.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfagents_system.cli import import_quietly
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import VariantRecord


class PlotError(Exception):
    """Nothing to plot, or bad input; the message is the one line shown."""


@dataclass
class Series:
    """One scalar's values with their steps and wall times."""

    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray


@dataclass
class ExperimentCurves:
    """An experiment's scalars: the learner's, and each worker's collect and eval ones."""

    name: str
    train: dict[str, Series] = field(default_factory=dict)
    collect: dict[str, dict[str, Series]] = field(default_factory=dict)  # worker -> tag
    eval: dict[str, dict[str, Series]] = field(default_factory=dict)


def read_scalars(run_dir: Path) -> dict[str, Series]:
    """Every scalar of one TensorBoard run directory (TF2 summaries are tensors)."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0,
                                     event_accumulator.SCALARS: 0},
        purge_orphaned_data=False)
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("tensors", []):
        events = acc.Tensors(tag)
        out[tag] = Series(np.array([e.step for e in events], dtype=np.int64),
                          np.array([e.wall_time for e in events]),
                          np.array([float(tf.make_ndarray(e.tensor_proto)) for e in events]))
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = Series(np.array([e.step for e in events], dtype=np.int64),
                          np.array([e.wall_time for e in events]),
                          np.array([e.value for e in events]))
    return out


def experiment_label(exp_dir: Path) -> str:
    """The directory name, plus what a sweep task varies (its variant label)."""
    variant = VariantRecord.read_or_none(exp_dir / C.VARIANT_FILE)
    return exp_dir.name if variant is None else f"{exp_dir.name} ({variant.label})"


def load_experiment_curves(exp_dir: Path) -> ExperimentCurves:
    """Every scalar of an experiment's TensorBoard runs."""
    curves = ExperimentCurves(experiment_label(exp_dir))
    if (exp_dir / C.TRAIN_TB_DIR).is_dir():
        curves.train = read_scalars(exp_dir / C.TRAIN_TB_DIR)
    for kind, target in ((C.COLLECT_TB_DIR, curves.collect), (C.EVAL_TB_DIR, curves.eval)):
        root = exp_dir / kind
        if root.is_dir():
            for worker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
                target[worker_dir.name] = read_scalars(worker_dir)
    return curves


def total_env_steps_at(curves: ExperimentCurves, wall_times: np.ndarray) -> np.ndarray:
    """Env steps summed over workers at the given wall-clock times (interpolated)."""
    total = np.zeros(len(wall_times))
    for tags in curves.collect.values():
        series = tags.get(C.M_ENV_STEPS)
        if series is None or not len(series.values):
            continue
        order = np.argsort(series.wall_times)
        total += np.interp(wall_times, series.wall_times[order], series.values[order],
                           left=0.0)
    return total


def eval_curve(curves: ExperimentCurves, tag: str = C.M_EVAL_RETURN):
    """Per evaluated train step: (wall time, mean, min, max) of the workers' `tag`."""
    by_step = defaultdict(list)
    for tags in curves.eval.values():
        series = tags.get(tag)
        if series is None:
            continue
        for step, wall, value in zip(series.steps, series.wall_times, series.values):
            by_step[int(step)].append((wall, value))
    steps = sorted(by_step)
    wall = np.array([max(w for w, _ in by_step[s]) for s in steps])
    values = [np.array([v for _, v in by_step[s]]) for s in steps]
    return (np.array(steps), wall, np.array([v.mean() for v in values]),
            np.array([v.min() for v in values]), np.array([v.max() for v in values]))


def start_time(curves: ExperimentCurves) -> float:
    """The wall time of an experiment's first event."""
    times = [s.wall_times.min() for s in curves.train.values() if len(s.wall_times)]
    for group in (curves.collect, curves.eval):
        times += [s.wall_times.min() for tags in group.values() for s in tags.values()
                  if len(s.wall_times)]
    return min(times) if times else 0.0


PANELS = {  # key: (title, x axis)
    "eval_steps": ("greedy eval return (mean, min-max over workers)", "total env steps"),
    "eval_time": ("greedy eval return vs wall clock", "minutes"),
    "collect_return": ("collect episode return (per worker)", "worker env steps"),
    "collect_speed": ("collect speed, env steps/s (per worker)", "minutes"),
    "train_speed": ("learner speed, grad steps/s", "train step"),
    "actor_loss": ("actor loss", "train step"),
    "critic_loss": ("critic loss", "train step"),
    "alpha": ("alpha (entropy temperature)", "train step"),
    "entropy": ("policy entropy (estimate)", "train step"),
}
# Drawn only when an experiment's env reports success (TrainParams.episode_success).
SUCCESS_PANEL = ("success rate (eval: mean over workers; collect: dashed, per worker)",
                 "total env steps")
TRAIN_PANELS = (("train_speed", C.M_GRAD_STEPS_PER_SEC), ("actor_loss", C.M_ACTOR_LOSS),
                ("critic_loss", C.M_CRITIC_LOSS), ("alpha", C.M_ALPHA),
                ("entropy", C.M_ENTROPY))


def load_for_plot(exp_dirs: list[Path]) -> list[ExperimentCurves]:
    """Every experiment's curves; one of the same name as another is named by its path."""
    experiments = []
    for exp_dir in exp_dirs:
        if not exp_dir.is_dir():
            raise PlotError(f"{exp_dir}: not a directory; pass experiment directories "
                            "(logs/<name>)")
        curves = load_experiment_curves(exp_dir)
        if not (curves.train or curves.collect or curves.eval):
            raise PlotError(f"{exp_dir}: no TensorBoard events (train/, collect/, eval/); "
                            "is it an experiment directory that has started training?")
        experiments.append(curves)
    names = [c.name for c in experiments]
    if len(set(names)) != len(names):  # same experiment name under different roots
        for curves, exp_dir in zip(experiments, exp_dirs):
            curves.name = str(exp_dir)
    return experiments


def has_success(curves: ExperimentCurves) -> bool:
    """Whether any worker logged a success rate."""
    return any(C.M_EVAL_SUCCESS_RATE in tags for tags in curves.eval.values()) or any(
        C.M_COLLECT_SUCCESS_RATE in tags for tags in curves.collect.values())


def draw_success(axis, curves: ExperimentCurves, colour) -> None:
    """Eval success rate (mean over workers) and each worker's collect success rate,
    both against the experiment's total env steps."""
    steps, wall, mean, _, _ = eval_curve(curves, C.M_EVAL_SUCCESS_RATE)
    if len(steps):
        axis.plot(total_env_steps_at(curves, wall), mean, color=colour, label=curves.name,
                  marker=".")
    for tags in curves.collect.values():
        series = tags.get(C.M_COLLECT_SUCCESS_RATE)
        if series is not None:
            axis.plot(total_env_steps_at(curves, series.wall_times), series.values,
                      color=colour, alpha=0.6, linestyle="--")


def draw_experiment(ax: dict, curves: ExperimentCurves, colour) -> None:
    """One experiment's curves on every panel."""
    t0 = start_time(curves)
    steps, wall, mean, low, high = eval_curve(curves)
    if len(steps):
        env_steps = total_env_steps_at(curves, wall)
        for key, x in (("eval_steps", env_steps), ("eval_time", (wall - t0) / 60)):
            ax[key].plot(x, mean, color=colour, label=curves.name, marker=".")
            ax[key].fill_between(x, low, high, color=colour, alpha=0.2)
    for w, (_, tags) in enumerate(sorted(curves.collect.items())):
        label = curves.name if w == 0 else None
        ret = tags.get(C.M_RETURN)
        if ret is not None:
            ax["collect_return"].plot(ret.steps, ret.values, color=colour, alpha=0.6,
                                      label=label)
        speed = tags.get(C.M_ENV_STEPS_PER_SEC)
        if speed is not None:
            ax["collect_speed"].plot((speed.wall_times - t0) / 60, speed.values,
                                     color=colour, alpha=0.6, label=label)
    for key, tag in TRAIN_PANELS:
        series = curves.train.get(tag)
        if series is not None:
            ax[key].plot(series.steps, series.values, color=colour, label=curves.name)
    if "success" in ax:
        draw_success(ax["success"], curves, colour)


def plot_experiments(exp_dirs: list[Path], output: Path) -> Path:
    """One PNG of the experiments' curves, overlaid one colour each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiments = load_for_plot(exp_dirs)
    panels = dict(PANELS)
    if any(has_success(curves) for curves in experiments):
        panels["success"] = SUCCESS_PANEL
    rows = -(-len(panels) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(16, 4 * rows))
    ax = dict(zip(panels, axes.flat))
    for unused in axes.flat[len(panels):]:
        unused.set_visible(False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, curves in enumerate(experiments):
        draw_experiment(ax, curves, colours[i % len(colours)])
    for key, (title, xlabel) in panels.items():
        ax[key].set_title(title)
        ax[key].set_xlabel(xlabel)
        ax[key].grid(alpha=0.3)
        if ax[key].get_legend_handles_labels()[0]:
            ax[key].legend(fontsize="small")
    if "success" in ax:
        ax["success"].set_ylim(-0.05, 1.05)
    fig.suptitle("SAC learning curves: " + ", ".join(c.name for c in experiments))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the title
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80)
    plt.close(fig)
    return output


def main(argv=None) -> int:
    """The plot command."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dirs", nargs="+", type=Path, help="experiment directories")
    parser.add_argument("--output", type=Path,
                        help="PNG to write (default: <first exp dir>/learning_curves.png)")
    args = parser.parse_args(argv)
    output = args.output or ExperimentPaths(args.exp_dirs[0]).learning_curves
    if output.suffix.lower() != ".png":
        print(f"error: --output {output}: must end in .png", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    import_quietly()
    try:
        plot_experiments(args.exp_dirs, output)
    except PlotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    print(f"learning curves: {output}")
    return 0
