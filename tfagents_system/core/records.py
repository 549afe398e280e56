"""The typed records the processes of an experiment exchange through files.

Each record is a frozen dataclass whose field names are its JSON keys (`JsonRecord`):
this module is the only place that spells them. Where each lives is in
`paths.ExperimentPaths`.

- `ExperimentSettings` (settings.json): written once when the launch creates the
  experiment; read by every program and command.
- `LaunchRecord` (launches.jsonl): one line per launch.
- `VariantRecord` (variant.json): a sweep task's overrides.
- `LearnerStatus`, `WorkerStatus` (status/<program>.json): each program's progress.
- `Completion` (TRAINING_COMPLETE.json): written by the learner at the target step.
- `Outcome`, `Restarts`, `SupervisorInfo` (run/): the monitor's account of a launch.
- `FatalReport` (run/<program>.fatal.json): an error a restart cannot fix.
- `EvalSummary` (evaluations/<name>/summary.json): one evaluation's results.

The records of one part's own files live with that part: the replay format
(`replay.format.ReplayFormat`, replay_layout.json), fine-tuning's record
(`finetune.InitFromRecord`), the replay memory's (`replay.memory.LogMeta`, `ImportedRows`)
and the demonstration store's (`replay.demo_store.DemoMeta`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfagents_system.core.files import JsonRecord

# Outcome.result values.
COMPLETE, FAILED = "complete", "failed"


@dataclass(frozen=True)
class ExperimentSettings(JsonRecord):
    """What an experiment was created with: its resolved hyperparameters and config,
    and the values derived at creation (the env's step limit, the replay capacity)."""

    exp_name: str
    created: str
    source_config: str
    source_params: str
    total_train_steps: int
    hyperparameters: dict
    env_config: dict
    max_episode_steps: int | None
    replay_capacity: int


@dataclass(frozen=True)
class VariantRecord(JsonRecord):
    """A sweep task's variant: its config and hyperparameter overrides."""

    task_id: int
    label: str
    config_overrides: dict
    params_overrides: dict
    sweep_file: str | None = None


@dataclass(frozen=True)
class LaunchRecord(JsonRecord):
    """One launch of an experiment: when, where, how and with what."""

    time: str
    pid: int
    host: str
    port: int
    address: str
    resumed: bool
    cpu_layout: dict
    num_workers: int
    workers_here: list
    other_nodes: list = field(default_factory=list)
    slurm_job: str | None = None
    slurm_restart_count: str | None = None
    variant: dict | None = None
    git_revision: str | None = None
    command: list = field(default_factory=list)
    training_variables: dict = field(default_factory=dict)
    mode: str = "supervised"  # or "serial": the programs as threads of one process
    replay_port_private: bool | None = None  # in a private network namespace (None: before)

    def append(self, path: Path) -> None:
        """Add the record as one line of the launches file."""
        with open(path, "a") as fh:
            fh.write(json.dumps(self.to_json()) + "\n")

    @classmethod
    def last(cls, path: Path) -> LaunchRecord | None:
        """The latest launch in the launches file; None if it has none readable."""
        try:
            return cls.from_json(json.loads(Path(path).read_text().strip().splitlines()[-1]))
        except (OSError, IndexError, ValueError):
            return None


@dataclass(frozen=True)
class LearnerStatus(JsonRecord):
    """The learner's progress, rewritten at every summary."""

    train_step: int
    target: int
    iteration: int
    grad_steps_per_sec: float
    replay_size: int
    time: float
    pid: int
    rejected: dict = field(default_factory=dict)  # experience items refused, by reason


@dataclass(frozen=True)
class WorkerStatus(JsonRecord):
    """A worker's progress, rewritten after every collection round and evaluation; a
    restarted worker continues its counters from it."""

    pid: int
    env_steps: int = 0
    episodes: int = 0
    env_steps_per_sec: float = 0.0
    train_step_seen: int = 0
    time: float = 0.0
    curriculum: dict = field(default_factory=dict)
    eval_metrics: dict = field(default_factory=dict)
    collect_metrics: dict = field(default_factory=dict)
    weights_time: float | None = None  # when it started acting with train_step_seen's
    last_return: float | None = None
    eval_return: float | None = None
    eval_train_step: int | None = None
    finished: bool = False
    weights_refused: dict = field(default_factory=dict)  # refused weights items by reason
    weights_refused_s: float = 0.0  # how long it has refused every item (0: it does not)


@dataclass(frozen=True, kw_only=True)
class Stamped(JsonRecord):
    """A record of an event, stamped with when it was written (seconds since the epoch)."""

    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Completion(Stamped):
    """Training reached its target train step."""

    train_step: int


@dataclass(frozen=True)
class Outcome(Stamped):
    """How a launch's run ended, as the monitor saw it."""

    result: str  # COMPLETE or FAILED
    reason: str
    program: str | None = None
    log: str | None = None
    log_tail: str | None = None

    @property
    def complete(self) -> bool:
        """Whether training completed."""
        return self.result == COMPLETE


@dataclass(frozen=True)
class Restarts(JsonRecord):
    """How often the monitor saw each program restart during a launch."""

    restarts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SupervisorInfo(JsonRecord):
    """Where a launch's supervisord listens, and its configuration file."""

    socket: str
    config: str


@dataclass(frozen=True)
class FatalReport(Stamped):
    """A program's error that a restart cannot fix: the monitor stops the run."""

    reason: str


@dataclass(frozen=True)
class EvalSummary(JsonRecord):
    """One evaluation of a policy: what was evaluated, and its episodes' results."""

    seed: int
    num_episodes: int
    returns: list
    lengths: list
    mean_return: float
    std_return: float
    success_rate: float | None = None
    metrics: dict = field(default_factory=dict)
    videos: list = field(default_factory=list)
    # A single policy: its experiment, checkpoint and train step.
    experiment: str | None = None
    checkpoint: str | None = None
    train_step: int | None = None
    # An ensemble: its name and members (experiment, checkpoint, train step each).
    ensemble: str | None = None
    members: list | None = None

    def to_json(self) -> dict:
        """The record, with only the fields of what was evaluated (a policy's or an
        ensemble's)."""
        which = ("experiment", "checkpoint", "train_step", "ensemble", "members")
        return {key: value for key, value in super().to_json().items()
                if key not in which or value is not None}
