"""Where everything of an experiment lives: one attribute or method per file or
directory that two processes share, built from the names in `constants`, so no
program builds a path another one writes by itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfagents_system.core import constants as C


def _under_root(name: str, doc: str) -> property:
    """A path directly in the experiment directory."""
    return property(lambda self: self.root / name, doc=doc)


@dataclass(frozen=True)
class ExperimentPaths:
    """The paths of the experiment directory `root` (logs/<SAC_EXP_NAME>)."""

    root: Path

    config = _under_root(C.CONFIG_COPY, "the config it trains with (a copy)")
    params = _under_root(C.PARAMS_COPY, "the params file it trains with (a copy)")
    settings = _under_root(C.SETTINGS_FILE, "its settings record")
    variant = _under_root(C.VARIANT_FILE, "a sweep task's variant (absent otherwise)")
    launches = _under_root(C.LAUNCHES_FILE, "one JSON line per launch")
    launch_lock = _under_root(C.LAUNCH_LOCK_FILE, "held by the launch that runs it")
    layout = _under_root(C.LAYOUT_FILE, "the replay format record")
    replay_key = _under_root(C.REPLAY_KEY_FILE, "the key signing experience and weights")
    complete = _under_root(C.COMPLETE_FILE, "written when training is complete")
    checkpoints = _under_root(C.CHECKPOINT_DIR, "the learner's checkpoints")
    checkpoints_damaged = _under_root(C.DAMAGED_CHECKPOINT_DIR, "unreadable ones, set aside")
    replay_checkpoints = _under_root(C.REPLAY_CHECKPOINT_DIR, "Reverb's table checkpoints")
    replay_checkpoints_kept = _under_root(C.REPLAY_CHECKPOINTS_KEPT_DIR, "hard links to them")
    replay_checkpoints_damaged = _under_root(C.REPLAY_CHECKPOINTS_DAMAGED_DIR, "set aside")
    replay_checkpoint_lock = _under_root(C.REPLAY_CHECKPOINT_LOCK, "held while one saves")
    replay_memory = _under_root(C.REPLAY_MEMORY_DIR, "the learner's replay memory log")
    demonstrations = _under_root(C.DEMONSTRATIONS_DIR, "the demonstrations' replay rows")
    init_from = _under_root(C.INIT_FROM_FILE, "what a fine-tuned experiment started from")
    init_from_checkpoint = _under_root(C.INIT_FROM_CHECKPOINT_DIR, "its copy of that checkpoint")
    prior_policy = _under_root(C.PRIOR_POLICY_DIR, "its copy of the prior policy (SavedModel)")
    policies = _under_root(C.POLICY_DIR, "exported policies and policy checkpoints")
    process_logs = _under_root(C.PROCESS_LOG_DIR, "one log per program")
    status = _under_root(C.STATUS_DIR, "the programs' status and heartbeat files")
    evaluations = _under_root(C.EVALUATIONS_DIR, "tfagents_system.run's outputs")
    learning_curves = _under_root(C.LEARNING_CURVES_FILE, "the curves drawn at the end")

    @property
    def has_checkpoint(self) -> bool:
        """Whether the learner has written a checkpoint (the experiment has trained)."""
        return (self.checkpoints / C.TF_CHECKPOINT_INDEX).is_file()

    def policy(self, name: str) -> Path:
        """An exported policy the workers load (C.COLLECT_POLICY or C.GREEDY_POLICY)."""
        return self.policies / name

    def final_policy(self, name: str) -> Path:
        """A policy exported with the final weights."""
        return self.policies / C.FINAL_POLICY_DIR / name

    @property
    def replay_imported(self) -> Path:
        """How many of the replay memory's first rows fine-tuning imported."""
        return self.replay_memory / C.REPLAY_IMPORTED_FILE

    @property
    def policy_checkpoints(self) -> Path:
        """The greedy policy's weights at every checkpoint."""
        return self.policies / C.POLICY_CHECKPOINT_DIR

    def policy_checkpoint(self, train_step: int) -> Path:
        """The greedy policy's weights saved with the checkpoint at `train_step`."""
        return self.policy_checkpoints / C.policy_checkpoint_name(train_step)

    def process_log(self, program: str) -> Path:
        """A program's log, appended by every launch and restart."""
        return self.process_logs / f"{program}{C.LOG_SUFFIX}"

    def status_file(self, program: str) -> Path:
        """A program's latest progress (JSON), for the progress line and --status."""
        return self.status / f"{program}{C.STATUS_SUFFIX}"

    def heartbeat(self, program: str) -> Path:
        """Touched as the program makes progress (hang detection)."""
        return self.status / f"{program}{C.HEARTBEAT_SUFFIX}"

    def tensorboard(self, kind: str, worker: str | None = None) -> Path:
        """TensorBoard events of `kind` (train/collect/eval), per worker where given."""
        return self.root / kind if worker is None else self.root / kind / worker

    def evaluation(self, checkpoint: str, seed: int) -> Path:
        """tfagents_system.run's output for one checkpoint and seed."""
        return self.evaluations / C.evaluation_name(checkpoint, seed)

    def condition_sweep(self, sweep: str, policy: str, seed: int) -> Path:
        """tfagents_system.run --sweep_config's output for a sweep file (its stem), a policy
        (a checkpoint or an ensemble) and a seed."""
        return self.evaluations / (f"{C.CONDITION_SWEEP_PREFIX}{sweep}_"
                                   f"{C.evaluation_name(policy, seed)}")

    def fatal(self, program: str) -> Path:
        """A program's report of an error that a restart cannot fix: the run stops."""
        return self.run_dir() / f"{program}{C.FATAL_SUFFIX}"

    def run_dir(self, node: str | None = None) -> Path:
        """This launch's supervision files; another node's in its own subdirectory."""
        run = self.root / C.RUN_DIR
        return run if node is None else run / f"{C.RUN_NODE_PREFIX}{node}"
