"""Evaluation across environment conditions: a policy's (or an ensemble's) return
as the environment changes, the robustness table and plot of sim-to-real papers.

    python -m tfagents_system.run --exp_dir logs/default --num_episodes 10 \\
        --sweep_config config/sweeps/joint_damping.json

A sweep file is JSON, in one of two forms. A parameter and its values,

    {"parameter": "joint_damping", "values": [0.0, 2.5, 5.0, 10.0],
     "config": {"domain_randomization": true}}

is one condition per value, labelled `joint_damping=2.5` and applied with
`env.set_state({"joint_damping": 2.5})` (the curriculum's interface, which
`DynamicsRandomizer` implements); with `"apply": "config"` the parameter is a
config key instead (dotted, as in training sweeps: `"max_episode_steps"`,
`"gym_kwargs.<name>"`). Or a list of conditions, each a label with a
`set_state` and/or a `config`:

    {"conditions": [{"label": "nominal"},
                    {"label": "heavy", "set_state": {"mass_scale_spread": 0.9}},
                    {"label": "short", "config": {"max_episode_steps": 50}}],
     "config": {"domain_randomization": true}}

The top-level "config" changes the experiment's config for every condition.

Every condition gets its own eval env, built with the same seed from the
changed config and then given its set_state, before any episode runs (a bad
condition stops the sweep at once). The conditions therefore see the same
initial states and random draws: a paired comparison. Each plays --num_episodes
greedy episodes; the output directory (default
`<exp>/evaluations/sweep_<file stem>_<checkpoint>_seed<S>/`) gets
robustness.csv and robustness.md (one row per condition), robustness.json (the
rows with every episode, the policy, the seed and the sweep) and robustness.png
(mean return ± std against the values, or the labels).
"""

from __future__ import annotations

import contextlib
import csv
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfagents_system.collection import TaskMetrics, play_episode
from tfagents_system.core import constants as C
from tfagents_system.core.files import write_json_atomic
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.values import is_number
from tfagents_system.curriculum import supports_set_state
from tfagents_system.settings import load_json_object
from tfagents_system.sweep import SweepError
from tfagents_system.tools.evaluation import EvalError, EvalPolicy, check_specs, load_eval_setup

FILE_KEYS = ("parameter", "values", "apply", "conditions", "config")
CONDITION_KEYS = ("label", "set_state", "config")
APPLY = ("set_state", "config")


@dataclass(frozen=True)
class Condition:
    """One environment condition: its label, its parameter value (None in a list of
    conditions), what it passes to set_state and the config keys it changes."""

    label: str
    value: Any = None
    set_state: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConditionSweep:
    """A sweep file: its conditions, its parameter (None for a list of conditions) and
    the config keys it changes for all of them."""

    path: Path
    parameter: str | None
    conditions: tuple[Condition, ...]
    config: dict


# --- The sweep file ---

def _read_object(path: Path, where: str) -> dict:
    """The file's JSON object, with known keys only."""
    data = load_json_object(path, where, EvalError,
                            "pass an existing JSON file to --sweep_config",
                            'like {"parameter": "joint_damping", "values": [0.0, 5.0]}')
    _check_keys(data, FILE_KEYS, where)
    return data


def _check_keys(data: dict, allowed, where: str) -> None:
    """EvalError naming the keys of `data` that are not `allowed`."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise EvalError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                        + ", ".join(allowed))


def _object(data: dict, key: str, where: str) -> dict:
    """data[key], an object ({} when absent)."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise EvalError(f'{where}: "{key}" must be an object, e.g. {{"joint_damping": 5.0}}')
    return value


def _parameter_conditions(data: dict, where: str) -> list[Condition]:
    """One condition per value of "parameter"."""
    parameter, values = data.get("parameter"), data.get("values")
    apply = data.get("apply", "set_state")
    if not isinstance(parameter, str) or not parameter:
        raise EvalError(f'{where}: "parameter" must be a non-empty string, e.g. "joint_damping"')
    if (not isinstance(values, list) or not values
            or not all(isinstance(v, (str, bool)) or is_number(v) for v in values)):
        raise EvalError(f'{where}: "values" must be a non-empty list of numbers (or strings), '
                        "e.g. [0.0, 5.0, 10.0]")
    if len({json.dumps(v) for v in values}) != len(values):
        raise EvalError(f'{where}: "values" lists a value twice; list each once')
    if apply not in APPLY:
        raise EvalError(f'{where}: "apply" must be "set_state" or "config", not {apply!r}')
    return [Condition(f"{parameter}={value}", value, **{apply: {parameter: value}})
            for value in values]


def _listed_condition(item, where: str) -> Condition:
    """One entry of "conditions"."""
    if not isinstance(item, dict):
        raise EvalError(f'{where}: must be an object {{"label": ..., "set_state": {{...}}, '
                        '"config": {...}}')
    _check_keys(item, CONDITION_KEYS, where)
    if not isinstance(item.get("label"), str) or not item["label"]:
        raise EvalError(f'{where}: "label" must be a non-empty string')
    return Condition(item["label"], set_state=_object(item, "set_state", where),
                     config=_object(item, "config", where))


def _listed_conditions(raw, where: str) -> list[Condition]:
    """The conditions of "conditions", with unique labels."""
    if not isinstance(raw, list) or not raw:
        raise EvalError(f'{where}: "conditions" must be a non-empty list of {{"label": ..., '
                        '"set_state": {...}, "config": {...}}')
    conditions = [_listed_condition(item, f'{where}: "conditions"[{i}]')
                  for i, item in enumerate(raw)]
    labels = [c.label for c in conditions]
    if len(set(labels)) != len(labels):
        raise EvalError(f'{where}: "conditions" repeat a label; give each its own')
    return conditions


def load_sweep(path: Path) -> ConditionSweep:
    """The conditions of a sweep file; EvalError naming the file and the field."""
    where = f"sweep file {path}"
    data = _read_object(Path(path), where)
    listed = "conditions" in data
    if listed == any(key in data for key in ("parameter", "values", "apply")):
        raise EvalError(f'{where}: give either "parameter" and "values" (and "apply") or '
                        '"conditions", not both or neither')
    conditions = (_listed_conditions(data["conditions"], where) if listed
                  else _parameter_conditions(data, where))
    return ConditionSweep(Path(path), data.get("parameter"), tuple(conditions),
                          _object(data, "config", where))


# --- Running it ---

def condition_env(sweep: ConditionSweep, condition: Condition, source: EvalPolicy, seed: int,
                  params_path: str | None, config_path: str | None):
    """The eval env of a condition, built from the config it changes (EvalError naming
    it), and the judge of its episodes."""
    where = f'sweep file {sweep.path}: condition "{condition.label}"'
    try:
        params, env = load_eval_setup(source.exp_dir, params_path, config_path, seed,
                                      {**sweep.config, **condition.config})
    except (EvalError, SweepError) as exc:
        raise EvalError(f"{where}: {exc}") from None
    return env, TaskMetrics(params)  # the params' success and metric hooks


def apply_condition(env, sweep: ConditionSweep, condition: Condition, policy) -> None:
    """Check the env against the policy and give it the condition's set_state."""
    where = f'sweep file {sweep.path}: condition "{condition.label}"'
    try:
        check_specs(env, policy)
    except EvalError as exc:
        raise EvalError(f"{where}: {exc}") from None
    if not condition.set_state:
        return
    if not supports_set_state(env):
        raise EvalError(f"{where}: sets {', '.join(condition.set_state)} with set_state, but the "
                        "eval env (through its wrappers) has no set_state(dict); for pybullet "
                        'dynamics add "config": {"domain_randomization": true} to the sweep '
                        "file, or implement set_state in your environment")
    try:
        env.set_state(dict(condition.set_state))
    except Exception as exc:  # the user's set_state: report whatever it raised
        raise EvalError(f"{where}: env.set_state({condition.set_state}) raised "
                        f"{type(exc).__name__}: {exc}") from None


def play(env, policy, judge: TaskMetrics) -> dict:
    """One greedy episode's measures, which `aggregate` summarises: its return, length
    and, when the env reports one, its success (`TrainParams.episode_success`)."""
    episode_return, length = play_episode(env, policy)
    judged = judge.record(env)
    success = {"success": judged[C.SUCCESS_RATE]} if C.SUCCESS_RATE in judged else {}
    return {"return": episode_return, "length": length, **success}


def aggregate(episodes: list[dict]) -> dict:
    """A condition's episodes summarised: its columns in the table (each key one)."""
    returns = np.array([e["return"] for e in episodes], dtype=float)
    row = {"episodes": len(episodes), "mean_return": float(returns.mean()),
           "std_return": float(returns.std()), "min_return": float(returns.min()),
           "max_return": float(returns.max()),
           "mean_length": float(np.mean([e["length"] for e in episodes]))}
    judged = [e["success"] for e in episodes if "success" in e]
    if judged:
        row[C.SUCCESS_RATE] = float(np.mean(judged))
    return row


def play_conditions(sweep: ConditionSweep, source: EvalPolicy, num_episodes: int, seed: int,
                    params_path: str | None, config_path: str | None) -> list[list[dict]]:
    """Every condition's episodes, in the order of the file."""
    with contextlib.ExitStack() as stack:
        envs = []
        for condition in sweep.conditions:  # every env ready before any episode
            env, judge = condition_env(sweep, condition, source, seed, params_path,
                                       config_path)
            stack.enter_context(contextlib.closing(env))
            apply_condition(env, sweep, condition, source.policy)
            envs.append((env, judge))
        return [[play(env, source.policy, judge) for _ in range(num_episodes)]
                for env, judge in envs]


# --- Writing the results ---

def write_tables(rows: list[dict], output: Path) -> None:
    """robustness.csv and robustness.md: one row per condition, one column per key."""
    columns = list(dict.fromkeys(key for row in rows for key in row))  # success: some rows
    csv_path = output / f"{C.CONDITION_SWEEP_STEM}.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, restval="n/a")
        writer.writeheader()
        writer.writerows(rows)

    def cell(value) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "n/a")) for c in columns) + " |"
              for row in rows]
    (output / f"{C.CONDITION_SWEEP_STEM}.md").write_text("\n".join(lines) + "\n")


def write_plot(sweep: ConditionSweep, rows: list[dict], title: str, path: Path) -> None:
    """Mean return ± std per condition (and the success rate, on the right axis, when
    the env reports success): a curve against the values when they are numbers, else
    one labelled point per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = np.array([row["mean_return"] for row in rows])
    stds = np.array([row["std_return"] for row in rows])
    values = [c.value for c in sweep.conditions]
    numeric = all(is_number(v) for v in values)
    x = np.array(values, dtype=float) if numeric else np.arange(len(rows), dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5))
    if numeric:  # a curve over the values
        order = np.argsort(x, kind="stable")
        ax.fill_between(x[order], (means - stds)[order], (means + stds)[order], alpha=0.2)
        ax.errorbar(x[order], means[order], yerr=stds[order], marker="o", capsize=4)
    else:  # separate conditions: points, not a curve
        ax.errorbar(x, means, yerr=stds, marker="o", capsize=4, linestyle="none")
        ax.set_xticks(x, [c.label for c in sweep.conditions], rotation=20, ha="right")
    ax.set_xlabel(sweep.parameter if numeric else "condition")
    ax.set_ylabel(f"return (mean ± std over {rows[0]['episodes']} episodes)")
    if all(C.SUCCESS_RATE in row for row in rows):  # the env reports success
        rates = np.array([row[C.SUCCESS_RATE] for row in rows])
        order = np.argsort(x, kind="stable") if numeric else np.arange(len(rows))
        right = ax.twinx()
        right.plot(x[order], rates[order], color="tab:green", marker="s",
                   linestyle="--" if numeric else "none", label="success rate")
        right.set_ylim(-0.05, 1.05)
        right.set_ylabel("success rate", color="tab:green")
    ax.set_title(textwrap.fill(title, 90), fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_sweep(sweep: ConditionSweep, source: EvalPolicy, num_episodes: int, seed: int,
              output: Path | None, params_path: str | None = None,
              config_path: str | None = None) -> dict:
    """Evaluate the policy under every condition; write the table, JSON and plot."""
    import tensorflow as tf

    tf.random.set_seed(seed)
    episodes = play_conditions(sweep, source, num_episodes, seed, params_path, config_path)
    rows = [{"condition": c.label, **({sweep.parameter: c.value} if sweep.parameter else {}),
             **aggregate(e)} for c, e in zip(sweep.conditions, episodes)]
    output = output or ExperimentPaths(source.exp_dir).condition_sweep(sweep.path.stem,
                                                                       source.name, seed)
    output.mkdir(parents=True, exist_ok=True)
    result = {
        **source.description, "sweep_file": str(sweep.path), "parameter": sweep.parameter,
        "config": sweep.config, "seed": seed, "num_episodes": num_episodes,
        "conditions": [{**row, "set_state": c.set_state, "config": c.config,
                        "returns": [e["return"] for e in eps],
                        "lengths": [e["length"] for e in eps]}
                       for row, c, eps in zip(rows, sweep.conditions, episodes)],
    }
    write_json_atomic(output / f"{C.CONDITION_SWEEP_STEM}.json", result)
    write_tables(rows, output)
    write_plot(sweep, rows, f"{sweep.path.name} on {source.exp_dir}: {source.title}, seed {seed}",
               output / f"{C.CONDITION_SWEEP_STEM}.png")
    for row in rows:
        print(f"{row['condition']}: mean return {row['mean_return']:.2f} ± "
              f"{row['std_return']:.2f} over {num_episodes} episodes")
    print(f"table: {output / C.CONDITION_SWEEP_STEM}.md (.csv, .json), plot: "
          f"{output / C.CONDITION_SWEEP_STEM}.png")
    return result
