"""An experiment's progress, summed from its programs' status records (the launch's
progress line and the status command)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import Completion, LearnerStatus, WorkerStatus

# Status files older than this (seconds) do not count for "current" speeds.
STALE_S = 120


@dataclass(frozen=True)
class Snapshot:
    """An experiment's progress at one moment."""

    train_step: int
    env_steps: int
    eval_train_step: int | None
    eval_return: float | None  # the mean over the workers that evaluated it
    eval_workers: int
    eval_success_rate: float | None
    collect_success_rate: float | None
    eval_metrics: dict
    collect_metrics: dict
    grad_steps_per_sec: float
    env_steps_per_sec: float


def progress(paths: ExperimentPaths, num_workers: int, live: bool = True) -> Snapshot:
    """Totals from the programs' status files (the launcher's progress line uses this too).

    Rates count only while `live` and only from status files written in the
    last `STALE_S` seconds.
    """
    learner = LearnerStatus.read_or_none(paths.status_file(C.LEARNER))
    workers = [WorkerStatus.read_or_none(paths.status_file(C.worker_name(i)))
               for i in range(num_workers)]
    workers = [w for w in workers if w is not None]
    step = 0 if learner is None else learner.train_step
    complete = Completion.read_or_none(paths.complete)
    if complete is not None:
        step = complete.train_step
    evaluated = [w for w in workers if w.eval_return is not None]
    eval_step = max((w.eval_train_step for w in evaluated), default=None)
    latest = [w for w in evaluated if w.eval_train_step == eval_step]
    eval_values = [w.eval_return for w in latest]
    eval_metrics = mean_over_workers([w.eval_metrics for w in latest])
    collect_metrics = mean_over_workers([w.collect_metrics for w in workers])
    now = time.time()

    def fresh(status) -> bool:
        return live and status is not None and now - status.time < STALE_S

    return Snapshot(
        train_step=step, env_steps=sum(w.env_steps for w in workers),
        eval_train_step=eval_step,
        eval_return=sum(eval_values) / len(eval_values) if eval_values else None,
        eval_workers=len(eval_values),
        eval_success_rate=eval_metrics.pop(C.SUCCESS_RATE, None),
        collect_success_rate=collect_metrics.pop(C.SUCCESS_RATE, None),
        eval_metrics=eval_metrics, collect_metrics=collect_metrics,
        grad_steps_per_sec=learner.grad_steps_per_sec if fresh(learner) else 0.0,
        env_steps_per_sec=sum(w.env_steps_per_sec for w in workers if fresh(w)))


def refusal_lines(paths: ExperimentPaths, num_workers: int) -> list[str]:
    """What the programs refused from the replay server (forged, replayed or malformed
    items), and the workers that have refused every weights item for at least
    `C.STALE_WEIGHTS_S`: they act with stale weights (empty: nothing refused)."""
    lines = []
    learner = LearnerStatus.read_or_none(paths.status_file(C.LEARNER))
    if learner is not None and learner.rejected:
        lines.append("learner refused " + ", ".join(
            f"{n} {why}" for why, n in sorted(learner.rejected.items())))
    for index in range(num_workers):
        name = C.worker_name(index)
        status = WorkerStatus.read_or_none(paths.status_file(name))
        if status is None or not status.weights_refused:
            continue
        line = f"{name} refused weights: " + ", ".join(
            f"{n} {why}" for why, n in sorted(status.weights_refused.items()))
        if status.weights_refused_s >= C.STALE_WEIGHTS_S:
            line += (f"; STALE: refusing every weights item for {status.weights_refused_s:.0f}s, "
                     f"acting with those of train step {status.train_step_seen}")
        lines.append(line)
    return lines


def mean_over_workers(metric_dicts: list[dict]) -> dict[str, float]:
    """Each task metric's mean over the workers whose status reports it."""
    by_name = defaultdict(list)
    for metrics in metric_dicts:
        for name, value in metrics.items():
            by_name[name].append(value)
    return {name: sum(values) / len(values) for name, values in by_name.items()}


def success_text(snap: Snapshot) -> str | None:
    """"50% eval / 40% collect" from a `progress` snapshot; None when no episode has
    reported success."""
    rates = (snap.eval_success_rate, snap.collect_success_rate)
    if rates == (None, None):
        return None
    return " / ".join(f"{'n/a' if rate is None else f'{100 * rate:.0f}%'} {what}"
                      for rate, what in zip(rates, ("eval", "collect")))


