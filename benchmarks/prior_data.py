"""Learning from prior data: the report of the comparison runs (README, "Learning
from prior data").

    python benchmarks/prior_data.py [--logs logs] [--output docs/prior_data.md]

Reads the experiments the README's commands train (plain SAC
`prior_data_plain` for seed 0 and `prior_data_plain_task_1` for seed 1, and
`prior_data_<variant>_task_<seed>` for each variant) from their TensorBoard
files and writes a table and a PNG of the greedy eval return (mean over the
evaluation's episodes) against the train step. At one gradient step per env step
(`samples_per_insert = 256`, the same random warm-up in every run), train steps
are env steps less a constant. Per run: the first train step whose evaluation
reaches 900, the mean return of the evaluations up to 10k steps (early learning)
and of the last five. A hand-written analysis below the marker line of an
existing report is kept.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfagents_system.tools import plots as plot

VARIANTS = {  # name: (label, how it differs from plain SAC)
    "plain": ("plain SAC", "-"),
    "demos": ("demonstrations", "5,000 expert transitions, demo_ratio 0.25"),
    "bc": ("demonstrations + BC", "the same, and 2,000 behaviour-cloning steps first"),
    "nstep": ("3-step returns", "n_step = 3"),
    "prior": ("prior policy", "prior_policy: the collect policy of a 4k-step run"),
}
SOLVED = 900.0
EARLY_STEPS = 10_000
MARKER = "<!-- analysis: kept when the report is rewritten -->"


def experiment_dirs(logs: Path, variant: str) -> dict[int, Path]:
    """{seed: experiment directory} of a variant's finished or running runs."""
    found = {}
    for seed in range(10):
        name = (f"prior_data_{variant}" if variant == "plain" and seed == 0
                else f"prior_data_{variant}_task_{seed}")
        if (logs / name / "eval").is_dir():
            found[seed] = logs / name
    return found


def run_figures(exp_dir: Path) -> dict:
    """The eval curve of one run and its figures."""
    steps, _, mean, _, _ = plot.eval_curve(plot.load_experiment_curves(exp_dir))
    solved = steps[mean >= SOLVED]
    return {"steps": steps, "returns": mean,
            "solved_at": int(solved[0]) if len(solved) else None,
            "early": float(mean[(steps > 0) & (steps <= EARLY_STEPS)].mean()),
            "last5": float(mean[-5:].mean()), "final_step": int(steps[-1])}


def table(results: dict[str, dict[int, dict]]) -> list[str]:
    lines = ["| variant | what differs | seed | first eval >= 900 at | mean eval return "
             "1k-10k | mean of the last 5 evals | trained to |",
             "|---|---|---|---|---|---|---|"]
    for variant, runs in results.items():
        label, what = VARIANTS[variant]
        for seed, fig in sorted(runs.items()):
            solved = "never" if fig["solved_at"] is None else f"{fig['solved_at']:,}"
            lines.append(f"| {label} | {what} | {seed} | {solved} | {fig['early']:.0f} | "
                         f"{fig['last5']:.0f} | {fig['final_step']:,} |")
    return lines


def draw(results: dict[str, dict[int, dict]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, seed in zip(axes, (0, 1)):
        for variant, runs in results.items():
            if seed in runs:
                ax.plot(runs[seed]["steps"], runs[seed]["returns"], marker=".",
                        label=VARIANTS[variant][0])
        ax.set_title(f"InvertedPendulumBulletEnv-v0, seed {seed}")
        ax.set_xlabel("train step (= env steps - warm-up, 1 gradient step per env step)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("greedy eval return (5 episodes)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(output, dpi=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, default=REPO / "logs")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "prior_data.md")
    args = parser.parse_args(argv)
    results = {v: {s: run_figures(d) for s, d in experiment_dirs(args.logs, v).items()}
               for v in VARIANTS}
    results = {v: runs for v, runs in results.items() if runs}
    if not results:
        print(f"error: no prior_data_* experiments under {args.logs}", file=sys.stderr)
        return 2
    png = args.output.with_suffix(".png")
    draw(results, png)
    kept = ""
    if args.output.is_file() and MARKER in args.output.read_text():
        kept = args.output.read_text().split(MARKER, 1)[1]
    text = "\n".join([
        "# Learning from prior data: measured",
        "",
        f"Written by `benchmarks/prior_data.py` on {platform.node()} "
        f"({platform.processor() or platform.machine()}); the runs' settings: "
        "`examples/prior_data*.py/.sh/.json`.",
        "",
        *table(results),
        "",
        f"![curves]({png.name})",
        "",
        MARKER,
    ]) + (kept or "\n")
    args.output.write_text(text)
    print(f"wrote {args.output} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
