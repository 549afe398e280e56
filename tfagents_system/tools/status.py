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
import sys
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.progress import Snapshot, progress, refusal_lines, success_text
from tfagents_system.core.records import ExperimentSettings, LaunchRecord, Outcome, Restarts
from tfagents_system.supervisord import rpc


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _num_workers(paths: ExperimentPaths) -> int:
    """Workers of the latest launch (a relaunch may use another number)."""
    last = LaunchRecord.last(paths.launches)
    if last is not None:
        return last.num_workers
    return len(list(paths.status.glob(f"{C.WORKER_PREFIX}*{C.STATUS_SUFFIX}")))


def program_rows(exp_dir: Path) -> tuple[str, list[dict]]:
    """(overall state, one row per program)."""
    paths = ExperimentPaths(exp_dir)
    rdir = paths.run_dir()
    record = Restarts.read_or_none(rdir / C.RESTARTS_FILE)
    restarts = {} if record is None else record.restarts
    try:
        infos = rpc(exp_dir).supervisor.getAllProcessInfo()
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
    outcome = Outcome.read_or_none(rdir / C.OUTCOME_FILE)
    if outcome is not None and not outcome.complete:
        return f"failed ({outcome.reason})", rows
    return "stopped (resumable)", rows


def _task_lines(snap: Snapshot) -> list[str]:
    """The status report's success rate and task metrics lines (none if not reported)."""
    lines = []
    success = success_text(snap)
    if success is not None:
        lines.append(f"success rate    {success}")
    for what in ("eval", "collect"):
        metrics = getattr(snap, f"{what}_metrics")
        if metrics:
            lines.append(f"{what + ' metrics':<16}"
                         + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
    return lines


def render(exp_dir: Path) -> str:
    """The status report of a running or finished experiment."""
    paths = ExperimentPaths(exp_dir)
    state, rows = program_rows(exp_dir)
    snap = progress(paths, _num_workers(paths), live=state == "running")
    settings = ExperimentSettings.read_or_none(paths.settings)
    target = 0 if settings is None else settings.total_train_steps
    step = snap.train_step
    lines = [f"experiment {paths.root}: {state}", ""]
    lines.append(f"{'program':<15}{'state':<10}{'pid':>8}{'restarts':>10}{'uptime':>10}")
    for r in rows:
        lines.append(f"{r['name']:<15}{r['state']:<10}{r['pid']!s:>8}{r['restarts']!s:>10}"
                     f"{r['uptime']:>10}")
    lines.append("")
    percent = f" ({100 * step / target:.0f}%)" if target else ""
    lines.append(f"train step      {step} / {target}{percent}")
    lines.append(f"env steps       {snap.env_steps}")
    if snap.eval_return is not None:
        lines.append(f"eval return     {snap.eval_return:.1f} (train step "
                     f"{snap.eval_train_step}, mean over {snap.eval_workers} worker(s))")
    else:
        lines.append("eval return     n/a")
    lines += _task_lines(snap)
    lines.append(f"speed           {snap.grad_steps_per_sec:.1f} grad steps/s, "
                 f"{snap.env_steps_per_sec:.0f} env steps/s")
    lines += [f"refused         {line}" for line in refusal_lines(paths, _num_workers(paths))]
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
