"""Fine-tuning: a new experiment that starts from another experiment's learner checkpoint.

At launch (a new experiment only) `plan_init` checks the source: an experiment
directory with a readable checkpoint at the requested train step, trained on the
same observation and action specs, whose checkpoint fits this experiment's agent
(restored once into a throwaway agent: a mismatch fails the launch, not the learner) and,
for its replay buffer, kept in the learner's memory. `create_experiment` then copies
that checkpoint into the new experiment (`init_from_checkpoint/`) and records the
choice in `init_from.json`: the experiment is self-describing, and its learner never
depends on the source again for weights (the source may go on training and rotate
its checkpoints, or be moved).

The learner, when it has no checkpoint of its own, restores the chosen parts from
the copy (`initialize_agent`) and imports the source's replay rows once, read-only
(`import_replay`). Its train step stays 0. Nothing is ever written to the source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from tfagents_system import constants as C
from tfagents_system.checkpoint_recovery import checkpoint_prefixes
from tfagents_system.checks import CheckError
from tfagents_system.paths import ExperimentPaths
from tfagents_system.runtime import (
    FatalError,
    read_json,
    read_json_or_none,
    write_json_atomic,
)

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

    def record(self) -> dict:
        """The content of the new experiment's init_from.json."""
        return {"source": str(self.source), "checkpoint": str(self.checkpoint),
                "copy": f"{C.INIT_FROM_CHECKPOINT_DIR}/{self.checkpoint.name}",
                "train_step": self.train_step, "parts": list(self.parts),
                "replay_rows": self.replay_rows}

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
    from tfagents_system.checkpoint_recovery import readable

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

    from tfagents_system.run import spec_shapes

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


def replay_rows(source: Path, agent, params, capacity: int, where: str) -> int:
    """How many of the source's logged transitions the learner will import; CheckError
    if either experiment does not keep its buffer in the learner's memory."""
    from tfagents_system.replay.layouts import LAYOUT_BLOCKS, recorded_n_step, recorded_sequence
    from tfagents_system.replay.memory import ReplayLog, log_segments
    from tfagents_system.replay.packing import item_capacity, make_packer

    src = ExperimentPaths(source)
    record = read_json_or_none(src.layout) or {}
    layout = record.get("layout")
    if layout != LAYOUT_BLOCKS or not params.learner_keeps_replay:
        whose = (f"the source's layout is {layout} ({src.layout})" if layout != LAYOUT_BLOCKS
                 else "this experiment sets learner_keeps_replay = False")
        raise CheckError(f"{where} {source}: init_from_replay imports a replay buffer the "
                         f"learner keeps in memory ({LAYOUT_BLOCKS} layout), but {whose}; set "
                         "init_from_replay = False")
    sequence = params.sequence
    if recorded_sequence(record) != sequence:
        raise CheckError(f"{where} {source}: its replay buffer holds windows of "
                         f"{recorded_sequence(record)} (trained, burn-in) steps, this "
                         f"experiment trains on {sequence} (None: transitions); use the "
                         "source's recurrent settings, or set init_from_replay = False")
    if recorded_n_step(record) != params.n_step_returns:
        raise CheckError(f"{where} {source}: its replay buffer holds rows of (n, discount) = "
                         f"{recorded_n_step(record)} (None: one-step), this experiment's "
                         f"n_step and discount give {params.n_step_returns}; use the source's "
                         "n_step and discount, or set init_from_replay = False")
    spec = agent.collect_data_spec
    row_size = make_packer(spec.observation, spec.action, sequence).size
    meta = src.replay_memory / ReplayLog.META
    try:
        logged = json.loads(meta.read_text())["row_size"]
    except (OSError, ValueError, KeyError, TypeError):
        logged = None
    if logged != row_size:
        raise CheckError(f"{where} {source}: its replay log {meta} holds rows of "
                         f"{logged} floats, this experiment's transitions take {row_size}; "
                         "set init_from_replay = False")
    rows = sum(path.stat().st_size // (4 * row_size)
               for _, path in log_segments(src.replay_memory))
    source_capacity = (read_json_or_none(src.settings) or {}).get("replay_capacity")
    if source_capacity is not None:
        rows = min(rows, item_capacity(source_capacity, sequence))
    return min(rows, item_capacity(capacity, sequence))


def plan_init(source: Path, params, specs: tuple, capacity: int, where: str) -> InitFrom:
    """Check a fine-tuning source against this new experiment; what will be loaded."""
    import tensorflow as tf
    from tf_agents.utils import common

    from tfagents_system import builders

    step = choose_step(source, params.init_from_step, where)
    check_specs(source, *specs, where)
    agent = builders.make_agent(params, *specs, common.create_variable(
        "init_from_check_step", 0, dtype=tf.int64))
    init = InitFrom(source, step, requested_parts(params))
    check_restore(agent, init, where)
    if REPLAY in init.parts:
        init = dataclasses.replace(init, replay_rows=replay_rows(source, agent, params,
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
    write_json_atomic(paths.init_from, init.record(), durable=True)


# --- In the learner ---

def read_record(paths: ExperimentPaths) -> dict | None:
    """The experiment's init_from.json, or None when it was not fine-tuned."""
    return read_json(paths.init_from) if paths.init_from.is_file() else None


def initialize_agent(agent, paths: ExperimentPaths, log) -> None:
    """Load the recorded parts into an agent that restored no checkpoint of its own."""
    record = read_record(paths)
    if record is None:
        return
    prefix = checkpoint_prefix(paths.init_from_checkpoint, record["train_step"])
    try:
        restore_parts(agent, prefix, record["parts"])
    except Exception as exc:  # a file deleted or damaged since the launch checked it
        raise FatalError(f"cannot load {prefix}, the copy of {record['checkpoint']} this "
                         f"experiment starts from ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); copy the source "
                         f"checkpoint's files there again, or start a new experiment") from exc
    log.info("fine-tuning: loaded %s from %s (train step %d of experiment %s); starting at "
             "train step 0", ", ".join(p for p in record["parts"] if p != REPLAY),
             record["checkpoint"], record["train_step"], record["source"])


def import_replay(source, layout: str, paths: ExperimentPaths, log) -> None:
    """Import the source's logged replay rows into an empty replay memory (once: they
    are logged in this experiment's memory and survive its restarts)."""
    from tfagents_system.replay.layouts import LAYOUT_BLOCKS
    from tfagents_system.replay.memory import read_rows

    record = read_record(paths)
    if record is None or REPLAY not in record["parts"]:
        return
    if layout != LAYOUT_BLOCKS:
        raise FatalError(f"init_from_replay imports {record['source']}'s replay buffer into "
                         f"the learner's memory, but this experiment's layout is {layout} "
                         f"({paths.layout}); start a new experiment with init_from_replay = "
                         "False, or where its buffer fits in a quarter of the RAM")
    if source.memory.inserted:
        return
    directory = ExperimentPaths(Path(record["source"])).replay_memory
    if not directory.is_dir():
        raise FatalError(f"init_from_replay: {directory}, the replay log to import, is gone; "
                         "put the source experiment back, or start a new experiment with "
                         "init_from_replay = False")
    rows, _ = read_rows(directory, source.memory.row_size, int(record["replay_rows"]))
    source.import_rows(rows)
    log.info("fine-tuning: imported %d replay rows (transitions, or windows of recurrent "
             "training) from %s", len(rows), directory)
