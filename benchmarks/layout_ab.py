"""Does the learner's own replay memory learn as Reverb's buffer did, at equal env steps?

    ./benchmarks/run.sh layout_ab [--seeds 0 1 2] [--num_iter N] [--output FILE]

For each seed, the default example (examples/inverted_pendulum.py, config/default.json)
is trained twice with ./run_script.sh, one run after the other:
- memory: `learner_keeps_replay = True` (the default; the packed_blocks layout: the
  learner keeps the buffer and samples it inside its compiled loop);
- reverb: `learner_keeps_replay = False` (the packed_transition layout: Reverb keeps
  and samples the buffer, as before the packed_blocks work).
Both run with `samples_per_insert = batch_size` (one gradient step per env step, as
published SAC trains), so a faster learner cannot buy more gradient steps per env
step and the curves are compared at equal env steps. Everything else, seeds
included, is the example's. The greedy evaluations (5 episodes each) are read from
TensorBoard; the summary per run is the mean over its evaluations (the area under
its curve) and its final evaluation. Writes a markdown report (default
docs/layout_ab.md). Takes about 3 minutes per run on a 2-CPU machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"memory": True, "reverb": False}
GRID_POINTS = 51

PARAMS = '''"""Written by benchmarks/layout_ab.py."""
import sys
sys.path.insert(0, {examples!r})
from inverted_pendulum import TrainParams as Example


class TrainParams(Example):
    seed = {seed}
    learner_keeps_replay = {keep}
    samples_per_insert = float(Example.batch_size)  # one gradient step per env step
{num_iter}'''


def train(work: Path, name: str, seed: int, keep: bool, num_iter: int | None) -> dict:
    params = work / f"{name}.py"
    params.write_text(PARAMS.format(
        examples=str(ROOT / "examples"), seed=seed, keep=keep,
        num_iter="" if num_iter is None else f"    num_iter = {num_iter}\n"))
    variables = work / f"{name}.sh"
    variables.write_text(f"SAC_PARAMS={params}\nSAC_CONFIG={ROOT / 'config' / 'default.json'}\n"
                         f"SAC_EXP_NAME={name}\nSAC_LOGS_DIR={work / 'logs'}\n")
    start = time.monotonic()
    result = subprocess.run([str(ROOT / "run_script.sh"), str(variables)], cwd=ROOT,
                            capture_output=True, text=True,
                            env=dict(os.environ, SAC_PYTHON=sys.executable))
    minutes = (time.monotonic() - start) / 60
    if result.returncode != 0:
        raise SystemExit(f"{name}: run_script.sh exited {result.returncode}:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return {"minutes": minutes, **read_run(work / "logs" / name)}


def read_run(exp_dir: Path) -> dict:
    from tfagents_system.replay.format import ReplayFormat
    from tfagents_system.tools import plots as plot

    curves = plot.load_experiment_curves(exp_dir)
    steps, wall, mean, _, _ = plot.eval_curve(curves)
    env_steps = plot.total_env_steps_at(curves, wall)
    layout = ReplayFormat.read(exp_dir / C.LAYOUT_FILE).layout
    return {"layout": layout, "steps": steps.tolist(), "env_steps": env_steps.tolist(),
            "returns": mean.tolist()}


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(runs: dict, seeds: list[int], args) -> str:
    from benchmarks.run import describe_machine

    machine = describe_machine()
    lines = ["# Replay memory vs Reverb's buffer: learning at equal env steps", "",
             f"Written by `benchmarks/layout_ab.py` on {time.strftime('%Y-%m-%d %H:%M')}: "
             f"{machine['cpu_model']}, {len(machine['available_cpus'])} CPUs, code git "
             f"{machine['revision']}.", "", __doc__.split("\n\n", 1)[1].strip(), "",
             "With a samples-per-insert limit, workers may run ahead of the learner by the "
             "limiter's slack. With the learner's memory, the experience queue holds about "
             "one more slack in front of the memory, so at equal train steps those runs have "
             "collected about that many more env steps (here about 1000): the summary "
             "therefore compares the curves both at equal train steps and at equal env "
             "steps.", ""]
    lines += ["## Greedy eval return (mean of 5 episodes) per train step", "",
              "In brackets: env steps collected by then (summed over workers).", "",
              "| run | layout | minutes | " + " | ".join(
                  str(s) for s in runs[next(iter(runs))]["steps"]) + " |",
              "|---|---|---|" + "---|" * len(runs[next(iter(runs))]["steps"])]
    for name, run in runs.items():
        lines.append(f"| {name} | {run['layout']} | {run['minutes']:.1f} | "
                     + " | ".join(f"{r:.0f} ({e / 1000:.1f}k)"
                                  for r, e in zip(run["returns"], run["env_steps"])) + " |")
    lines += [""]
    # Equal env steps: each run's curve against the env steps at its evaluations,
    # interpolated on a grid up to the fewest env steps any run reached.
    grid = np.linspace(0.0, min(r["env_steps"][-1] for r in runs.values()), GRID_POINTS)
    lines += ["## Summary over seeds " + ", ".join(map(str, seeds)), "",
              "| variant | mean eval return over the run (mean ± sd) | final eval return "
              f"(mean ± sd) | mean eval return at equal env steps, 0 to {grid[-1]:.0f} "
              "(mean ± sd) |", "|---|---|---|---|"]
    area, area_env = {}, {}
    for variant in VARIANTS:
        chosen = [runs[f"{variant}_seed{s}"] for s in seeds]
        area[variant] = [float(np.mean(r["returns"])) for r in chosen]
        area_env[variant] = [float(np.mean(np.interp(grid, r["env_steps"], r["returns"])))
                             for r in chosen]
        final = [r["returns"][-1] for r in chosen]
        lines.append("| {} | {:.0f} ± {:.0f} | {:.0f} ± {:.0f} | {:.0f} ± {:.0f} |".format(
            variant, *summary(area[variant]), *summary(final), *summary(area_env[variant])))
    lines += [""]
    for label, values in (("over the run (equal train steps)", area),
                          (f"at equal env steps (0 to {grid[-1]:.0f})", area_env)):
        lines += [f"Difference memory - reverb in the mean eval return {label}: "
                  + compare(values["memory"], values["reverb"]) + ".", ""]
    return "\n".join(lines)


def compare(memory: list[float], reverb: list[float]) -> str:
    paired = [m - r for m, r in zip(memory, reverb)]
    diff = statistics.mean(paired)
    if len(paired) < 2:
        return f"{diff:+.0f} (one seed, so no noise estimate)"
    error = statistics.stdev(paired) / np.sqrt(len(paired))
    verdict = ("within noise (|difference| <= 2 standard errors of the paired differences)"
               if abs(diff) <= 2 * error else "NOT within noise (|difference| > 2 standard "
               "errors of the paired differences)")
    return (f"{diff:+.0f} (per seed: {', '.join(f'{d:+.0f}' for d in paired)}; standard "
            f"error {error:.0f}): {verdict}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_iter", type=int, default=None,
                        help="iterations of 1000 train steps (default: the example's)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "layout_ab.md")
    args = parser.parse_args(argv)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="layout_ab_") as work:
        for seed in args.seeds:
            for variant, keep in VARIANTS.items():
                name = f"{variant}_seed{seed}"
                print(f"[{time.strftime('%H:%M:%S')}] training {name}", flush=True)
                runs[name] = train(Path(work), name, seed, keep, args.num_iter)
                print(f"  {runs[name]['layout']}: eval returns "
                      + ", ".join(f"{r:.0f}" for r in runs[name]["returns"]), flush=True)
    text = report(runs, args.seeds, args)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
