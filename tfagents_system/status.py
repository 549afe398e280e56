"""The state of a running or finished experiment.

    python -m tfagents_system.status logs/<name>      (or ./run_script.sh --status logs/<name>)

Prints each program's state, pid, restarts and uptime (from supervisord, when
the experiment is running), the train step against its target, env steps,
the latest eval return, the success rate and the task metrics (when the env
reports them: TrainParams.episode_success and episode_metrics), and the current
grad steps/s and env steps/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from tfagents_system import constants as C
from tfagents_system import supervision
from tfagents_system.paths import ExperimentPaths
from tfagents_system.runtime import read_json

# Status files older than this (seconds) do not count for "current" speeds.
STALE_S = 120


def _read(path: Path) -> dict:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _num_workers(paths: ExperimentPaths) -> int:
    """Workers of the latest launch (a relaunch may use another number)."""
    try:
        last = json.loads(paths.launches.read_text().strip().splitlines()[-1])
        return last.get("num_workers", len(last["cpu_layout"]["workers"]))
    except (OSError, IndexError, ValueError, KeyError):
        return len(list(paths.status.glob(f"{C.WORKER_PREFIX}*{C.STATUS_SUFFIX}")))


def program_rows(exp_dir: Path) -> tuple[str, list[dict]]:
    """(overall state, one row per program)."""
    paths = ExperimentPaths(exp_dir)
    rdir = paths.run_dir()
    restarts = _read(rdir / C.RESTARTS_FILE).get("restarts", {})
    try:
        infos = supervision.rpc(exp_dir).supervisor.getAllProcessInfo()
    except Exception:  # no supervisord answering: not running
        infos = None
    if infos is not None:
        rows = [{"name": i["name"], "state": i["statename"], "pid": i["pid"] or "-",
                 "restarts": restarts.get(i["name"], 0),
                 "uptime": _uptime(i["now"] - i["start"]) if i["statename"] == "RUNNING"
                 else "-"}
                for i in infos if i["name"] != C.MONITOR]
        return "running", rows
    names = sorted(p.stem for p in paths.status.glob(f"*{C.HEARTBEAT_SUFFIX}"))
    rows = [{"name": n, "state": "STOPPED", "pid": "-", "restarts": restarts.get(n, 0),
             "uptime": "-"} for n in names]
    if paths.complete.is_file():
        return "finished", rows
    outcome = _read(rdir / C.OUTCOME_FILE)
    if outcome.get("result") == "failed":
        return f"failed ({outcome.get('reason')})", rows
    return "stopped (resumable)", rows


def progress(paths: ExperimentPaths, num_workers: int, live: bool = True) -> dict:
    """Totals from the programs' status files (the launcher's progress line uses this too).

    Rates count only while `live` and only from status files written in the
    last `STALE_S` seconds.
    """
    learner = _read(paths.status_file(C.LEARNER))
    workers = [_read(paths.status_file(C.worker_name(i))) for i in range(num_workers)]
    step = learner.get("train_step", 0)
    if paths.complete.is_file():
        step = _read(paths.complete).get("train_step", step)
    evaluated = [w for w in workers if "eval_return" in w]
    eval_step = max((w["eval_train_step"] for w in evaluated), default=None)
    latest = [w for w in evaluated if w["eval_train_step"] == eval_step]
    eval_values = [w["eval_return"] for w in latest]
    eval_metrics = mean_over_workers([w.get("eval_metrics", {}) for w in latest])
    collect_metrics = mean_over_workers([w.get("collect_metrics", {}) for w in workers])
    now = time.time()

    def fresh(status: dict) -> bool:
        return live and now - status.get("time", 0) < STALE_S

    return {
        "train_step": step,
        "env_steps": sum(w.get("env_steps", 0) for w in workers),
        "eval_train_step": eval_step,
        "eval_return": sum(eval_values) / len(eval_values) if eval_values else None,
        "eval_workers": len(eval_values),
        "eval_success_rate": eval_metrics.pop(C.SUCCESS_RATE, None),
        "collect_success_rate": collect_metrics.pop(C.SUCCESS_RATE, None),
        "eval_metrics": eval_metrics,
        "collect_metrics": collect_metrics,
        "grad_steps_per_sec": learner.get("grad_steps_per_sec", 0.0) if fresh(learner) else 0.0,
        "env_steps_per_sec": sum(w.get("env_steps_per_sec", 0.0) for w in workers if fresh(w)),
    }


def mean_over_workers(metric_dicts: list[dict]) -> dict[str, float]:
    """Each task metric's mean over the workers whose status reports it."""
    by_name = defaultdict(list)
    for metrics in metric_dicts:
        for name, value in metrics.items():
            by_name[name].append(value)
    return {name: sum(values) / len(values) for name, values in by_name.items()}


def success_text(snap: dict) -> str | None:
    """"50% eval / 40% collect" from a `progress` snapshot; None when no episode has
    reported success."""
    rates = (snap["eval_success_rate"], snap["collect_success_rate"])
    if rates == (None, None):
        return None
    return " / ".join(f"{'n/a' if rate is None else f'{100 * rate:.0f}%'} {what}"
                      for rate, what in zip(rates, ("eval", "collect")))


def _task_lines(snap: dict) -> list[str]:
    """The status report's success rate and task metrics lines (none if not reported)."""
    lines = []
    success = success_text(snap)
    if success is not None:
        lines.append(f"success rate    {success}")
    for what in ("eval", "collect"):
        metrics = snap[f"{what}_metrics"]
        if metrics:
            lines.append(f"{what + ' metrics':<16}"
                         + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
    return lines


def render(exp_dir: Path) -> str:
    """The status report of a running or finished experiment."""
    paths = ExperimentPaths(exp_dir)
    state, rows = program_rows(exp_dir)
    snap = progress(paths, _num_workers(paths), live=state == "running")
    target = _read(paths.settings).get("total_train_steps") or 0
    step = snap["train_step"]
    lines = [f"experiment {paths.root}: {state}", ""]
    lines.append(f"{'program':<15}{'state':<10}{'pid':>8}{'restarts':>10}{'uptime':>10}")
    for r in rows:
        lines.append(f"{r['name']:<15}{r['state']:<10}{r['pid']!s:>8}{r['restarts']!s:>10}"
                     f"{r['uptime']:>10}")
    lines.append("")
    percent = f" ({100 * step / target:.0f}%)" if target else ""
    lines.append(f"train step      {step} / {target}{percent}")
    lines.append(f"env steps       {snap['env_steps']}")
    if snap["eval_return"] is not None:
        lines.append(f"eval return     {snap['eval_return']:.1f} (train step "
                     f"{snap['eval_train_step']}, mean over {snap['eval_workers']} worker(s))")
    else:
        lines.append("eval return     n/a")
    lines += _task_lines(snap)
    lines.append(f"speed           {snap['grad_steps_per_sec']:.1f} grad steps/s, "
                 f"{snap['env_steps_per_sec']:.0f} env steps/s")
    return "\n".join(lines)


def main(argv=None) -> int:
    """The status command."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="experiment directory (logs/<name>)")
    args = parser.parse_args(argv)
    if not (args.exp_dir / C.SETTINGS_FILE).is_file():
        print(f"error: {args.exp_dir}: not an experiment directory (no {C.SETTINGS_FILE})",
              file=sys.stderr)
        return C.EXIT_BAD_INPUT
    print(render(args.exp_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
