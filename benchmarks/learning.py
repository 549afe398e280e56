"""Learning benchmark: the locomotion preset against RL Baselines3 Zoo, at equal env steps.

    ./benchmarks/run.sh learning [--tasks ENV_ID ...] [--env_steps N] [--seeds K]
        [--first_seed S] [--with-sb3] [--sb3_env_steps N] [--sb3_tasks ENV_ID ...]
        [--sb3_seeds K] [--work DIR] [--output FILE.md] [--override NAME=VALUE ...]
        [--report_only]

For every task and seed it trains `examples/locomotion.py` through the real
`./run_script.sh` (real processes, one gradient step per env step held by the
replay ratio) until N env steps, as the sweep variant `params.num_iter` of a
sweep file whose seeds are the task ids: experiment
`<work>/logs/<ENV_ID>_<N>_task_<seed>`. Runs go one after the other, never two at
once. An interrupted benchmark resumes: finished experiments are read as they
are, interrupted ones resume from their checkpoints.

With `--with-sb3` it also trains Stable-Baselines3 SAC with the zoo's
hyperparameters (`benchmarks/sb3_peer.py`) on the same CPUs, one run after the
other, in a virtual environment it builds under the work directory from
`benchmarks/sb3_requirements.txt` (torch and gymnasium never enter the project's
environment). A finished SB3 run is kept; an interrupted one starts over.

Then it writes the report (default `docs/learning.md`) and a PNG of the curves
beside it, from every run found under the work directory (earlier invocations
included): per task and env-step mark (50k, 100k, 200k, 300k, 500k and 1M as far
as runs reach, and any other budget), the greedy eval return over seeds against
the zoo's reference run, the wall clock to the mark and, where SB3 ran, its
return, wall clock and the ratio ours/SB3. A hand-written analysis below the
marker line of an existing report is kept.

Env steps are every transition the workers collected, the uniform-random
warm-up included, as the zoo counts them. A policy's env steps are those
collected by the time the learner reached its train step; returns and wall clock
at a mark are interpolated linearly between the two evaluations around it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.records import EvalSummary, LaunchRecord

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "examples" / "locomotion.py"
ZOO_DIR = ROOT / "benchmarks" / "reference" / "zoo"
SB3_REQUIREMENTS = ROOT / "benchmarks" / "sb3_requirements.txt"
SB3_SCRIPT = ROOT / "benchmarks" / "sb3_peer.py"
DEFAULT_TASKS = ("HalfCheetahBulletEnv-v0", "HopperBulletEnv-v0", "AntBulletEnv-v0")
MARKS = (50_000, 100_000, 200_000, 300_000, 500_000, 1_000_000)
TARGET_MARK = 300_000
NOTES_MARKER = "<!-- hand-written analysis below: kept when the benchmark rewrites this file -->"
EXP_PATTERN = re.compile(r"^(?P<task>.+)_(?P<budget>\d+k?)" + re.escape(C.TASK_INFIX)
                         + r"(?P<seed>\d+)$")


class BenchmarkError(Exception):
    """Bad arguments or a failed run; the message is the one line shown."""


# --- names ---

def budget_label(env_steps: int) -> str:
    return f"{env_steps // 1000}k" if env_steps % 1000 == 0 else str(env_steps)


def parse_budget(label: str) -> int:
    return int(label[:-1]) * 1000 if label.endswith("k") else int(label)


def mark_label(steps: int) -> str:
    if steps >= 1_000_000 and steps % 1_000_000 == 0:
        return f"{steps // 1_000_000}M"
    return budget_label(steps)


def experiment_name(task: str, env_steps: int) -> str:
    return f"{task}_{budget_label(env_steps)}"


def parse_override(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise BenchmarkError(f"--override {text!r}: write NAME=VALUE, e.g. n_eval_episodes=2")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name, value


# --- our runs ---

def preset_params(overrides: dict):
    from tfagents_system.params import load_params

    return load_params(PRESET, {"env_id": DEFAULT_TASKS[0]}, overrides=overrides,
                       overrides_source="--override")


def iterations_for(env_steps: int, overrides: dict) -> int:
    """Iterations whose train steps, after the warm-up, bring the run to `env_steps`
    env steps (the workers run a little ahead of the learner: the limiter's slack)."""
    params = preset_params(overrides)
    warmup = (params.n_buffer_init_steps if params.n_buffer_init_steps is not None
              else params.min_replay_size)
    train_steps = max(1, env_steps - max(warmup, params.min_replay_size))
    return max(1, math.ceil(train_steps / params.num_steps_per_iter))


def write_launch_files(work: Path, task: str, env_steps: int, seeds: int,
                       overrides: dict) -> Path:
    """The config, sweep and training variables of one task's runs; returns the
    variables file. Task id = seed; the sweep lists seeds 0..seeds-1."""
    name = experiment_name(task, env_steps)
    files = work / "launch"
    files.mkdir(parents=True, exist_ok=True)
    config = files / f"{task}.json"
    config.write_text(json.dumps({"env_id": task}, indent=1) + "\n")
    grid = {"params.num_iter": [iterations_for(env_steps, overrides)]}
    grid.update({f"params.{k}": [v] for k, v in overrides.items()})
    sweep = files / f"{name}.sweep.json"
    sweep.write_text(json.dumps({"grid": grid, "seeds": list(range(seeds))}, indent=1) + "\n")
    variables = files / f"{name}.sh"
    variables.write_text(
        "# Written by benchmarks/learning.py\n"
        f"SAC_PARAMS={PRESET}\nSAC_CONFIG={config}\nSAC_EXP_NAME={name}\n"
        f"SAC_LOGS_DIR={work / 'logs'}\nSAC_SWEEP={sweep}\nSAC_FINAL_VIDEO=0\n")
    return variables


FINAL_EVAL_DIR = "benchmark_final_eval"


def final_eval_missing(exp: Path) -> int | None:
    """The target train step of a finished run whose workers did not evaluate it (the run
    was stopped between the learner's last checkpoint and their final evaluation)."""
    from tfagents_system.tools import plots as plot

    if not (exp / C.COMPLETE_FILE).is_file() or (exp / FINAL_EVAL_DIR).is_dir():
        return None
    target = int(json.loads((exp / C.COMPLETE_FILE).read_text())["train_step"])
    steps = plot.eval_curve(plot.load_experiment_curves(exp))[0]
    return None if target in set(int(s) for s in steps) else target


def evaluate_final(exp: Path, target: int, episodes: int) -> None:
    """Evaluate a finished run's final policy with the evaluation CLI, as its workers
    would have (greedy, `n_eval_episodes` episodes), into <exp>/benchmark_final_eval."""
    log(f"{exp.name}: its workers did not evaluate the final policy; evaluating it "
        f"({episodes} episodes, tfagents_system.run)")
    result = subprocess.run(
        [sys.executable, "-m", "tfagents_system.run", "--exp_dir", str(exp), "--checkpoint",
         str(target), "--num_episodes", str(episodes), "--no_video", "--output",
         str(exp / FINAL_EVAL_DIR)], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchmarkError(f"{exp.name}: evaluating the final policy failed:\n"
                             f"{result.stderr[-1500:]}")


def train_ours(work: Path, task: str, env_steps: int, seed: int, seeds: int,
               overrides: dict) -> Path:
    """Train (or resume, or skip when finished) one run; returns its experiment dir."""

    exp = work / "logs" / C.task_experiment_name(experiment_name(task, env_steps), seed)
    if (exp / C.COMPLETE_FILE).is_file():
        log(f"{exp.name}: finished earlier, read as it is")
        target = final_eval_missing(exp)
        if target is not None:
            evaluate_final(exp, target, preset_params(overrides).n_eval_episodes)
        return exp
    variables = write_launch_files(work, task, env_steps, seeds, overrides)
    log(f"{exp.name}: {'resuming' if exp.is_dir() else 'training'} "
        f"({budget_label(env_steps)} env steps, seed {seed})")
    out = work / "console" / f"{exp.name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as console:
        code = subprocess.call([str(ROOT / "run_script.sh"), str(variables)], cwd=ROOT,
                               stdout=console, stderr=subprocess.STDOUT,
                               env=dict(os.environ, SAC_PYTHON=sys.executable,
                                        SAC_TASK_ID=str(seed)))
    if code != 0:
        tail = out.read_text()[-1500:]
        raise BenchmarkError(f"{exp.name}: ./run_script.sh exited {code} (console log {out}); "
                             f"relaunch the benchmark to resume:\n{tail}")
    target = final_eval_missing(exp)
    if target is not None:
        evaluate_final(exp, target, preset_params(overrides).n_eval_episodes)
    return exp


@dataclass
class Run:
    """One training run, as the report needs it."""

    name: str
    task: str
    seed: int
    budget: int
    complete: bool
    env_steps: list[float] = field(default_factory=list)  # per evaluation
    returns: list[float] = field(default_factory=list)
    progress_env_steps: list[float] = field(default_factory=list)  # per learner event
    progress_seconds: list[float] = field(default_factory=list)
    grad_rate: float | None = None
    settings: dict = field(default_factory=dict)
    final_by_benchmark: bool = False  # the workers' final evaluation was missing

    def return_at(self, mark: int) -> float | None:
        return interpolate(self.env_steps, self.returns, mark)

    def seconds_at(self, mark: int) -> float | None:
        return interpolate(self.progress_env_steps, self.progress_seconds, mark)


def interpolate(xs, ys, x: float) -> float | None:
    """y at x, linear between the points around it; None outside the points."""
    if not len(xs) or x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def active_seconds(launch_times: list[float], event_times: np.ndarray,
                   at: np.ndarray) -> np.ndarray:
    """Seconds the experiment ran up to each time in `at`: from each launch to its last
    event (TensorBoard), so time between a stop and a relaunch does not count."""
    starts = sorted(launch_times)
    events = np.sort(event_times)
    total = np.zeros(len(at))
    for i, start in enumerate(starts):
        later = starts[i + 1] if i + 1 < len(starts) else math.inf
        inside = events[(events >= start) & (events < later)]
        end = inside[-1] if len(inside) else start
        total += np.clip(np.minimum(at, end) - start, 0.0, None)
    return total


def read_run(exp: Path) -> Run | None:
    """Our run's evaluations against env steps and its wall clock; None before any."""
    from datetime import datetime

    from tfagents_system.tools import plots as plot

    match = EXP_PATTERN.match(exp.name)
    settings_file = exp / C.SETTINGS_FILE
    if match is None or not settings_file.is_file():
        return None
    curves = plot.load_experiment_curves(exp)
    progress = curves.train.get(C.M_CRITIC_LOSS)
    steps, _, mean, _, _ = plot.eval_curve(curves)
    if progress is None or not len(steps):
        return None
    # The learner's wall time at each train step it logged (the latest, after a resume).
    at_step = dict(zip(progress.steps.tolist(), progress.wall_times.tolist()))
    launches = [datetime.strptime(LaunchRecord.from_json(json.loads(line)).time,
                                  "%Y-%m-%dT%H:%M:%S%z").timestamp()
                for line in (exp / C.LAUNCHES_FILE).read_text().splitlines() if line.strip()]
    first = min(launches)
    at_step.setdefault(0, first)
    events = np.concatenate([s.wall_times for group in (curves.collect, curves.eval)
                             for tags in group.values() for s in tags.values()]
                            + [s.wall_times for s in curves.train.values()])
    evals = {int(s): float(r) for s, r in zip(steps, mean)}
    final = exp / FINAL_EVAL_DIR / C.EVAL_SUMMARY_FILE
    by_benchmark = False
    if final.is_file():  # the final policy, evaluated by the benchmark (see evaluate_final)
        summary = EvalSummary.read(final)
        by_benchmark = int(summary.train_step) not in evals
        evals.setdefault(int(summary.train_step), float(summary.mean_return))
    eval_steps = [s for s in sorted(evals) if s in at_step]
    eval_returns = [evals[s] for s in eval_steps]
    eval_times = np.array([at_step[s] for s in eval_steps])
    learner_steps = sorted(at_step)
    learner_times = np.array([at_step[s] for s in learner_steps])
    settings = json.loads(settings_file.read_text())
    rates = curves.train.get(C.M_GRAD_STEPS_PER_SEC)
    return Run(
        name=exp.name, task=match["task"], seed=int(match["seed"]),
        budget=parse_budget(match["budget"]), complete=(exp / C.COMPLETE_FILE).is_file(),
        env_steps=plot.total_env_steps_at(curves, eval_times).tolist(),
        returns=eval_returns,
        progress_env_steps=np.maximum.accumulate(
            plot.total_env_steps_at(curves, learner_times)).tolist(),
        progress_seconds=active_seconds(launches, events, learner_times).tolist(),
        grad_rate=float(np.median(rates.values)) if rates is not None and len(rates.values)
        else None,
        settings=settings, final_by_benchmark=by_benchmark)


def collect_runs(work: Path) -> list[Run]:
    root = work / "logs"
    runs = [read_run(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    return [r for r in runs if r is not None]


# --- the zoo reference and the SB3 peer ---

def zoo_curve(task: str) -> tuple[list[float], list[float]] | None:
    path = ZOO_DIR / f"{task}.evaluations.csv"
    if not path.is_file():
        return None
    rows = [line.split(",") for line in path.read_text().splitlines()
            if line and not line.startswith(("#", "timesteps"))]
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows]


def ensure_sb3_venv(work: Path) -> Path:
    """The SB3 peer's virtual environment (built once, rebuilt when the pins change)."""
    venv = work / "sb3-venv"
    python = venv / "bin" / "python"
    want = hashlib.sha256(SB3_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == want:
        return python
    log(f"building the Stable-Baselines3 environment in {venv} (first use; a few minutes)")
    base = getattr(sys, "_base_executable", sys.executable)
    for command in ([base, "-m", "venv", "--clear", str(venv)],
                    [str(python), "-m", "pip", "install", "--quiet",
                     "--disable-pip-version-check", "-r", str(SB3_REQUIREMENTS)]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchmarkError(f"building the SB3 environment failed: {' '.join(command)}:\n"
                                 f"{result.stderr[-1500:]}")
    stamp.write_text(want + "\n")
    return python


def sb3_path(work: Path, task: str, env_steps: int, seed: int) -> Path:
    return work / "sb3" / f"{experiment_name(task, env_steps)}_seed{seed}.jsonl"


def read_sb3(path: Path) -> dict | None:
    """An SB3 run's records, or None unless it finished."""
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records or not records[-1].get("done"):
        return None
    evals = [r for r in records if "mean_return" in r]
    return {"env_steps": [r["env_steps"] for r in evals],
            "returns": [r["mean_return"] for r in evals],
            "seconds": [r["wall_s"] for r in evals],
            "train_seconds": [r["wall_s"] - r["eval_s"] for r in evals],
            "done": records[-1]}


def train_sb3(work: Path, python: Path, task: str, env_steps: int, seed: int,
              eval_episodes: int) -> Path:
    path = sb3_path(work, task, env_steps, seed)
    if read_sb3(path) is not None:
        log(f"SB3 {path.stem}: finished earlier, read as it is")
        return path
    log(f"SB3 {path.stem}: training ({budget_label(env_steps)} env steps, seed {seed})")
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    console = path.with_suffix(".log")
    path.parent.mkdir(parents=True, exist_ok=True)
    with console.open("w") as out:
        code = subprocess.call(
            ["taskset", "-c", cpus, str(python), str(SB3_SCRIPT), "--env_id", task,
             "--env_steps", str(env_steps), "--seed", str(seed), "--eval_episodes",
             str(eval_episodes), "--output", str(path)],
            stdout=out, stderr=subprocess.STDOUT, cwd=work)
    if code != 0:
        raise BenchmarkError(f"SB3 {path.stem}: exited {code}; see {console}")
    return path


def collect_sb3(work: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    root = work / "sb3"
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        match = re.match(r"^(?P<task>.+)_(?P<budget>\d+k?)_seed(?P<seed>\d+)$", path.stem)
        run = read_sb3(path)
        if match and run:
            run.update(task=match["task"], seed=int(match["seed"]),
                       budget=parse_budget(match["budget"]))
            found.setdefault(match["task"], []).append(run)
    return found


# --- the report ---

def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f}"


def one_run_per_seed(runs: list[Run]) -> list[Run]:
    """For each seed the run with the largest budget (its early marks are the same run's)."""
    best: dict[int, Run] = {}
    for run in runs:
        if run.seed not in best or run.budget > best[run.seed].budget:
            best[run.seed] = run
    return [best[s] for s in sorted(best)]


def task_marks(runs: list[Run]) -> list[int]:
    top = max(r.budget for r in runs)
    marks = {m for m in MARKS if m <= top} | {r.budget for r in runs}
    return sorted(marks)


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def task_table(task: str, runs: list[Run], sb3: list[dict]) -> tuple[list[str], dict]:
    """The markdown rows of one task and its summary at the target mark."""
    zoo = zoo_curve(task)
    header = ("| env steps | zoo reference | ours: mean ± sd (seeds) | ours per seed | "
              "ours wall clock, min | SB3 here: return | SB3 wall clock, min (training "
              "only) | wall clock ours / SB3 |")
    lines = [header, "|" + "---|" * 8]
    at_target = [v for v in (r.return_at(TARGET_MARK) for r in runs) if v is not None]
    summary = {"mean": mean_sd(at_target)[0], "seeds": len(at_target),
               "zoo": interpolate(*zoo, TARGET_MARK) if zoo else None}
    for mark in task_marks(runs):
        values = [v for v in (r.return_at(mark) for r in runs) if v is not None]
        walls = [w for w in (r.seconds_at(mark) for r in runs) if w is not None]
        mean, sd = mean_sd(values)
        zoo_value = interpolate(*zoo, mark) if zoo else None
        sb3_returns = [v for v in (interpolate(s["env_steps"], s["returns"], mark)
                                   for s in sb3) if v is not None]
        sb3_walls = [v for v in (interpolate(s["env_steps"], s["seconds"], mark)
                                 for s in sb3) if v is not None]
        sb3_train = [v for v in (interpolate(s["env_steps"], s["train_seconds"], mark)
                                 for s in sb3) if v is not None]
        wall = statistics.fmean(walls) if walls else None
        ratio = (wall / statistics.fmean(sb3_walls) if wall and sb3_walls else None)
        ratio_train = (wall / statistics.fmean(sb3_train) if wall and sb3_train else None)
        per_seed = ", ".join(f"{fmt(r.return_at(mark))} (s{r.seed})" for r in runs)
        ours = (f"{fmt(mean)} ± {fmt(sd)} ({len(values)})" if values else "not reached")
        sb3_text = (f"{fmt(statistics.fmean(sb3_returns))} ({len(sb3_returns)})"
                    if sb3_returns else "n/a")
        sb3_wall = (f"{minutes(statistics.fmean(sb3_walls))} "
                    f"({minutes(statistics.fmean(sb3_train))})" if sb3_walls else "n/a")
        ratio_text = (f"{ratio:.2f} ({ratio_train:.2f})" if ratio is not None else "n/a")
        lines.append(f"| {mark_label(mark)} | {fmt(zoo_value)} | {ours} | {per_seed} | "
                     f"{minutes(wall)} | {sb3_text} | {sb3_wall} | {ratio_text} |")
    return lines, summary


def run_lines(runs: list[Run]) -> list[str]:
    lines = ["| run | seed | budget | state | evaluations | last eval (env steps) | "
             "learner median grad steps/s | wall clock, min |", "|" + "---|" * 8]
    for r in runs:
        last = (f"{fmt(r.returns[-1])} ({fmt(r.env_steps[-1] / 1000, 1)}k)" if r.returns
                else "n/a")
        state = "complete" if r.complete else "interrupted"
        if r.final_by_benchmark:
            state += " (final policy evaluated by the benchmark: the run stopped before its " \
                     "workers did)"
        lines.append(f"| {r.name} | {r.seed} | {budget_label(r.budget)} | "
                     f"{state} | {len(r.returns)} | "
                     f"{last} | {fmt(r.grad_rate)} | "
                     f"{minutes(r.progress_seconds[-1] if r.progress_seconds else None)} |")
    return lines


def preset_lines(runs: list[Run]) -> list[str]:
    if not runs:
        return []
    hp = runs[0].settings.get("hyperparameters", {})
    keys = ("discount", "target_update_tau", "actor_learning_rate", "critic_learning_rate",
            "alpha_learning_rate", "actor_fc_layers", "critic_joint_fc_layers", "batch_size",
            "time_feature", "n_buffer_init_steps", "min_replay_size", "samples_per_insert",
            "samples_per_insert_error_buffer", "replay_capacity", "target_entropy",
            "reward_scale_factor", "n_eval_episodes", "eval_period_itrs", "num_steps_per_iter")
    shown = ", ".join(f"`{k}={hp[k]}`" for k in keys if k in hp)
    return [f"Settings of `examples/locomotion.py` as the runs recorded them "
            f"(`settings.json`): {shown}."]


def write_report(path: Path, runs: list[Run], sb3: dict[str, list[dict]], machine: dict,
                 command: str) -> Path:
    notes = ""
    if path.is_file() and NOTES_MARKER in path.read_text():
        notes = path.read_text().split(NOTES_MARKER, 1)[1]
    png = path.with_suffix(".png")
    tasks = sorted({r.task for r in runs}, key=_task_order)
    out = [
        "# Learning: the locomotion preset against RL Baselines3 Zoo",
        "",
        f"Written by `./benchmarks/run.sh learning` on {machine['date']}; last command: "
        f"`{command}`. The tables cover every run under the benchmark's work directory.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu_model']}; {len(machine['available_cpus'])} CPU(s) available "
        f"to the runs ({', '.join(map(str, machine['available_cpus']))}) of "
        f"{machine['logical_cpus']} logical; memory {machine['memory_gib']} GiB",
        f"- {machine['platform']}; Python {machine['python']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"- code: git {machine['revision']}",
        "",
        "## How it is measured",
        "",
        "- Ours: `examples/locomotion.py` trained by `./run_script.sh` (replay server, "
        "learner and worker processes, the CPU layout `auto` picks), one gradient step per "
        "env step held by the replay ratio. Greedy evaluation (the preset's "
        "`n_eval_episodes` episodes) every `eval_period_itrs` iterations.",
        "- Env steps are all transitions the workers collected, the 10k uniform-random "
        "warm-up included, as the zoo counts them. An evaluated policy is placed at the env "
        "steps collected when the learner reached its train step; the return at a mark is "
        "interpolated linearly between the evaluations around it (ours every 10k train "
        "steps, the zoo's every 10k env steps, exactly on the marks).",
        "- Wall clock: from the launch (`launches.jsonl`) to the moment the learner had "
        "trained the policy of the mark, process start-up included; time between a stop and "
        "a relaunch is not counted. SB3: from its process start to the mark; in brackets "
        "without the time its evaluations took (the conservative figure for the ratio; our "
        "worker evaluates while the learner trains on).",
        "- Zoo reference: the public RL Baselines3 Zoo runs (one seed each, gSDE, "
        "`benchmarks/reference/zoo/`), measured on other hardware: compare returns only.",
        "- SB3 here: Stable-Baselines3 SAC with the zoo's hyperparameters "
        "(`benchmarks/sb3_peer.py`), on the same CPUs in the same benchmark run.",
        "",
    ]
    out += preset_lines(runs) + [""]
    summaries = {}
    for task in tasks:
        task_runs = one_run_per_seed([r for r in runs if r.task == task])
        lines, summaries[task] = task_table(task, task_runs, sb3.get(task, []))
        out += [f"## {task}", "", *lines, ""]
    out += ["## Targets at 300k env steps", "",
            "| task | zoo at 300k | ours (mean over seeds) | seeds | met |",
            "|---|---|---|---|---|"]
    for task in tasks:
        s = summaries[task]
        met = ("n/a" if s["mean"] is None or s["zoo"] is None
               else "yes" if s["mean"] >= s["zoo"] else "no")
        out.append(f"| {task} | {fmt(s['zoo'])} | {fmt(s['mean'])} | {s['seeds']} | {met} |")
    out += ["", f"![learning curves]({png.name})", "", "## Runs", "", *run_lines(runs), "",
            NOTES_MARKER]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + (notes if notes else "\n"))
    plot_curves(png, tasks, runs, sb3)
    return path


def _task_order(task: str) -> tuple[int, str]:
    return (DEFAULT_TASKS.index(task) if task in DEFAULT_TASKS else len(DEFAULT_TASKS), task)


def plot_curves(png: Path, tasks: list[str], runs: list[Run], sb3: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, max(1, len(tasks)))
    rows = math.ceil(max(1, len(tasks)) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        task_runs = one_run_per_seed([r for r in runs if r.task == task])
        top = max(r.budget for r in task_runs)
        for r in task_runs:
            ax.plot(r.env_steps, r.returns, color="tab:blue", alpha=0.35, lw=1)
        grid = np.linspace(0, top, 101)
        stacked = [[r.return_at(x) for r in task_runs] for x in grid]
        mean = [np.mean([v for v in vals if v is not None]) if any(v is not None for v in vals)
                else np.nan for vals in stacked]
        ax.plot(grid, mean, color="tab:blue", lw=2,
                label=f"ours, mean of {len(task_runs)} seed(s)")
        zoo = zoo_curve(task)
        if zoo:
            xs, ys = zoo
            keep = [i for i, x in enumerate(xs) if x <= max(top, MARKS[0])]
            ax.plot([xs[i] for i in keep], [ys[i] for i in keep], color="black", ls="--",
                    label="RL Baselines3 Zoo (reference)")
        for k, s in enumerate(sb3.get(task, [])):
            ax.plot(s["env_steps"], s["returns"], color="tab:orange", ls=":", lw=2,
                    label="SB3 here (zoo settings)" if k == 0 else None)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("greedy eval return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return png


# --- main ---

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--env_steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, default=2, help="seeds per task (0..K-1)")
    parser.add_argument("--first_seed", type=int, default=0,
                        help="train seeds first_seed..K-1 only (the others ran before)")
    parser.add_argument("--with-sb3", dest="with_sb3", action="store_true")
    parser.add_argument("--sb3_env_steps", type=int, help="default: --env_steps")
    parser.add_argument("--sb3_tasks", nargs="+", help="default: --tasks")
    parser.add_argument("--sb3_seeds", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "logs" / "learning")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "learning.md")
    parser.add_argument("--override", action="append", default=[],
                        help="NAME=VALUE: a preset hyperparameter for these runs (smoke tests)")
    parser.add_argument("--report_only", action="store_true",
                        help="write the report from the runs there are; train nothing")
    args = parser.parse_args(argv)
    if args.env_steps <= 0 or args.seeds <= 0 or not 0 <= args.first_seed < args.seeds:
        raise BenchmarkError("--env_steps and --seeds must be > 0 and --first_seed in "
                             "[0, --seeds)")
    if args.output.suffix != ".md":
        raise BenchmarkError(f"--output {args.output}: must end in .md (the PNG goes beside)")
    return args


def train_all(args, overrides: dict) -> None:
    """Every run the arguments ask for, one after the other (finished ones are kept)."""
    unknown = [t for t in args.tasks if zoo_curve(t) is None]
    if unknown:
        log(f"no zoo reference for {', '.join(unknown)}: trained, shown without one")
    preset_params(overrides)  # a bad --override fails here, before any run
    for task in args.tasks:
        for seed in range(args.first_seed, args.seeds):
            train_ours(args.work, task, args.env_steps, seed, args.seeds, overrides)
    if args.with_sb3:
        python = ensure_sb3_venv(args.work)
        episodes = preset_params(overrides).n_eval_episodes
        for task in args.sb3_tasks or args.tasks:
            for seed in range(args.sb3_seeds):
                train_sb3(args.work, python, task, args.sb3_env_steps or args.env_steps,
                          seed, episodes)


def benchmark(argv: list[str]) -> Path:
    """Train what the arguments ask for, then write the report; its path."""
    from tfagents_system import cli

    args = parse_args(argv)
    overrides = dict(parse_override(o) for o in args.override)
    cli.import_quietly()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train_all(args, overrides)
    runs = collect_runs(args.work)
    if not runs:
        raise BenchmarkError(f"no runs with evaluations under {args.work / 'logs'}; "
                             "run the benchmark without --report_only first")
    from benchmarks.run import describe_machine

    command = ("./benchmarks/run.sh learning " + " ".join(argv)).strip()
    return write_report(args.output, runs, collect_sb3(args.work), describe_machine(), command)


def main(argv=None) -> int:
    from tfagents_system.params import ParamsError

    try:
        path = benchmark(sys.argv[1:] if argv is None else argv)
    except (BenchmarkError, ParamsError) as exc:  # ParamsError: a bad --override
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the runs stopped where they were; run the same command again to "
              "resume them", file=sys.stderr)
        return 130
    log(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
