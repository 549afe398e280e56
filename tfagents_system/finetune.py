"""Fine-tuning: a new experiment that starts from another experiment's learner checkpoint.

At launch (a new experiment only) `plan_init` checks the source: an experiment
directory with a readable checkpoint at the requested train step, trained on the
same observation and action specs, whose checkpoint fits this experiment's agent
(restored once into a throwaway agent the launch builds: a mismatch fails the launch, not
the learner) and, for its replay buffer, kept in the learner's memory in the same
replay format. The launch then copies
that checkpoint into the new experiment (`init_from_checkpoint/`) and records the
choice in `init_from.json`: the experiment is self-describing, and its learner never
depends on the source again for weights (the source may go on training and rotate
its checkpoints, or be moved).

The learner, when it has no checkpoint of its own, restores the chosen parts from
the copy (`initialize_agent`), and the builder imports the source's replay rows into
its empty replay memory once, read-only (`rows_to_import`). Its train step stays 0.
Nothing is ever written to the source.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from tfagents_system.checkpoint_recovery import checkpoint_prefixes, readable
from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError, FatalError
from tfagents_system.core.files import JsonRecord
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings
from tfagents_system.core.specs import spec_shapes
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat
from tfagents_system.replay.memory import ReplayLog, log_segments, read_rows

NETWORKS, OPTIMIZERS, ALPHA, REPLAY = "networks", "optimizers", "alpha", "replay"
# The SacAgent attributes each part restores, under the names the learner's
# checkpoint (common.Checkpointer(agent=agent, ...)) gives them.
AGENT_PARTS = {
    NETWORKS: ("_actor_network", "_critic_network_1", "_critic_network_2",
               "_target_critic_network_1", "_target_critic_network_2"),
    OPTIMIZERS: ("_actor_optimizer", "_critic_optimizer", "_alpha_optimizer"),
    ALPHA: ("_log_alpha",),
}


@dataclasses.dataclass(frozen=True)
class InitFromRecord(JsonRecord):
    """init_from.json: what a fine-tuned experiment started from (the source, its
    checkpoint and the experiment's copy of it, the parts loaded, the rows imported)."""

    source: str
    checkpoint: str
    copy: str
    train_step: int
    parts: list
    replay_rows: int = 0


@dataclasses.dataclass(frozen=True)
class InitFrom:
    """What a new experiment starts from: the source experiment, its checkpoint's
    train step, the parts loaded and the replay rows imported."""

    source: Path
    train_step: int
    parts: tuple[str, ...]
    replay_rows: int = 0

    @property
    def checkpoint(self) -> Path:
        """The source's checkpoint (prefix), read at launch only."""
        return checkpoint_prefix(ExperimentPaths(self.source).checkpoints, self.train_step)

    def record(self) -> InitFromRecord:
        """The new experiment's init_from.json."""
        return InitFromRecord(str(self.source), str(self.checkpoint),
                              f"{C.INIT_FROM_CHECKPOINT_DIR}/{self.checkpoint.name}",
                              self.train_step, list(self.parts), self.replay_rows)

    def describe(self) -> str:
        """The launch's line saying what is loaded from where."""
        parts = [f"replay buffer ({self.replay_rows} transitions)" if part == REPLAY else part
                 for part in self.parts]
        return (f"fine-tuning from {self.checkpoint} (train step {self.train_step} of "
                f"experiment {self.source}): loading {', '.join(parts)}; this experiment's "
                "train step starts at 0")


def checkpoint_prefix(directory: Path, train_step: int) -> Path:
    """The learner checkpoint of `train_step` in `directory` (saved as ckpt-<step>)."""
    return Path(directory) / f"ckpt-{int(train_step)}"


def requested_source(params, init_from_variable: Path | None, params_file: Path) -> Path | None:
    """The source directory: SAC_INIT_FROM, else params.init_from (relative to the
    params file); None when neither is set."""
    if init_from_variable is not None:
        return init_from_variable.resolve()
    if params.init_from is None:
        return None
    source = Path(os.path.expanduser(params.init_from))
    return (source if source.is_absolute() else params_file.parent / source).resolve()


def requested_parts(params) -> tuple[str, ...]:
    """The parts the params ask for; the networks always."""
    chosen = (params.init_from_optimizers, params.init_from_alpha, params.init_from_replay)
    return (NETWORKS, *(part for part, on in zip((OPTIMIZERS, ALPHA, REPLAY), chosen) if on))


# --- At launch ---

def source_steps(source: Path) -> list[int]:
    """The train steps of the source's learner checkpoints, oldest first."""
    directory = ExperimentPaths(source).checkpoints
    if not directory.is_dir():
        return []
    return [int(prefix.name.split("-")[1]) for prefix in checkpoint_prefixes(directory)]


def choose_step(source: Path, step: int | None, where: str) -> int:
    """The source checkpoint's train step: `step`, or the latest; CheckError if the
    source is no experiment, has no checkpoint, or none at `step`, or it is unreadable."""
    if not (source / C.SETTINGS_FILE).is_file():
        what = "does not exist" if not source.exists() else f"holds no {C.SETTINGS_FILE}"
        raise CheckError(f"{where} {source} {what}: it is not an experiment directory; "
                         "point it at an experiment under your logs directory")
    steps = source_steps(source)
    if not steps:
        raise CheckError(f"{where} {source} has no learner checkpoint in "
                         f"{ExperimentPaths(source).checkpoints}: train it until it writes "
                         "one (every checkpoint_period_itrs iterations, and when it stops)")
    available = ", ".join(map(str, steps))
    if step is not None and step not in steps:
        raise CheckError(f"{where} {source} has no checkpoint at train step {step} "
                         f"(init_from_step); available: {available}, or None for the latest")
    chosen = steps[-1] if step is None else step
    reason = readable(checkpoint_prefix(ExperimentPaths(source).checkpoints, chosen))
    if reason is not None:
        raise CheckError(f"{where} {source}: its checkpoint at train step {chosen} cannot be "
                         f"read ({reason}); choose another with init_from_step "
                         f"(available: {available})")
    return chosen


def check_specs(source: Path, time_step_spec, action_spec, where: str) -> None:
    """The source's policy was trained on the observation and action specs of this
    experiment's env (read from its exported greedy policy's specs file)."""
    from tf_agents.policies import policy_saver
    from tf_agents.specs import tensor_spec

    spec_file = ExperimentPaths(source).policy(C.GREEDY_POLICY) / policy_saver.POLICY_SPECS_PBTXT
    try:
        trained = tensor_spec.from_pbtxt_file(str(spec_file))["collect_data_spec"]
    except Exception as exc:  # missing or unreadable: what TensorFlow raised says which
        raise CheckError(f"{where} {source}: its policy specs {spec_file} cannot be read "
                         f"({type(exc).__name__}); fine-tune from an experiment whose learner "
                         "has started") from exc
    pairs = (("observation", time_step_spec.observation, trained.observation),
             ("action", action_spec, trained.action))
    for what, ours, theirs in pairs:
        if spec_shapes(ours) != spec_shapes(theirs):
            raise CheckError(f"{where} {source} was trained on {what} spec "
                             f"{spec_shapes(theirs)}, this experiment's env has "
                             f"{spec_shapes(ours)}: fine-tune from an "
                             "experiment on an env with the same observations and actions")


def _keep_hyperparameters(optimizer):
    """Create the optimizer's hyperparameter variables and return a function that
    puts their values back: a checkpoint holds the source's learning rates, and the
    fine-tuning experiment trains with its own."""
    import tensorflow as tf

    optimizer._create_hypers()
    values = {name: tf.keras.backend.get_value(value)
              for name, value in optimizer._hyper.items()}
    return lambda: [optimizer._set_hyper(name, value) for name, value in values.items()]


def restore_parts(agent, prefix: Path, parts) -> None:
    """Restore `parts` of a SacAgent from a learner checkpoint, in place; not the train
    step. Every variable of those parts must be in the checkpoint, with its shape."""
    import tensorflow as tf

    holder = tf.Module()
    for part in parts:
        for name in AGENT_PARTS.get(part, ()):
            setattr(holder, name, getattr(agent, name))
    keep = [_keep_hyperparameters(getattr(agent, name))
            for name in AGENT_PARTS[OPTIMIZERS] if OPTIMIZERS in parts]
    status = tf.train.Checkpoint(agent=holder).restore(str(prefix)).expect_partial()
    status.assert_existing_objects_matched()
    for put_back in keep:
        put_back()


def check_restore(agent, init: InitFrom, where: str) -> None:
    """Restore the source checkpoint into a throwaway agent as the learner will: a
    network of another shape or kind fails here, at launch."""
    from tf_agents.agents.sac import sac_agent

    if not isinstance(agent, sac_agent.SacAgent):
        raise CheckError(f"{where}: fine-tuning restores a SacAgent's parts; this params "
                         f"file's agent_ctor builds a {type(agent).__name__}")
    try:
        restore_parts(agent, init.checkpoint, init.parts)
    except (AttributeError, TypeError) as exc:  # a user agent_ctor's own optimizers
        raise CheckError(f"{where} {init.source}: its optimizers cannot be restored into "
                         f"this agent's ({type(exc).__name__}: {exc}); init_from_optimizers "
                         "needs TF-Agents' default (legacy Keras) optimizers with constant "
                         "learning rates: set it to False") from exc
    except (AssertionError, ValueError) as exc:
        raise CheckError(f"{where} {init.source}: its checkpoint at train step "
                         f"{init.train_step} does not fit this experiment's agent "
                         f"({str(exc).splitlines()[0]}); use the source's network sizes "
                         "(actor_fc_layers, critic_joint_fc_layers) and networks") from exc


def replay_rows(source: Path, replay_format: ReplayFormat, capacity: int, where: str) -> int:
    """How many of the source's logged rows the learner will import into this new
    experiment's memory (of `replay_format`, bound to its env's specs); CheckError
    unless both keep their buffer in the learner's memory in the same format."""
    src = ExperimentPaths(source)
    try:
        theirs = ReplayFormat.read(src.layout)
    except ValueError:
        theirs = None
    if theirs is None or theirs.layout != LAYOUT_BLOCKS or replay_format.layout != LAYOUT_BLOCKS:
        whose = (f"the source's layout is {None if theirs is None else theirs.layout} "
                 f"({src.layout})" if theirs is None or theirs.layout != LAYOUT_BLOCKS
                 else f"this experiment's is {replay_format.layout} ({replay_format.reason})")
        raise CheckError(f"{where} {source}: init_from_replay imports a replay buffer the "
                         f"learner keeps in memory ({LAYOUT_BLOCKS} layout), but {whose}; set "
                         "init_from_replay = False")
    if theirs.window != replay_format.window or theirs.n_step != replay_format.n_step:
        raise CheckError(f"{where} {source}: its replay buffer holds rows{_rows(theirs)}, "
                         f"this experiment's params ask for rows{_rows(replay_format)}; use "
                         "the source's recurrent, n_step and discount settings, or set "
                         "init_from_replay = False")
    row_size = replay_format.packer().size
    logged = ReplayLog.row_size_of(src.replay_memory)
    if logged != row_size:
        raise CheckError(f"{where} {source}: its replay log {src.replay_memory / ReplayLog.META} "
                         f"holds rows of {logged} floats, this experiment's rows take "
                         f"{row_size}; set init_from_replay = False")
    rows = sum(path.stat().st_size // (4 * row_size)
               for _, path in log_segments(src.replay_memory))
    settings = ExperimentSettings.read_or_none(src.settings)
    if settings is not None:
        rows = min(rows, theirs.items(settings.replay_capacity))
    return min(rows, replay_format.items(capacity))


def _rows(replay_format: ReplayFormat) -> str:
    return replay_format.rows() or " of one-step transitions"


def plan_init(source: Path, params, specs: tuple, agent, replay_format: ReplayFormat,
              capacity: int, where: str) -> InitFrom:
    """Check a fine-tuning source against this new experiment (`agent`: a throwaway
    agent built as the learner will build it; `replay_format`: the experiment's); what
    will be loaded."""
    step = choose_step(source, params.init_from_step, where)
    check_specs(source, *specs, where)
    init = InitFrom(source, step, requested_parts(params))
    check_restore(agent, init, where)
    if REPLAY in init.parts:
        init = dataclasses.replace(init, replay_rows=replay_rows(source, replay_format,
                                                                 capacity, where))
    return init


def copy_into(init: InitFrom, exp_dir: Path) -> None:
    """Copy the source checkpoint into a new experiment's directory (being created) and
    record the choice; only reads the source. OSError if the checkpoint went away since
    the launch checked it (the source, still training, rotated it out)."""
    paths = ExperimentPaths(exp_dir)
    paths.init_from_checkpoint.mkdir()
    index = init.checkpoint.with_name(f"{init.checkpoint.name}.index")
    shutil.copyfile(index, paths.init_from_checkpoint / index.name)  # gone: OSError
    for file in init.checkpoint.parent.glob(f"{init.checkpoint.name}.data-*"):
        shutil.copyfile(file, paths.init_from_checkpoint / file.name)
    init.record().write(paths.init_from, durable=True)


# --- In the learner ---

def read_record(paths: ExperimentPaths) -> InitFromRecord | None:
    """The experiment's init_from.json, or None when it was not fine-tuned."""
    return InitFromRecord.read(paths.init_from) if paths.init_from.is_file() else None


def initialize_agent(agent, paths: ExperimentPaths, log) -> None:
    """Load the recorded parts into an agent that restored no checkpoint of its own."""
    record = read_record(paths)
    if record is None:
        return
    prefix = checkpoint_prefix(paths.init_from_checkpoint, record.train_step)
    try:
        restore_parts(agent, prefix, record.parts)
    except Exception as exc:  # a file deleted or damaged since the launch checked it
        raise FatalError(f"cannot load {prefix}, the copy of {record.checkpoint} this "
                         f"experiment starts from ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); copy the source "
                         f"checkpoint's files there again, or start a new experiment") from exc
    log.info("fine-tuning: loaded %s from %s (train step %d of experiment %s); starting at "
             "train step 0", ", ".join(p for p in record.parts if p != REPLAY),
             record.checkpoint, record.train_step, record.source)


def rows_to_import(paths: ExperimentPaths, replay_format: ReplayFormat):
    """The source's logged replay rows a fine-tuned experiment imports into its empty
    memory (None when it imports none), read-only; FatalError for a replay format
    without the learner's memory."""
    record = read_record(paths)
    if record is None or REPLAY not in record.parts:
        return None
    if replay_format.layout != LAYOUT_BLOCKS:
        raise FatalError(f"init_from_replay imports {record.source}'s replay buffer into "
                         f"the learner's memory, but this experiment's layout is "
                         f"{replay_format.layout} ({paths.layout}); start a new experiment "
                         "with init_from_replay = False, or where its buffer fits in a "
                         "quarter of the RAM")
    directory = ExperimentPaths(Path(record.source)).replay_memory
    if not directory.is_dir():
        raise FatalError(f"init_from_replay: {directory}, the replay log to import, is gone; "
                         "put the source experiment back, or start a new experiment with "
                         "init_from_replay = False")
    rows, _ = read_rows(directory, replay_format.packer().size, int(record.replay_rows))
    return rows
