"""Learning benchmark: the presets against RL Baselines3 Zoo, at equal env steps.

    ./benchmarks/run.sh learning [--tasks ENV_ID ...] [--variants sac sac_gsde ...]
        [--env_steps N] [--seeds K]
        [--first_seed S] [--with-sb3] [--sb3_env_steps N] [--sb3_tasks ENV_ID ...]
        [--sb3_seeds K] [--work DIR] [--output FILE.md] [--override NAME=VALUE ...]
        [--report_only]

For every task and seed it trains the task's preset through the real
`./run_script.sh` (real processes, one gradient step per env step held by the
replay ratio) until N env steps, as the sweep variant `params.num_iter` of a
sweep file whose seeds are the task ids: experiment
`<work>/logs/<ENV_ID>_<N>_task_<seed>`. The preset: `examples/manipulation.py`
(SAC + hindsight experience replay) for the goal-conditioned panda-gym tasks (ids
starting with `Panda`, e.g. PandaReach-v3, PandaPush-v3), `examples/locomotion.py`
for every other task (PyBullet `*BulletEnv-v0`, gymnasium MuJoCo `HalfCheetah-v4`,
...). Each task has its own launch files (config, sweep, variables), so each
names its own preset. Runs go one after the other, never two at once. An
interrupted benchmark resumes: finished experiments are read as they are,
interrupted ones resume from their checkpoints.

With `--with-sb3` it also trains Stable-Baselines3 SAC with the zoo's
hyperparameters for the task (and, when `--variants` has `crossq`, sb3-contrib's
CrossQ with its defaults, the peer of ours) (`benchmarks/sb3_peer.py`: PyBullet the zoo's
tuned values, MuJoCo SB3's defaults, panda-gym SAC + HerReplayBuffer) on the same
CPUs, one run after the other, in a virtual environment it builds under the work
directory from `benchmarks/sb3_requirements.txt` (torch and gymnasium never enter
the project's environment). A finished SB3 run is kept; an interrupted one starts
over. `--sb3_env_steps` can be short (a peer whose step costs many of ours): the line
under the task's table compares the training pace, seconds per env step while
learning with warm-ups and evaluations left out (ours from 10k env steps after the
warm-up to the end, the peer's between its first and last evaluation; a budget under
three evaluation periods is evaluated three times).

Variants (`--variants`, `VARIANTS`): the preset with some settings changed (`sac`:
as shipped; `sac_gsde`: gSDE exploration; `crossq`: CrossQ, `crossq_w512` and
`crossq_w256` with narrower critics), each trained on every task and seed as
experiments `<ENV_ID>__<variant>_<N>_task_<seed>` (the default variant keeps the
names above). The report has a column group per variant, the targets per variant
and a curve per variant.

Then it writes the report (default `docs/learning.md`) and a PNG of the curves
beside it, from every run found under the work directory (earlier invocations
included) and every run recorded beside the report (`<report>.runs.json`, which it
rewrites: commit it with the report, and a later invocation on a fresh machine or
with another work directory still shows those runs): per task and env-step mark the
greedy eval return over seeds against the zoo's reference run, the wall clock to the
mark and, where SB3 ran, its return, wall clock and the ratio ours/SB3. A
hand-written analysis below the marker line of an existing report is kept.

The zoo reference of a task is `benchmarks/reference/zoo/<ENV_ID>.evaluations.csv`;
a task without one of its own is compared with the zoo's older version of it
(`zoo_task`): gymnasium MuJoCo `-v4`/`-v5` with gym's `-v3` (HalfCheetah-v4 ->
HalfCheetah-v3), panda-gym 3 `Panda*-v3` with panda-gym 2's `-v2` (PandaReach-v3 ->
PandaReach-v2). The report says so under the task: compare with care.

Success rates: where our runs log `eval/success_rate` (the env reports success) or
the zoo's file has a `success_rate` column, the task's table also has the zoo's
success rate, ours (mean ± sd over seeds, and per seed) and SB3's at each mark.

Marks (`task_marks`): 50k, 100k, 200k, 300k, 500k and 1M up to the task's largest
budget, and every budget; when that largest budget is at most 100k (`SMALL_BUDGET`)
also 5k and 10k (`EARLY_MARKS`: a PandaReach run learns within 10k); and the task's
target mark (below) when runs reach it.

Targets: for a task whose zoo reference has a success rate, our mean success rate
at the target mark against the zoo's (PandaReach: 1.00 at 10k, PandaPush: 0.80 at
300k; `SUCCESS_TARGET_MARKS`, other success tasks at 300k); for every other task our
mean greedy return at 300k against the zoo's. Met or not is said only where runs
reached the mark ("not reached" otherwise).

Env steps are every transition the workers collected, the uniform-random
warm-up included, as the zoo counts them. A policy's env steps are those
collected by the time the learner reached its train step; returns, success rates
and wall clock at a mark are interpolated linearly between the two evaluations
around it.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.records import EvalSummary, LaunchRecord

ROOT = Path(__file__).resolve().parents[1]
LOCOMOTION_PRESET = ROOT / "examples" / "locomotion.py"
MANIPULATION_PRESET = ROOT / "examples" / "manipulation.py"
PRESET = LOCOMOTION_PRESET  # every task that is not a panda-gym one
ZOO_DIR = ROOT / "benchmarks" / "reference" / "zoo"
SB3_REQUIREMENTS = ROOT / "benchmarks" / "sb3_requirements.txt"
SB3_SCRIPT = ROOT / "benchmarks" / "sb3_peer.py"
DEFAULT_TASKS = ("HalfCheetahBulletEnv-v0", "HopperBulletEnv-v0", "AntBulletEnv-v0")
MARKS = (50_000, 100_000, 200_000, 300_000, 500_000, 1_000_000)
EARLY_MARKS = (5_000, 10_000)  # rows too when a task's largest budget is small
SMALL_BUDGET = 100_000
TARGET_MARK = 300_000
# A zoo reference with a success rate: the target is its success rate at this mark
# (keyed by the zoo's task id; others at TARGET_MARK).
SUCCESS_TARGET_MARKS = {"PandaReach-v2": 10_000, "PandaPush-v2": 300_000}
# A gymnasium id without a zoo reference of its own -> the zoo's older version of it.
ZOO_OLDER_VERSIONS = (
    (re.compile(r"^(?P<name>Panda\w+)-v3$"), "{name}-v2"),  # panda-gym 3 -> panda-gym 2
    (re.compile(r"^(?P<name>\w+)-v[45]$"), "{name}-v3"),  # gymnasium MuJoCo -> gym v3
)
OLDER_VERSION_NOTE = "gym v3 tasks / panda-gym 2; compare with care"


def older_version_note(zoo_task_id: str) -> str:
    """What the older task the zoo ran is, for one task."""
    kind = "panda-gym 2" if zoo_task_id.startswith("Panda") else "gym v3, mujoco-py"
    return f"{kind}; compare with care"


RECORDS_SUFFIX = ".runs.json"  # beside the report: every run it showed (merge_records)
NOTES_MARKER = "<!-- hand-written analysis below: kept when the benchmark rewrites this file -->"
# The variants `--variants` compares, each on top of every task's preset: (hyperparameter
# overrides, config entries). "sac" is the preset as shipped. "sac_gsde": gSDE with the
# zoo's values (log std -3; the zoo redraws the noise at each 64-step rollout).
# "crossq": CrossQ (the config's "agent") with its own defaults and the preset's rest;
# "crossq_w512", "crossq_w256": with narrower critics (the widths' cost, README).
VARIANTS = {
    "sac": ({}, {}),
    "sac_gsde": ({"use_sde": True, "sde_sample_freq": 64, "sde_log_std_init": -3.0}, {}),
    "crossq": ({}, {"agent": "crossq"}),
    "crossq_w512": ({"crossq_critic_layers": (512, 512)}, {"agent": "crossq"}),
    "crossq_w256": ({"crossq_critic_layers": (256, 256)}, {"agent": "crossq"}),
}
DEFAULT_VARIANT = "sac"
VARIANT_INFIX = "__"  # <task>__<variant>_<budget>: the default variant's names are as before
EXP_PATTERN = re.compile(r"^(?P<task>.+?)(?:" + VARIANT_INFIX
                         + r"(?P<variant>[a-z0-9]+(?:_[a-z0-9]+)*))?_(?P<budget>\d+k?)"
                         + re.escape(C.TASK_INFIX) + r"(?P<seed>\d+)$")


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


def variant_stem(task: str, variant: str = DEFAULT_VARIANT) -> str:
    """A task's runs in a variant are named from this (the default variant's: the task)."""
    return task if variant == DEFAULT_VARIANT else f"{task}{VARIANT_INFIX}{variant}"


def experiment_name(task: str, env_steps: int, variant: str = DEFAULT_VARIANT) -> str:
    return f"{variant_stem(task, variant)}_{budget_label(env_steps)}"


def variant_settings(variant: str, overrides: dict) -> tuple[dict, dict]:
    """(hyperparameter overrides, config entries) of a variant, `--override`s on top."""
    if variant not in VARIANTS:
        raise BenchmarkError(f"--variants {variant}: unknown; known: {', '.join(VARIANTS)}")
    params, config = VARIANTS[variant]
    return {**params, **overrides}, dict(config)


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

def is_panda(task: str) -> bool:
    """A goal-conditioned panda-gym task (PandaReach-v3, PandaPush-v3, ...)."""
    return task.startswith("Panda")


def preset_for(task: str) -> Path:
    """The preset a task trains with: manipulation (SAC + HER) for panda-gym tasks,
    locomotion for every other."""
    return MANIPULATION_PRESET if is_panda(task) else LOCOMOTION_PRESET


def preset_params(overrides: dict, task: str = DEFAULT_TASKS[0],
                  variant: str = DEFAULT_VARIANT):
    """The hyperparameters of `task`'s preset in a variant with the overrides (no env is
    made)."""
    from tfagents_system.params import load_params

    params, config = variant_settings(variant, overrides)
    return load_params(preset_for(task), {"env_id": task, **config}, overrides=params,
                       overrides_source="--override" if variant == DEFAULT_VARIANT
                       else f"--variants {variant} / --override")


def iterations_for(env_steps: int, overrides: dict, task: str = DEFAULT_TASKS[0],
                   variant: str = DEFAULT_VARIANT) -> int:
    """Iterations whose train steps, after the warm-up, bring the run to `env_steps`
    env steps (the workers run a little ahead of the learner: the limiter's slack)."""
    params = preset_params(overrides, task, variant)
    warmup = (params.n_buffer_init_steps if params.n_buffer_init_steps is not None
              else params.min_replay_size)
    train_steps = max(1, env_steps - max(warmup, params.min_replay_size))
    return max(1, math.ceil(train_steps / params.num_steps_per_iter))


def write_launch_files(work: Path, task: str, env_steps: int, seeds: int,
                       overrides: dict, variant: str = DEFAULT_VARIANT) -> Path:
    """The config, sweep and training variables of one task's runs in a variant, with
    the task's preset; returns the variables file. Task id = seed; the sweep lists seeds
    0..seeds-1."""
    name = experiment_name(task, env_steps, variant)
    params, entries = variant_settings(variant, overrides)
    files = work / "launch"
    files.mkdir(parents=True, exist_ok=True)
    config = files / f"{variant_stem(task, variant)}.json"
    config.write_text(json.dumps({"env_id": task, **entries}, indent=1) + "\n")
    grid = {"params.num_iter": [iterations_for(env_steps, overrides, task, variant)]}
    grid.update({f"params.{k}": [v] for k, v in params.items()})
    sweep = files / f"{name}.sweep.json"
    sweep.write_text(json.dumps({"grid": grid, "seeds": list(range(seeds))}, indent=1) + "\n")
    variables = files / f"{name}.sh"
    variables.write_text(
        "# Written by benchmarks/learning.py\n"
        f"SAC_PARAMS={preset_for(task)}\nSAC_CONFIG={config}\nSAC_EXP_NAME={name}\n"
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
               overrides: dict, variant: str = DEFAULT_VARIANT) -> Path:
    """Train (or resume, or skip when finished) one run; returns its experiment dir."""

    exp = work / "logs" / C.task_experiment_name(experiment_name(task, env_steps, variant),
                                                 seed)
    episodes = preset_params(overrides, task, variant).n_eval_episodes
    if (exp / C.COMPLETE_FILE).is_file():
        log(f"{exp.name}: finished earlier, read as it is")
        target = final_eval_missing(exp)
        if target is not None:
            evaluate_final(exp, target, episodes)
        return exp
    variables = write_launch_files(work, task, env_steps, seeds, overrides, variant)
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
        evaluate_final(exp, target, episodes)
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
    # Evaluations that logged a success rate (eval/success_rate: the env reports one).
    success_env_steps: list[float] = field(default_factory=list)
    success: list[float] = field(default_factory=list)
    variant: str = DEFAULT_VARIANT
    machine: str = ""  # where it ran (merge_records stamps the runs of the work directory)

    def return_at(self, mark: int) -> float | None:
        return interpolate(self.env_steps, self.returns, mark)

    def success_at(self, mark: int) -> float | None:
        return interpolate(self.success_env_steps, self.success, mark)

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
    # The success rate of the same evaluations (mean over workers), where logged.
    success_steps, _, success_mean, _, _ = plot.eval_curve(curves, C.M_EVAL_SUCCESS_RATE)
    successes = {int(s): float(r) for s, r in zip(success_steps, success_mean)}
    final = exp / FINAL_EVAL_DIR / C.EVAL_SUMMARY_FILE
    by_benchmark = False
    if final.is_file():  # the final policy, evaluated by the benchmark (see evaluate_final)
        summary = EvalSummary.read(final)
        by_benchmark = int(summary.train_step) not in evals
        evals.setdefault(int(summary.train_step), float(summary.mean_return))
        if summary.success_rate is not None:
            successes.setdefault(int(summary.train_step), float(summary.success_rate))
    eval_steps = [s for s in sorted(evals) if s in at_step]
    eval_returns = [evals[s] for s in eval_steps]
    eval_times = np.array([at_step[s] for s in eval_steps])
    eval_env_steps = plot.total_env_steps_at(curves, eval_times).tolist()
    with_success = [(e, successes[s]) for s, e in zip(eval_steps, eval_env_steps)
                    if s in successes]
    learner_steps = sorted(at_step)
    learner_times = np.array([at_step[s] for s in learner_steps])
    settings = json.loads(settings_file.read_text())
    rates = curves.train.get(C.M_GRAD_STEPS_PER_SEC)
    return Run(
        name=exp.name, task=match["task"], seed=int(match["seed"]),
        budget=parse_budget(match["budget"]), complete=(exp / C.COMPLETE_FILE).is_file(),
        env_steps=eval_env_steps, returns=eval_returns,
        progress_env_steps=np.maximum.accumulate(
            plot.total_env_steps_at(curves, learner_times)).tolist(),
        progress_seconds=active_seconds(launches, events, learner_times).tolist(),
        grad_rate=float(np.median(rates.values)) if rates is not None and len(rates.values)
        else None,
        settings=settings, final_by_benchmark=by_benchmark,
        success_env_steps=[e for e, _ in with_success], success=[r for _, r in with_success],
        variant=match["variant"] or DEFAULT_VARIANT)


def collect_runs(work: Path) -> list[Run]:
    root = work / "logs"
    runs = [read_run(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    return [r for r in runs if r is not None]


# --- the zoo reference and the SB3 peer ---

def zoo_task(task: str) -> str:
    """The zoo reference's task id for `task`: its own where the zoo has it, else the
    older version the zoo ran (ZOO_OLDER_VERSIONS: HalfCheetah-v4 -> HalfCheetah-v3,
    PandaReach-v3 -> PandaReach-v2), else `task` itself (no reference)."""
    if (ZOO_DIR / f"{task}.evaluations.csv").is_file():
        return task
    for pattern, older in ZOO_OLDER_VERSIONS:
        match = pattern.match(task)
        if match:
            return older.format(**match.groupdict())
    return task


@dataclass
class ZooCurve:
    """A zoo reference run's greedy evaluations."""

    task: str  # the zoo's task id: an older version of ours where they differ
    env_steps: list[float]
    returns: list[float]
    success: list[float] | None = None  # panda-gym: the success_rate column

    def return_at(self, mark: int) -> float | None:
        return interpolate(self.env_steps, self.returns, mark)

    def success_at(self, mark: int) -> float | None:
        return interpolate(self.env_steps, self.success, mark) if self.success else None


def zoo_curve(task: str) -> ZooCurve | None:
    """The zoo reference of `task` (see zoo_task), or None."""
    reference = zoo_task(task)
    path = ZOO_DIR / f"{reference}.evaluations.csv"
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return ZooCurve(reference, [float(r["timesteps"]) for r in rows],
                    [float(r["mean_return"]) for r in rows],
                    [float(r["success_rate"]) for r in rows] if "success_rate" in header
                    else None)


def success_target_mark(zoo: ZooCurve | None) -> int:
    return SUCCESS_TARGET_MARKS.get(zoo.task, TARGET_MARK) if zoo else TARGET_MARK


def sb3_settings(task: str, algo: str = "sac") -> dict:
    """The SB3 peer's settings for `task` (benchmarks/sb3_peer.py, which imports
    nothing outside the standard library at the top)."""
    from benchmarks import sb3_peer

    try:
        return sb3_peer.peer_settings(task, algo)
    except ValueError as exc:
        raise BenchmarkError(f"--with-sb3: {exc}") from exc


def sb3_algo(variant: str) -> str:
    """The peer of a variant: sb3-contrib's CrossQ for ours, SB3 SAC with the zoo's
    settings (gSDE included) for the others."""
    return "crossq" if variant.startswith("crossq") else "sac"


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


def sb3_path(work: Path, task: str, env_steps: int, seed: int, algo: str = "sac") -> Path:
    return work / "sb3" / f"{experiment_name(task, env_steps, algo)}_seed{seed}.jsonl"


def read_sb3(path: Path) -> dict | None:
    """An SB3 run's records, or None unless it finished."""
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records or not records[-1].get("done"):
        return None
    evals = [r for r in records if "mean_return" in r]
    successes = [r for r in evals if r.get("success_rate") is not None]
    return {"env_steps": [r["env_steps"] for r in evals],
            "returns": [r["mean_return"] for r in evals],
            "seconds": [r["wall_s"] for r in evals],
            "train_seconds": [r["wall_s"] - r["eval_s"] for r in evals],
            "success_env_steps": [r["env_steps"] for r in successes],
            "success": [r["success_rate"] for r in successes],
            "done": records[-1]}


def train_sb3(work: Path, python: Path, task: str, env_steps: int, seed: int,
              eval_episodes: int, algo: str = "sac") -> Path:
    path = sb3_path(work, task, env_steps, seed, algo)
    if read_sb3(path) is not None:
        log(f"SB3 {path.stem}: finished earlier, read as it is")
        return path
    log(f"SB3 {path.stem}: training ({budget_label(env_steps)} env steps, seed {seed})")
    # A budget shorter than three of the task's evaluation periods evaluates three times,
    # so its training pace (peer_pace) has points to be read from.
    every = min(sb3_settings(task, algo)["eval_every"], max(env_steps // 3, 1))
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    console = path.with_suffix(".log")
    path.parent.mkdir(parents=True, exist_ok=True)
    with console.open("w") as out:
        code = subprocess.call(
            ["taskset", "-c", cpus, str(python), str(SB3_SCRIPT), "--env_id", task,
             "--env_steps", str(env_steps), "--seed", str(seed), "--eval_every", str(every),
             "--eval_episodes",
             str(eval_episodes), "--algo", algo, "--output", str(path)],
            stdout=out, stderr=subprocess.STDOUT, cwd=work)
    if code != 0:
        raise BenchmarkError(f"SB3 {path.stem}: exited {code}; see {console}")
    return path


def collect_sb3(work: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    root = work / "sb3"
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        match = re.match(r"^(?P<task>.+?)(?:" + VARIANT_INFIX + r"(?P<algo>[a-z0-9]+))?"
                         r"_(?P<budget>\d+k?)_seed(?P<seed>\d+)$", path.stem)
        run = read_sb3(path)
        if match and run:
            run.update(task=match["task"], seed=int(match["seed"]),
                       budget=parse_budget(match["budget"]), algo=match["algo"] or "sac")
            found.setdefault(match["task"], []).append(run)
    return found


# --- the runs kept beside the report ---

def records_path(report: Path) -> Path:
    """The file beside a report that keeps every run it showed (`<report>.runs.json`)."""
    return report.with_name(report.stem + RECORDS_SUFFIX)


def _sb3_key(run: dict) -> tuple:
    return run["task"], run["algo"], run["budget"], run["seed"]


def machine_label(machine: dict) -> str:
    """A run's machine in the Runs table: CPU model and CPUs the runs had."""
    return f"{machine['cpu_model']}, {len(machine['available_cpus'])} CPUs"


def merge_records(path: Path, runs: list[Run], sb3: dict[str, list[dict]], machine: str
                  ) -> tuple[list[Run], dict[str, list[dict]]]:
    """The runs found in the work directory (which ran on `machine`) together with those
    recorded in `path` by earlier invocations (another machine's, a deleted work
    directory's); a run found in both is the work directory's. Writes the union back
    to `path`."""
    for run in runs:
        run.machine = run.machine or machine
    ours = {r.name: r for r in runs}
    peers = {_sb3_key(r): {**r, "machine": r.get("machine") or machine}
             for task_runs in sb3.values() for r in task_runs}
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            for record in kept.get("ours", []):
                ours.setdefault(record["name"], Run(**record))
            for record in kept.get("sb3", []):
                peers.setdefault(_sb3_key(record), record)
        except (ValueError, TypeError, KeyError) as exc:
            raise BenchmarkError(f"{path}: not a record of runs ({exc}); restore it from git "
                                 "or move it away to start the record afresh") from exc
    merged_sb3: dict[str, list[dict]] = {}
    for key in sorted(peers):
        merged_sb3.setdefault(key[0], []).append(peers[key])
    merged = [ours[name] for name in sorted(ours)]
    lines = {"ours": [_compact(asdict(r)) for r in merged],
             "sb3": [_compact(peers[k]) for k in sorted(peers)]}
    text = "{\n" + ",\n".join(f'"{group}": [\n' + ",\n".join(records) + "\n]"
                               for group, records in lines.items()) + "\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader never sees half a record
    return merged, merged_sb3


def _compact(record: dict) -> str:
    """One run on one line, floats to 3 decimals (a record stays diffable in git)."""
    rounded = json.loads(json.dumps(record), parse_float=lambda t: round(float(t), 3))
    return json.dumps(rounded, separators=(",", ":"))


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


def by_variant(runs: list[Run]) -> dict[str, list[Run]]:
    """A task's runs per variant (VARIANTS' order, then by name), one run per seed each."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.variant, []).append(run)
    order = list(VARIANTS)
    return {v: one_run_per_seed(groups[v]) for v in sorted(
        groups, key=lambda v: (order.index(v) if v in order else len(order), v))}


def ours_label(variant: str, groups: dict) -> str:
    """"ours" where a task has only the default variant's runs, else "ours <variant>"."""
    return "ours" if list(groups) == [DEFAULT_VARIANT] else f"ours {variant}"


def has_success(runs: list[Run], zoo: ZooCurve | None) -> bool:
    """Whether a task's table shows success rates: our runs logged one or the zoo's
    reference has one."""
    return any(r.success for r in runs) or bool(zoo and zoo.success)


def task_target(task: str, runs: list[Run], zoo: ZooCurve | None) -> dict:
    """What a task is held to: the zoo's success rate at its target mark where the zoo
    reference (or, without one, our runs) has a success rate, else the zoo's greedy
    return at TARGET_MARK; with our mean over the seeds that reached the mark."""
    success = bool(zoo.success) if zoo else any(r.success for r in runs)
    mark = success_target_mark(zoo) if success else TARGET_MARK
    if success:
        values = [v for v in (r.success_at(mark) for r in runs) if v is not None]
        reference = zoo.success_at(mark) if zoo else None
    else:
        values = [v for v in (r.return_at(mark) for r in runs) if v is not None]
        reference = zoo.return_at(mark) if zoo else None
    return {"metric": "success rate" if success else "greedy return", "mark": mark,
            "zoo": reference, "mean": mean_sd(values)[0], "seeds": len(values),
            "digits": 2 if success else 0, "zoo_task": zoo.task if zoo else None}


def task_marks(runs: list[Run], target_mark: int | None = None) -> list[int]:
    """MARKS up to the largest budget and every budget; EARLY_MARKS too when that
    budget is at most SMALL_BUDGET; the target mark when reached (module docstring)."""
    top = max(r.budget for r in runs)
    marks = {m for m in MARKS if m <= top} | {r.budget for r in runs}
    if top <= SMALL_BUDGET:
        marks |= {m for m in EARLY_MARKS if m <= top}
    if target_mark is not None and target_mark <= top:
        marks.add(target_mark)
    return sorted(marks)


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _over_seeds(values: list[float | None], digits: int) -> str:
    """`mean ± sd (seeds)` of the values there are, or "not reached"."""
    there = [v for v in values if v is not None]
    mean, sd = mean_sd(there)
    return f"{fmt(mean, digits)} ± {fmt(sd, digits)} ({len(there)})" if there else "not reached"


def _sb3_at(runs: list[dict], xs: str, ys: str, mark: int) -> list[float]:
    return [v for v in (interpolate(s.get(xs, []), s.get(ys, []), mark) for s in runs)
            if v is not None]


def reference_line(task: str, zoo: ZooCurve | None) -> str:
    """The line under a task's heading: its preset and its zoo reference."""
    preset = f"Preset: `{preset_for(task).relative_to(ROOT)}`"
    if zoo is None:
        return f"{preset}. No zoo reference for this task: ours and SB3 only."
    if zoo.task != task:
        return (f"{preset}. Zoo reference: `{zoo.task}`, the older version of this task "
                f"({older_version_note(zoo.task)}).")
    return f"{preset}. Zoo reference: `{zoo.task}`."


def _wall(runs: list[Run], mark: int) -> float | None:
    walls = [w for w in (r.seconds_at(mark) for r in runs) if w is not None]
    return statistics.fmean(walls) if walls else None


def _ours_columns(groups: dict, success: bool) -> list[str]:
    columns = []
    for variant in groups:
        label = ours_label(variant, groups)
        columns += [f"{label}: mean ± sd (seeds)", f"{label} per seed"]
    if success:
        columns.append("zoo success rate")
        for variant in groups:
            label = ours_label(variant, groups)
            columns += [f"{label} success rate: mean ± sd (seeds)",
                        f"{label} success rate per seed"]
    return columns + [f"{ours_label(v, groups)} wall clock, min" for v in groups]


def _ours_cells(groups: dict, success: bool, zoo: ZooCurve | None, mark: int) -> list[str]:
    cells = []
    for runs in groups.values():
        cells += [_over_seeds([r.return_at(mark) for r in runs], 0),
                  ", ".join(f"{fmt(r.return_at(mark))} (s{r.seed})" for r in runs)]
    if success:
        cells.append(fmt(zoo.success_at(mark) if zoo else None, 2))
        for runs in groups.values():
            cells += [_over_seeds([r.success_at(mark) for r in runs], 2),
                      ", ".join(f"{fmt(r.success_at(mark), 2)} (s{r.seed})" for r in runs)]
    return cells + [minutes(_wall(runs, mark)) for runs in groups.values()]


SB3_PEERS = {"sac": "SB3", "crossq": "sb3-contrib CrossQ"}  # a peer's label in the tables


def _peer_columns(label: str, ours: str, success: bool) -> list[str]:
    return ([f"{label} here: return"] + ([f"{label} here: success rate"] if success else [])
            + [f"{label} wall clock, min (training only)", f"wall clock {ours} / {label}"])


def _peer_cells(peer: list[dict], ours: list[Run], success: bool, mark: int) -> list[str]:
    """A peer's return (and success rate), wall clock and our wall clock's ratio to it."""
    returns = _sb3_at(peer, "env_steps", "returns", mark)
    walls = _sb3_at(peer, "env_steps", "seconds", mark)
    train = _sb3_at(peer, "env_steps", "train_seconds", mark)
    wall = _wall(ours, mark)
    ratio = wall / statistics.fmean(walls) if wall and walls else None
    ratio_train = wall / statistics.fmean(train) if wall and train else None
    cells = [f"{fmt(statistics.fmean(returns))} ({len(returns)})" if returns else "n/a"]
    if success:
        rates = _sb3_at(peer, "success_env_steps", "success", mark)
        cells.append(f"{fmt(statistics.fmean(rates), 2)} ({len(rates)})" if rates else "n/a")
    return cells + [f"{minutes(statistics.fmean(walls))} ({minutes(statistics.fmean(train))})"
                    if walls else "n/a",
                    f"{ratio:.2f} ({ratio_train:.2f})" if ratio is not None else "n/a"]


def _peers(groups: dict, sb3: list[dict]) -> list[tuple[str, list[dict], list[Run]]]:
    """(label, peer runs, our runs its wall clock is compared with): SB3 SAC always (our
    default variant's, else the first variant's, against it), sb3-contrib's CrossQ
    where it ran (our crossq variant, else the first crossq_* one, against it)."""
    first = groups.get(DEFAULT_VARIANT, next(iter(groups.values())))
    peers = [(SB3_PEERS["sac"], [r for r in sb3 if r.get("algo", "sac") == "sac"], first)]
    crossq = [r for r in sb3 if r.get("algo") == "crossq"]
    if crossq:
        ours = groups.get("crossq") or next(
            (g for v, g in groups.items() if v.startswith("crossq")), [])
        peers.append((SB3_PEERS["crossq"], crossq, ours))
    return peers


PACE_SKIP = 10_000  # env steps after a run's warm-up before its training pace is read


def training_pace(run: Run) -> float | None:
    """Our seconds per env step while the learner trains: the wall clock's slope over
    env steps from the warm-up (`n_buffer_init_steps`) + PACE_SKIP, once the replay
    ratio holds the learner and workers together, to the run's last point."""
    warmup = run.settings.get("hyperparameters", {}).get("n_buffer_init_steps") or 0
    points = [(e, s) for e, s in zip(run.progress_env_steps, run.progress_seconds)
              if e >= warmup + PACE_SKIP]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def peer_pace(peer: dict) -> float | None:
    """A peer's seconds per env step while it trains, its evaluations left out: the
    slope of its training seconds from its first evaluation to its last."""
    xs, ys = peer.get("env_steps", []), peer.get("train_seconds", [])
    if len(xs) < 2 or xs[-1] <= xs[0]:
        return None
    return (ys[-1] - ys[0]) / (xs[-1] - xs[0])


def pace_lines(peers: list[tuple[str, list[dict], list[Run]]], groups: dict) -> list[str]:
    """Under a task's table, for each peer that ran: its training pace and ours, the
    ratio at equal env steps that a short peer budget can give (PACE_SKIP, peer_pace)."""
    lines = []
    for label, peer, ours in peers:
        paced = [(p, pace) for p in peer if (pace := peer_pace(p)) is not None]
        theirs = [pace for _, pace in paced]
        mine = [p for p in map(training_pace, ours) if p is not None]
        if not theirs or not mine:
            continue
        spans = ", ".join(f"{budget_label(int(p['env_steps'][0]))}-"
                          f"{budget_label(int(p['env_steps'][-1]))}" for p, _ in paced)
        name = ours_label(ours[0].variant, groups)
        lines.append(
            f"- Training pace, seconds per env step (learning, evaluations left out): "
            f"{name} {statistics.fmean(mine) * 1000:.1f} ms (mean of {len(mine)} run(s), "
            f"from {budget_label(PACE_SKIP)} env steps after the warm-up to the end), "
            f"{label} {statistics.fmean(theirs) * 1000:.1f} ms ({len(theirs)} run(s), "
            f"env steps {spans}): {name} / {label} = "
            f"{statistics.fmean(mine) / statistics.fmean(theirs):.2f}.")
    return [""] + lines if lines else []


def task_table(task: str, runs: list[Run], sb3: list[dict]) -> tuple[list[str], dict]:
    """The markdown rows of one task (a column group per variant and per peer) and its
    target per variant (task_target)."""
    zoo = zoo_curve(task)
    groups = by_variant(runs)
    success = has_success(runs, zoo)
    targets = {v: task_target(task, group, zoo) for v, group in groups.items()}
    peers = _peers(groups, sb3)
    columns = ["env steps", "zoo reference", *_ours_columns(groups, success)]
    for label, _, ours in peers:
        columns += _peer_columns(label, ours_label(ours[0].variant, groups) if ours
                                 else "ours crossq", success)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    every = [r for group in groups.values() for r in group]
    for mark in task_marks(every, max(t["mark"] for t in targets.values())):
        cells = [mark_label(mark), fmt(zoo.return_at(mark) if zoo else None),
                 *_ours_cells(groups, success, zoo, mark)]
        for _, peer, ours in peers:
            cells += _peer_cells(peer, ours, success, mark)
        lines.append("| " + " | ".join(cells) + " |")
    return lines + pace_lines(peers, groups), targets


def target_lines(tasks: list[str], targets: dict[str, dict]) -> list[str]:
    lines = ["## Targets", "",
             "Our mean over the seeds that reached the mark against the zoo reference's "
             "value there: the success rate where the zoo's run reports one (PandaReach at "
             "10k, PandaPush at 300k), the greedy return at 300k for the other tasks. Met or "
             "not only where runs reached the mark.", "",
             "| task | zoo at the mark | ours (mean over seeds) | seeds | met | target |",
             "|---|---|---|---|---|---|"]
    for task in tasks:
        for variant, t in targets[task].items():
            met = ("not reached" if not t["seeds"] else "n/a" if t["zoo"] is None
                   else "yes" if t["mean"] >= t["zoo"] - 1e-9 else "no")
            what = f"{t['metric']} at {mark_label(t['mark'])} ≥ the zoo's"
            if t["zoo_task"] is None:
                what += " (no zoo reference)"
            elif t["zoo_task"] != task:
                what += f" (`{t['zoo_task']}`: {older_version_note(t['zoo_task'])})"
            name = task if list(targets[task]) == [DEFAULT_VARIANT] else f"{task} ({variant})"
            lines.append(f"| {name} | {fmt(t['zoo'], t['digits'])} | "
                         f"{fmt(t['mean'], t['digits'])} | {t['seeds']} | {met} | {what} |")
    return lines


def run_lines(runs: list[Run]) -> list[str]:
    lines = ["| run | seed | budget | state | evaluations | last eval (env steps) | "
             "learner median grad steps/s | wall clock, min | machine |", "|" + "---|" * 9]
    for r in runs:
        last = (f"{fmt(r.returns[-1])} ({fmt(r.env_steps[-1] / 1000, 1)}k)" if r.returns
                else "n/a")
        if r.success:
            last += f", success rate {fmt(r.success[-1], 2)}"
        state = "complete" if r.complete else "interrupted"
        if r.final_by_benchmark:
            state += " (final policy evaluated by the benchmark: the run stopped before its " \
                     "workers did)"
        lines.append(f"| {r.name} | {r.seed} | {budget_label(r.budget)} | "
                     f"{state} | {len(r.returns)} | "
                     f"{last} | {fmt(r.grad_rate)} | "
                     f"{minutes(r.progress_seconds[-1] if r.progress_seconds else None)} | "
                     f"{r.machine or 'this one'} |")
    return lines


PRESET_KEYS = ("discount", "target_update_tau", "actor_learning_rate", "critic_learning_rate",
               "alpha_learning_rate", "actor_fc_layers", "critic_joint_fc_layers",
               "batch_size", "time_feature", "her_strategy", "her_goals_per_transition",
               "n_buffer_init_steps", "min_replay_size", "samples_per_insert",
               "samples_per_insert_error_buffer", "replay_capacity", "target_entropy",
               "reward_scale_factor", "n_eval_episodes", "eval_period_itrs",
               "num_steps_per_iter")


def preset_lines(runs: list[Run]) -> list[str]:
    """Each preset's settings as its first run recorded them."""
    lines = []
    for preset in sorted({preset_for(r.task) for r in runs}):
        first = next(r for r in runs if preset_for(r.task) == preset)
        hp = first.settings.get("hyperparameters", {})
        shown = ", ".join(f"`{k}={hp[k]}`" for k in PRESET_KEYS if k in hp)
        lines += [f"Settings of `{preset.relative_to(ROOT)}` as the runs recorded them "
                  f"(`settings.json`): {shown}.", ""]
    return lines


def measured_lines(tasks: list[str]) -> list[str]:
    """"How it is measured", for the kinds of task the report has."""
    panda = any(is_panda(t) for t in tasks)
    bullet = any("BulletEnv" in t for t in tasks)
    mujoco = any(not is_panda(t) and "BulletEnv" not in t for t in tasks)
    presets = "`examples/locomotion.py`" if not panda else (
        "the task's preset (`examples/manipulation.py`, SAC + hindsight experience replay, "
        "for panda-gym tasks; `examples/locomotion.py` for the others)")
    zoo = []
    if bullet:
        zoo.append("PyBullet: one seed each, the zoo's tuned settings with gSDE, 10 episodes "
                   "every 10k env steps")
    if mujoco:
        zoo.append("MuJoCo: the gym v3 tasks, one seed each, SB3's SAC defaults, 20 episodes "
                   "every 10k env steps")
    if panda:
        zoo.append("panda-gym: panda-gym 2 (`-v2`), one seed each, SAC + HER, 20 episodes "
                   "every 5k (PandaReach) or 50k (PandaPush) env steps, with the success rate")
    return [
        f"- Ours: {presets} trained by `./run_script.sh` (replay server, learner and worker "
        "processes, the CPU layout `auto` picks), one gradient step per env step held by "
        "the replay ratio. Greedy evaluation (the preset's `n_eval_episodes` episodes; the "
        "success rate where the env reports one) every `eval_period_itrs` iterations.",
        "- Env steps are all transitions the workers collected, the preset's uniform-random "
        "warm-up (`n_buffer_init_steps`) included, as the zoo counts them. An evaluated "
        "policy is placed at the env steps collected when the learner reached its train "
        "step; the return (and success rate) at a mark is interpolated linearly between the "
        "evaluations around it.",
        "- Wall clock: from the launch (`launches.jsonl`) to the moment the learner had "
        "trained the policy of the mark, process start-up included; time between a stop and "
        "a relaunch is not counted. SB3: from its process start to the mark; in brackets "
        "without the time its evaluations took (the conservative figure for the ratio; our "
        "worker evaluates while the learner trains on).",
        "- Zoo reference: the public RL Baselines3 Zoo runs (`benchmarks/reference/zoo/`; "
        + "; ".join(zoo) + "), measured on other hardware: compare returns and success "
        "rates only. A gymnasium task the zoo did not run is compared with its older "
        f"version ({OLDER_VERSION_NOTE}), as said under the task.",
        "- SB3 here: Stable-Baselines3 SAC with the zoo's hyperparameters for the task "
        "(`benchmarks/sb3_peer.py`), on the same CPUs in the same benchmark run.",
    ]


def write_report(path: Path, runs: list[Run], sb3: dict[str, list[dict]], machine: dict,
                 command: str) -> Path:
    notes = ""
    if path.is_file() and NOTES_MARKER in path.read_text():
        notes = path.read_text().split(NOTES_MARKER, 1)[1]
    png = path.with_suffix(".png")
    tasks = sorted({r.task for r in runs}, key=_task_order)
    presets = sorted({preset_for(t).stem for t in tasks})
    title = (f"the {presets[0]} preset" if len(presets) == 1
             else f"the {' and '.join(presets)} presets")
    out = [
        f"# Learning: {title} against RL Baselines3 Zoo",
        "",
        f"Written by `./benchmarks/run.sh learning` on {machine['date']}; last command: "
        f"`{command}`. The tables cover every run under the benchmark's work directory "
        f"and every run recorded in `{records_path(path).name}` beside this report by "
        "earlier invocations (other machines' and deleted work directories' runs).",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu_model']}; {len(machine['available_cpus'])} CPU(s) available "
        f"to the runs ({', '.join(map(str, machine['available_cpus']))}) of "
        f"{machine['logical_cpus']} logical; memory {machine['memory_gib']} GiB",
        f"- {machine['platform']}; Python {machine['python']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"- code: git {machine['revision']}",
        "- This is the machine that wrote the report; the Runs table names the machine "
        "each run ran on.",
        "",
        "## How it is measured",
        "",
        *measured_lines(tasks),
        "",
    ]
    out += preset_lines(runs)
    targets = {}
    for task in tasks:
        lines, targets[task] = task_table(task, [r for r in runs if r.task == task],
                                          sb3.get(task, []))
        out += [f"## {task}", "", reference_line(task, zoo_curve(task)), "", *lines, ""]
    out += target_lines(tasks, targets)
    out += ["", f"![learning curves]({png.name})", "", "## Runs", "", *run_lines(runs), "",
            NOTES_MARKER]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + (notes if notes else "\n"))
    plot_curves(png, tasks, runs, sb3)
    return path


def _task_order(task: str) -> tuple[int, str]:
    return (DEFAULT_TASKS.index(task) if task in DEFAULT_TASKS else len(DEFAULT_TASKS), task)


VARIANT_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


def _plot_variant(ax, runs: list[Run], success: bool, top: int, color: str, label: str):
    """One variant's runs (thin) and their mean over seeds (thick)."""
    for r in runs:
        ax.plot(r.success_env_steps if success else r.env_steps,
                r.success if success else r.returns, color=color, alpha=0.35, lw=1)
    grid = np.linspace(0, top, 101)
    stacked = [[r.success_at(x) if success else r.return_at(x) for r in runs] for x in grid]
    mean = [np.mean([v for v in vals if v is not None]) if any(v is not None for v in vals)
            else np.nan for vals in stacked]
    ax.plot(grid, mean, color=color, lw=2, label=label)


def plot_curves(png: Path, tasks: list[str], runs: list[Run], sb3: dict) -> Path:
    """One panel of greedy returns per task; one of success rates per task that has
    them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(task, "return") for task in tasks] + [
        (task, "success") for task in tasks
        if has_success([r for r in runs if r.task == task], zoo_curve(task))]
    cols = min(3, max(1, len(panels)))
    rows = math.ceil(max(1, len(panels)) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (task, kind) in zip(axes.flat, panels):
        success = kind == "success"
        groups = by_variant([r for r in runs if r.task == task])
        top = max(r.budget for group in groups.values() for r in group)
        for color, (variant, task_runs) in zip(VARIANT_COLORS, groups.items()):
            _plot_variant(ax, task_runs, success, top, color,
                          f"{ours_label(variant, groups)}, mean of {len(task_runs)} seed(s)")
        zoo = zoo_curve(task)
        ys = (zoo.success if success else zoo.returns) if zoo else None
        if ys:
            keep = [i for i, x in enumerate(zoo.env_steps) if x <= max(top, MARKS[0])]
            older = f", {zoo.task}" if zoo.task != task else ""
            ax.plot([zoo.env_steps[i] for i in keep], [ys[i] for i in keep], color="black",
                    ls="--", label=f"RL Baselines3 Zoo (reference{older})")
        labelled = set()
        for s in sb3.get(task, []):
            algo = s.get("algo", "sac")
            ax.plot(s.get("success_env_steps", []) if success else s["env_steps"],
                    s.get("success", []) if success else s["returns"],
                    color="tab:orange" if algo == "sac" else "tab:olive", ls=":", lw=2,
                    label=None if algo in labelled else
                    "SB3 here (zoo settings)" if algo == "sac" else "sb3-contrib CrossQ here")
            labelled.add(algo)
        ax.set_title(f"{task}: success rate" if success else task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("greedy eval success rate" if success else "greedy eval return")
        if success:
            ax.set_ylim(-0.05, 1.05)
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
    parser.add_argument("--variants", nargs="+", default=[DEFAULT_VARIANT],
                        help=f"variants of the preset to train and compare: "
                             f"{', '.join(VARIANTS)} (default: {DEFAULT_VARIANT})")
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
    sb3_tasks = (args.sb3_tasks or args.tasks) if args.with_sb3 else []
    for task in dict.fromkeys(args.tasks + sb3_tasks):
        zoo = zoo_curve(task)
        if zoo is None:
            log(f"no zoo reference for {task} (looked for {zoo_task(task)}): trained, "
                "shown without one")
        elif zoo.task != task:
            log(f"{task}: compared with the zoo's {zoo.task}, the older version of the task "
                f"({older_version_note(zoo.task)})")
    for task in dict.fromkeys(args.tasks + sb3_tasks):  # a bad --override or variant
        for variant in args.variants:  # fails here, before any run
            preset_params(overrides, task, variant)
    algos = sorted({sb3_algo(v) for v in args.variants})
    for task in sb3_tasks:  # as does a task the SB3 peer has no settings for
        for algo in algos:
            sb3_settings(task, algo)
    for task in args.tasks:
        for variant in args.variants:
            for seed in range(args.first_seed, args.seeds):
                train_ours(args.work, task, args.env_steps, seed, args.seeds, overrides,
                           variant)
    if args.with_sb3:
        python = ensure_sb3_venv(args.work)
        for task in sb3_tasks:
            # SB3 evaluates as many episodes as our preset does for the task.
            episodes = preset_params(overrides, task).n_eval_episodes
            for algo in algos:  # SB3 SAC, and sb3-contrib's CrossQ for ours
                for seed in range(args.sb3_seeds):
                    train_sb3(args.work, python, task, args.sb3_env_steps or args.env_steps,
                              seed, episodes, algo)


def benchmark(argv: list[str]) -> Path:
    """Train what the arguments ask for, then write the report; its path."""
    from tfagents_system import cli

    args = parse_args(argv)
    overrides = dict(parse_override(o) for o in args.override)
    cli.import_quietly()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train_all(args, overrides)
    from benchmarks.run import describe_machine

    machine = describe_machine()
    runs, sb3 = merge_records(records_path(args.output), collect_runs(args.work),
                              collect_sb3(args.work), machine_label(machine))
    if not runs:
        raise BenchmarkError(f"no runs with evaluations under {args.work / 'logs'} or in "
                             f"{records_path(args.output)}; run the benchmark without "
                             "--report_only first")
    command = ("./benchmarks/run.sh learning " + " ".join(argv)).strip()
    return write_report(args.output, runs, sb3, machine, command)


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
